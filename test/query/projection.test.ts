// The projection runner: it follows the log into the store, resumes after a
// crash from its stored positions, reports its lag, and a projection killed
// mid-stream (in process, and with kill -9 on a real PostgreSQL) ends with
// exactly the store a clean rebuild from the log gives.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { MemoryEventLog } from '../../adapters/memory/memory-event-log.ts';
import { MemoryMetrics } from '../../adapters/memory/memory-metrics.ts';
import {
  PostgresEventLog, PostgresProjectionSink, PostgresQueryStore, migrate, pgPoolClient, pgliteClient, singleRouting, type SqlClient,
} from '../../adapters/postgres/query.ts';
import { ProjectionRunner, type ProjectionSink } from '../../cluster/query/projection-runner.ts';
import type { EventLog, LogEntry } from '../../runtime/log/event-log.ts';
import { assertStoreMatches, dumpWorkspace, generateLog } from '../conformance/store.ts';
import { startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { waitFor } from '../helpers/ports.ts';

/** Appends generated entries to a real log (positions come out the same: dense from 1 per stream). */
async function appendAll(log: EventLog, entries: readonly LogEntry[], opts: { every?: number; pause?: () => Promise<void> } = {}): Promise<void> {
  let i = 0;
  for (const e of entries) {
    const r = await log.append(e.stream, { data: e.data });
    assert.equal(r.pos, e.pos);
    if (opts.every && ++i % opts.every === 0) await opts.pause?.();
  }
}

async function lastPositions(entries: readonly LogEntry[]): Promise<Map<string, number>> {
  const last = new Map<string, number>();
  for (const e of entries) last.set(e.stream, e.pos);
  return last;
}

async function caughtUp(runner: ProjectionRunner, entries: readonly LogEntry[]): Promise<void> {
  for (const [s, p] of await lastPositions(entries)) await runner.waitFor(s, p, 20_000);
}

describe('ProjectionRunner on a memory log and PGlite', () => {
  test('follows the log into the store; lag goes up while the store is stuck and back to 0', async () => {
    const log = new MemoryEventLog();
    const client = await pgliteClient();
    const metrics = new MemoryMetrics();
    const sink = new PostgresProjectionSink(singleRouting(client));
    let stuck: Promise<void> | undefined;
    let release = () => {};
    const gated: ProjectionSink = {
      positions: () => sink.positions(),
      apply: async (es) => {
        await stuck;
        return sink.apply(es);
      },
    };
    const moved: string[] = [];
    const runner = await new ProjectionRunner(log, gated, { metrics, lagProbeMs: 20, densePositions: true, onCommitted: (m) => moved.push(...m.keys()) }).start();
    try {
      const data = generateLog('wp1', 31, 300);
      await appendAll(log, data.entries.slice(0, 100));
      await caughtUp(runner, data.entries.slice(0, 100));
      stuck = new Promise((r) => (release = r));
      await appendAll(log, data.entries.slice(100));
      await waitFor(() => metrics.value('chorus_projection_lag_messages', { projection: 'query' }) > 0, { what: 'lag reported' });
      await new Promise((r) => setTimeout(r, 60));
      assert.ok(metrics.value('chorus_projection_lag_seconds', { projection: 'query' }) >= 0.05, 'lag in seconds grows while stuck');
      release();
      stuck = undefined;
      await caughtUp(runner, data.entries);
      await waitFor(() => metrics.value('chorus_projection_lag_messages', { projection: 'query' }) === 0, { what: 'lag back to 0' });
      assert.equal(metrics.value('chorus_projection_records_total', { projection: 'query', outcome: 'applied' }), data.entries.length);
      assert.ok(metrics.observed('chorus_projection_batch_seconds', { projection: 'query' }).length > 0);
      assert.ok(moved.includes('channel.wp1.c1') && moved.includes('workspace.wp1') && moved.includes('user.wp1.u1'));
      await assertStoreMatches(new PostgresQueryStore(singleRouting(client)), data);
    } finally {
      await runner.stop();
      await client.close();
    }
  });

  test('killed mid-stream and restarted: the store equals a clean rebuild (PGlite log, embedded profile)', async () => {
    const client = await pgliteClient();
    const log = new PostgresEventLog(client, { tailPollMs: 5 });
    const rebuildDb = await pgliteClient();
    try {
      const data = generateLog('wk1', 32, 600);
      let runner = await new ProjectionRunner(log, new PostgresProjectionSink(singleRouting(client)), { maxBatch: 25, maxDelayMs: 1, densePositions: true }).start();
      let killedAt = -1;
      // the producer keeps appending; the runner is killed once it has written about a third, then restarted later
      await appendAll(log, data.entries, {
        every: 50,
        pause: async () => {
          const written = [...(await new PostgresProjectionSink(singleRouting(client)).positions()).values()].reduce((a, b) => a + b, 0);
          if (killedAt < 0 && written > 150) {
            killedAt = written;
            await runner.kill();
          } else if (killedAt >= 0 && runner) {
            // restart while the producer is still going
            runner = await new ProjectionRunner(log, new PostgresProjectionSink(singleRouting(client)), { maxBatch: 25, maxDelayMs: 1, densePositions: true }).start();
            killedAt = Infinity;
          }
        },
      });
      assert.ok(killedAt === Infinity, 'killed and restarted mid-stream');
      await caughtUp(runner, data.entries);
      await runner.stop();
      // a clean rebuild: a fresh database fed the whole log at once
      const clean = await new ProjectionRunner(log, new PostgresProjectionSink(singleRouting(rebuildDb)), { maxBatch: 500, densePositions: true }).start();
      await caughtUp(clean, data.entries);
      await clean.stop();
      assert.deepStrictEqual(await dumpWorkspace(singleRouting(client), 'wk1'), await dumpWorkspace(singleRouting(rebuildDb), 'wk1'));
      await assertStoreMatches(new PostgresQueryStore(singleRouting(client)), data);
    } finally {
      await log.close();
      await client.close();
      await rebuildDb.close();
    }
  });
});

describe('ProjectionRunner killed with SIGKILL on a real PostgreSQL', () => {
  let server: PostgresServer;
  const pools: pg.Pool[] = [];
  const client = (url: string): SqlClient => {
    const p = new pg.Pool({ connectionString: url, max: 4 });
    p.on('error', () => {});
    pools.push(p);
    return pgPoolClient(p, { ownsPool: false });
  };
  before(async () => {
    server = await startPostgres();
  });
  after(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
    await server?.stop();
  });

  test('kill -9 mid-stream, restart: the store equals a clean rebuild from the log', async () => {
    const db = client(server.url);
    await migrate(db);
    await db.query('CREATE DATABASE rebuild');
    const rebuild = client(server.url.replace(/\/postgres$/, '/rebuild'));
    const log = new PostgresEventLog(db, { tailPollMs: 10 });
    const data = generateLog('wk9', 33, 800);
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/projection-child.ts', import.meta.url)), server.url], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
        child.once('exit', (c) => reject(new Error(`child exited ${c}`)));
      });
      const written = async () => Number((await db.query<{ n: number }>(`SELECT coalesce(sum(pos), 0)::int AS n FROM chorus_projection_positions WHERE ws = 'wk9'`))[0]!.n);
      let killedAt = -1;
      await appendAll(log, data.entries, {
        every: 40,
        pause: async () => {
          if (killedAt < 0 && (await written()) > 200) {
            child.kill('SIGKILL');
            killedAt = await written();
          }
        },
      });
      if (killedAt < 0) {
        await waitFor(async () => (await written()) > 200, { timeoutMs: 20_000, what: 'child progress' });
        child.kill('SIGKILL');
        killedAt = await written();
      }
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
      assert.ok(killedAt < data.entries.length, `killed mid-stream (${killedAt} of ${data.entries.length} records written)`);
      // restart in this process
      const runner = await new ProjectionRunner(log, new PostgresProjectionSink(singleRouting(db)), { maxBatch: 100, densePositions: true }).start();
      await caughtUp(runner, data.entries);
      await runner.stop();
      // clean rebuild into another database from the same log
      const clean = await new ProjectionRunner(log, new PostgresProjectionSink(singleRouting(rebuild)), { maxBatch: 500, densePositions: true }).start();
      await caughtUp(clean, data.entries);
      await clean.stop();
      assert.deepStrictEqual(await dumpWorkspace(singleRouting(db), 'wk9'), await dumpWorkspace(singleRouting(rebuild), 'wk9'));
      await assertStoreMatches(new PostgresQueryStore(singleRouting(db)), data);
      console.log(`# killed after ${killedAt} of ${data.entries.length} record positions were written`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await log.close();
    }
  });
});

describe('PostgresProjectionSink positions remembered between batches', () => {
  test('a second writer that moved positions meanwhile makes the batch re-read them: nothing applied twice, the store still matches the log', async () => {
    const client = await pgliteClient();
    try {
      const data = generateLog('wpb', 7, 240);
      const a = new PostgresProjectionSink(singleRouting(client));
      const b = new PostgresProjectionSink(singleRouting(client));
      const first = data.entries.slice(0, 80);
      const second = data.entries.slice(80, 160);
      const third = data.entries.slice(80); // overlaps what b wrote
      assert.equal((await a.apply(first)).applied, first.length);
      assert.equal((await b.apply(second)).applied, second.length, 'b reads the positions a stored');
      let statements = 0;
      const r = await a.apply(third);
      assert.equal(r.applied, third.length - second.length, 'a does not apply again what b applied');
      assert.equal(r.skipped, second.length);
      await assertStoreMatches(new PostgresQueryStore(singleRouting(client)), data);
      // with nobody else writing, a batch of known streams reads no positions at all
      const counting = { ...client, transaction: <T>(fn: (tx: { query: SqlClient['query'] }) => Promise<T>) => client.transaction((tx) => fn({ query: (t, p) => { if (/FOR UPDATE/.test(t)) statements++; return tx.query(t, p); } })) } as SqlClient;
      const c = new PostgresProjectionSink(singleRouting(counting));
      const more = generateLog('wpb', 7, 300).entries.slice(240);
      await c.apply(more.slice(0, 20));
      const locksFirst = statements;
      await c.apply(more.slice(20));
      assert.ok(locksFirst > 0, 'the first batch reads and locks the positions');
      assert.equal(statements, locksFirst, 'later batches of the same streams read none');
    } finally {
      await client.close();
    }
  });
});

describe('PostgresProjectionSink: a message leaves its channel row alone', () => {
  test('posts do not rewrite chat_channels (xmin unchanged); history still reports the latest seq', async () => {
    const client = await pgliteClient();
    try {
      const { codec } = await import('../../runtime/codec.ts');
      const sink = new PostgresProjectionSink(singleRouting(client));
      const stream = 'channel.wr.c1';
      const created = { type: 'created', facts: { ws: 'wr', ch: 'c1', name: 'general', kind: 'public', createdBy: 'u1', createdAt: 1 }, topic: '', members: ['u1', 'u2'] };
      await sink.apply([{ stream, pos: 1, ts: 1, data: codec.encode([created]) }]);
      const xmin = async () => (await client.query<{ x: string }>(`SELECT xmin::text AS x FROM chat_channels WHERE ws = 'wr' AND ch = 'c1'`))[0]!.x;
      const before = await xmin();
      const posts = Array.from({ length: 5 }, (_, i) => ({
        stream, pos: i + 2, ts: 10 + i, data: codec.encode([{ type: 'posted', msg: { seq: i + 1, user: 'u1', ts: 10 + i, text: `m${i}`, cmid: `c${i}` } }]),
      }));
      await sink.apply(posts.slice(0, 3));
      await sink.apply(posts.slice(3));
      assert.equal(await xmin(), before, 'the channel row was not written by the posts');
      const page = await new PostgresQueryStore(singleRouting(client)).history('wr', 'c1', { limit: 2, order: 'newest' }, { minPos: 6 });
      assert.equal(page?.latestSeq, 5);
      assert.deepEqual(page?.messages.map((m) => m.seq), [5, 4]);
      await sink.apply([{ stream, pos: 7, ts: 20, data: codec.encode([{ type: 'topic', topic: 'news', by: 'u1', at: 20 }]) }]);
      assert.notEqual(await xmin(), before, 'a topic change writes it');
    } finally {
      await client.close();
    }
  });
});
