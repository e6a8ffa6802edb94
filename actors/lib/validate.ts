/**
 * Validation at the actor (defence in depth: the edge validated already).
 * Any failure is a BadMessageError (CHORUS_BAD_MESSAGE) carrying a short
 * summary of the zod issues, and never touches actor state.
 */
import type { z } from 'zod';
import { BadMessageError } from '../../runtime/index.ts';

/** The `op` of a message, or BadMessageError when it is not an object with a string op. */
export function opOf(msg: unknown): string {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw new BadMessageError('a command must be an object with an op');
  const op = (msg as { op?: unknown }).op;
  if (typeof op !== 'string' || op.length === 0 || op.length > 64) throw new BadMessageError('a command must have a string op');
  return op;
}

/** Parses `msg` with `schema`, or throws BadMessageError listing (up to 5) issues as `path: message`. */
export function parse<T>(schema: z.ZodType<T>, msg: unknown): T {
  const r = schema.safeParse(msg);
  if (r.success) return r.data;
  const issues = r.error.issues.slice(0, 5).map((i) => ({ path: i.path.map(String).join('.') || '(root)', code: i.code, message: i.message }));
  const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  throw new BadMessageError(summary, { issues });
}

/** Throws BadMessageError when a command reached an actor whose key is not the one it names (a routing bug or a forged frame). */
export function expectKey(actual: string, wanted: string): void {
  if (actual !== wanted) throw new BadMessageError(`command for ${wanted} delivered to ${actual}`);
}
