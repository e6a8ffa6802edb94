/**
 * The cache conformance suite: the shared level (CacheStore) and the
 * two-level TieredCache on top of it, written once and run on the memory
 * twin and on a real redis-server. Two "nodes" (a, b) share one backend.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryMetrics } from '../../adapters/memory/memory-metrics.ts';
import type { CacheStore } from '../../cluster/query/cache-store.ts';
import { CACHE_TYPES, TieredCache, type Versioned } from '../../cluster/query/tiered-cache.ts';
import { waitFor } from '../helpers/ports.ts';

/** What a runner hands the suite. `outage` (optional) makes the backend unreachable and brings it back. */
export interface CacheFixture {
  a: CacheStore;
  b: CacheStore;
  close(): Promise<void>;
  outage?: { down(): Promise<void>; up(): Promise<void> };
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null) => (b ? new TextDecoder().decode(b) : null);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A loader that counts its calls and answers `value` at `atPos` (after `delayMs`). */
function loader<T>(value: T, atPos: number, delayMs = 0) {
  const l = {
    calls: 0,
    value,
    atPos,
    load: async (): Promise<Versioned<T> | null> => {
      l.calls++;
      if (delayMs) await sleep(delayMs);
      return { value: l.value, atPos: l.atPos };
    },
  };
  return l;
}

/** Registers the suite under `describe(name)`. */
export function describeCache(name: string, make: () => Promise<CacheFixture>): void {
  describe(`Cache conformance: ${name}`, () => {
    let fx: CacheFixture;
    const run = `r${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
    let n = 0;
    const key = () => `${run}k${++n}`;
    const caches: TieredCache[] = [];
    const tiered = async (l2: CacheStore, opts: ConstructorParameters<typeof TieredCache>[0] = {}) => {
      const c = await new TieredCache({ l2, ...opts }).start();
      caches.push(c);
      return c;
    };

    before(async () => {
      fx = await make();
    });
    after(async () => {
      for (const c of caches) await c.close();
      await fx?.close();
    });

    test('L2: set and get bytes; a missing key is null', async () => {
      const k = key();
      assert.equal(await fx.a.get(k), null);
      await fx.a.set(k, bytes('héllo\u0000bin'), 60_000, []);
      assert.equal(text(await fx.b.get(k)), 'héllo\u0000bin');
    });

    test('L2: values expire after their TTL', async () => {
      const k = key();
      await fx.a.set(k, bytes('x'), 80, []);
      assert.equal(text(await fx.a.get(k)), 'x');
      await waitFor(async () => (await fx.a.get(k)) === null, { timeoutMs: 2000, what: 'expiry' });
    });

    test('L2: invalidating a tag deletes its keys and only them', async () => {
      const [k1, k2, k3, tag, other] = [key(), key(), key(), key(), key()];
      await fx.a.set(k1, bytes('1'), 60_000, [tag]);
      await fx.a.set(k2, bytes('2'), 60_000, [tag, other]);
      await fx.a.set(k3, bytes('3'), 60_000, [other]);
      await fx.b.invalidateTags([tag]);
      assert.equal(await fx.a.get(k1), null);
      assert.equal(await fx.a.get(k2), null);
      assert.equal(text(await fx.a.get(k3)), '3');
    });

    test('L2: a published message reaches every subscriber', async () => {
      const got: string[] = [];
      const sa = await fx.a.subscribe((m) => got.push(`a:${text(m)}`));
      const sb = await fx.b.subscribe((m) => got.push(`b:${text(m)}`));
      try {
        await sleep(50); // a subscription settles
        await fx.a.publish(bytes('inv-1'));
        await waitFor(() => got.length === 2, { timeoutMs: 2000, what: 'delivery' });
        assert.deepEqual(got.sort(), ['a:inv-1', 'b:inv-1']);
      } finally {
        await sa.dispose();
        await sb.dispose();
      }
    });

    test('tiered: a miss loads once; then L1; another node gets it from L2 and fills its own L1', async () => {
      const metrics = new MemoryMetrics();
      const A = await tiered(fx.a, { metrics });
      const B = await tiered(fx.b, { metrics: new MemoryMetrics() });
      const k = key();
      const l = loader({ name: 'Ada' }, 3);
      assert.deepEqual(await A.get('user_profile', k, 0, ['user.w.ada'], l.load), { value: { name: 'Ada' }, atPos: 3 });
      assert.deepEqual(await A.get('user_profile', k, 0, ['user.w.ada'], l.load), { value: { name: 'Ada' }, atPos: 3 });
      assert.equal(l.calls, 1);
      await waitFor(async () => (await fx.b.get(`user_profile:${k}`)) !== null, { timeoutMs: 2000, what: 'L2 filled' });
      const lb = loader({ name: 'other' }, 3);
      assert.deepEqual((await B.get('user_profile', k, 0, ['user.w.ada'], lb.load))?.value, { name: 'Ada' });
      assert.deepEqual((await B.get('user_profile', k, 0, ['user.w.ada'], lb.load))?.value, { name: 'Ada' });
      assert.equal(lb.calls, 0);
      assert.deepEqual(B.hitRates().user_profile, { hitRate: 1, lookups: 2, ttlMs: 3600_000 });
      assert.equal(metrics.value('chorus_cache_requests_total', { type: 'user_profile', result: 'miss' }), 1);
      assert.equal(metrics.value('chorus_cache_requests_total', { type: 'user_profile', result: 'hit_l1' }), 1);
      assert.equal(metrics.value('cache_hit_rate', { type: 'user_profile' }), 0.5);
    });

    test('tiered: concurrent misses of one key share one load (single flight)', async () => {
      const A = await tiered(fx.a);
      const k = key();
      const l = loader([1, 2, 3], 9, 30);
      const got = await Promise.all(Array.from({ length: 25 }, () => A.get('channel_members', k, 0, ['channel.w.c'], l.load)));
      assert.equal(l.calls, 1);
      for (const g of got) assert.deepEqual(g, { value: [1, 2, 3], atPos: 9 });
    });

    test('tiered: a write on one node invalidates the others (L1 and L2)', async () => {
      const A = await tiered(fx.a);
      const B = await tiered(fx.b);
      const k = key();
      const tag = `channel.w.${k}`;
      const l = loader('v1', 1);
      await A.get('recent_messages', k, 0, [tag], l.load);
      await B.get('recent_messages', k, 0, [tag], l.load);
      assert.equal(l.calls, 1, 'B read it from L2');
      l.value = 'v2';
      l.atPos = 2;
      await A.invalidate(new Map([[tag, 2]]));
      assert.equal((await A.get('recent_messages', k, 0, [tag], l.load))?.value, 'v2', 'A: its own L1 at once');
      await waitFor(async () => (await B.get('recent_messages', k, 0, [tag], l.load))?.value === 'v2', { timeoutMs: 3000, what: 'B invalidated' });
    });

    test('tiered: an entry older than the caller needs is a miss (read-your-writes)', async () => {
      const A = await tiered(fx.a);
      const k = key();
      const l = loader('old', 5);
      await A.get('message_pages', k, 0, ['channel.w.x'], l.load);
      l.value = 'new';
      l.atPos = 6;
      assert.equal((await A.get('message_pages', k, 5, ['channel.w.x'], l.load))?.value, 'old');
      assert.equal((await A.get('message_pages', k, 6, ['channel.w.x'], l.load))?.value, 'new');
      assert.equal(l.calls, 2);
    });

    test('tiered: a load that raced with an invalidation is not cached', async () => {
      const A = await tiered(fx.a);
      const k = key();
      const tag = `user.w.${k}`;
      const l = loader('stale', 3, 40);
      const p = A.get('user_profile', k, 0, [tag], l.load);
      await sleep(5);
      await A.invalidate(new Map([[tag, 4]]));
      assert.equal((await p)?.value, 'stale', 'the caller still gets its answer');
      l.value = 'fresh';
      l.atPos = 4;
      assert.equal((await A.get('user_profile', k, 0, [tag], l.load))?.value, 'fresh');
      assert.equal(l.calls, 2);
    });

    test("tiered: the seed's per-type TTLs; an entry expires after its type's TTL", async () => {
      const A = await tiered(fx.a, { types: { recent_messages: 60 } });
      assert.equal(A.ttlOf('user_profile'), 3600_000);
      assert.equal(A.ttlOf('channel_members'), 1800_000);
      assert.equal(A.ttlOf('file_metadata'), 7200_000);
      assert.equal(A.ttlOf('recent_messages'), 60);
      assert.equal(CACHE_TYPES.recent_messages, 300_000);
      const k = key();
      const l = loader('x', 1);
      await A.get('recent_messages', k, 0, ['channel.w.t'], l.load);
      await sleep(150);
      await A.get('recent_messages', k, 0, ['channel.w.t'], l.load);
      assert.equal(l.calls, 2, 'expired in L1 and L2');
    });

    test("tiered: the seed's adaptive TTL rule (x1.5 under 0.7, x0.8 over 0.95, within 1/4..4x)", async () => {
      const A = await tiered(fx.a, { adaptiveTtl: true, adaptiveEveryMs: 3_600_000 });
      const base = A.ttlOf('user_profile');
      for (let i = 0; i < 100; i++) await A.get('user_profile', `${key()}`, 0, [], async () => ({ value: i, atPos: 1 }));
      A.adapt();
      assert.equal(A.ttlOf('user_profile'), base * 1.5, 'all misses: longer');
      const k = key();
      for (let i = 0; i < 200; i++) await A.get('user_profile', k, 0, [], async () => ({ value: 1, atPos: 1 }));
      A.adapt();
      assert.equal(A.ttlOf('user_profile'), base * 1.5 * 0.8, 'all hits: shorter');
      for (let r = 0; r < 10; r++) {
        for (let i = 0; i < 100; i++) await A.get('user_profile', `${key()}`, 0, [], async () => ({ value: i, atPos: 1 }));
        A.adapt();
      }
      assert.equal(A.ttlOf('user_profile'), base * 4, 'capped at 4x');
      A.adapt();
      assert.equal(A.ttlOf('user_profile'), base * 4, 'too few lookups: unchanged');
    });

    test('tiered: the backend down: served from L1 and the store, metric and recovery by itself (G11)', { skip: false }, async (t) => {
      if (!fx.outage) return t.skip('no outage control for this backend');
      const metrics = new MemoryMetrics();
      const A = await tiered(fx.a, { metrics, l2TimeoutMs: 200 });
      const warm = key();
      const l = loader('warm', 1);
      await A.get('channel_members', warm, 0, ['channel.w.down'], l.load);
      assert.equal(metrics.value('chorus_cache_l2_up'), 1);
      await fx.outage.down();
      try {
        await waitFor(() => !fx.a.up, { timeoutMs: 5000, what: 'down detected' });
        assert.equal(metrics.value('chorus_cache_l2_up'), 0);
        assert.equal((await A.get('channel_members', warm, 0, ['channel.w.down'], l.load))?.value, 'warm', 'L1 still serves');
        assert.equal(l.calls, 1);
        const cold = loader('cold', 1);
        const t0 = Date.now();
        assert.equal((await A.get('channel_members', key(), 0, ['channel.w.down'], cold.load))?.value, 'cold', 'the store serves a miss');
        assert.ok(Date.now() - t0 < 150, 'without waiting on the dead backend');
        await A.invalidate(new Map([['channel.w.down', 2]]));
        l.value = 'after';
        l.atPos = 2;
        assert.equal((await A.get('channel_members', warm, 0, ['channel.w.down'], l.load))?.value, 'after', 'local invalidation still works');
      } finally {
        await fx.outage.up();
      }
      await waitFor(() => fx.a.up && metrics.value('chorus_cache_l2_up') === 1, { timeoutMs: 15_000, what: 'recovered' });
      const k = key();
      const l2 = loader('back', 1);
      await A.get('user_profile', k, 0, [], l2.load);
      await waitFor(async () => (await fx.b.get(`user_profile:${k}`)) !== null, { timeoutMs: 3000, what: 'L2 used again' });
    });
  });
}
