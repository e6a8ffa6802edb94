import WebSocket from 'ws';
import { ChorusClient, newClientMsgId, type WebSocketCtor } from '../../client/sdk.ts';
import type { ChorusCluster } from '../helpers/chorus-cluster.ts';
import { waitFor } from '../helpers/ports.ts';

/** One acknowledged post. */
export interface Acked { ch: string; clientMsgId: string; seq: number; by: string }

/** A workspace with channels and users, made through the public protocol. */
export interface ChatFixture {
  ws: string;
  channels: string[];
  users: string[];
  clients: ChorusClient[];
  tokens: Map<string, string>;
  close(): void;
}

/** Connects a user with a freshly signed token, with every running node as a base URL. */
export async function connectUser(c: ChorusCluster, user: string, ws = 'w1'): Promise<{ client: ChorusClient; token: string }> {
  const token = c.signer.sign({ sub: user, ws: [ws] });
  const client = await ChorusClient.connect({ baseUrl: c.urls(), token, WebSocket: WebSocket as unknown as WebSocketCtor, requestTimeoutMs: 15_000 });
  return { client, token };
}

/** Creates workspace `ws` owned by user 'owner', `channelCount` public channels, and `userCount` members who joined all of them. */
export async function setupChat(c: ChorusCluster, opts: { channels: number; users: number; ws?: string }): Promise<ChatFixture> {
  const ws = opts.ws ?? 'w1';
  const owner = await connectUser(c, 'owner', ws);
  await owner.client.request('createWorkspace', { ws, name: 'Load', clientMsgId: `create-${ws}` }, { retry: true });
  const channels: string[] = [];
  for (let i = 0; i < opts.channels; i++) {
    const r = await owner.client.request<{ ch: string }>('createChannel', { ws, name: `load-${i}`, kind: 'public', clientMsgId: `ch-${i}` }, { retry: true });
    channels.push(r.ch);
  }
  const users: string[] = [];
  const clients: ChorusClient[] = [];
  const tokens = new Map<string, string>();
  for (let u = 0; u < opts.users; u++) {
    const user = `u${u}`;
    const { code } = await owner.client.request<{ code: string }>('createInvite', { ws, role: 'member', clientMsgId: `inv-${u}` }, { retry: true });
    const { client, token } = await connectUser(c, user, ws);
    await client.request('joinWorkspace', { ws, code, clientMsgId: 'join' }, { retry: true });
    for (const ch of channels) await client.request('joinChannel', { ws, ch, clientMsgId: `join-${ch}` }, { retry: true });
    users.push(user);
    clients.push(client);
    tokens.set(user, token);
  }
  owner.client.close();
  return { ws, channels, users, clients, tokens, close: () => clients.forEach((cl) => cl.close()) };
}

/**
 * A steady stream of posts: each client posts to the channels in turn, one
 * at a time, retrying a failed post with the same clientMsgId until it is
 * acknowledged (a retried post is stored once). Runs until `stop()`.
 */
export function startLoad(f: ChatFixture, opts: { pauseMs?: number } = {}) {
  const acked: Acked[] = [];
  const errors = new Map<string, number>();
  let running = true;
  let n = 0;
  const loops = f.clients.map(async (client, i) => {
    const by = f.users[i]!;
    let k = i;
    while (running) {
      const ch = f.channels[k++ % f.channels.length]!;
      const clientMsgId = newClientMsgId();
      const text = `m${n++} from ${by}`;
      for (;;) {
        try {
          const r = await client.post(f.ws, ch, text, { clientMsgId });
          acked.push({ ch, clientMsgId, seq: r.seq, by });
          break;
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'unknown';
          errors.set(code, (errors.get(code) ?? 0) + 1);
          if (!running && !code.startsWith('CLIENT')) break;
          await new Promise((r) => setTimeout(r, 50));
          if (!running && errors.get(code)! > 1000) break;
        }
      }
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  });
  return {
    acked, errors,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Reads a channel's whole message list (every seq), through `since` pages. */
export async function readAll(client: ChorusClient, ws: string, ch: string): Promise<Array<{ seq: number; clientMsgId?: string; user: string }>> {
  const out: Array<{ seq: number; clientMsgId?: string; user: string }> = [];
  let seq = 0;
  for (;;) {
    const page = await client.request<{ messages: Array<{ seq: number; clientMsgId?: string; user: string }>; more?: boolean }>('since', { ws, ch, seq, limit: 200 });
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

/** Polls every running node's live activations; records any actor seen live on two nodes in one sweep. */
export function watchSingleActivation(c: ChorusCluster, everyMs = 100) {
  const violations: string[] = [];
  let sweeps = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const seen = new Map<string, string>();
      for (const n of c.nodes.filter((x) => x.running())) {
        const r = await c.admin<{ actors: string[]; fenced: boolean }>(n, '/admin/actors').catch(() => undefined);
        if (!r || r.fenced) continue;
        for (const a of r.actors) {
          const other = seen.get(a);
          if (other) violations.push(`${a} on ${other} and ${n.id}`);
          seen.set(a, n.id);
        }
      }
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
