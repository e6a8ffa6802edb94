import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresEventLog, PostgresSnapshotStore } from '../../../adapters/postgres/pg-event-log.ts';
import { pgliteClient } from '../../../adapters/postgres/pglite-client.ts';
import { MIGRATIONS, migrate, SchemaTooNewError } from '../../../adapters/postgres/migrations.ts';
import type { SqlClient } from '../../../adapters/postgres/sql-client.ts';
import { waitFor } from '../../helpers/ports.ts';
import { describeEventLog, reopenableFixture } from '../../conformance/event-log.ts';

/** `client` with every statement (inside transactions too) shown to `seen` first. */
function tapped(client: SqlClient, seen: (text: string) => void): SqlClient {
  const tap = (q: SqlClient['query']): SqlClient['query'] => (text, params) => { seen(text); return q(text, params); };
  return { ...client, query: tap(client.query), transaction: (fn) => client.transaction((tx) => fn({ query: tap(tx.query) })), close: client.close, dialect: client.dialect };
}

describeEventLog('PGlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-pglite-'));
  return reopenableFixture(async () => {
    const client = await pgliteClient(dir);
    const log = new PostgresEventLog(client, { tailPollMs: 20 });
    const snapshots = new PostgresSnapshotStore(client);
    return { log, snapshots, close: async () => { await log.close(); await snapshots.close(); await client.close(); } };
  }, () => rm(dir, { recursive: true, force: true }));
});

describeEventLog('PGlite, single writer (tails fed from memory once caught up)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-pglite-'));
  return reopenableFixture(async () => {
    const client = await pgliteClient(dir);
    const log = new PostgresEventLog(client, { tailPollMs: 20, singleWriter: true, feedLimit: 7 });
    const snapshots = new PostgresSnapshotStore(client);
    return { log, snapshots, close: async () => { await log.close(); await snapshots.close(); await client.close(); } };
  }, () => rm(dir, { recursive: true, force: true }));
});

describe('PostgresEventLog on PGlite: schema and group commit', () => {
  test('migrations are versioned and a newer schema is refused with a typed error', async () => {
    const client = await pgliteClient();
    try {
      assert.equal(await migrate(client), MIGRATIONS.length);
      const rows = await client.query<{ version: number }>('SELECT version FROM chorus_schema_version ORDER BY version');
      assert.deepEqual(rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));
      await client.query('INSERT INTO chorus_schema_version (version, name, applied_at) VALUES ($1, $2, $3)', [MIGRATIONS.length + 1, 'from the future', Date.now()]);
      const fresh = { ...client, transaction: client.transaction, query: client.query, close: client.close } as SqlClient; // a new identity: migrate() memoises per client
      await assert.rejects(migrate(fresh), (e: unknown) => e instanceof SchemaTooNewError && e.code === 'CHORUS_SCHEMA_TOO_NEW' && e.found === MIGRATIONS.length + 1);
      const log = new PostgresEventLog(fresh);
      await assert.rejects(log.append('channel.w1.c1', { data: new Uint8Array([1]) }), (e: unknown) => (e as { code?: string }).code === 'CHORUS_SCHEMA_TOO_NEW');
    } finally {
      await client.close();
    }
  });

  test('concurrent appends from many writers share transactions; each caller gets its own result', async () => {
    const client = await pgliteClient();
    let transactions = 0;
    const counting: SqlClient = { ...client, transaction: (fn) => { transactions++; return client.transaction(fn); }, query: client.query, close: client.close, dialect: client.dialect };
    const log = new PostgresEventLog(counting);
    try {
      await log.lastPos('warmup');
      transactions = 0;
      const streams = Array.from({ length: 50 }, (_, i) => `channel.w1.c${i}`);
      const results = await Promise.allSettled(streams.flatMap((s) => [
        log.append(s, { data: new Uint8Array([1]), dedupId: 'a' }),
        log.append(s, { data: new Uint8Array([2]), dedupId: 'a' }), // duplicate within the same batch
        log.append(s, { data: new Uint8Array([3]) }, { expectedLastPos: 0 }), // conflict within the same batch
        log.append(s, { data: new Uint8Array([4]) }, { expectedLastPos: 1 }),
      ]));
      assert.ok(transactions <= 2, `${transactions} transactions for 200 appends`);
      for (let i = 0; i < streams.length; i++) {
        const [a, dup, conflict, next] = results.slice(i * 4, i * 4 + 4);
        assert.deepEqual(a, { status: 'fulfilled', value: { pos: 1, duplicate: false } });
        assert.deepEqual(dup, { status: 'fulfilled', value: { pos: 1, duplicate: true } });
        assert.equal(conflict!.status, 'rejected');
        assert.equal((conflict as PromiseRejectedResult).reason.code, 'CHORUS_LOG_CONFLICT');
        assert.deepEqual(next, { status: 'fulfilled', value: { pos: 2, duplicate: false } });
      }
    } finally {
      await log.close();
      await client.close();
    }
  });

  test('concurrent reads and last-position lookups share statements; each caller gets its own stream, in order, within its limit', async () => {
    const client = await pgliteClient();
    const statements: string[] = [];
    const log = new PostgresEventLog(tapped(client, (text) => statements.push(text)));
    try {
      const streams = Array.from({ length: 150 }, (_, i) => `user.w1.u${i}`);
      await Promise.all(streams.flatMap((s, i) => Array.from({ length: 1 + (i % 4) }, (_, k) => log.append(s, { data: new Uint8Array([i % 256, k]) }))));
      statements.length = 0;
      const [pages, lasts] = await Promise.all([
        Promise.all(streams.map((s, i) => log.read(s, i % 2, 2))),
        Promise.all([...streams, 'user.w1.none'].map((s) => log.lastPos(s))),
      ]);
      streams.forEach((s, i) => {
        const n = 1 + (i % 4);
        const want = Array.from({ length: n }, (_, k) => k + 1).filter((p) => p > i % 2).slice(0, 2);
        assert.deepEqual(pages[i]!.map((e) => [e.stream, e.pos, e.data[0], e.data[1]]), want.map((p) => [s, p, i % 256, p - 1]), s);
        assert.equal(lasts[i], n, s);
      });
      assert.equal(lasts[150], 0, 'a stream never written is at 0');
      // 150 reads and 151 lookups, up to 64 a statement: 3 + 3 statements (one each would be 301)
      assert.ok(statements.length <= 6, `${statements.length} statements for 301 concurrent requests`);
    } finally {
      await log.close();
      await client.close();
    }
  });

  test('minBatchIntervalMs: appends arriving one by one within the interval share a batch; the first after a quiet spell is not held back', async () => {
    const client = await pgliteClient();
    let inserts = 0;
    const log = new PostgresEventLog(tapped(client, (text) => { if (text.includes('INSERT INTO chorus_log')) inserts++; }), { minBatchIntervalMs: 40 });
    try {
      await log.append('channel.w.warm', { data: new Uint8Array([0]) });
      await new Promise((r) => setTimeout(r, 60));
      inserts = 0;
      const t0 = performance.now();
      const first = log.append('channel.w.a', { data: new Uint8Array([1]) });
      assert.deepEqual(await first, { pos: 1, duplicate: false });
      assert.ok(performance.now() - t0 < 30, `the first append after a quiet spell took ${performance.now() - t0} ms`);
      // 20 appends, one every 2 ms, each in its own loop turn: without the interval about one batch (an INSERT) each
      const acks: Array<Promise<unknown>> = [];
      for (let i = 0; i < 20; i++) {
        acks.push(log.append('channel.w.a', { data: new Uint8Array([i + 2]) }));
        await new Promise((r) => setTimeout(r, 2));
      }
      await Promise.all(acks);
      assert.ok(inserts <= 4, `${inserts} batches for 21 appends over about 40 ms`);
      assert.deepEqual((await log.read('channel.w.a', 0)).map((e) => e.data[0]), Array.from({ length: 21 }, (_, i) => i + 1));
      assert.throws(() => new PostgresEventLog(client, { minBatchIntervalMs: -1 }), /minBatchIntervalMs/);
    } finally {
      await log.close();
      await client.close();
    }
  });

  test('remembered positions: known streams are planned without reading the table; a stored duplicate id still answers duplicate, a stale expectation still conflicts', async () => {
    const client = await pgliteClient();
    const statements: string[] = [];
    const counting = tapped(client, (text) => statements.push(text));
    const log = new PostgresEventLog(counting);
    const reads = () => statements.filter((t) => t.includes('AS last')).length;
    try {
      assert.deepEqual(await log.append('channel.w.a', { data: new Uint8Array([1]), dedupId: 'x' }), { pos: 1, duplicate: false });
      const before = reads();
      assert.deepEqual(await log.append('channel.w.a', { data: new Uint8Array([2]), dedupId: 'y' }, { expectedLastPos: 1 }), { pos: 2, duplicate: false });
      assert.equal(reads(), before, 'a remembered stream is planned from memory');
      // a duplicate of a stored id, planned from memory, meets the unique index and is re-planned from the table
      assert.deepEqual(await log.append('channel.w.a', { data: new Uint8Array([9]), dedupId: 'x' }), { pos: 1, duplicate: true });
      await assert.rejects(log.append('channel.w.a', { data: new Uint8Array([3]) }, { expectedLastPos: 1 }), (e: unknown) => (e as { code?: string }).code === 'CHORUS_LOG_CONFLICT');
      assert.deepEqual(await log.append('channel.w.a', { data: new Uint8Array([3]) }, { expectedLastPos: 2 }), { pos: 3, duplicate: false });
      assert.deepEqual((await log.read('channel.w.a', 0)).map((e) => [e.pos, e.data[0]]), [[1, 1], [2, 2], [3, 3]]);
    } finally {
      await log.close();
      await client.close();
    }
  });

  test('single writer: tails started at any moment, slow or fast, get every record once in order; a caught-up tail stops polling; one that falls behind polls its way back', async () => {
    const client = await pgliteClient();
    let polls = 0;
    const counting = tapped(client, (text) => { if (text.includes('pg_snapshot_xmin')) polls++; });
    const log = new PostgresEventLog(counting, { singleWriter: true, feedLimit: 50, tailPollMs: 20, tailBatch: 40 });
    const streams = Array.from({ length: 12 }, (_, i) => `channel.w.c${i}`);
    const tails: Array<{ got: Map<string, number[]>; slow: boolean; dispose(): unknown }> = [];
    const startTail = async (slow: boolean) => {
      const got = new Map<string, number[]>();
      const sub = await log.tail('channel.', 0, async (e) => {
        if (slow && e.pos % 7 === 0) await new Promise((r) => setTimeout(r, 2));
        const l = got.get(e.stream) ?? [];
        l.push(e.pos);
        got.set(e.stream, l);
      });
      tails.push({ got, slow, dispose: () => sub.dispose() });
    };
    try {
      await startTail(false);
      const writes: Promise<unknown>[] = [];
      for (let round = 0; round < 40; round++) {
        for (const s of streams) writes.push(log.append(s, { data: new Uint8Array([round]) }));
        if (round % 10 === 5) await startTail(round % 20 === 5); // joins mid-stream, catching up by polls
        await new Promise((r) => setImmediate(r));
      }
      await Promise.all(writes);
      await waitFor(() => tails.every((t) => streams.every((s) => (t.got.get(s)?.length ?? 0) >= 40)), { what: 'every tail to get every record', timeoutMs: 20_000 });
      for (const [i, t] of tails.entries()) {
        for (const s of streams) assert.deepEqual(t.got.get(s), Array.from({ length: 40 }, (_, k) => k + 1), `tail ${i} (${t.slow ? 'slow' : 'fast'}), ${s}: each record once, in order`);
      }
      // caught up: new appends reach the tails without a single poll. A tail that got its last records from a full
      // page polls once more before it goes live: wait until no tail has polled for 25 poll intervals
      for (let seen = -1, rounds = 0; seen !== polls && rounds < 20; rounds++) {
        seen = polls;
        await new Promise((r) => setTimeout(r, 500));
      }
      const quiet = polls;
      await Promise.all(streams.map((s) => log.append(s, { data: new Uint8Array([99]) })));
      await waitFor(() => tails.every((t) => streams.every((s) => t.got.get(s)!.length === 41)), { what: 'the last record on every tail', timeoutMs: 10_000 });
      assert.equal(polls, quiet, 'live tails take committed records from memory');
    } finally {
      for (const t of tails) await t.dispose();
      await log.close();
      await client.close();
    }
  });

  test('single writer: a record committed while the catching-up poll was answering is not lost when the tail goes live', async () => {
    const client = await pgliteClient();
    let during: (() => Promise<unknown>) | undefined;
    const racing: SqlClient = {
      ...client, transaction: client.transaction, close: client.close, dialect: client.dialect,
      query: async (text, params) => {
        const rows = await client.query(text, params);
        if (text.includes('pg_snapshot_xmin') && during) {
          const fn = during;
          during = undefined;
          await fn(); // a commit after the poll's snapshot, before the tail sees its answer
        }
        return rows as never;
      },
    };
    const log = new PostgresEventLog(racing, { singleWriter: true, tailPollMs: 20 });
    try {
      await log.append('channel.w.a', { data: new Uint8Array([1]) });
      during = () => log.append('channel.w.a', { data: new Uint8Array([2]) });
      const got: number[] = [];
      const sub = await log.tail('channel.', 0, (e) => { got.push(e.pos); });
      await waitFor(() => got.length >= 2, { what: 'both records', timeoutMs: 3000 });
      await log.append('channel.w.a', { data: new Uint8Array([3]) });
      await waitFor(() => got.length >= 3, { what: 'the third record', timeoutMs: 3000 });
      assert.deepEqual(got, [1, 2, 3]);
      await sub.dispose();
    } finally {
      await log.close();
      await client.close();
    }
  });

  test('single writer: a tail started under a steady stream of appends goes live (no polls once caught up) and misses nothing', async () => {
    const client = await pgliteClient();
    let polls = 0;
    const counting = tapped(client, (text) => { if (text.includes('pg_snapshot_xmin')) polls++; });
    const log = new PostgresEventLog(counting, { singleWriter: true, tailPollMs: 20 });
    let running = true;
    let written = 0;
    const writer = (async () => {
      while (running) {
        await Promise.all(Array.from({ length: 3 }, () => log.append('channel.w.s', { data: new Uint8Array([1]) })));
        written += 3;
      }
    })();
    try {
      await waitFor(() => written > 60, { what: 'appends under way' });
      const got: number[] = [];
      const sub = await log.tail('channel.', 0, (e) => { got.push(e.pos); });
      await waitFor(() => got.length >= written - 3, { what: 'the tail to catch up', timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 50));
      const before = polls;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(polls, before, 'live under load: records come from memory, not polls');
      running = false;
      await writer;
      await waitFor(() => got.length === written, { what: 'every record', timeoutMs: 10_000 });
      assert.deepEqual(got, Array.from({ length: written }, (_, i) => i + 1));
      await sub.dispose();
    } finally {
      running = false;
      await writer;
      await log.close();
      await client.close();
    }
  });
});
