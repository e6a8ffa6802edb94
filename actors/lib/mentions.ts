/**
 * Mentions in message text: `<@userId>` names a user, `<!channel>` everyone
 * in the channel. Only current channel members count; the rest of the text is
 * left alone (rendering is the client's business).
 */
const USER_MENTION = /<@([A-Za-z0-9_-]{1,64})>/g;

/** Parsed mentions: member ids in order of first appearance, and whether `<!channel>` appears. */
export interface Mentions {
  users: string[];
  channel: boolean;
}

/** Parses `text`, keeping only users for whom `isMember` is true. At most 50 users are kept. */
export function parseMentions(text: string, isMember: (user: string) => boolean): Mentions {
  const users: string[] = [];
  for (const m of text.matchAll(USER_MENTION)) {
    const u = m[1]!;
    if (u !== '__proto__' && !users.includes(u) && isMember(u)) users.push(u);
    if (users.length >= 50) break;
  }
  return { users, channel: text.includes('<!channel>') };
}

/** A one-line preview for notifications: at most `max` characters. */
export function preview(text: string, max = 140): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}
