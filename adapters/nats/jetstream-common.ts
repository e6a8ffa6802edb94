/**
 * Checks and error wrapping shared by the JetStream log and snapshot store
 * (not exported from the adapter's index).
 */
import { JetStreamApiError } from '@nats-io/jetstream';
import { BackendError, ChorusError } from '../../runtime/errors.ts';

const LOGICAL = /^[^\s*>.]+(\.[^\s*>.]+)*$/;

/** Throws TypeError unless `stream` is a valid logical stream name (a NATS subject without wildcards). */
export function checkLogical(stream: unknown): asserts stream is string {
  if (typeof stream !== 'string' || !LOGICAL.test(stream)) {
    throw new TypeError(`stream must be a valid NATS subject (non-empty dot-separated tokens without spaces, '*' or '>'), got "${String(stream)}"`);
  }
}

/** Throws RangeError unless `v` is a non-negative safe integer. */
export function checkPos(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer, got ${String(v)}`);
}

/** A JetStream API error with this code. */
export const isApiError = (err: unknown, code: number) => err instanceof JetStreamApiError && err.code === code;

/** A driver failure as a BackendError (Chorus errors pass through). */
export const wrap = (what: string, err: unknown) =>
  err instanceof ChorusError ? err : new BackendError('jetstream', `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
