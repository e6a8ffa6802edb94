/**
 * Resource limits, each pushed past: per-connection and per-user frame
 * rates, requests in flight, the flood close, subscriptions per connection,
 * message size, and the per-workspace quotas (channels, members, live
 * invites). The send buffer of a slow consumer and memory per connection:
 * memory-bounds.test.ts.
 * Every refusal must be the typed error (or close) the protocol documents.
 *
 * Two embedded nodes: `std` runs the default edge limits; `tight` has small
 * limits and quotas so each is reached in a few frames.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chatActorTypes } from '../../actors/index.ts';
import { DEFAULT_SESSION_LIMITS } from '../../cluster/edge/session.ts';
import { embeddedNode } from '../edge/fixture.ts';
import { ClientPool, closeWithReason, okAsk, typedError, waitFor } from './helpers.ts';

type Node = Awaited<ReturnType<typeof embeddedNode>>;

const QUOTAS = { maxChannels: 3, maxMembers: 3, maxLiveInvites: 4 };
const TIGHT = { maxInFlight: 8, maxSubscriptions: 3, maxBufferedBytes: 256 * 1024, framesPerSecond: 1000, frameBurst: 1000 };

describe('resource limits (G21, G22)', () => {
  let std: Node;
  let tight: Node;
  const pool = new ClientPool();
  const client = (node: Node, user: string, ws: string[] = ['lim']) => pool.client(node, user, ws);

  before(async () => {
    std = await embeddedNode();
    tight = await embeddedNode({}, {
      edge: { limits: TIGHT },
      types: chatActorTypes({ notifier: { notify: async () => {} }, workspaceQuotas: QUOTAS }),
    });
  });
  after(async () => {
    pool.closeAll();
    await std?.[Symbol.asyncDispose]();
    await tight?.[Symbol.asyncDispose]();
  });

  test('per connection: frames past the burst are EDGE_RATE_LIMITED with their id and retryAfterMs, accepted again after it', async () => {
    const c = await client(std, 'rate-conn');
    const n = DEFAULT_SESSION_LIMITS.frameBurst + 20;
    for (let i = 0; i < n; i++) c.ws.send(JSON.stringify({ op: 'ping', id: i }));
    await c.until(() => c.answers.length >= n || undefined, 10_000, `${n} answers`);
    const refused = c.answers.filter((f) => !f.ok);
    assert.ok(refused.length >= 15 && refused.length <= 20, `refused ${refused.length} of ${n} (burst ${DEFAULT_SESSION_LIMITS.frameBurst})`);
    for (const f of refused) {
      assert.equal(typedError(f, f.id), 'EDGE_RATE_LIMITED');
      assert.ok(f.error.details.retryAfterMs > 0);
    }
    const wait = Math.max(...refused.map((f) => f.error.details.retryAfterMs as number));
    const until = Date.now() + wait;
    await waitFor(() => Date.now() >= until, { what: 'retryAfterMs to pass' });
    assert.equal((await c.ask({ op: 'ping' })).ok, true, 'accepted again after retryAfterMs');
    console.log(`# per connection: ${n} frames at once, ${n - refused.length} accepted (burst ${DEFAULT_SESSION_LIMITS.frameBurst}), ${refused.length} EDGE_RATE_LIMITED, retryAfterMs up to ${wait}`);
  });

  test('per user: four connections of one user share one budget; past it CHAT_RATE_LIMITED with retryAfterMs', async () => {
    const conns = await Promise.all([1, 2, 3, 4].map(() => client(std, 'rate-user')));
    const perConn = DEFAULT_SESSION_LIMITS.frameBurst; // each within its own connection budget
    for (const c of conns) for (let i = 0; i < perConn; i++) c.ws.send(JSON.stringify({ op: 'ping', id: i }));
    await Promise.all(conns.map((c) => c.until(() => c.answers.length >= perConn || undefined, 10_000, 'answers')));
    const all = conns.flatMap((c) => c.answers);
    const refused = all.filter((f) => !f.ok);
    for (const f of refused) {
      assert.equal(typedError(f, f.id), 'CHAT_RATE_LIMITED');
      assert.ok(f.error.details.retryAfterMs > 0);
    }
    const userBurst = 3 * DEFAULT_SESSION_LIMITS.frameBurst;
    assert.ok(refused.length >= all.length - userBurst - 10, `at most about ${userBurst} accepted for the user, got ${all.length - refused.length}`);
    assert.ok(refused.length > 0);
    console.log(`# per user: 4 connections x ${perConn} frames, ${all.length - refused.length} accepted (user burst ${userBurst}), ${refused.length} CHAT_RATE_LIMITED`);
  });

  test('a sustained flood that gets a frame through now and then is still closed 1008 (refusals are forgiven at the frame rate, not reset by one accepted frame)', async () => {
    // 20/s a connection: one frame in ~4 gets through at this pace, so refusals never ran 200 "in a row"
    const c = await client(std, 'trickle-flooder');
    const started = Date.now();
    let sent = 0;
    while (!c.closed && Date.now() - started < 15_000) {
      for (let i = 0; i < 4 && !c.closed; i++) c.ws.send(`{"op":"ping","id":${sent++}}`);
      await new Promise((r) => setTimeout(r, 50)); // 80 frames/s against 20/s: 60 refused a second, 20 forgiven
    }
    const closed = await c.waitClosed();
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /flood/);
    assert.ok(c.answers.some((f) => f.ok), 'frames did get through between refusals');
    console.log(`# trickle flood: closed after ${sent} frames in ${Date.now() - started} ms`);
  });

  test('flood at the default limits: past the burst, 200 refusals in a row close the socket 1008 with a reason', async () => {
    const c = await client(std, 'flooder');
    for (let i = 0; i < DEFAULT_SESSION_LIMITS.frameBurst + DEFAULT_SESSION_LIMITS.floodCloseAfter + 50; i++) c.ws.send(`{"op":"ping","id":${i}}`);
    const closed = await c.waitClosed();
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /flood/);
  });

  test('requests in flight: past maxInFlight, EDGE_RATE_LIMITED with the id', async () => {
    const owner = await client(tight, 'lim-inflight');
    await okAsk(owner, { op: 'createWorkspace', ws: 'lim', name: 'Limits' });
    const { ch } = await okAsk(owner, { op: 'createChannel', ws: 'lim', name: 'general', kind: 'public' });
    const n = 40;
    for (let i = 0; i < n; i++) owner.ws.send(JSON.stringify({ op: 'history', id: `h${i}`, ws: 'lim', ch }));
    await owner.until(() => owner.answers.filter((f) => String(f.id).startsWith('h')).length >= n || undefined, 15_000, 'answers');
    const refused = owner.answers.filter((f) => String(f.id).startsWith('h') && !f.ok);
    assert.ok(refused.length >= n - 2 * TIGHT.maxInFlight, `refused ${refused.length} of ${n} with at most ${TIGHT.maxInFlight} in flight`);
    for (const f of refused) {
      assert.equal(typedError(f, f.id), 'EDGE_RATE_LIMITED');
      assert.match(f.error.message, /in flight/);
    }
  });

  test('subscriptions per connection: past maxSubscriptions, EDGE_TOO_MANY_SUBSCRIPTIONS; the socket stays open', async () => {
    const owner = await client(tight, 'lim-subs', ['lim-subs']);
    await okAsk(owner, { op: 'createWorkspace', ws: 'lim-subs', name: 'Subs' });
    const chans: string[] = [];
    for (let i = 0; i <= TIGHT.maxSubscriptions && chans.length < QUOTAS.maxChannels; i++) chans.push((await okAsk(owner, { op: 'createChannel', ws: 'lim-subs', name: `s${i}`, kind: 'public' })).ch);
    // three channels (the quota) and a DM: four subscriptions asked for, three allowed
    const other = await client(tight, 'lim-subs-2', ['lim-subs']);
    const { code } = await okAsk(owner, { op: 'createInvite', ws: 'lim-subs', role: 'member' });
    await okAsk(other, { op: 'joinWorkspace', ws: 'lim-subs', code });
    const dm = await owner.ask({ op: 'openDm', ws: 'lim-subs', users: ['lim-subs-2'], clientMsgId: 'dm' });
    assert.equal(typedError(dm, dm.id), 'QUOTA_EXCEEDED', 'the channel quota counts DMs');
    for (const ch of chans) assert.equal((await owner.ask({ op: 'subscribe', ws: 'lim-subs', ch })).ok, true);
    const fourth = await owner.ask({ op: 'subscribe', ws: 'lim-subs', ch: 'c99' });
    assert.equal(typedError(fourth, fourth.id), 'EDGE_TOO_MANY_SUBSCRIPTIONS');
    assert.equal((await owner.ask({ op: 'ping' })).ok, true, 'still open');
  });

  test('workspace quotas: channels, members and live invites past the quota are QUOTA_EXCEEDED with quota and limit', async () => {
    const owner = await client(tight, 'q-owner', ['q']);
    await okAsk(owner, { op: 'createWorkspace', ws: 'q', name: 'Quotas' });
    for (let i = 0; i < QUOTAS.maxChannels; i++) await okAsk(owner, { op: 'createChannel', ws: 'q', name: `q${i}`, kind: i % 2 ? 'private' : 'public' });
    const over = await owner.ask({ op: 'createChannel', ws: 'q', name: 'one-too-many', kind: 'public', clientMsgId: 'over' });
    assert.equal(typedError(over, over.id), 'QUOTA_EXCEEDED');
    assert.deepEqual(over.error.details, { quota: 'maxChannels', limit: QUOTAS.maxChannels });
    // members: the owner plus two fill the quota of three; the third joiner is refused
    const codes: string[] = [];
    for (let i = 0; i < QUOTAS.maxLiveInvites; i++) codes.push((await okAsk(owner, { op: 'createInvite', ws: 'q', role: 'member' })).code);
    const inv = await owner.ask({ op: 'createInvite', ws: 'q', role: 'member', clientMsgId: 'inv-over' });
    assert.equal(typedError(inv, inv.id), 'QUOTA_EXCEEDED');
    assert.equal(inv.error.details.quota, 'maxLiveInvites');
    for (let i = 0; i < 3; i++) {
      const c = await client(tight, `q-joiner-${i}`, ['q']);
      const r = await c.ask({ op: 'joinWorkspace', ws: 'q', code: codes[i], clientMsgId: 'join' });
      if (i < QUOTAS.maxMembers - 1) assert.equal(r.ok, true, JSON.stringify(r.error));
      else {
        assert.equal(typedError(r, r.id), 'QUOTA_EXCEEDED');
        assert.deepEqual(r.error.details, { quota: 'maxMembers', limit: QUOTAS.maxMembers });
      }
    }
    const info = await okAsk(owner, { op: 'workspaceInfo', ws: 'q' });
    assert.equal(info.memberCount, QUOTAS.maxMembers);
    assert.equal(info.channelCount, QUOTAS.maxChannels);
  });

  test('message size: text over 4,000 characters is CHORUS_BAD_MESSAGE; a frame over 64 KiB closes 1009 with a reason', async () => {
    const c = await client(std, 'big-text', ['demo']);
    const r = await c.ask({ op: 'post', ws: 'demo', ch: 'c1', text: 'x'.repeat(4001), clientMsgId: 'big' });
    assert.equal(typedError(r, r.id), 'CHORUS_BAD_MESSAGE');
    assert.equal(closeWithReason(await c.send('y'.repeat(64 * 1024 + 1))), 1009);
  });

});
