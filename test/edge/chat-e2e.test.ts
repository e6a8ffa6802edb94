import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import * as wsModule from 'ws';
const Sender = (wsModule as unknown as { Sender: unknown }).Sender;
import { ChorusClient, ChorusClientError, type ChorusEvent, type WebSocketCtor } from '../../client/sdk.ts';
import { waitFor } from '../helpers/ports.ts';
import { demoClient, embeddedNode } from './fixture.ts';

type Node = Awaited<ReturnType<typeof embeddedNode>>;

/** A raw socket that records every frame and its close. */
async function raw(node: Node, token: string) {
  const ws = new WebSocket(`${node.url.replace('http', 'ws')}/ws?token=${encodeURIComponent(token)}`);
  const frames: any[] = [];
  let closed: { code: number; reason: string } | undefined;
  ws.on('message', (d) => frames.push(JSON.parse(String(d))));
  ws.on('close', (code, reason) => { closed = { code, reason: String(reason) }; });
  ws.on('error', () => {});
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  await waitFor(() => frames.some((f) => f.type === 'hello'));
  return { ws, frames, get closed() { return closed; }, reply: (id: number) => waitFor(() => frames.find((f) => f.type === 'reply' && f.id === id)) };
}

describe('chat over the WebSocket edge (embedded profile)', () => {
  let node: Node;
  before(async () => { node = await embeddedNode(); });
  after(async () => { await node[Symbol.asyncDispose](); });

  test('two users chat: live delivery, mention event, history', async () => {
    const ada = await demoClient(node, 'ada');
    const bob = await demoClient(node, 'bob');
    const ch = ada.channels[0]!;
    const got: ChorusEvent[] = [];
    const personal: ChorusEvent[] = [];
    bob.client.onEvent((e) => personal.push(e));
    await bob.client.subscribe('demo', ch, (e) => got.push(e));
    const { seq } = await ada.client.post('demo', ch, 'hi <@bob>');
    await waitFor(() => got.some((e) => e.type === 'message' && e.seq === seq));
    await waitFor(() => personal.some((e) => e.type === 'mention' && e.seq === seq));
    const page = await bob.client.request<{ messages: Array<{ seq: number; text: string }> }>('history', { ws: 'demo', ch });
    assert.ok(page.messages.some((m) => m.seq === seq && m.text === 'hi <@bob>'));
    ada.client.close();
    bob.client.close();
  });

  test('a client that reconnects with its last seq gets exactly what it missed, in order (G3)', async () => {
    const ada = await demoClient(node, 'ada2');
    const bob = await demoClient(node, 'bob2');
    const ch = ada.channels[1]!;
    const seen: number[] = [];
    const sub = await bob.client.subscribe('demo', ch, (e) => { if (e.type === 'message') seen.push(e.seq!); });
    await ada.client.post('demo', ch, 'before');
    await waitFor(() => seen.length === 1);
    const last = sub.lastSeq;
    bob.client.close();
    const posted: number[] = [];
    for (let i = 0; i < 7; i++) posted.push((await ada.client.post('demo', ch, `missed ${i}`)).seq);
    const again = await ChorusClient.connect({ baseUrl: node.url, token: bob.token, WebSocket: WebSocket as unknown as WebSocketCtor });
    const after: number[] = [];
    await again.subscribe('demo', ch, (e) => { if (e.type === 'message') after.push(e.seq!); }, { seq: last });
    await waitFor(() => after.length >= 7);
    posted.push((await ada.client.post('demo', ch, 'live again')).seq);
    await waitFor(() => after.length >= 8);
    assert.deepEqual(after, posted, 'missed messages then live ones, each once, in seq order');
    ada.client.close();
    again.close();
  });

  test('a post retried with the same clientMsgId is stored once', async () => {
    const ada = await demoClient(node, 'ada3');
    const ch = ada.channels[0]!;
    const a = await ada.client.post('demo', ch, 'once', { clientMsgId: 'dup-1' });
    const b = await ada.client.post('demo', ch, 'once', { clientMsgId: 'dup-1' });
    assert.equal(a.seq, b.seq);
    const page = await ada.client.request<{ messages: Array<{ clientMsgId?: string; user: string }> }>('history', { ws: 'demo', ch, limit: 200 });
    assert.equal(page.messages.filter((m) => m.clientMsgId === 'dup-1' && m.user === 'ada3').length, 1);
    ada.client.close();
  });

  test('hostile frames get typed errors or a close with a reason; the node and other users carry on', async () => {
    const ada = await demoClient(node, 'ada4');
    const bob = await demoClient(node, 'bob4');
    const ch = ada.channels[0]!;
    const r = await raw(node, ada.token);
    r.ws.send('{not json');
    r.ws.send('[1,2,3]');
    r.ws.send(JSON.stringify({ id: 1 }));
    r.ws.send(JSON.stringify({ id: 2, op: 'nope' }));
    r.ws.send(JSON.stringify({ id: 3, op: 'sessionOpened', ws: 'demo', sessionId: 'x', node: 'n', device: 'd' }));
    r.ws.send(JSON.stringify({ id: 4, op: 'post', ws: 'demo', ch, text: 'x'.repeat(5000), clientMsgId: 'big' }));
    r.ws.send(JSON.stringify({ id: 5, op: 'post', ws: 'demo', ch, text: 'spoof', clientMsgId: 'spoof', by: 'bob4' }));
    r.ws.send(JSON.stringify({ id: 6, op: 'post', ws: 'demo', ch: '../../etc', text: 'x', clientMsgId: 'p' }));
    r.ws.send(JSON.stringify({ id: 7, op: 'history', ws: 'demo', ch, limit: 1e9 }));
    r.ws.send(JSON.stringify({ id: 8, op: 'post', ws: 'demo', ch, text: { $gt: '' }, clientMsgId: 'obj' }));
    r.ws.send(JSON.stringify({ id: 9, op: '__proto__', ws: 'demo' }));
    let deep = '1';
    for (let i = 0; i < 5000; i++) deep = `[${deep}]`;
    r.ws.send(JSON.stringify({ id: 10, op: 'post', ws: 'demo', ch, clientMsgId: 'deep' }).replace('}', `,"text":${deep}}`));
    await waitFor(() => r.frames.filter((f) => f.type === 'error').length >= 2 && [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].every((id) => r.frames.some((f) => f.id === id)));
    const code = (id: number) => r.frames.find((f) => f.id === id)?.error?.code;
    assert.deepEqual(r.frames.filter((f) => f.type === 'error').map((f) => f.error.code), ['EDGE_BAD_FRAME', 'EDGE_BAD_FRAME']);
    assert.equal(code(1), 'EDGE_BAD_FRAME');
    assert.equal(code(2), 'EDGE_UNKNOWN_OP');
    assert.equal(code(3), 'EDGE_UNKNOWN_OP', 'edge-only ops are refused from clients');
    assert.equal(code(4), 'CHORUS_BAD_MESSAGE');
    const spoof = r.frames.find((f) => f.id === 5);
    assert.equal(spoof.ok, true);
    const page = await bob.client.request<{ messages: Array<{ seq: number; user: string }> }>('history', { ws: 'demo', ch, limit: 200 });
    assert.equal(page.messages.find((m) => m.seq === spoof.result.seq)?.user, 'ada4', '`by` comes from the token, not the frame');
    assert.equal(code(6), 'CHORUS_BAD_MESSAGE');
    assert.equal(code(7), 'CHORUS_BAD_MESSAGE');
    assert.equal(code(8), 'CHORUS_BAD_MESSAGE');
    assert.equal(code(9), 'EDGE_UNKNOWN_OP');
    assert.equal(code(10), 'CHORUS_BAD_MESSAGE');
    // binary frame, then an oversized frame: closed with 1009 and a reason
    r.ws.send(Buffer.from([0xde, 0xad]));
    await waitFor(() => r.frames.filter((f) => f.type === 'error').length >= 3);
    r.ws.send('x'.repeat(70 * 1024));
    await waitFor(() => r.closed);
    assert.equal(r.closed!.code, 1009);
    // invalid UTF-8 in a text frame: 1007
    const r2 = await raw(node, ada.token);
    const bad = (Sender as any).frame(Buffer.from([0xff, 0xfe, 0xfd]), { fin: true, rsv1: false, opcode: 1, mask: true, readOnly: false, maskKey: Buffer.from([1, 2, 3, 4]) });
    for (const b of [bad].flat()) (r2.ws as any)._socket.write(b);
    await waitFor(() => r2.closed);
    assert.equal(r2.closed!.code, 1007);
    // the node is fine and so is everyone else
    assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
    const ok = await bob.client.post('demo', ch, 'still here');
    assert.ok(ok.seq > 0);
    ada.client.close();
    bob.client.close();
  });

  test('missing, forged, expired and operator tokens are refused with a reason', async () => {
    const expired = node.signer.sign({ sub: 'ada', ws: ['demo'] }, -60);
    const forged = node.signer.sign({ sub: 'ada', ws: ['demo'] }).replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    const operator = node.signer.sign({ sub: 'root', ws: ['*'], kind: 'operator' });
    for (const [token, code] of [[undefined, 'AUTH_MISSING'], ['garbage', 'AUTH_MALFORMED'], [forged, 'AUTH_BAD_SIGNATURE'], [expired, 'AUTH_EXPIRED'], [operator, 'AUTH_FORBIDDEN']] as const) {
      const res = await fetch(`${node.url}/api/connect`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });
      assert.equal(((await res.json()) as { code: string }).code, code);
      assert.ok(res.status === 401 || res.status === 403);
      const ws = new WebSocket(`${node.url.replace('http', 'ws')}/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`);
      const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)).on('error', () => {}));
      assert.ok(status === 401 || status === 403, `upgrade refused for ${code}`);
    }
  });

  test('a flood is rate limited, then closed with a policy violation', async () => {
    const ada = await demoClient(node, 'ada5');
    const r = await raw(node, ada.token);
    for (let i = 0; i < 400; i++) r.ws.send(JSON.stringify({ id: i, op: 'ping' }));
    await waitFor(() => r.closed, { timeoutMs: 10_000 });
    assert.ok(r.frames.some((f) => f.error?.code === 'EDGE_RATE_LIMITED' && f.error.details.retryAfterMs >= 0));
    assert.equal(r.closed!.code, 1008);
    // the same user's other connection is unaffected
    assert.ok((await ada.client.request<{ pong: number }>('ping')).pong > 0);
    ada.client.close();
  });

  test('nobody subscribes to or reads a private channel they are not in', async () => {
    const ada = await demoClient(node, 'ada6');
    const eve = await demoClient(node, 'eve6');
    const { ch } = await ada.client.request<{ ch: string }>('createChannel', { ws: 'demo', name: 'secret-6', kind: 'private', clientMsgId: 'c6' });
    await ada.client.post('demo', ch, 'top secret');
    await assert.rejects(eve.client.subscribe('demo', ch, () => {}), (e: ChorusClientError) => e.code === 'CHAT_FORBIDDEN' || e.code === 'CHAT_NOT_MEMBER');
    await assert.rejects(eve.client.request('history', { ws: 'demo', ch }), (e: ChorusClientError) => e.code === 'CHAT_FORBIDDEN' || e.code === 'CHAT_NOT_MEMBER');
    await assert.rejects(eve.client.post('demo', ch, 'let me in'), (e: ChorusClientError) => e.code === 'CHAT_FORBIDDEN' || e.code === 'CHAT_NOT_MEMBER');
    await assert.rejects(eve.client.request('history', { ws: 'other-ws', ch: 'c1' }), (e: ChorusClientError) => e.code === 'AUTH_FORBIDDEN');
    ada.client.close();
    eve.client.close();
  });
});
