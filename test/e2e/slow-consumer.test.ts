/**
 * A slow consumer: a raw WebSocket client that stops reading (its TCP socket
 * paused) while another user posts many large messages. The edge must close
 * it with 4008 and a reason once its send buffer passes the bound, and keep
 * delivering to everyone else without holding them up.
 *
 * The node runs with a 512 KiB send-buffer bound (the default is 4 MiB; the
 * code path is the same, the test just needs fewer posts) and a raised frame
 * rate so one poster can flood. How many posts are needed is computed from
 * what loopback TCP itself buffers on this machine (measured first), so the
 * run is deterministic: the client is certain to be past the bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { embeddedNode } from '../edge/fixture.ts';
import { closeAll, newClientMsgId, person, percentile, rawSocket, waitFor, WS } from './helpers.ts';

const MAX_BUFFERED = 512 * 1024;
const CHANNELS = 4;

/** Bytes loopback TCP holds between a writer and a reader that does not read (both kernels' buffers). */
async function loopbackBuffering(): Promise<number> {
  let server!: Socket;
  const srv = createServer((s) => { server = s; });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const client = connect((srv.address() as { port: number }).port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  client.pause();
  await waitFor(() => server);
  const chunk = Buffer.alloc(64 * 1024);
  let written = 0;
  let kernel = 0;
  for (let i = 0; i < 400; i++) {
    server.write(chunk);
    written += chunk.length;
    await new Promise((r) => setTimeout(r, 2));
    const now = written - server.writableLength;
    if (server.writableLength > 4 * 1024 * 1024 && now === kernel) break;
    kernel = now;
  }
  server.destroy();
  client.destroy();
  srv.close();
  return kernel;
}

test('a client that stops reading is closed with 4008 and a reason; other clients are not held up (G23)', { timeout: 120_000 }, async (t) => {
  await using node = await embeddedNode({}, { edge: { limits: { maxBufferedBytes: MAX_BUFFERED, framesPerSecond: 2000, frameBurst: 2000 } } });
  t.after(closeAll);
  const ada = await person(node, 'sc-ada', { maxFramesPerSecond: 2000, frameBurst: 2000 }); // posts (this node allows it)
  const bob = await person(node, 'sc-bob'); // reads normally
  const slow = await person(node, 'sc-slow'); // stops reading
  const channels: string[] = [];
  for (let i = 0; i < CHANNELS; i++) {
    const { ch } = await ada.client.request<{ ch: string }>('createChannel', { ws: WS, name: `flood-${i}`, kind: 'public', clientMsgId: `flood-${i}` });
    channels.push(ch);
    for (const p of [bob, slow]) await p.client.request('joinChannel', { ws: WS, ch, clientMsgId: `join-${ch}` });
  }
  const raw = await rawSocket(node.url, slow.token);
  slow.client.close();
  for (const ch of channels) assert.equal((await raw.ask('subscribe', { ws: WS, ch })).ok, true);

  // bob's delivery latency: frame received minus the message's server timestamp (same clock)
  const seen = new Map<string, number[]>(channels.map((ch) => [ch, []]));
  let phase: number[] = [];
  for (const ch of channels) {
    await bob.client.subscribe(WS, ch, (e) => {
      if (e.type !== 'message') return;
      seen.get(ch)!.push(e.seq!);
      phase.push(Date.now() - (e.message as { ts: number }).ts);
    });
  }
  let retried = 0;
  const flood = async (n: number, text: string) => {
    const acks: number[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < n) {
        const i = next++;
        const t0 = Date.now();
        const clientMsgId = newClientMsgId();
        for (let attempt = 0; ; attempt++) {
          try {
            await ada.client.post(WS, channels[i % CHANNELS]!, text, { clientMsgId });
            break;
          } catch (err) {
            // a busy machine can make a channel miss the ask deadline: retry, stored once (same clientMsgId)
            if ((err as { code?: string }).code !== 'CHORUS_ASK_TIMEOUT' || attempt >= 3) throw err;
            retried++;
          }
        }
        acks.push(Date.now() - t0);
      }
    }));
    return acks;
  };
  const big = '漢'.repeat(4000); // the longest message: 4,000 chars, 12 KB of UTF-8 per frame

  // baseline: everyone reads
  const baseN = 60;
  phase = [];
  const baseAcks = await flood(baseN, big);
  await waitFor(() => phase.length === baseN, { timeoutMs: 20_000 });
  const baseline = phase;
  await waitFor(() => raw.frames.filter((f) => f.type === 'event' && f.event.type === 'message').length === baseN, { timeoutMs: 20_000 });

  // the slow client stops reading; flood well past what TCP and the edge's bound can hold
  (raw.ws as unknown as { _socket: Socket })._socket.pause();
  const kernel = await loopbackBuffering();
  const frameBytes = Buffer.byteLength(raw.texts.findLast((s) => s.includes('"message"'))!);
  // TCP's buffers are bounded by the kernel's maxima, so the measurement is an upper bound: a 25% margin is plenty
  const floodN = Math.ceil((((kernel + MAX_BUFFERED) * 1.25) / frameBytes + 40) / CHANNELS) * CHANNELS;
  phase = [];
  const t0 = Date.now();
  const floodAcks = await flood(floodN, big);
  const floodMs = Date.now() - t0;
  await waitFor(() => phase.length === floodN, { timeoutMs: 30_000, what: 'bob to get every flood message' });
  const during = phase;

  // reading again, the slow client finds what was buffered for it, then the close
  const before = raw.frames.length;
  (raw.ws as unknown as { _socket: Socket })._socket.resume();
  await waitFor(() => raw.closed, { timeoutMs: 30_000, what: 'the slow client to be closed' });
  const got = raw.frames.filter((f) => f.type === 'event' && f.event.type === 'message').length - baseN;
  const figures = {
    loopbackBufferBytes: kernel, frameBytes, floodPosts: floodN, floodMs, postsRetriedAfterAskTimeout: retried, slowGot: got, slowGotAfterResume: raw.frames.length - before,
    close: raw.closed,
    bobLatencyMs: { baselineP50: percentile(baseline, 50), baselineP95: percentile(baseline, 95), floodP50: percentile(during, 50), floodP95: percentile(during, 95), floodMax: Math.max(...during) },
    postAckMs: { baselineP95: percentile(baseAcks, 95), floodP50: percentile(floodAcks, 50), floodP95: percentile(floodAcks, 95) },
  };
  t.diagnostic(JSON.stringify(figures));

  assert.equal(raw.closed!.code, 4008, 'closed as a slow consumer');
  assert.match(raw.closed!.reason, /slow consumer/);
  assert.ok(got < floodN, `the slow client was cut off (${got} of ${floodN} flood messages)`);
  assert.ok(got * frameBytes <= kernel * 2 + MAX_BUFFERED * 2 + frameBytes * 20, 'it was not buffered far past the bound');
  // everyone else got everything, once, in order
  for (const [ch, seqs] of seen) {
    assert.equal(seqs.length, (baseN + floodN) / CHANNELS, `bob got every message of ${ch}`);
    assert.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1), `in order, no gaps, in ${ch}`);
  }
  // ... and not later than the posts themselves took: the paused socket holds nobody up
  // (delivery latency is measured from the channel's timestamp, before the write is durable; an ack includes that too)
  assert.ok(figures.bobLatencyMs.floodP95 <= 2 * figures.postAckMs.floodP95 + 250, `bob's p95 delivery ${figures.bobLatencyMs.floodP95} ms vs post ack p95 ${figures.postAckMs.floodP95} ms`);
  assert.ok(figures.bobLatencyMs.floodP50 < 1000, `bob's median delivery ${figures.bobLatencyMs.floodP50} ms`);
  // the node is fine and the slow user can come back
  assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
  const back = await rawSocket(node.url, slow.token);
  assert.equal((await back.ask('ping')).ok, true);
});
