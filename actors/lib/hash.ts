/**
 * Deterministic DM ids without node:crypto (actors/ imports only runtime/
 * and zod): four FNV-1a 32-bit lanes with different offsets give a 128-bit
 * digest, ample for channel ids within one workspace (collisions are still
 * detected and resolved by the workspace actor).
 */

function fnv1a(s: string, offset: number): number {
  let h = offset >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A 26-char base-36 digest of `s` (fits an id with room for a prefix). */
export function digest(s: string): string {
  const lanes = [0x811c9dc5, 0x01000193, 0x9e3779b9, 0x85ebca6b].map((o) => fnv1a(`${o}:${s}`, o));
  return lanes.map((h) => h.toString(36).padStart(7, '0')).join('').slice(0, 26);
}

/**
 * The channel id of the DM among `members` (any order, duplicates ignored):
 * `dm-` + digest of the sorted ids; `attempt` > 0 derives the next candidate
 * after a collision.
 */
export function dmChannelId(members: readonly string[], attempt = 0): string {
  const key = [...new Set(members)].sort().join(',');
  return `dm-${digest(attempt ? `${key}#${attempt}` : key)}`;
}
