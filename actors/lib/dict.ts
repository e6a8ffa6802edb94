/**
 * Plain-object dictionaries in actor state. State must survive the codec
 * (snapshots decode maps as plain objects), so it uses records, and every
 * read goes through `Object.hasOwn`: a user called `constructor` must not
 * find `Object.prototype.constructor` in a member table. Keys that come from
 * input are ids or emoji, whose schemas refuse `__proto__`.
 */

/** A string-keyed record. */
export type Dict<V> = Record<string, V>;

/** The own value at `key`, or undefined. */
export function get<V>(d: Dict<V>, key: string): V | undefined {
  return Object.hasOwn(d, key) ? d[key] : undefined;
}

/** True when `key` is an own key of `d`. */
export function has(d: Dict<unknown>, key: string): boolean {
  return Object.hasOwn(d, key);
}
