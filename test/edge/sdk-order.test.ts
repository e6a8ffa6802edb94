/**
 * The SDK's delivery guarantee (every message once, in seq order) when the
 * server's frames arrive in an unlucky order: live events that overtake the
 * subscribe reply or a catch-up frame, and gaps nobody fills. Runs against a
 * scripted fake WebSocket, so every ordering is exact and repeatable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChorusClient, type ChorusEvent, type WebSocketCtor, type WebSocketLike } from '../../client/sdk.ts';
import { waitFor } from '../helpers/ports.ts';

/** A scripted server end: records what the client sends, delivers frames when told. */
class FakeSocket implements WebSocketLike {
  static last: FakeSocket | undefined;
  readyState = 0;
  sent: Array<Record<string, any>> = [];
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.last = this;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
      this.deliver({ type: 'hello', session: 's1', user: 'ada', node: 'n1', workspaces: ['w'] });
    }, 0);
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => this.onclose?.({ code, reason }), 0);
  }
  deliver(frame: unknown): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  request(op: string): Promise<Record<string, any>> {
    return waitFor(() => this.sent.find((f) => f.op === op && !f.answered)) as Promise<Record<string, any>>;
  }
  reply(req: Record<string, any>, result: unknown): void {
    req.answered = true;
    this.deliver({ type: 'reply', id: req.id, ok: true, result });
  }
}

const msg = (seq: number) => ({ seq, user: 'bob', ts: 1, text: `m${seq}` });
const live = (seq: number) => ({ type: 'event', scope: 'channel', event: { type: 'message', ws: 'w', ch: 'c', seq, message: msg(seq) } });

async function client() {
  const c = await ChorusClient.connect({ baseUrl: 'http://unused', edgeUrl: 'ws://fake/ws', token: 't', WebSocket: FakeSocket as unknown as WebSocketCtor, reconnect: false });
  return { c, server: FakeSocket.last! };
}
function subscribe(c: ChorusClient, seq?: number) {
  const got: ChorusEvent[] = [];
  const sub = c.subscribe('w', 'c', (e) => got.push(e), seq === undefined ? {} : { seq });
  return { got, sub, seqs: () => got.filter((e) => e.type === 'message').map((e) => e.seq) };
}

test('live events that overtake the subscribe reply wait for the missed messages it carries', async () => {
  const { c, server } = await client();
  const s = subscribe(c, 58);
  const req = await server.request('subscribe');
  assert.equal(req.seq, 58);
  server.deliver(live(62));
  server.deliver(live(63));
  assert.deepEqual(s.seqs(), [], 'nothing before the reply');
  server.reply(req, { subscribed: true, latestSeq: 62, messages: [msg(59), msg(60), msg(61), msg(62)], updates: [] });
  await s.sub;
  assert.deepEqual(s.seqs(), [59, 60, 61, 62, 63]);
  c.close();
});

test('a catch-up frame that arrives after later live events still lands in seq order', async () => {
  const { c, server } = await client();
  const s = subscribe(c, 10);
  server.reply(await server.request('subscribe'), { subscribed: true, latestSeq: 10, messages: [], updates: [] });
  await s.sub;
  server.deliver(live(11));
  server.deliver(live(14)); // 12 and 13 are missing: the edge reads them and sends a catchup frame...
  server.deliver({ type: 'event', scope: 'channel', event: { type: 'reaction', ws: 'w', ch: 'c', seq: 14, emoji: 'eyes', users: ['bob'], atSeq: 14 } });
  server.deliver(live(15)); // ...but a later live event got out first
  assert.deepEqual(s.seqs(), [11]);
  server.deliver({ type: 'catchup', ws: 'w', ch: 'c', messages: [msg(12), msg(13), msg(14)], updates: [] });
  assert.deepEqual(s.seqs(), [11, 12, 13, 14, 15]);
  assert.deepEqual(s.got.map((e) => e.type), ['message', 'message', 'message', 'message', 'reaction', 'message'], 'the reaction to 14 comes after 14');
  server.deliver(live(15)); // a duplicate publish
  assert.deepEqual(s.seqs(), [11, 12, 13, 14, 15]);
  c.close();
});

test('a gap nobody fills is read with since', async () => {
  const { c, server } = await client();
  const s = subscribe(c, 10);
  server.reply(await server.request('subscribe'), { subscribed: true, latestSeq: 10, messages: [], updates: [] });
  await s.sub;
  server.deliver(live(11));
  server.deliver(live(13));
  const since = (await waitFor(() => server.sent.find((f) => f.op === 'since'), { timeoutMs: 5000 }))!;
  assert.equal(since.seq, 11);
  server.reply(since, { messages: [msg(12), msg(13)], updates: [], hasMore: false, latestSeq: 13, resync: false });
  await waitFor(() => s.seqs().length === 3);
  assert.deepEqual(s.seqs(), [11, 12, 13]);
  c.close();
});

test('subscribing from now: events up to the reply\'s latestSeq are not delivered, later ones are, in order', async () => {
  const { c, server } = await client();
  const s = subscribe(c);
  const req = await server.request('subscribe');
  assert.equal(req.seq, undefined);
  server.deliver(live(5));
  server.deliver(live(6));
  server.reply(req, { subscribed: true, latestSeq: 5, info: {} });
  const sub = await s.sub;
  assert.deepEqual(s.seqs(), [6]);
  assert.equal(sub.lastSeq, 6);
  c.close();
});

test('after an "unsubscribed" frame the SDK subscribes again from its last seq, unless access was lost', async () => {
  const { c, server } = await client();
  const s = subscribe(c, 10);
  server.reply(await server.request('subscribe'), { subscribed: true, latestSeq: 10, messages: [], updates: [] });
  await s.sub;
  server.deliver(live(11));
  server.deliver({ type: 'unsubscribed', ws: 'w', ch: 'c', error: { code: 'CHORUS_ASK_TIMEOUT', message: 'slow' } });
  const again = await server.request('subscribe');
  assert.equal(again.seq, 11);
  server.reply(again, { subscribed: true, latestSeq: 12, messages: [msg(12)], updates: [] });
  await waitFor(() => s.seqs().length === 2);
  assert.deepEqual(s.seqs(), [11, 12]);
  server.deliver({ type: 'unsubscribed', ws: 'w', ch: 'c', error: { code: 'CHAT_NOT_MEMBER', message: 'removed' } });
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(server.sent.filter((f) => f.op === 'subscribe').length, 2, 'no resubscribe once access is lost');
  c.close();
});

test('a retriable request is sent again after a transient server error and resolves; one that is not gets the error at once', async () => {
  const { c, server } = await client();
  const posted = c.post('w', 'c', 'hello', { clientMsgId: 'm1' });
  const first = await server.request('post');
  first.answered = true;
  server.deliver({ type: 'reply', id: first.id, ok: false, error: { code: 'CHORUS_ASK_TIMEOUT', message: 'slow node' } });
  const again = await server.request('post');
  assert.equal(again.id, first.id, 'the same request');
  assert.equal(again.clientMsgId, 'm1', 'the same clientMsgId: stored once');
  server.reply(again, { seq: 7 });
  assert.deepEqual(await posted, { seq: 7 });
  const read = c.request('history', { ws: 'w', ch: 'c' });
  const h = await server.request('history');
  h.answered = true;
  server.deliver({ type: 'reply', id: h.id, ok: false, error: { code: 'CHORUS_ASK_TIMEOUT', message: 'slow node' } });
  await assert.rejects(read, (e: { code?: string }) => e.code === 'CHORUS_ASK_TIMEOUT');
  assert.equal(server.sent.filter((f) => f.op === 'history').length, 1, 'not retriable: sent once');
  c.close();
});


test('a subscribe is sent again after a transient server error, and its messages arrive once', async () => {
  const { c, server } = await client();
  const s = subscribe(c, 3);
  const first = await server.request('subscribe');
  first.answered = true;
  server.deliver({ type: 'reply', id: first.id, ok: false, error: { code: 'CHORUS_ASK_TIMEOUT', message: 'slow node' } });
  const again = await server.request('subscribe');
  assert.equal(again.id, first.id, 'the same request');
  assert.equal(again.seq, 3, 'from the same seq');
  server.reply(again, { subscribed: true, latestSeq: 5, messages: [msg(4), msg(5)], updates: [] });
  await s.sub;
  assert.deepEqual(s.seqs(), [4, 5]);
  // a permanent error is not sent again
  const denied = c.subscribe('w', 'secret', () => {});
  const d = await waitFor(() => server.sent.find((f) => f.op === 'subscribe' && f.ch === 'secret')) as Record<string, any>;
  server.deliver({ type: 'reply', id: d.id, ok: false, error: { code: 'CHAT_NOT_MEMBER', message: 'no' } });
  await assert.rejects(denied, (e: { code?: string }) => e.code === 'CHAT_NOT_MEMBER');
  assert.equal(server.sent.filter((f) => f.ch === 'secret').length, 1);
  c.close();
});
