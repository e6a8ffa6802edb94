/**
 * Hostile input at the edge (invariant 6: bad input never crashes a node).
 * One embedded node takes, in turn: property-generated frames shaped like
 * every client op (wrong types, extra and prototype keys, huge numbers),
 * random ops, random bytes as binary and text frames, invalid UTF-8, deeply
 * nested and huge JSON, oversized frames, a frame flood and a connection
 * flood (bounded, loopback only). Every case must end in a typed error frame
 * (a code of docs/errors.md, a message, the request id when there is one) or
 * a close with a reason; afterwards /healthz answers and Object.prototype is
 * untouched. A bystander pings the edge throughout; its round-trip per phase
 * is printed and must stay under BYSTANDER_P50_BOUND_MS and BYSTANDER_P99_BOUND_MS.
 *
 * The node allows 2,000 frames/s per connection (default 20/s) so that
 * hundreds of generated frames run in seconds; the default limits are
 * pushed past in limits.test.ts.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { loadavg } from 'node:os';
import fc from 'fast-check';
import WebSocket from 'ws';
import { COMMANDS, EDGE_COMMANDS, type CommandSpec } from '../../actors/protocol.ts';
import { embeddedNode } from '../edge/fixture.ts';
import { Bystander, RawClient, closeWithReason, devSignIn, healthy, typedError, typedOutcome, waitFor } from './helpers.ts';

/**
 * Bounds on the bystander's ping round-trip in every phase, measured on this
 * 2-core machine while other engineers' test runs kept its load at 9-13: the
 * median stayed at 1-55 ms in every phase, the p99 at 30-270 ms at baseline
 * and up to 750 ms in the attack phases (the connection flood and reconnect
 * storms cost the most). On a quiet machine the medians are under 2 ms. The
 * median bound catches an attack that slows everyone; the p99 bound one that
 * stalls the node; both leave room for a busy neighbour.
 */
const BYSTANDER_P50_BOUND_MS = 100;
const BYSTANDER_P99_BOUND_MS = 1000;
const MAX_CONNECTIONS = 150;
const FRAMES_PER_SECOND = 2000;
const SEED = Number(process.env.CHORUS_FUZZ_SEED ?? 20261201);
const RUNS = Number(process.env.CHORUS_FUZZ_RUNS ?? 200);
const EDGE_OPS = new Set(['subscribe', 'unsubscribe', 'presenceSub', 'ping']);

type Node = Awaited<ReturnType<typeof embeddedNode>>;

/** JSON text of an object from key/value pairs, so `__proto__` can be an own key (an object literal would set the prototype). */
function objectText(entries: Array<[string, unknown]>): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
}

const HUGE_NUMBERS = [Number.MAX_SAFE_INTEGER + 2, 1e308, -1e308, 2 ** 63, -(2 ** 53), 1e-300, 0.5, -1, 0];
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'by', 'op', 'then'];
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...HUGE_NUMBERS),
  fc.constantFrom('__proto__', 'constructor', '', ' ', 'demo', 'c1', '*', '../../etc/passwd', '\u0000', '\ud800', 'a'.repeat(5000), '<@everyone>'),
  fc.string({ maxLength: 80 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(fc.constantFrom(...PROTO_KEYS), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
);

/** Frames shaped like a client op: its own fields with hostile values or plausible ones, plus extra and prototype keys. */
function opFrame(ops: string[]): fc.Arbitrary<{ op: string; entries: Array<[string, unknown]> }> {
  return fc.constantFrom(...ops).chain((op) => {
    const shape = ((COMMANDS as Record<string, CommandSpec>)[op]?.schema as unknown as { shape?: Record<string, unknown> }).shape ?? {};
    const fields = Object.keys(shape).filter((k) => k !== 'op' && k !== 'by');
    const plausible: Record<string, fc.Arbitrary<unknown>> = {
      ws: fc.constantFrom('demo', 'nope', '__proto__'), ch: fc.constantFrom('c1', 'c2', 'c99'), clientMsgId: fc.string({ minLength: 1, maxLength: 64 }),
      seq: fc.constantFrom(1, 2, 0, -1), text: fc.string({ minLength: 1, maxLength: 40 }), user: fc.constantFrom('fuzz', 'demo-owner', '__proto__'),
    };
    return fc.record({
      values: fc.tuple(...fields.map((f) => fc.option(fc.oneof(plausible[f] ?? hostileValue, hostileValue), { nil: undefined }))),
      extra: fc.array(fc.tuple(fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 12 })), hostileValue), { maxLength: 4 }),
    }).map(({ values, extra }) => ({
      op,
      entries: [['op', op], ...fields.map((f, i) => [f, values[i]] as [string, unknown]).filter(([, v]) => v !== undefined), ...extra] as Array<[string, unknown]>,
    }));
  });
}

describe('hostile input at the edge (G20)', () => {
  let node: Node;
  let bystander: Bystander;
  let fuzzToken: string;
  const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort().join();

  let big: Node;
  let bigToken: string;

  /** Runs an attack round after round (at most `maxRounds`) until the bystander has taken `minSamples` round-trips during it. */
  async function during(phase: string, body: (round: number) => Promise<void>, minSamples = 20, maxRounds = 8): Promise<void> {
    bystander.mark(phase);
    for (let round = 0; round < maxRounds; round++) {
      await body(round);
      if ((bystander.samples.get(phase)?.length ?? 0) >= minSamples) return;
    }
  }

  before(async () => {
    node = await embeddedNode({}, { edge: { maxConnections: MAX_CONNECTIONS, limits: { framesPerSecond: FRAMES_PER_SECOND, frameBurst: FRAMES_PER_SECOND } } });
    // a second node with a 1 MiB frame limit for 100,000 levels of nesting, started and warmed up before any measurement
    // (a fresh embedded node's start and first sign-in block this process for seconds: PGlite)
    big = await embeddedNode({}, { edge: { maxFrameBytes: 1024 * 1024 } });
    bigToken = (await devSignIn(big.url, 'deep')).token;
    const { token } = await devSignIn(node.url, 'bystander');
    fuzzToken = (await devSignIn(node.url, 'fuzz')).token;
    bystander = new Bystander(await RawClient.open(node.url, token), 50);
    await bystander.atLeast(50);
  });
  after(async () => {
    await bystander?.stop();
    bystander?.client.close();
    await node?.[Symbol.asyncDispose]();
    await big?.[Symbol.asyncDispose]();
  });

  test('generated frames of every client op (wrong types, extra and prototype keys, huge numbers) get a typed answer with their id', { timeout: 60_000 }, async () => {
    bystander.mark('generated op frames');
    const c = await RawClient.open(node.url, fuzzToken);
    const ops = Object.keys(COMMANDS);
    let invalid = 0;
    const codes = new Map<string, number>();
    await fc.assert(fc.asyncProperty(opFrame(ops), fc.oneof(fc.string({ minLength: 1, maxLength: 64 }), fc.integer()), async ({ op, entries }, id) => {
      const text = objectText([...entries.filter(([k]) => k !== 'id'), ['id', id]]);
      const seen = JSON.parse(text) as Record<string, unknown>; // what the edge parses (a repeated key: the last wins)
      const spec = typeof seen.op === 'string' && Object.hasOwn(COMMANDS, seen.op) ? (COMMANDS as Record<string, CommandSpec>)[seen.op] : undefined;
      const expected = typeof seen.op !== 'string' ? 'EDGE_BAD_FRAME'
        : EDGE_OPS.has(seen.op) ? undefined
          : !spec ? 'EDGE_UNKNOWN_OP'
            : spec.schema.safeParse({ ...seen, by: 'fuzz' }).success ? undefined : 'CHORUS_BAD_MESSAGE';
      const f = await c.send(text);
      assert.notEqual(f.type, 'closed', `the edge closed on ${text.slice(0, 200)}`);
      assert.equal(f.id, id, 'the answer carries the request id');
      if (expected) {
        invalid++;
        assert.equal(typedError(f, id), expected, `${op}: ${text.slice(0, 200)}`);
      } else if (!f.ok) typedError(f, id);
      const k = f.ok ? 'ok' : f.error.code;
      codes.set(k, (codes.get(k) ?? 0) + 1);
    }), { seed: SEED, numRuns: RUNS });
    assert.equal(c.garbage.length, 0);
    console.log(`# generated frames: ${RUNS} (seed ${SEED}), ${invalid} invalid by the schema; answers ${JSON.stringify(Object.fromEntries(codes))}`);
    assert.equal(Object.getOwnPropertyNames(Object.prototype).sort().join(), protoBefore, 'Object.prototype is untouched');
    assert.equal(({} as Record<string, unknown>).by, undefined);
    c.close();
  });

  test('random ops, edge-only ops and prototype names as ops are EDGE_UNKNOWN_OP with their id', { timeout: 30_000 }, async () => {
    const c = await RawClient.open(node.url, fuzzToken);
    const known = new Set([...Object.keys(COMMANDS), ...EDGE_OPS]);
    const named = [...Object.keys(EDGE_COMMANDS), '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'memberRole', 'channelSpec', 'init', 'mirrorMember', 'notify', 'RELEASE', ''];
    for (const [i, op] of named.entries()) assert.equal(typedError(await c.send(objectText([['op', op], ['ws', 'demo'], ['id', i]])), i), 'EDGE_UNKNOWN_OP', op);
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 100 }).filter((s) => !known.has(s)), async (op) => {
      assert.equal(typedError(await c.send(objectText([['op', op], ['id', 'x']])), 'x'), 'EDGE_UNKNOWN_OP');
    }), { seed: SEED, numRuns: 100 });
    c.close();
  });

  test('random bytes: binary frames are EDGE_BAD_FRAME, text frames a typed error or a 1007 close with a reason', { timeout: 30_000 }, async () => {
    bystander.mark('random bytes');
    let c = await RawClient.open(node.url, fuzzToken);
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 2048 }), async (bytes) => {
      assert.equal(typedError(await c.send(Buffer.from(bytes), { binary: true })), 'EDGE_BAD_FRAME');
    }), { seed: SEED, numRuns: 100 });
    let closes = 0;
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }), async (bytes) => {
      if (c.closed) c = await RawClient.open(node.url, fuzzToken);
      const f = await c.send(Buffer.from(bytes), { binary: false });
      const outcome = typedOutcome(f);
      if (f.type === 'closed') {
        closes++;
        assert.equal(outcome, 'close 1007', 'only invalid UTF-8 closes a text frame');
      }
    }), { seed: SEED, numRuns: 100 });
    console.log(`# random text frames: 100, closed 1007 (invalid UTF-8): ${closes}`);
    c.close();
  });

  test('invalid UTF-8 in a text frame: close 1007 with a reason', async () => {
    for (const bytes of [[0xff, 0xfe, 0xfd], [0x7b, 0xc3, 0x28, 0x7d], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
      const c = await RawClient.open(node.url, fuzzToken);
      assert.equal(closeWithReason(await c.send(Buffer.from(bytes), { binary: false })), 1007);
    }
  });

  test('deeply nested and huge JSON within the frame limit: typed errors, no stack overflow', { timeout: 30_000 }, async () => {
    const c = await RawClient.open(node.url, fuzzToken);
    await during('nested and huge JSON', async () => {
      const levels = 32_000; // 64,000 bytes: just under the 64 KiB frame limit
      assert.equal(typedError(await c.send('['.repeat(levels) + ']'.repeat(levels))), 'EDGE_BAD_FRAME');
      const nestedObj = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000);
      assert.equal(typedError(await c.send(`{"op":"post","id":1,"ws":"demo","ch":"c1","clientMsgId":"deep","text":${nestedObj}}`), 1), 'CHORUS_BAD_MESSAGE');
      assert.equal(typedError(await c.send(`{"op":"openDm","id":2,"ws":"demo","clientMsgId":"deep","users":${'['.repeat(30_000)}${']'.repeat(30_000)}}`), 2), 'CHORUS_BAD_MESSAGE');
      assert.equal(typedError(await c.send(`{"op":"__proto__","id":3,"x":${'['.repeat(30_000)}${']'.repeat(30_000)}}`), 3), 'EDGE_UNKNOWN_OP');
      // huge: 60 KB of text, 8,000 DM users, 5,000 junk keys
      assert.equal(typedError(await c.send(JSON.stringify({ op: 'post', id: 4, ws: 'demo', ch: 'c1', clientMsgId: 'huge', text: 'x'.repeat(60_000) })), 4), 'CHORUS_BAD_MESSAGE');
      assert.equal(typedError(await c.send(JSON.stringify({ op: 'openDm', id: 5, ws: 'demo', clientMsgId: 'huge', users: Array.from({ length: 7000 }, (_, i) => `u${i}`) })), 5), 'CHORUS_BAD_MESSAGE');
      const junk = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]));
      assert.equal(typedError(await c.send(JSON.stringify({ ...junk, op: 'history', id: 6, ws: 'demo', ch: 'c1', limit: 1e9 })), 6), 'CHORUS_BAD_MESSAGE');
      assert.equal(typedError(await c.send(JSON.stringify({ op: 'history', id: 7, ws: 'demo', ch: 'c1', before: 2 ** 60 })), 7), 'CHORUS_BAD_MESSAGE');
      assert.equal(typedError(await c.send(JSON.stringify({ op: 'subscribe', id: 8, ws: 'demo'.repeat(100), ch: 'c1' })), 8), 'CHORUS_BAD_MESSAGE');
      // presenceSub: a list, of ids, at most 500 of them
      for (const [i, users] of [undefined, 'ann', [1], ['__proto__'], ['a b'], [['x']], { length: 1 }].entries()) {
        assert.equal(typedError(await c.send(JSON.stringify({ op: 'presenceSub', id: `p${i}`, ws: 'demo', users })), `p${i}`), 'CHORUS_BAD_MESSAGE', JSON.stringify(users));
      }
      assert.equal(typedError(await c.send(JSON.stringify({ op: 'presenceSub', id: 9, ws: 'demo', users: Array.from({ length: 501 }, (_, i) => `u${i}`) })), 9), 'EDGE_TOO_MANY_SUBSCRIPTIONS');
      assert.equal(c.closed, undefined);
    });
    c.close();
  });

  test('100,000 levels of nesting on a node with a 1 MiB frame limit: a typed error, the node stays up', { timeout: 60_000 }, async () => {
    const c = await RawClient.open(big.url, bigToken);
    await during('100k-level nesting', async () => {
      assert.equal(typedError(await c.send('['.repeat(100_000) + ']'.repeat(100_000))), 'EDGE_BAD_FRAME');
      assert.equal(typedError(await c.send('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000))), 'EDGE_BAD_FRAME');
      assert.equal(typedError(await c.send(`{"op":"post","id":"d","ws":"demo","ch":"c1","clientMsgId":"d","text":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`), 'd'), 'CHORUS_BAD_MESSAGE');
    });
    assert.equal((await c.ask({ op: 'ping' })).ok, true);
    assert.ok(await healthy(big.url));
    c.close();
  });

  test('oversized frames: close 1009 with a reason, whether one frame or fragments', { timeout: 30_000 }, async () => {
    await during('oversized frames', async () => {
      for (const size of [64 * 1024 + 1, 1024 * 1024, 16 * 1024 * 1024]) {
        const c = await RawClient.open(node.url, fuzzToken);
        assert.equal(closeWithReason(await c.send('x'.repeat(size))), 1009, `${size} bytes`);
      }
      // a message in fragments, each small, together over the limit
      const c = await RawClient.open(node.url, fuzzToken);
      const before = c.answerCount();
      for (let i = 0; i < 5 && !c.closed; i++) c.ws.send('y'.repeat(20 * 1024), { fin: false });
      c.ws.send('}', { fin: true });
      assert.equal(closeWithReason(await c.nextAnswer(before)), 1009, 'fragmented');
    });
  });

  test('a frame flood on one connection: every frame answered (pong or EDGE_RATE_LIMITED) or, far past the limit, a 1008 close with a reason', { timeout: 60_000 }, async () => {
    // whether the bucket runs dry depends on how fast this busy machine reads the frames (it refills at 2,000/s):
    // both endings are checked; the close itself at the default limits is in limits.test.ts
    await during('frame flood', async (round) => {
      const c = await RawClient.open(node.url, fuzzToken);
      const n = FRAMES_PER_SECOND + 1000;
      for (let i = 0; i < n; i++) c.ws.send(`{"op":"ping","id":${i}}`);
      await c.until(() => c.closed ?? (c.answers.length >= n || undefined), 30_000, 'every answer or the close');
      const answers = c.answers;
      const limited = answers.filter((f) => !f.ok);
      for (const f of limited) assert.equal(typedError(f, f.id), 'EDGE_RATE_LIMITED');
      assert.ok(limited.every((f) => typeof f.error.details?.retryAfterMs === 'number'), 'retryAfterMs on every refusal');
      if (c.closed) {
        assert.equal(c.closed.code, 1008);
        assert.ok(c.closed.reason, 'a reason');
      }
      if (round === 0) console.log(`# frame flood: sent ${n}, answered ok ${answers.length - limited.length}, rate-limited ${limited.length}, ${c.closed ? `then close ${c.closed.code} "${c.closed.reason}"` : 'socket still open'}`);
      c.close();
    });
  });

  test('a connection flood: over the node limit refused 503, over the per-user limit 403, bad tokens 401, garbage HTTP answered; nothing else affected', { timeout: 60_000 }, async () => {
    const attempt = (token: string) => new Promise<{ status: number; body: string; ws?: WebSocket }>((resolve) => {
      const ws = new WebSocket(`${node.url.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(token)}`);
      ws.on('open', () => resolve({ status: 101, body: '', ws }));
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      ws.on('error', (err) => resolve({ status: -1, body: err.message }));
    });
    await during('connection flood', async () => {
      const open: WebSocket[] = [];
      try {
        // one user, 30 sockets: the per-user limit (20) refuses the rest
        const one = node.signer.sign({ sub: 'flood-one', ws: ['demo'] });
        const same = await Promise.all(Array.from({ length: 30 }, () => attempt(one)));
        for (const r of same) if (r.ws) open.push(r.ws);
        assert.equal(same.filter((r) => r.status === 101).length, 20);
        for (const r of same.filter((x) => x.status !== 101)) {
          assert.equal(r.status, 403);
          assert.equal(JSON.parse(r.body).code, 'EDGE_TOO_MANY_CONNECTIONS');
        }
        // many users at once, past the node's limit
        const many = await Promise.all(Array.from({ length: MAX_CONNECTIONS + 50 }, (_, i) => attempt(node.signer.sign({ sub: `flood-${i}`, ws: ['demo'] }))));
        for (const r of many) if (r.ws) open.push(r.ws);
        const refused = many.filter((r) => r.status !== 101);
        assert.ok(refused.length >= 50, `at least 50 refused (got ${refused.length})`);
        for (const r of refused) {
          assert.equal(r.status, 503);
          const body = JSON.parse(r.body);
          assert.equal(body.code, 'EDGE_TOO_MANY_CONNECTIONS');
          assert.ok(body.message);
        }
        assert.ok(node.edge.connectionCount <= MAX_CONNECTIONS);
        // bad tokens and garbage
        const bad = await Promise.all(Array.from({ length: 100 }, (_, i) => attempt(i % 2 ? `forged.${i}` : 'x')));
        for (const r of bad) {
          assert.equal(r.status, 401);
          assert.match(JSON.parse(r.body).code, /^AUTH_/);
        }
        const garbage = await Promise.all(Array.from({ length: 50 }, (_, i) => new Promise<string>((resolve) => {
          const s = connect(node.port, '127.0.0.1');
          let got = '';
          s.on('data', (d) => { got += d; });
          s.on('close', () => resolve(got));
          s.on('error', () => resolve(got));
          s.write(i % 2 ? `\x00\xff garbage ${i}\r\n\r\n` : `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`);
          s.setTimeout(5000, () => s.destroy());
        })));
        for (const g of garbage) assert.match(g, /^HTTP\/1\.1 (400|401)/, `answered: ${g.slice(0, 40)}`);
      } finally {
        for (const ws of open) ws.terminate();
      }
      await waitFor(() => node.edge.connectionCount <= 2, { what: 'flood connections closed', timeoutMs: 20_000 });
    }, 20, 2);
  });

  test('afterwards: /healthz is OK, the bystander kept its latency, Object.prototype is untouched', { timeout: 60_000 }, async () => {
    bystander.mark('after');
    await bystander.atLeast(20);
    assert.ok(await healthy(node.url));
    assert.equal(Object.getOwnPropertyNames(Object.prototype).sort().join(), protoBefore);
    const report = bystander.report();
    console.log(`# bystander ping round-trip by phase (ms), bounds: p50 < ${BYSTANDER_P50_BOUND_MS}, p99 < ${BYSTANDER_P99_BOUND_MS}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    for (const [phase, s] of Object.entries(report)) console.log(`#   ${phase.padEnd(22)} n=${s.n} p50=${s.p50} p99=${s.p99} max=${s.max}`);
    assert.equal(bystander.errors, 0, 'every bystander ping was answered');
    assert.equal(bystander.client.closed, undefined, 'the bystander was never disconnected');
    for (const [phase, s] of Object.entries(report)) {
      assert.ok(s.n >= 1, `${phase}: no bystander round-trip measured`);
      assert.ok(s.p50 < BYSTANDER_P50_BOUND_MS, `${phase}: bystander p50 ${s.p50} ms over the bound ${BYSTANDER_P50_BOUND_MS} ms`);
      assert.ok(s.p99 < BYSTANDER_P99_BOUND_MS, `${phase}: bystander p99 ${s.p99} ms over the bound ${BYSTANDER_P99_BOUND_MS} ms`);
    }
  });
});
