import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KvEvent, KvStore } from '../../runtime/kv/kv.ts';
import { waitFor } from '../helpers/ports.ts';
import type { ConformanceGaps } from './transport.ts';

/** A KV store client and a way to release it. */
export interface KvFixture {
  kv: KvStore;
  close(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);
const text = (u: Uint8Array | undefined) => (u === undefined ? undefined : dec.decode(u));

let seq = 0;
/** A fresh bucket name per test, so tests never share state on one server. */
const bucketName = () => `conf_${process.pid}_${++seq}`;

function codeOf(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}

/** Events as compact strings: `put key=value` / `del key`. */
function show(e: KvEvent): string {
  return e.op === 'put' ? `put ${e.key}=${text(e.value)}` : `del ${e.key}`;
}

function collect(events: KvEvent[]): (e: KvEvent) => void {
  return (e) => events.push(e);
}

/**
 * The KvStore port's contract, run unchanged against every implementation.
 * TTL expiry produces no watch event on NATS 2.9, nor in the memory twin;
 * nothing here asserts on one.
 */
export function describeKv(name: string, make: () => Promise<KvFixture>, gaps: ConformanceGaps = {}): void {
  const it = (title: string, fn: (kv: KvStore) => Promise<void>) => {
    const todo = gaps.todo?.[title];
    test(title, todo ? { todo } : {}, async () => {
      const f = await make();
      try {
        await fn(f.kv);
      } finally {
        await f.close();
      }
    });
  };

  describe(`KV conformance: ${name}`, () => {
    it('get of a missing key is null; put then get returns the value and its revision', async (kv) => {
      const b = await kv.bucket(bucketName());
      assert.equal(await b.get('nope'), null);
      const r1 = await b.put('k', bytes('v1'));
      const e = await b.get('k');
      assert.deepEqual(e && { key: e.key, value: text(e.value), revision: e.revision }, { key: 'k', value: 'v1', revision: r1 });
      const r2 = await b.put('k', bytes('v2'));
      assert.ok(r2 > r1);
      assert.equal(text((await b.get('k'))?.value), 'v2');
    });

    it('revisions strictly increase across the keys of a bucket', async (kv) => {
      const b = await kv.bucket(bucketName());
      const revs = [await b.put('a', bytes('1')), await b.put('b', bytes('2')), await b.create('c', bytes('3')), await b.put('a', bytes('4'))];
      revs.push(await b.update('b', bytes('5'), revs[1]!));
      for (let i = 1; i < revs.length; i++) assert.ok(revs[i]! > revs[i - 1]!, `revisions ${revs.join(',')}`);
    });

    it('buckets are separate, and reopening a bucket sees its data', async (kv) => {
      const n1 = bucketName();
      const b1 = await kv.bucket(n1);
      const b2 = await kv.bucket(bucketName());
      await b1.put('k', bytes('one'));
      assert.equal(await b2.get('k'), null);
      const again = await kv.bucket(n1);
      assert.equal(again.name, n1);
      assert.equal(text((await again.get('k'))?.value), 'one');
    });

    it('create writes a new key and fails with CHORUS_KV_CONFLICT when it exists; after a delete it works again', async (kv) => {
      const b = await kv.bucket(bucketName());
      const r = await b.create('lease', bytes('n1'));
      assert.equal((await b.get('lease'))?.revision, r);
      await assert.rejects(b.create('lease', bytes('n2')), (err) => codeOf(err) === 'CHORUS_KV_CONFLICT');
      assert.equal(text((await b.get('lease'))?.value), 'n1');
      await b.delete('lease');
      const r2 = await b.create('lease', bytes('n2'));
      assert.ok(r2 > r);
      assert.equal(text((await b.get('lease'))?.value), 'n2');
    });

    it('update with the current revision succeeds (CAS); a stale or missing one fails with CHORUS_KV_CONFLICT', async (kv) => {
      const b = await kv.bucket(bucketName());
      const r1 = await b.put('table', bytes('epoch1'));
      const r2 = await b.update('table', bytes('epoch2'), r1);
      assert.ok(r2 > r1);
      await assert.rejects(b.update('table', bytes('stale'), r1), (err) => codeOf(err) === 'CHORUS_KV_CONFLICT');
      assert.equal(text((await b.get('table'))?.value), 'epoch2');
      await assert.rejects(b.update('missing', bytes('x'), r2), (err) => codeOf(err) === 'CHORUS_KV_CONFLICT');
      await assert.rejects(b.update('table', bytes('x'), 0), (err) => codeOf(err) === 'CHORUS_KV_CONFLICT');
      await b.delete('table');
      await assert.rejects(b.update('table', bytes('x'), r2), (err) => codeOf(err) === 'CHORUS_KV_CONFLICT');
    });

    it('two concurrent updates from the same revision: exactly one wins', async (kv) => {
      const b = await kv.bucket(bucketName());
      const r = await b.put('leader', bytes('none'));
      const results = await Promise.allSettled([b.update('leader', bytes('n1'), r), b.update('leader', bytes('n2'), r)]);
      assert.equal(results.filter((x) => x.status === 'fulfilled').length, 1);
      const lost = results.find((x) => x.status === 'rejected') as PromiseRejectedResult;
      assert.equal(codeOf(lost.reason), 'CHORUS_KV_CONFLICT');
    });

    it('delete removes the key from get and keys; deleting a missing key resolves', async (kv) => {
      const b = await kv.bucket(bucketName());
      await b.put('a', bytes('1'));
      await b.put('b', bytes('2'));
      await b.delete('a');
      assert.equal(await b.get('a'), null);
      assert.deepEqual((await b.keys()).sort(), ['b']);
      await b.delete('never-was');
      await b.delete('a');
      assert.equal(await b.get('a'), null);
    });

    it('keys lists the live keys, dotted keys included', async (kv) => {
      const b = await kv.bucket(bucketName());
      assert.deepEqual(await b.keys(), []);
      await b.put('members.n1', bytes('1'));
      await b.put('members.n2', bytes('2'));
      await b.put('placement', bytes('3'));
      await b.put('a-b_c=d', bytes('4'));
      assert.deepEqual((await b.keys()).sort(), ['a-b_c=d', 'members.n1', 'members.n2', 'placement']);
      assert.equal(text((await b.get('members.n2'))?.value), '2');
    });

    it('watch delivers the current values first, then puts and deletes in order', async (kv) => {
      const b = await kv.bucket(bucketName());
      const r1 = await b.put('k1', bytes('a'));
      const r2 = await b.put('k2', bytes('b'));
      await b.put('gone', bytes('x'));
      await b.delete('gone');
      const events: KvEvent[] = [];
      const w = await b.watch('>', collect(events));
      try {
        await waitFor(() => events.length >= 2, { what: 'initial values' });
        assert.deepEqual(events.map(show).sort(), ['put k1=a', 'put k2=b']);
        assert.deepEqual(events.map((e) => e.revision).sort((x, y) => x - y), [r1, r2]);
        await b.put('k1', bytes('a2'));
        await b.delete('k2');
        await b.put('x.y', bytes('c'));
        await b.create('k2', bytes('b2'));
        await waitFor(() => events.length >= 6, { what: 'changes' });
        assert.deepEqual(events.slice(2).map(show), ['put k1=a2', 'del k2', 'put x.y=c', 'put k2=b2']);
        const revs = events.slice(2).map((e) => e.revision);
        for (let i = 1; i < revs.length; i++) assert.ok(revs[i]! > revs[i - 1]!);
        assert.equal(events[3]!.value, undefined);
      } finally {
        await w.dispose();
      }
    });

    it('watch with a filter sees only matching keys (* and >)', async (kv) => {
      const b = await kv.bucket(bucketName());
      await b.put('members.n1', bytes('1'));
      await b.put('other', bytes('x'));
      const star: KvEvent[] = [];
      const gt: KvEvent[] = [];
      const exact: KvEvent[] = [];
      const ws = [await b.watch('members.*', collect(star)), await b.watch('members.>', collect(gt)), await b.watch('other', collect(exact))];
      try {
        await waitFor(() => star.length >= 1 && gt.length >= 1 && exact.length >= 1, { what: 'initial values' });
        await b.put('members.n2', bytes('2'));
        await b.put('members.n2.extra', bytes('3'));
        await b.put('membersx', bytes('4'));
        await b.put('other', bytes('y'));
        await waitFor(() => star.length >= 2 && gt.length >= 3 && exact.length >= 2, { what: 'filtered changes' });
        assert.deepEqual(star.map(show), ['put members.n1=1', 'put members.n2=2']);
        assert.deepEqual(gt.map(show), ['put members.n1=1', 'put members.n2=2', 'put members.n2.extra=3']);
        assert.deepEqual(exact.map(show), ['put other=x', 'put other=y']);
      } finally {
        for (const w of ws) await w.dispose();
      }
    });

    it('a watch on an empty bucket gets the first put; a disposed watch gets nothing more', async (kv) => {
      const b = await kv.bucket(bucketName());
      const first: KvEvent[] = [];
      const control: KvEvent[] = [];
      const w = await b.watch('>', collect(first));
      await b.put('k', bytes('1'));
      await waitFor(() => first.length === 1, { what: 'first put' });
      await w.dispose();
      const c = await b.watch('>', collect(control));
      try {
        await b.put('k', bytes('2'));
        await b.put('j', bytes('3'));
        await waitFor(() => control.length >= 2 && control.some((e) => e.key === 'j'), { what: 'the control watcher' });
        assert.deepEqual(first.map(show), ['put k=1']);
      } finally {
        await c.dispose();
      }
    });

    it('TTL: an entry expires ttl after its last write, a rewrite keeps it alive, and its key can be created again', async (kv) => {
      const b = await kv.bucket(bucketName(), { ttlMs: 1500 });
      await b.put('hb.n1', bytes('1'));
      await b.put('hb.n2', bytes('1'));
      assert.notEqual(await b.get('hb.n1'), null);
      // sleeps are the subject here: time is what expires the entries
      await sleep(750);
      await b.put('hb.n2', bytes('2'));
      await sleep(1050);
      // n1 was written 1800 ms ago, n2 rewritten 1050 ms ago
      assert.notEqual(await b.get('hb.n2'), null, 'a rewritten entry lives ttl after its last write');
      await waitFor(async () => (await b.get('hb.n1')) === null, { timeoutMs: 5000, what: 'hb.n1 to expire' });
      assert.deepEqual(await b.keys(), ['hb.n2']);
      await waitFor(async () => (await b.get('hb.n2')) === null, { timeoutMs: 5000, what: 'hb.n2 to expire' });
      assert.deepEqual(await b.keys(), []);
      await b.create('hb.n1', bytes('again'));
      assert.equal(text((await b.get('hb.n1'))?.value), 'again');
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
