/** The name of a virtual actor: its type and its key within that type. It exists conceptually forever. */
export interface ActorId {
  readonly type: string;
  readonly key: string;
}

/** The single string form of an actor id, `type/key`, used as the ring key and the map key. */
export function idString(id: ActorId): string {
  return `${id.type}/${id.key}`;
}

/** Parses `type/key` back into an ActorId; the key may itself contain slashes. */
export function parseId(s: string): ActorId {
  const i = s.indexOf('/');
  if (i <= 0) throw new TypeError(`not an actor id: ${JSON.stringify(s)}`);
  return { type: s.slice(0, i), key: s.slice(i + 1) };
}
