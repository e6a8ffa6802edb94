import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { workerPgliteClient } from '../../../adapters/postgres/pglite-worker-client.ts';
import { queryAll } from '../../../adapters/postgres/sql-client.ts';
import { PostgresEventLog, PostgresSnapshotStore } from '../../../adapters/postgres/pg-event-log.ts';
import { describeEventLog, reopenableFixture } from '../../conformance/event-log.ts';

// The event log conformance suite through the worker client: statements, transactions, rollbacks on lost races,
// bytea and int8 conversions all cross the thread boundary.
describeEventLog('PGlite in a worker thread', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-pglite-worker-'));
  return reopenableFixture(async () => {
    const client = await workerPgliteClient(dir);
    const log = new PostgresEventLog(client, { tailPollMs: 20 });
    const snapshots = new PostgresSnapshotStore(client);
    return { log, snapshots, close: async () => { await log.close(); await snapshots.close(); await client.close(); } };
  }, () => rm(dir, { recursive: true, force: true }));
});

describe('workerPgliteClient', () => {
  test('results and errors cross the thread: int8 as numbers, bytea as bytes, SQLSTATE kept, a throwing transaction rolled back', async () => {
    const c = await workerPgliteClient();
    try {
      assert.deepEqual(await c.query('SELECT 7::int8 AS n, $1::bytea AS b, $2::text[] AS a', [new Uint8Array([1, 2]), ['x', null]]),
        [{ n: 7, b: new Uint8Array([1, 2]), a: ['x', null] }]);
      await c.query('CREATE TABLE t (k text PRIMARY KEY, v int)');
      await c.transaction(async (tx) => { await tx.query('INSERT INTO t VALUES ($1, $2)', ['a', 1]); });
      await assert.rejects(c.transaction(async (tx) => { await tx.query('INSERT INTO t VALUES ($1, $2)', ['b', 2]); throw new Error('nope'); }), /nope/);
      await assert.rejects(c.transaction((tx) => tx.query('INSERT INTO t VALUES ($1, $2)', ['a', 3])), (e: unknown) => (e as { code?: string }).code === '23505');
      await assert.rejects(c.query('SELEKT 1'), (e: unknown) => (e as { code?: string }).code === '42601');
      assert.deepEqual(await c.query('SELECT k, v FROM t ORDER BY k'), [{ k: 'a', v: 1 }]);
      // statements outside a transaction wait for it (one connection), as on PGlite itself
      const order: string[] = [];
      await Promise.all([
        c.transaction(async (tx) => { await tx.query('INSERT INTO t VALUES ($1, $2)', ['c', 1]); await new Promise((r) => setTimeout(r, 50)); order.push('tx'); }),
        (async () => { await new Promise((r) => setTimeout(r, 10)); const rows = await c.query('SELECT count(*)::int AS n FROM t'); order.push(`read ${rows[0]!.n}`); })(),
      ]);
      assert.deepEqual(order, ['tx', 'read 2']);
    } finally {
      await c.close();
    }
  });

  test('queryAll sends statements together: results in order, one message each way; a failing one rolls the transaction back', async () => {
    const c = await workerPgliteClient();
    try {
      await c.query('CREATE TABLE t (k text PRIMARY KEY, v int)');
      let sent = 0;
      const post = c.thread.postMessage.bind(c.thread);
      c.thread.postMessage = (m: unknown) => { sent++; post(m); };
      const rows = await c.transaction((tx) => queryAll(tx, [
        { text: 'INSERT INTO t VALUES ($1, $2), ($3, $4)', params: ['a', 1, 'b', 2] },
        { text: 'UPDATE t SET v = v + 10 WHERE k = $1', params: ['a'] },
        { text: 'SELECT k, v FROM t ORDER BY k' },
      ]));
      assert.deepEqual(rows, [[], [], [{ k: 'a', v: 11 }, { k: 'b', v: 2 }]], 'each statement saw the ones before it');
      assert.equal(sent, 3, 'begin, the three statements, commit: three messages, and the begin was not waited for');
      await assert.rejects(c.transaction((tx) => queryAll(tx, [
        { text: 'INSERT INTO t VALUES ($1, $2)', params: ['c', 3] },
        { text: 'INSERT INTO t VALUES ($1, $2)', params: ['a', 4] }, // duplicate key
        { text: 'INSERT INTO t VALUES ($1, $2)', params: ['d', 5] },
      ])), (e: unknown) => (e as { code?: string }).code === '23505');
      assert.deepEqual(await c.query('SELECT k FROM t ORDER BY k'), [{ k: 'a' }, { k: 'b' }], 'nothing of the failed transaction stayed');
      // outside a transaction: each statement on its own, in order
      assert.deepEqual(await queryAll(c, [{ text: 'DELETE FROM t WHERE k = $1', params: ['b'] }, { text: 'SELECT count(*)::int AS n FROM t' }]), [[], [{ n: 1 }]]);
    } finally {
      await c.close();
    }
  });

  test('a worker that dies is replaced: the call in flight fails, the next ones work on the same database', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chorus-pglite-worker-'));
    const c = await workerPgliteClient(dir);
    try {
      await c.query('CREATE TABLE t (k text PRIMARY KEY)');
      await c.query(`INSERT INTO t VALUES ('kept')`);
      const first = c.thread;
      const inFlight = c.query('SELECT pg_sleep(0.2)');
      await first.terminate(); // as a crash of the thread would
      await assert.rejects(inFlight, (e: unknown) => (e as { code?: string }).code === 'CHORUS_BACKEND');
      const rows = await c.query<{ k: string }>('SELECT k FROM t');
      assert.deepEqual(rows.map((r) => r.k), ['kept']);
      assert.notEqual(c.thread, first, 'a new worker serves');
    } finally {
      await c.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
