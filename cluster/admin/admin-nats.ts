/**
 * The NATS front door of the admin operations, for a cluster: an operator
 * needs only a NATS URL, not a route to every node's HTTP port.
 *
 * - `<prefix>.admin.<op>`: cluster-wide questions (`placement`, `streams`,
 *   `scale`, `costs`), answered by one node of the queue group
 *   `<prefix>.admin`;
 * - `<prefix>.admin.node.<nodeId>.<op>`: any operation, answered by that
 *   node (`actors`, `drain`, or the leader's `placement` history).
 *
 * A request is JSON `{ token, args? }` with the operator token inside; the
 * reply is JSON `{ ok: true, result }` or `{ ok: false, error: { code,
 * message } }`. The same AdminService as the HTTP door verifies the token and
 * runs the operation, so both answer and refuse the same. A request without
 * a reply subject is ignored; nothing a client sends can throw into the NATS
 * client.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { toChorusError, type WireError, silentLogger, type Logger } from '../../runtime/index.ts';
import type { Disposable } from '../../runtime/transport/transport.ts';
import { AdminError, type AdminArgs, type AdminService } from './admin-ops.ts';

/** Largest admin request accepted (bytes): a token and a few arguments. */
export const MAX_ADMIN_REQUEST_BYTES = 16 * 1024;

/** An admin request on NATS. */
export interface AdminNatsRequest {
  /** The operator token (what HTTP carries as `Authorization: Bearer`). */
  token: string;
  args?: Record<string, string>;
}

/** An admin reply on NATS. */
export type AdminNatsReply = { ok: true; result: unknown } | { ok: false; error: WireError };

/** Subject of a cluster-wide operation (any node answers). */
export function adminSubject(prefix: string, op: string): string {
  return `${prefix}.admin.${op}`;
}

/** Subject of an operation addressed to one node. */
export function nodeAdminSubject(prefix: string, nodeId: string, op: string): string {
  return `${prefix}.admin.node.${nodeId}.${op}`;
}

/** Queue group of the cluster-wide subjects: each request reaches one node. */
export function adminQueue(prefix: string): string {
  return `${prefix}.admin`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Parses a request; throws AdminError('ADMIN_BAD_REQUEST') saying what is wrong. */
export function parseAdminRequest(data: Uint8Array): { token: string | undefined; args: AdminArgs } {
  if (data.length > MAX_ADMIN_REQUEST_BYTES) throw new AdminError('ADMIN_BAD_REQUEST', `request over ${MAX_ADMIN_REQUEST_BYTES} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(data));
  } catch {
    throw new AdminError('ADMIN_BAD_REQUEST', 'request must be JSON {"token": "...", "args": {...}}');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new AdminError('ADMIN_BAD_REQUEST', 'request must be a JSON object');
  const { token, args } = v as { token?: unknown; args?: unknown };
  if (token !== undefined && typeof token !== 'string') throw new AdminError('ADMIN_BAD_REQUEST', 'token must be a string');
  const out: Record<string, string> = {};
  if (args !== undefined) {
    if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new AdminError('ADMIN_BAD_REQUEST', 'args must be an object of strings');
    for (const [k, a] of Object.entries(args)) {
      if (typeof a !== 'string') throw new AdminError('ADMIN_BAD_REQUEST', `args.${k} must be a string`);
      out[k] = a;
    }
  }
  return { token, args: out };
}

/**
 * Answers admin requests for `service`'s node on `nc` until disposed.
 * Resolves once the subscriptions are live at the server.
 */
export async function serveAdminOverNats(nc: NatsConnection, service: AdminService, opts: { prefix?: string; logger?: Logger } = {}): Promise<Disposable> {
  const prefix = opts.prefix ?? 'chorus';
  const logger = opts.logger ?? silentLogger;
  const answer = async (msg: Msg, op: string, via: 'cluster' | 'node') => {
    if (!msg.reply) return;
    let reply: AdminNatsReply;
    let after: (() => void) | undefined;
    try {
      const { token, args } = parseAdminRequest(msg.data);
      const outcome = await service.handle({ op, token, args, via });
      reply = { ok: true, result: outcome.result };
      after = outcome.after;
    } catch (err) {
      const e = toChorusError(err);
      if (!e.code.startsWith('AUTH_') && !e.code.startsWith('ADMIN_')) logger.warn({ op, err: e.message }, 'admin operation failed');
      reply = { ok: false, error: e.toJSON() };
    }
    try {
      msg.respond(encoder.encode(JSON.stringify(reply)));
      // the answer must leave before a drain starts to stop this node and close its connection
      if (after) await nc.flush();
    } catch (err) {
      logger.warn({ op, err: (err as Error).message }, 'admin reply not sent');
      return;
    }
    after?.();
  };
  const opOf = (subject: string) => subject.slice(subject.lastIndexOf('.') + 1);
  const subs: Subscription[] = [
    nc.subscribe(`${prefix}.admin.*`, { queue: adminQueue(prefix), callback: (err, msg) => void (err || answer(msg, opOf(msg.subject), 'cluster')) }),
    nc.subscribe(nodeAdminSubject(prefix, service.nodeId, '*'), { callback: (err, msg) => void (err || answer(msg, opOf(msg.subject), 'node')) }),
  ];
  await nc.flush();
  return {
    dispose: () => {
      for (const s of subs.splice(0)) {
        try {
          s.unsubscribe();
        } catch {
          // the connection is already closed
        }
      }
    },
  };
}
