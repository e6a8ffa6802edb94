import type { WireError } from '../errors.ts';

/** Envelope kinds. */
export const TELL = 0, ASK = 1, RELEASE = 2;

/** Node-to-node envelope; short field names match the codec's shared record structure. */
export interface Envelope {
  /** 0 tell, 1 ask, 2 release (handoff request) */
  k: number;
  /** actor type */
  t: string;
  /** actor key */
  y: string;
  /** message */
  m: unknown;
  /** sender's placement epoch */
  e: number;
  /** sender node */
  s: string;
  /** forwarding hops so far */
  h: number;
}

/** Reply to an ask or a release. */
export type Reply = { ok: true; v: unknown; e: number } | { ok: false; err: WireError; e: number };

/** Checks the shape of a decoded envelope; anything else is a bad message. */
export function isEnvelope(x: unknown): x is Envelope {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Record<string, unknown>;
  return typeof o.k === 'number' && typeof o.t === 'string' && typeof o.y === 'string' && typeof o.e === 'number' && typeof o.s === 'string' && typeof o.h === 'number';
}
