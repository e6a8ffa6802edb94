import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { PostgresEventLog, PostgresSnapshotStore } from '../../../adapters/postgres/pg-event-log.ts';
import { pgPoolClient } from '../../../adapters/postgres/pg-client.ts';
import { migrate, MIGRATIONS } from '../../../adapters/postgres/migrations.ts';
import type { SqlClient } from '../../../adapters/postgres/sql-client.ts';
import type { LogEntry } from '../../../runtime/log/event-log.ts';
import { describeEventLog } from '../../conformance/event-log.ts';
import { startPostgres, type PostgresServer } from '../../helpers/postgres.ts';
import { waitFor } from '../../helpers/ports.ts';

let server: PostgresServer;
const clients: SqlClient[] = [];
const newClient = () => {
  const c = pgPoolClient(new pg.Pool({ connectionString: server.url, max: 4 }));
  clients.push(c);
  return c;
};

before(async () => {
  server = await startPostgres();
});
after(async () => {
  for (const c of clients) await c.close();
  await server?.stop();
});

describeEventLog('PostgreSQL (pg)', async () => {
  let client = newClient();
  let log = new PostgresEventLog(client, { tailPollMs: 20 });
  return {
    log,
    snapshots: new PostgresSnapshotStore(client),
    async reopen() {
      await log.close();
      await client.close();
      client = newClient();
      log = new PostgresEventLog(client, { tailPollMs: 20 });
      return { log, snapshots: new PostgresSnapshotStore(client) };
    },
    async close() {
      await log.close();
    },
  };
});

describe('PostgresEventLog on pg: several writer processes on one database', () => {
  const enc = (s: string) => new TextEncoder().encode(s);

  test('concurrent migrations from several clients apply each version once', async () => {
    const versions = await Promise.all([newClient(), newClient(), newClient()].map((c) => migrate(c)));
    assert.deepEqual(versions, [MIGRATIONS.length, MIGRATIONS.length, MIGRATIONS.length]);
    const rows = await newClient().query<{ n: number }>('SELECT count(*)::int AS n FROM chorus_schema_version');
    assert.equal(rows[0]!.n, MIGRATIONS.length);
  });

  test('fencing, dedup and dense positions hold across instances racing on one stream', async (t) => {
    let lostRaces = 0;
    const counting = (c: SqlClient): SqlClient => ({
      ...c,
      query: async (text, params) => {
        try {
          return await c.query(text, params);
        } catch (err) {
          if ((err as { code?: string }).code === '23505') lostRaces++;
          throw err;
        }
      },
    });
    const a = new PostgresEventLog(counting(newClient()));
    const b = new PostgresEventLog(counting(newClient()));
    try {
      const s = `channel.race${Date.now()}.c1`;
      // unfenced appends from both: every one stored, positions dense 1..n
      const plain = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).append(s, { data: enc(`p${i}`) })));
      assert.deepEqual(plain.map((r) => r.pos).sort((x, y) => x - y), Array.from({ length: 60 }, (_, i) => i + 1));
      // fenced: exactly one winner over both instances
      for (let round = 0; round < 5; round++) {
        const last = await a.lastPos(s);
        const out = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).append(s, { data: enc(`f${round}.${i}`) }, { expectedLastPos: last })));
        assert.equal(out.filter((o) => o.status === 'fulfilled').length, 1, `round ${round}`);
        for (const o of out) if (o.status === 'rejected') assert.equal(o.reason.code, 'CHORUS_LOG_CONFLICT');
      }
      // dedup: one stored copy whichever instance wins
      const d = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).append(s, { data: enc('d'), dedupId: 'client-msg-1' })));
      assert.equal(new Set(d.map((r) => r.pos)).size, 1);
      assert.equal(d.filter((r) => !r.duplicate).length, 1);
      const all = await a.read(s, 0, 10_000);
      assert.deepEqual(all.map((e) => e.pos), Array.from({ length: 66 }, (_, i) => i + 1));
      t.diagnostic(`batches re-planned after a lost race (unique violation): ${lostRaces}`);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a tail on one instance sees appends made through another, in order per stream', async () => {
    const a = new PostgresEventLog(newClient(), { tailPollMs: 20 });
    const b = new PostgresEventLog(newClient(), { tailPollMs: 20 });
    const got: LogEntry[] = [];
    const prefix = `channel.xtail${Date.now()}.`;
    const sub = await a.tail(prefix, 0, (e) => { got.push(e); });
    try {
      await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).append(`${prefix}c${i % 4}`, { data: enc(String(i)) })));
      await waitFor(() => got.length >= 40, { what: '40 records on the tail', timeoutMs: 10_000 });
      for (let c = 0; c < 4; c++) {
        const pos = got.filter((e) => e.stream === `${prefix}c${c}`).map((e) => e.pos);
        assert.deepEqual(pos, Array.from({ length: 10 }, (_, i) => i + 1));
      }
    } finally {
      await sub.dispose();
      await a.close();
      await b.close();
    }
  });
});
