/**
 * Promises of PROTOCOL.md checked on the wire, embedded profile: every
 * request with an id gets exactly one reply carrying that id, also when the
 * edge rate-limits it; and the SDK paces its frames so that its requests are
 * never refused by the edge's per-connection frame limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { embeddedNode } from '../edge/fixture.ts';
import { closeAll, person, rawSocket, waitFor } from './helpers.ts';

test('a rate-limited request still gets a reply with its id (section 4: every request with an id gets exactly one reply)', async (t) => {
  await using node = await embeddedNode();
  t.after(closeAll);
  const ada = await person(node, 'ec-ada');
  const raw = await rawSocket(node.url, ada.token);
  for (let i = 1; i <= 80; i++) raw.ws.send(JSON.stringify({ op: 'ping', id: i }));
  await waitFor(() => raw.frames.filter((f) => f.type === 'reply' || f.type === 'error').length >= 80);
  const answered = new Set(raw.frames.filter((f) => f.type === 'reply').map((f) => f.id));
  const idless = raw.frames.filter((f) => f.type === 'error' && f.error.code === 'EDGE_RATE_LIMITED').length;
  assert.equal(answered.size, 80, `${answered.size} of 80 requests answered with their id; ${idless} refused with an id-less error`);
});

test('the SDK paces its frames: a burst of 90 requests is answered in full, none refused by the rate limit', async (t) => {
  await using node = await embeddedNode();
  t.after(closeAll);
  const ada = await person(node, 'ec-bob');
  const t0 = Date.now();
  const results = await Promise.allSettled(Array.from({ length: 90 }, () => ada.client.request<{ pong: number }>('ping')));
  const ms = Date.now() - t0;
  const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason?.code);
  assert.deepEqual(refused, []);
  // 50 at once, the other 40 at 20/s: about 2 s
  assert.ok(ms >= 1500, `paced (${ms} ms)`);
  t.diagnostic(`90 requests answered in ${ms} ms`);
});
