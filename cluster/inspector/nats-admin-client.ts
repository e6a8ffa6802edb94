/**
 * The inspector over NATS: requests on `<prefix>.admin.<op>` (any node of
 * the cluster answers) or `<prefix>.admin.node.<id>.<op>` (that node), with
 * the operator token inside the request (cluster/admin/admin-nats.ts).
 */
import { errors as natsErrors, type NatsConnection } from '@nats-io/transport-node';
import { connectNats, natsOptions } from '../../adapters/nats/index.ts';
import { adminSubject, nodeAdminSubject, type AdminNatsReply, type AdminNatsRequest } from '../admin/admin-nats.ts';
import { InspectorError, refusal, type AdminChannel, type CallOptions } from './admin-client.ts';

const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An AdminChannel on a NATS connection of its own. */
export class NatsAdminChannel implements AdminChannel {
  /**
   * Connects to `servers` (comma-separated NATS URLs) without retrying: an
   * unreachable server is an InspectorError at once.
   * @param opts.prefix subject prefix of the cluster; default 'chorus'. @param opts.timeoutMs connect and request timeout; default 5000.
   */
  static async connect(servers: string, token: string, opts: { prefix?: string; timeoutMs?: number } = {}): Promise<NatsAdminChannel> {
    const list = servers.split(',').map((s) => s.trim()).filter(Boolean);
    const timeoutMs = opts.timeoutMs ?? 5000;
    let nc: NatsConnection;
    try {
      nc = await connectNats(natsOptions({ servers: list, name: 'chorus-inspector', connectTimeoutMs: timeoutMs, maxReconnectAttempts: 0, ...(opts.prefix ? { prefix: opts.prefix } : {}) }));
    } catch (err) {
      throw new InspectorError(`cannot reach ${list.join(',')}: ${(err as Error).message}`);
    }
    return new NatsAdminChannel(nc, list.join(','), token, opts.prefix ?? 'chorus', timeoutMs);
  }

  private constructor(
    private readonly nc: NatsConnection,
    readonly target: string,
    private readonly token: string,
    private readonly prefix: string,
    private readonly timeoutMs: number,
  ) {}

  async call<T>(op: string, opts: CallOptions = {}): Promise<T> {
    // one subject token each (node ids are: see CHORUS_NODE_ID), so no wildcard or extra token reaches the bus
    for (const t of [op, opts.node]) if (t !== undefined && !TOKEN.test(t)) throw new InspectorError(`not a node id or operation: ${JSON.stringify(t)}`);
    const subject = opts.node === undefined ? adminSubject(this.prefix, op) : nodeAdminSubject(this.prefix, opts.node, op);
    const body: AdminNatsRequest = { token: this.token, ...(opts.args ? { args: { ...opts.args } } : {}) };
    let data: Uint8Array;
    try {
      data = (await this.nc.request(subject, encoder.encode(JSON.stringify(body)), { timeout: this.timeoutMs })).data;
    } catch (err) {
      if (err instanceof natsErrors.RequestError && err.isNoResponders()) {
        throw new InspectorError(opts.node === undefined ? `no Chorus node answers on ${subject} (${this.target})` : `node ${opts.node} does not answer on ${subject} (not running?)`);
      }
      if (err instanceof natsErrors.TimeoutError) throw new InspectorError(`${subject}: no answer within ${this.timeoutMs} ms`);
      throw new InspectorError(`${subject}: ${(err as Error).message}`);
    }
    let reply: AdminNatsReply;
    try {
      reply = JSON.parse(decoder.decode(data)) as AdminNatsReply;
    } catch {
      throw new InspectorError(`${subject}: the answer is not JSON`);
    }
    if (!reply.ok) throw refusal(subject, reply.error ?? {}, 'refused');
    return reply.result as T;
  }

  async close(): Promise<void> {
    await this.nc.close().catch(() => {});
  }
}
