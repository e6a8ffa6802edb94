import { BadMessageError } from '../errors.ts';
/**
 * The Transport port: how nodes reach each other. Payloads are bytes (the
 * runtime encodes envelopes with its codec), so an adapter only moves bytes.
 * Embedded: adapters/memory (in-process). Cluster: adapters/nats (NATS core).
 */

/** Something that can be stopped. */
export interface Disposable {
  /** Stops it; safe to call twice. */
  dispose(): Promise<void> | void;
}

/** Handles one inbound node message. `reply` is set for requests and must be called at most once. */
export type InboundHandler = (data: Uint8Array, reply: ((data: Uint8Array) => void) | undefined) => void;

/** Node-to-node messaging plus subject publish/subscribe (used for fan-out). */
export interface Transport {
  /** Starts delivering messages addressed to `nodeId` to `handler`. One listener per node id. */
  listen(nodeId: string, handler: InboundHandler): Promise<Disposable>;
  /** Fire and forget to a node; silently lost when the node is not there (tell is at-most-once). */
  send(nodeId: string, data: Uint8Array): void;
  /**
   * Request/reply to a node. Rejects with NodeUnavailableError when nobody
   * listens as `nodeId` (the caller may retry elsewhere), and with
   * AskTimeoutError after `timeoutMs` without a reply.
   */
  request(nodeId: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Publishes to a subject (dot-separated tokens); every current subscriber gets one copy. */
  publish(subject: string, data: Uint8Array): void;
  /** Subscribes to a subject; `*` matches one token and a trailing `>` the rest, as in NATS. */
  subscribe(subject: string, handler: (data: Uint8Array, subject: string) => void): Disposable;
  /** Closes the connection; pending requests reject. */
  close(): Promise<void>;
  /**
   * Calls `handler` each time the connection comes back after a loss.
   * Publishes made meanwhile may have been missed (core pub/sub is
   * at-most-once), so subscribers resynchronise from the log.
   */
  onReconnect?(handler: () => void): Disposable;
}

/** Token for the tsyringe container (composition root only). */
export const TRANSPORT = Symbol.for('chorus.Transport');

/** NATS-style subject matching: `*` one token, `>` one or more trailing tokens. */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const tok = p[i];
    if (tok === '>') return s.length > i;
    if (i >= s.length) return false;
    if (tok !== '*' && tok !== s[i]) return false;
  }
  return p.length === s.length;
}

/**
 * Throws BadMessageError unless `subject` is a valid NATS subject: no empty
 * tokens, no whitespace; with `wildcards`, `*` as a whole token and `>` as the
 * whole last token; without, no `*` or `>` tokens at all. One pass, no allocation.
 */
export function checkSubject(subject: string, wildcards: boolean): void {
  const n = subject.length;
  if (n === 0) throw new BadMessageError('empty subject', { subject });
  let start = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? subject.charCodeAt(i) : 46;
    if (c <= 32 || c === 127) throw new BadMessageError('subject contains whitespace or a control character', { subject });
    if (c !== 46) continue;
    const len = i - start;
    if (len === 0) throw new BadMessageError('subject has an empty token', { subject });
    if (len === 1) {
      const t = subject.charCodeAt(start);
      if (t === 42 || t === 62) {
        if (!wildcards) throw new BadMessageError('wildcards are only valid in subscriptions', { subject });
        if (t === 62 && i !== n) throw new BadMessageError("'>' must be the last token", { subject });
      }
    }
    start = i + 1;
  }
}
