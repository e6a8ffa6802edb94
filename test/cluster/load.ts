import WebSocket from 'ws';
import { ChorusClient, newClientMsgId, type WebSocketCtor } from '../../client/sdk.ts';
import type { ChorusCluster } from '../helpers/chorus-cluster.ts';
import { waitFor } from '../helpers/ports.ts';

/** One acknowledged post; `at` is when the ack arrived (Date.now()). */
export interface Acked { ch: string; clientMsgId: string; seq: number; by: string; at: number }

/** A workspace with channels and users, made through the public protocol. */
export interface ChatFixture {
  ws: string;
  channels: string[];
  users: string[];
  clients: ChorusClient[];
  tokens: Map<string, string>;
  close(): void;
}

/**
 * Connects a user with a freshly signed token, with every running node as a
 * base URL. Retries the first connect for up to `timeoutMs`: right after a
 * node died, the connect call may still hand out its edge (it counts as
 * healthy until the failure timeout), and the SDK does not retry a first
 * connect by itself.
 */
export async function connectUser(c: ChorusCluster, user: string, ws = 'w1', timeoutMs = 20_000): Promise<{ client: ChorusClient; token: string }> {
  const token = c.signer.sign({ sub: user, ws: [ws] });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const client = await ChorusClient.connect({ baseUrl: () => c.urls(), token, WebSocket: WebSocket as unknown as WebSocketCtor, requestTimeoutMs: 15_000 });
      return { client, token };
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (code.startsWith('AUTH_') || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Error codes after which a request is simply sent again (writes carry a clientMsgId, so a retry is stored once). */
export const RETRIABLE_CODES: ReadonlySet<string> = new Set([
  'CLIENT_TIMEOUT', 'CLIENT_DISCONNECTED', 'CHORUS_ASK_TIMEOUT', 'CHORUS_NODE_UNAVAILABLE', 'CHORUS_NOT_OWNER', 'CHORUS_NO_OWNER', 'CHORUS_BACKEND',
]);

/** `client.request` retried on retriable errors until `timeoutMs` (a busy machine can time out the first activation of an R3 stream). */
export async function requestRetrying<T = unknown>(client: ChorusClient, op: string, params: Record<string, unknown>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await client.request<T>(op, params, { retry: true });
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (!RETRIABLE_CODES.has(code) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Creates workspace `ws` owned by user 'owner', `channelCount` public channels, and `userCount` members who joined all of them. */
export async function setupChat(c: ChorusCluster, opts: { channels: number; users: number; ws?: string }): Promise<ChatFixture> {
  const ws = opts.ws ?? 'w1';
  const owner = await connectUser(c, 'owner', ws);
  const clients: ChorusClient[] = [];
  try {
    await requestRetrying(owner.client, 'createWorkspace', { ws, name: 'Load', clientMsgId: `create-${ws}` });
    const channels: string[] = [];
    for (let i = 0; i < opts.channels; i++) {
      const r = await requestRetrying<{ ch: string }>(owner.client, 'createChannel', { ws, name: `load-${i}`, kind: 'public', clientMsgId: `ch-${i}` });
      channels.push(r.ch);
    }
    const users: string[] = [];
    const tokens = new Map<string, string>();
    for (let u = 0; u < opts.users; u++) {
      const user = `u${u}`;
      const { code } = await requestRetrying<{ code: string }>(owner.client, 'createInvite', { ws, role: 'member', clientMsgId: `inv-${u}` });
      const { client, token } = await connectUser(c, user, ws);
      clients.push(client);
      await requestRetrying(client, 'joinWorkspace', { ws, code, clientMsgId: 'join' });
      for (const ch of channels) await requestRetrying(client, 'joinChannel', { ws, ch, clientMsgId: `join-${ch}` });
      users.push(user);
      tokens.set(user, token);
    }
    return { ws, channels, users, clients, tokens, close: () => clients.forEach((cl) => cl.close()) };
  } catch (err) {
    // an open client reconnects forever and would keep the test process alive
    for (const cl of clients) cl.close();
    throw err;
  } finally {
    owner.client.close();
  }
}

/**
 * A steady stream of posts: each client posts to the channels in turn, one
 * at a time, retrying a failed post with the same clientMsgId until it is
 * acknowledged (a retried post is stored once). Runs until `stop()`.
 *
 * Each client pauses `pauseMs` (default 60) after an ack, staying under the
 * edge's per-connection frame rate (20/s, burst 60): a frame over that rate
 * is refused with an error frame that carries no request id, so the SDK
 * would wait for its whole request timeout.
 */
export function startLoad(f: ChatFixture, opts: { pauseMs?: number } = {}) {
  const pauseMs = opts.pauseMs ?? 60;
  const acked: Acked[] = [];
  const errors = new Map<string, number>();
  /** Every failed attempt: when, which code, by whom. */
  const failures: Array<{ at: number; code: string; by: string; ch: string }> = [];
  let running = true;
  let aborted = false;
  /** After stop(), a post in flight is still retried until acked, for at most this long. */
  let finishBy = Infinity;
  let n = 0;
  const loops = f.clients.map(async (client, i) => {
    const by = f.users[i]!;
    let k = i;
    while (running) {
      const ch = f.channels[k++ % f.channels.length]!;
      const clientMsgId = newClientMsgId();
      const text = `m${n++} from ${by}`;
      while (!aborted) {
        try {
          const r = await client.post(f.ws, ch, text, { clientMsgId });
          acked.push({ ch, clientMsgId, seq: r.seq, by, at: Date.now() });
          break;
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'unknown';
          errors.set(code, (errors.get(code) ?? 0) + 1);
          failures.push({ at: Date.now(), code, by, ch });
          if (aborted || code === 'CLIENT_CLOSED' || Date.now() > finishBy) break;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      if (pauseMs && running) await new Promise((r) => setTimeout(r, pauseMs));
    }
  });
  return {
    acked, errors, failures,
    /** Stops posting; a post in flight is retried until acked (at most `finishMs`, default 30 s), so every stored post is acked. */
    async stop(finishMs = 30_000) {
      running = false;
      finishBy = Date.now() + finishMs;
      await Promise.all(loops);
    },
    /** Stops at once (cleanup after a failure): posts in flight are abandoned. */
    abort() {
      running = false;
      aborted = true;
    },
  };
}

/**
 * The longest time without any acknowledgement between `from` and `to`
 * (both ends count: a stall that starts before `from` or is still going at
 * `to` is measured up to that end).
 */
export function longestAckGap(acked: readonly Acked[], from: number, to: number): { ms: number; start: number } {
  const times = acked.map((a) => a.at).filter((t) => t >= from && t <= to).sort((a, b) => a - b);
  let prev = from;
  let best = { ms: 0, start: from };
  for (const t of [...times, to]) {
    if (t - prev > best.ms) best = { ms: t - prev, start: prev };
    prev = t;
  }
  return best;
}

/** Reads a channel's whole message list (every seq), through `since` pages. */
export async function readAll(client: ChorusClient, ws: string, ch: string): Promise<Array<{ seq: number; clientMsgId?: string; user: string }>> {
  const out: Array<{ seq: number; clientMsgId?: string; user: string }> = [];
  let seq = 0;
  for (;;) {
    const page = await client.request<{ messages: Array<{ seq: number; clientMsgId?: string; user: string }>; more?: boolean }>('since', { ws, ch, seq, limit: 200 }, { retry: true });
    out.push(...page.messages);
    if (!page.messages.length) break;
    seq = page.messages[page.messages.length - 1]!.seq;
    if (page.more === false && page.messages.length < 200) break;
  }
  return out;
}

/** Checks every channel: seqs are 1..N without gaps or repeats, every acked post is there once at its acked seq. */
export async function verifyChannels(client: ChorusClient, f: ChatFixture, acked: readonly Acked[]) {
  let stored = 0;
  let lost = 0;
  let duplicates = 0;
  let gaps = 0;
  for (const ch of f.channels) {
    const msgs = await readAll(client, f.ws, ch);
    stored += msgs.length;
    msgs.forEach((m, i) => { if (m.seq !== i + 1) gaps++; });
    const byId = new Map<string, number>();
    for (const m of msgs) {
      const key = `${m.user}/${m.clientMsgId}`;
      if (byId.has(key)) duplicates++;
      byId.set(key, m.seq);
    }
    for (const a of acked.filter((x) => x.ch === ch)) {
      const seq = byId.get(`${a.by}/${a.clientMsgId}`);
      if (seq !== a.seq) lost++;
    }
  }
  return { stored, lost, duplicates, gaps };
}

/**
 * Polls every running node's live activations and records an actor proven
 * live on two nodes at once. The polls of one sweep are sequential, so an
 * actor that moved from A to B between A's poll and B's poll would show on
 * both without any overlap; a sweep therefore polls every node twice (A B C
 * A B C), and an actor counts only when a node listed it both before and
 * after another node listed it (one activation spanning the other's poll).
 */
export function watchSingleActivation(c: ChorusCluster, everyMs = 100) {
  const violations: string[] = [];
  let sweeps = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const nodes = c.nodes.filter((x) => x.running());
      const polls: Array<{ node: string; actors: Set<string> }> = [];
      for (const n of [...nodes, ...nodes]) {
        const r = await c.admin<{ actors: string[]; fenced: boolean }>(n, '/admin/actors').catch(() => undefined);
        if (r && !r.fenced) polls.push({ node: n.id, actors: new Set(r.actors) });
      }
      const found = new Set<string>();
      for (let i = 0; i < polls.length; i++) {
        for (let j = i + 2; j < polls.length; j++) {
          if (polls[j]!.node !== polls[i]!.node) continue;
          for (const a of polls[i]!.actors) {
            if (!polls[j]!.actors.has(a)) continue;
            for (let m = i + 1; m < j; m++) {
              const other = polls[m]!;
              if (other.node !== polls[i]!.node && other.actors.has(a)) found.add(`${a} on ${polls[i]!.node} and ${other.node}`);
            }
          }
        }
      }
      violations.push(...found);
      sweeps++;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return { violations, get sweeps() { return sweeps; }, async stop() { running = false; await loop; } };
}

/** Time until every channel answers a read again, polled through `client`. */
export async function timeUntilAllAnswer(client: ChorusClient, f: ChatFixture, since: number): Promise<number> {
  await waitFor(async () => {
    const r = await Promise.all(f.channels.map((ch) => client.request('channelInfo', { ws: f.ws, ch }).then(() => true, () => false)));
    return r.every(Boolean);
  }, { timeoutMs: 30_000, intervalMs: 20, what: 'every channel to answer' });
  return Date.now() - since;
}

/** Where every live activation is, by asking every running node. Throws if one actor is on two nodes. */
export async function actorLocations(c: ChorusCluster): Promise<Map<string, string>> {
  const where = new Map<string, string>();
  for (const n of c.nodes.filter((x) => x.running())) {
    const r = await c.admin<{ actors: string[] }>(n, '/admin/actors');
    for (const a of r.actors) {
      const other = where.get(a);
      if (other) throw new Error(`${a} is live on ${other} and ${n.id}`);
      where.set(a, n.id);
    }
  }
  return where;
}
