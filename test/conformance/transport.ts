import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Disposable, InboundHandler, Transport } from '../../runtime/transport/transport.ts';
import { waitFor } from '../helpers/ports.ts';

/** Two clients of the same network/broker, and a way to release them. `close` must be safe after either client was closed. */
export interface TransportPair {
  a: Transport;
  b: Transport;
  close(): Promise<void>;
}

/** Known gaps of one implementation: test title -> reason. Such tests run as TODO (reported, not failing the run). */
export interface ConformanceGaps {
  todo?: Readonly<Record<string, string>>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);
const text = (u: Uint8Array) => dec.decode(u);

let seq = 0;
/** Unique node ids and subject roots per test, so tests never see each other's traffic on a shared server. */
const uid = (p: string) => `${p}${process.pid}x${++seq}`;

/** Replies `echo:<payload>` to requests, records tells. */
function echo(log: string[] = []): InboundHandler {
  return (data, reply) => {
    const s = text(data);
    log.push(s);
    reply?.(bytes(`echo:${s}`));
  };
}

function codeOf(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}

/**
 * The Transport port's contract, run unchanged against every implementation.
 * `make` returns two fresh clients (think: two node processes) of one network.
 *
 * Ordering without sleeps: a request from X to Y travels after everything X
 * sent before it (NATS keeps one client's messages in order, and so does the
 * memory network), so `await x.request(y)` is a barrier: X's earlier
 * subscribes/unsubscribes are in effect at the broker, and X's earlier
 * publishes have reached Y's handlers.
 */
export function describeTransport(name: string, make: () => Promise<TransportPair>, gaps: ConformanceGaps = {}): void {
  const it = (title: string, fn: (p: TransportPair) => Promise<void>) => {
    const todo = gaps.todo?.[title];
    test(title, todo ? { todo } : {}, async () => {
      // implementations may unref their timers (the memory twin's ask timeout is); keep the loop alive meanwhile
      const keepAlive = setInterval(() => {}, 1000);
      const p = await make();
      try {
        await fn(p);
      } finally {
        clearInterval(keepAlive);
        await p.close();
      }
    });
  };

  /** Both clients listen; returns the ids and logs. */
  async function pair(p: TransportPair) {
    const A = uid('a');
    const B = uid('b');
    const aLog: string[] = [];
    const bLog: string[] = [];
    await p.a.listen(A, echo(aLog));
    await p.b.listen(B, echo(bLog));
    return { A, B, aLog, bLog };
  }

  describe(`Transport conformance: ${name}`, () => {
    it('request/reply works across two clients, both ways, with concurrent requests kept apart', async (p) => {
      const { A, B } = await pair(p);
      assert.equal(text(await p.a.request(B, bytes('hi'), 5000)), 'echo:hi');
      assert.equal(text(await p.b.request(A, bytes('yo'), 5000)), 'echo:yo');
      const many = await Promise.all(Array.from({ length: 25 }, (_, i) => p.a.request(B, bytes(`m${i}`), 5000)));
      assert.deepEqual(many.map(text), Array.from({ length: 25 }, (_, i) => `echo:m${i}`));
    });

    it('bytes arrive intact: binary, empty request, empty reply', async (p) => {
      const B = uid('b');
      await p.b.listen(B, (data, reply) => reply?.(data.length === 1 && data[0] === 0 ? new Uint8Array(0) : data));
      const all = Uint8Array.from({ length: 4096 }, (_, i) => i % 256);
      assert.deepEqual([...(await p.a.request(B, all, 5000))], [...all]);
      assert.equal((await p.a.request(B, new Uint8Array(0), 5000)).length, 0);
      assert.equal((await p.a.request(B, Uint8Array.of(0), 5000)).length, 0, 'an empty reply is a reply, not "no responders"');
    });

    it('tell is delivered, in order, with no reply function', async (p) => {
      const B = uid('b');
      const got: string[] = [];
      let replies = 0;
      await p.b.listen(B, (data, reply) => {
        got.push(text(data));
        if (reply) replies++;
      });
      for (let i = 0; i < 20; i++) p.a.send(B, bytes(`t${i}`));
      await waitFor(() => got.length === 20, { what: 'tells' });
      assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => `t${i}`));
      assert.equal(replies, 0);
    });

    it('tell to a node nobody listens as is silently lost', async (p) => {
      const { B, bLog } = await pair(p);
      p.a.send(uid('nobody'), bytes('lost'));
      await p.a.request(B, bytes('barrier'), 5000);
      assert.deepEqual(bLog, ['barrier']);
    });

    it('a request to a node nobody listens as fails fast with CHORUS_NODE_UNAVAILABLE', async (p) => {
      await pair(p);
      const t0 = Date.now();
      await assert.rejects(p.a.request(uid('nobody'), bytes('x'), 5000), (err) => codeOf(err) === 'CHORUS_NODE_UNAVAILABLE');
      assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms, the timeout was 5000`);
    });

    it('a request nobody answers fails with CHORUS_ASK_TIMEOUT after the timeout', async (p) => {
      const B = uid('b');
      await p.b.listen(B, () => {});
      const t0 = Date.now();
      await assert.rejects(p.a.request(B, bytes('x'), 200), (err) => codeOf(err) === 'CHORUS_ASK_TIMEOUT');
      const took = Date.now() - t0;
      assert.ok(took >= 150 && took < 2000, `took ${took} ms for a 200 ms timeout`);
    });

    it('one listener per node id: a second listen is refused until the first is disposed', async (p) => {
      const { A } = await pair(p);
      const X = uid('x');
      const first = await p.a.listen(X, echo());
      await assert.rejects(p.b.listen(X, echo()));
      await assert.rejects(p.a.listen(X, echo()));
      await first.dispose();
      await p.a.request(A, bytes('barrier'), 5000);
      const second = await p.b.listen(X, echo());
      assert.equal(text(await p.a.request(X, bytes('x'), 5000)), 'echo:x');
      await second.dispose();
    });

    it('wildcard subscriptions: * matches one token, > one or more trailing tokens', async (p) => {
      const { A, B } = await pair(p);
      const root = uid('r');
      const star: string[] = [];
      const gt: string[] = [];
      const exact: string[] = [];
      p.b.subscribe(`${root}.*.msg`, (d, s) => star.push(`${s}=${text(d)}`));
      p.b.subscribe(`${root}.>`, (d, s) => gt.push(`${s}=${text(d)}`));
      p.b.subscribe(`${root}.c1.msg`, (d, s) => exact.push(`${s}=${text(d)}`));
      await p.b.request(A, bytes('barrier'), 5000);
      p.a.publish(`${root}.c1.msg`, bytes('1'));
      p.a.publish(`${root}.c1.typing`, bytes('2'));
      p.a.publish(`${root}.c1.x.msg`, bytes('3'));
      p.a.publish(`${root}`, bytes('4'));
      p.a.publish(`${root}x.c1.msg`, bytes('5'));
      await p.a.request(B, bytes('barrier'), 5000);
      await waitFor(() => gt.length >= 3, { what: '> deliveries' });
      assert.deepEqual(star, [`${root}.c1.msg=1`]);
      assert.deepEqual(gt, [`${root}.c1.msg=1`, `${root}.c1.typing=2`, `${root}.c1.x.msg=3`]);
      assert.deepEqual(exact, [`${root}.c1.msg=1`]);
    });

    it('publish reaches every subscriber, on both clients, including the publisher itself', async (p) => {
      const { A, B } = await pair(p);
      const subj = `${uid('r')}.fan`;
      const onA: string[] = [];
      const onB: string[] = [];
      p.a.subscribe(subj, (d) => onA.push(text(d)));
      p.b.subscribe(subj, (d) => onB.push(text(d)));
      await p.b.request(A, bytes('barrier'), 5000);
      p.a.publish(subj, bytes('hello'));
      await p.a.request(B, bytes('barrier'), 5000);
      await waitFor(() => onA.length === 1 && onB.length === 1, { what: 'fan-out' });
      assert.deepEqual([onA, onB], [['hello'], ['hello']]);
    });

    it('dispose stops delivery: subscriptions and listeners', async (p) => {
      const { A, B } = await pair(p);
      const subj = `${uid('r')}.d`;
      const got: string[] = [];
      const sub: Disposable = p.b.subscribe(subj, (d) => got.push(text(d)));
      await p.b.request(A, bytes('barrier'), 5000);
      p.a.publish(subj, bytes('one'));
      await waitFor(() => got.length === 1, { what: 'first delivery' });
      await sub.dispose();
      await sub.dispose();
      await p.b.request(A, bytes('barrier'), 5000);
      p.a.publish(subj, bytes('two'));
      await p.a.request(B, bytes('barrier'), 5000);
      assert.deepEqual(got, ['one']);

      const C = uid('c');
      const cLog: string[] = [];
      const listener = await p.b.listen(C, echo(cLog));
      assert.equal(text(await p.a.request(C, bytes('x'), 5000)), 'echo:x');
      await listener.dispose();
      await p.b.request(A, bytes('barrier'), 5000);
      await assert.rejects(p.a.request(C, bytes('y'), 5000), (err) => codeOf(err) === 'CHORUS_NODE_UNAVAILABLE');
      p.a.send(C, bytes('z'));
      await p.a.request(B, bytes('barrier'), 5000);
      assert.deepEqual(cLog, ['x']);
    });

    it('after close, request rejects with CHORUS_NODE_UNAVAILABLE and send/publish are dropped without throwing', async (p) => {
      const { B, bLog } = await pair(p);
      await p.a.close();
      await p.a.close();
      await assert.rejects(p.a.request(B, bytes('x'), 1000), (err) => codeOf(err) === 'CHORUS_NODE_UNAVAILABLE');
      p.a.send(B, bytes('lost'));
      p.a.publish(`${uid('r')}.x`, bytes('lost'));
      assert.deepEqual(bLog, []);
    });

    it("a closed client's listeners are gone: requests to them get CHORUS_NODE_UNAVAILABLE", async (p) => {
      const { B } = await pair(p);
      await p.b.close();
      await waitFor(async () => {
        try {
          await p.a.request(B, bytes('x'), 1000);
          return false;
        } catch (err) {
          return codeOf(err) === 'CHORUS_NODE_UNAVAILABLE';
        }
      }, { timeoutMs: 5000, what: 'the closed listener to go away' });
    });

    it('close rejects pending requests at once', async (p) => {
      const B = uid('b');
      await p.b.listen(B, () => {});
      const pending = p.a.request(B, bytes('x'), 2000);
      const outcome = pending.then(() => 'resolved', (err) => codeOf(err));
      await new Promise((r) => setImmediate(r));
      const t0 = Date.now();
      await p.a.close();
      assert.equal(await outcome, 'CHORUS_NODE_UNAVAILABLE');
      assert.ok(Date.now() - t0 < 1000, `the pending request took ${Date.now() - t0} ms to reject`);
    });

    it('after close, listen and subscribe are refused', async (p) => {
      await p.a.close();
      await assert.rejects(p.a.listen(uid('late'), echo()), (err) => codeOf(err) === 'CHORUS_NODE_UNAVAILABLE');
      assert.throws(() => p.a.subscribe(`${uid('r')}.x`, () => {}), (err) => codeOf(err) === 'CHORUS_NODE_UNAVAILABLE');
    });
  });
}
