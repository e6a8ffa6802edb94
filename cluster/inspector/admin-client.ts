/**
 * How the inspector reaches the admin operations (cluster/admin): an
 * AdminChannel asks one operation, of any node or of a named one. Two
 * implementations, one per front door: HTTP here (`/admin/<op>` of a node,
 * other nodes through the URLs they advertise), NATS in nats-admin-client.ts.
 * The commands only see the channel, so they print the same over both.
 */
import { ADMIN_OPS, type PlacementView } from '../admin/admin-ops.ts';

/** What the admin operations answer (defined with the operations, cluster/admin). */
export type { ActorsView, CostsView, DrainView, PlacementView, ScaleView, StreamsView } from '../admin/index.ts';

/** A failure the CLI reports in one line and exits non-zero for. */
export class InspectorError extends Error {}

/** Options of one call. */
export interface CallOptions {
  /** Ask this node (node-scoped operations need one); default: any node (NATS) or the node at --url (HTTP). */
  readonly node?: string | undefined;
  readonly args?: Readonly<Record<string, string>>;
}

/** One way to reach the admin operations with an operator token. */
export interface AdminChannel {
  /** Where it talks to, for messages (`http://...` or `nats://...`). */
  readonly target: string;
  /** Runs operation `op`; rejects with InspectorError saying what failed (unreachable, refused, unknown). */
  call<T>(op: string, opts?: CallOptions): Promise<T>;
  /** Releases the connection. */
  close(): Promise<void>;
}

/** A refusal from a node, in one line: `<where>: <code> <message>`. */
export function refusal(where: string, e: { code?: string | undefined; message?: string | undefined }, fallback: string | number): InspectorError {
  return new InspectorError(`${where}: ${e.code ?? fallback} ${e.message ?? ''}`.trim());
}

/**
 * The HTTP front door: `GET|POST <baseUrl>/admin/<op>` with the token as a
 * bearer. A call for another node goes to the URL that node advertises in
 * its heartbeat (read from this node's `placement` once, then on a miss).
 */
export class HttpAdminChannel implements AdminChannel {
  private urls: Map<string, string> | undefined;

  /** @param timeoutMs per request; default 5000. */
  constructor(readonly target: string, private readonly token: string, private readonly timeoutMs = 5000) {}

  async call<T>(op: string, opts: CallOptions = {}): Promise<T> {
    const base = opts.node === undefined ? this.target : await this.urlOf(opts.node);
    const qs = opts.args && Object.keys(opts.args).length ? `?${new URLSearchParams(opts.args as Record<string, string>)}` : '';
    return this.fetch<T>(ADMIN_OPS[op]?.mutates ? 'POST' : 'GET', base, `/admin/${op}${qs}`);
  }

  async close(): Promise<void> {}

  /** The base URL of `node`: this one, or the URL it advertises. */
  private async urlOf(node: string): Promise<string> {
    for (let fresh = false; ; fresh = true) {
      if (!this.urls || fresh) {
        const p = await this.fetch<PlacementView>('GET', this.target, '/admin/placement');
        this.urls = new Map(p.members.filter((m) => m.url).map((m) => [m.id, m.url!]));
        this.urls.set(p.node, this.target);
      }
      const url = this.urls.get(node);
      if (url) return url;
      if (fresh) throw new InspectorError(`no live member ${node} with a URL`);
    }
  }

  private async fetch<T>(method: string, base: string, path: string): Promise<T> {
    const where = `${base.replace(/\/$/, '')}${path}`;
    let res: Response;
    try {
      res = await fetch(where, { method, headers: { authorization: `Bearer ${this.token}` }, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new InspectorError(`cannot reach ${base}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new InspectorError(`${where}: HTTP ${res.status}, not JSON`);
    }
    if (!res.ok) throw refusal(where, body as { code?: string; message?: string }, res.status);
    return body as T;
  }
}
