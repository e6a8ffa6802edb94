import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresEventLog, PostgresSnapshotStore } from '../../../adapters/postgres/pg-event-log.ts';
import { pgliteClient } from '../../../adapters/postgres/pglite-client.ts';
import { MIGRATIONS, migrate, SchemaTooNewError } from '../../../adapters/postgres/migrations.ts';
import type { SqlClient } from '../../../adapters/postgres/sql-client.ts';
import { describeEventLog, reopenableFixture } from '../../conformance/event-log.ts';

describeEventLog('PGlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-pglite-'));
  return reopenableFixture(async () => {
    const client = await pgliteClient(dir);
    const log = new PostgresEventLog(client, { tailPollMs: 20 });
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
});
