/**
 * Memory bounds of the edge, each pushed past or measured: the send buffer of
 * a slow consumer (a client that stops reading is closed 4008 with a reason
 * once the edge holds more than the bound for it, and a reader next to it
 * gets every message), and the heap an idle connection costs.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import { embeddedNode } from '../edge/fixture.ts';
import { ClientPool, RawClient, okAsk, waitFor } from './helpers.ts';

type Node = Awaited<ReturnType<typeof embeddedNode>>;

const TIGHT = { maxInFlight: 8, maxBufferedBytes: 256 * 1024, framesPerSecond: 1000, frameBurst: 1000 };
/** Heap (client and server ends together, same process) per idle connection must stay under this. */
const HEAP_PER_CONNECTION_BOUND = 64 * 1024;

describe('memory bounds (G23, G24)', () => {
  let tight: Node;
  const pool = new ClientPool();
  const client = (node: Node, user: string, ws: string[]) => pool.client(node, user, ws);

  before(async () => {
    tight = await embeddedNode({}, { edge: { limits: TIGHT } });
  });
  after(async () => {
    pool.closeAll();
    await tight?.[Symbol.asyncDispose]();
  });

  test('slow consumer: a client that stops reading is closed 4008 with a reason once its send buffer passes the bound; a reader next to it gets every message', { timeout: 90_000 }, async () => {
    const poster = await client(tight, 'sc-poster', ['sc']);
    await okAsk(poster, { op: 'createWorkspace', ws: 'sc', name: 'Slow' });
    const { ch } = await okAsk(poster, { op: 'createChannel', ws: 'sc', name: 'firehose', kind: 'public' });
    const join = async (user: string) => {
      const c = await client(tight, user, ['sc']);
      const { code } = await okAsk(poster, { op: 'createInvite', ws: 'sc', role: 'member' });
      await okAsk(c, { op: 'joinWorkspace', ws: 'sc', code });
      await okAsk(c, { op: 'joinChannel', ws: 'sc', ch });
      assert.equal((await c.ask({ op: 'subscribe', ws: 'sc', ch })).ok, true);
      return c;
    };
    const slow = await join('sc-slow');
    const reader = await join('sc-reader');
    (slow.ws as unknown as { _socket: Socket })._socket.pause();
    const text = '漢'.repeat(4000); // the longest message: 12 KB of UTF-8 per frame
    let posted = 0;
    // the edge's own view of the slow session (the paused client cannot see the close yet)
    const sessions = (tight.edge as unknown as { sessions: Map<string, { user: string; closed: boolean }> }).sessions;
    const slowOpen = () => [...sessions.values()].some((x) => x.user === 'sc-slow' && !x.closed);
    // read again as soon as the edge gives up on the client (its close frame waits behind the buffered data, for at most 30 s)
    const resumed = waitFor(() => !slowOpen(), { timeoutMs: 120_000, intervalMs: 10, what: 'the edge to close the slow consumer' })
      .then(() => (slow.ws as unknown as { _socket: Socket })._socket.resume());
    // bounded: the kernel's loopback buffers plus the 256 KiB bound are a few MB at most
    while (slowOpen() && posted < 3000) {
      await Promise.all(Array.from({ length: TIGHT.maxInFlight }, async (_, i) => {
        // a busy machine can time an ask out: the same clientMsgId again stores it once
        for (let attempt = 0; ; attempt++) {
          const r = await poster.ask({ op: 'post', ws: 'sc', ch, text, clientMsgId: `p${posted + i}` }, 30_000);
          if (r.ok) return;
          if (r.error?.code !== 'CHORUS_ASK_TIMEOUT' || attempt >= 3) assert.fail(JSON.stringify(r.error ?? r));
        }
      }));
      posted += TIGHT.maxInFlight;
    }
    assert.ok(!slowOpen(), `the slow consumer is still open after ${posted} posts`);
    await resumed;
    const closed = await slow.waitClosed(20_000);
    assert.equal(closed.code, 4008);
    assert.match(closed.reason, /slow consumer/);
    await reader.until(() => reader.frames.filter((f) => f.type === 'event' && f.event.type === 'message').length >= posted || undefined, 30_000, `the reader's ${posted} messages`);
    const seqs = reader.frames.filter((f) => f.type === 'event' && f.event.type === 'message').map((f) => f.event.seq as number);
    assert.deepEqual(seqs, Array.from({ length: posted }, (_, i) => i + 1), 'the reader got every message once, in order');
    console.log(`# slow consumer: closed 4008 after ${posted} posts of 12 KB (bound ${TIGHT.maxBufferedBytes / 1024} KiB send buffer)`);
  });

  test(`memory per idle connection: 200 connections add under ${HEAP_PER_CONNECTION_BOUND / 1024} KiB of heap each (both ends)`, { timeout: 60_000 }, async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const heap = () => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    const tokens = Array.from({ length: 200 }, (_, i) => tight.signer.sign({ sub: `idle-${i}`, ws: ['demo'] }));
    const base = tight.edge.connectionCount;
    const warm = await Promise.all(tokens.slice(0, 10).map((t) => RawClient.open(tight.url, t)));
    for (const c of warm) c.close();
    await waitFor(() => tight.edge.connectionCount <= base, { what: 'warm-up sockets closed' });
    const before = heap();
    const sockets: WebSocket[] = await Promise.all(tokens.map((t) => RawClient.open(tight.url, t).then((c) => c.ws)));
    const after = heap();
    const per = (after - before) / tokens.length;
    for (const s of sockets) s.terminate();
    console.log(`# memory: ${tokens.length} idle connections, heap +${Math.round((after - before) / 1024)} KiB, ${Math.round(per / 1024 * 10) / 10} KiB per connection (client and server ends), bound ${HEAP_PER_CONNECTION_BOUND / 1024} KiB`);
    assert.ok(per < HEAP_PER_CONNECTION_BOUND, `${Math.round(per)} bytes per connection`);
  });
});
