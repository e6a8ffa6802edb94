/**
 * Helpers of the end-to-end tests over real WebSockets: SDK clients signed in
 * to the demo workspace of an embedded node, raw sockets that record every
 * frame, and event recorders.
 */
import WebSocket from 'ws';
import { ChorusClient, ChorusClientError, newClientMsgId, type ChorusClientOptions, type ChorusEvent, type WebSocketCtor } from '../../client/sdk.ts';
import type { RunningNode } from '../../cluster/bootstrap.ts';
import { waitFor } from '../helpers/ports.ts';
import { demoClient } from '../edge/fixture.ts';

export { waitFor, newClientMsgId, ChorusClient, ChorusClientError };
export const WS = 'demo';

const open = new Set<{ close(): void }>();
/** Remembers a client or socket for `closeAll` (an SDK client left open keeps reconnecting, and the test process alive). */
export function track<T extends { close(): void }>(c: T): T {
  open.add(c);
  return c;
}
/** Closes every client and socket the helpers opened (call it in `after`, so a failed test still ends). */
export function closeAll(): void {
  for (const c of open) {
    try {
      c.close();
    } catch {
      /* already closed */
    }
  }
  open.clear();
}
/** An SDK client straight from a token (tracked). */
export async function connectWith(baseUrl: string | string[], token: string, opts: { device?: string; edgeUrl?: string } = {}): Promise<ChorusClient> {
  return track(await ChorusClient.connect({ baseUrl, token, WebSocket: WebSocket as unknown as WebSocketCtor, requestTimeoutMs: 15_000, ...opts }));
}

/** An SDK client plus everything it received outside channel subscriptions. */
export interface Person {
  user: string;
  client: ChorusClient;
  token: string;
  /** [#general, #random] */
  channels: string[];
  /** User and workspace events (mention, read, presence...), in arrival order. */
  events: ChorusEvent[];
}

/** Signs `user` in to the demo workspace and connects the SDK (device label optional). */
export async function person(node: RunningNode, user: string, opts: Partial<ChorusClientOptions> = {}): Promise<Person> {
  const { client, token, channels } = await demoClient(node, user, opts);
  track(client);
  const events: ChorusEvent[] = [];
  client.onEvent((e) => events.push(e));
  return { user, client, token, channels, events };
}

/** Another device of the same user (same token, its own socket). */
export async function device(node: RunningNode, p: Person, label: string): Promise<ChorusClient> {
  return connectWith(node.url, p.token, { device: label });
}

/** Subscribes and records the channel's events; `seqs()` lists the message seqs seen, in order. */
export async function record(client: ChorusClient, ch: string, opts: { seq?: number; ws?: string } = {}) {
  const events: ChorusEvent[] = [];
  const sub = await client.subscribe(opts.ws ?? WS, ch, (e) => events.push(e), opts.seq !== undefined ? { seq: opts.seq } : {});
  return {
    sub, events,
    seqs: () => events.filter((e) => e.type === 'message').map((e) => e.seq!),
    of: (type: string) => events.filter((e) => e.type === type),
  };
}

/** Asserts a promise rejects with one of `codes`; returns the code. */
export async function refused(p: Promise<unknown>, codes: readonly string[], what = 'request'): Promise<string> {
  try {
    await p;
  } catch (err) {
    const code = (err as { code?: string }).code ?? String(err);
    if (!codes.includes(code)) throw new Error(`${what}: expected ${codes.join('|')}, got ${code} (${(err as Error).message})`);
    return code;
  }
  throw new Error(`${what}: expected ${codes.join('|')}, but it succeeded`);
}

/** A raw WebSocket that records every frame it receives and its close. */
export async function rawSocket(url: string, token: string) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(token)}`);
  const frames: any[] = [];
  const texts: string[] = [];
  let closed: { code: number; reason: string; at: number } | undefined;
  ws.on('message', (d) => {
    texts.push(String(d));
    frames.push(JSON.parse(String(d)));
  });
  ws.on('close', (code, reason) => { closed = { code, reason: String(reason), at: Date.now() }; });
  ws.on('error', () => {});
  track({ close: () => ws.terminate() });
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  await waitFor(() => frames.some((f) => f.type === 'hello'));
  let next = 1;
  return {
    ws, frames, texts,
    get closed() { return closed; },
    /** Sends a request and waits for its reply frame. */
    async ask(op: string, params: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<any> {
      const id = next++;
      ws.send(JSON.stringify({ ...params, op, id }));
      return waitFor(() => frames.find((f) => f.type === 'reply' && f.id === id), { timeoutMs, what: `reply to ${op}` });
    },
  };
}

/** Percentile of a list of numbers (nearest rank). */
export function percentile(xs: readonly number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/**
 * A TCP proxy on loopback in front of `target` (host:port): `cut()` drops
 * every connection through it at once, as a network failure would (no close
 * frame); new connections are accepted again right away unless `down` is set.
 */
export async function tcpProxy(targetUrl: string) {
  const { createServer, connect } = await import('node:net');
  const target = new URL(targetUrl);
  const conns = new Set<import('node:net').Socket>();
  let down = false;
  let cuts = 0;
  const srv = createServer((client) => {
    if (down) return void client.destroy();
    const upstream = connect(Number(target.port), target.hostname);
    conns.add(client);
    conns.add(upstream);
    const drop = () => { client.destroy(); upstream.destroy(); conns.delete(client); conns.delete(upstream); };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const proxy = {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    get cuts() { return cuts; },
    set down(v: boolean) { down = v; },
    /** Drops every open connection (RST, no close frame). */
    cut() {
      cuts++;
      for (const s of conns) s.resetAndDestroy?.() ?? s.destroy();
      conns.clear();
    },
    close() {
      proxy.cut();
      srv.close();
    },
  };
  return track(proxy);
}
