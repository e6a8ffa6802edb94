/**
 * The results of recent writes by idempotency key, kept in actor state so a
 * replayed write answers what the first one did. Bounded: the oldest keys
 * fall out after `DEDUP_WINDOW` writes; the log's own dedup still refuses to
 * store such a replay twice (the actor then answers CHAT_CONFLICT unless it
 * can find the result another way, as a channel does for posts).
 */
import { get, has, type Dict } from './dict.ts';

/** Writes remembered per actor. A constant, not an option: replay must fold the same way everywhere. */
export const DEDUP_WINDOW = 2000;

/** Recent write results, oldest key first. */
export interface DoneLog {
  keys: string[];
  results: Dict<unknown>;
}

/** An empty DoneLog. */
export function emptyDone(): DoneLog {
  return { keys: [], results: {} };
}

/** Records `result` for `key` (first result wins), evicting the oldest beyond the window. */
export function remember(d: DoneLog, key: string, result: unknown): void {
  if (has(d.results, key)) return;
  d.keys.push(key);
  d.results[key] = result;
  while (d.keys.length > DEDUP_WINDOW) delete d.results[d.keys.shift()!];
}

/** The remembered result of `key`, if still in the window. */
export function recall(d: DoneLog, key: string): { hit: true; result: unknown } | { hit: false } {
  return has(d.results, key) ? { hit: true, result: get(d.results, key) } : { hit: false };
}
