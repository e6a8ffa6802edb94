import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pgliteClient } from '../../../adapters/postgres/pglite-client.ts';
import { migrate } from '../../../adapters/postgres/migrations.ts';
import { startPgliteMaintenance } from '../../../adapters/postgres/pglite-maintenance.ts';
import { lockPositions, storePositions } from '../../../adapters/postgres/query-projection.ts';
import { waitFor } from '../../helpers/ports.ts';

test('PGlite maintenance: collects statistics and removes dead row versions (PGlite has no autovacuum); missing tables are skipped', async () => {
  const client = await pgliteClient();
  const warnings: unknown[] = [];
  const logger = { info() {}, debug() {}, error() {}, warn: (o: unknown) => { warnings.push(o); }, child() { return logger; } };
  try {
    await migrate(client);
    const streams = Array.from({ length: 2000 }, (_, i) => `channel.w${i % 7}.c${i}`);
    await client.transaction((tx) => lockPositions(tx, 'query', streams));
    for (let i = 1; i <= 3; i++) await client.transaction((tx) => storePositions(tx, 'query', new Map(streams.map((s) => [s, i]))));
    const stats = async () => (await client.query<{ reltuples: number; pages: number }>(
      `SELECT reltuples::float8 AS reltuples, relpages::int AS pages FROM pg_class WHERE relname = 'chorus_projection_positions'`))[0]!;
    const before = await stats();
    assert.ok(before.reltuples <= 0, `no statistics before: ${JSON.stringify(before)}`);
    const stop = startPgliteMaintenance(client, { vacuum: ['chorus_projection_positions', 'no_such_table'], analyze: ['chorus_log'], firstMs: 10, everyMs: 50, logger: logger as never });
    await waitFor(async () => (await stats()).reltuples === 2000, { what: 'statistics of the positions table', timeoutMs: 10_000 });
    // dead versions removed: more updates reuse the freed space instead of growing the table
    const pages = (await stats()).pages;
    await new Promise((r) => setTimeout(r, 120));
    for (let i = 4; i <= 6; i++) {
      await client.transaction((tx) => storePositions(tx, 'query', new Map(streams.map((s) => [s, i]))));
      await new Promise((r) => setTimeout(r, 120)); // a round in between
    }
    await stop();
    const after = await stats();
    assert.ok(after.pages <= pages * 1.5, `the table did not keep growing: ${pages} -> ${after.pages} pages`);
    const [row] = await client.query<{ pos: number }>(`SELECT pos FROM chorus_projection_positions WHERE projection = 'query' AND stream = $1`, [streams[5]]);
    assert.equal(Number(row!.pos), 6);
    assert.deepEqual(warnings, [], 'a missing table is skipped quietly');
  } finally {
    await client.close();
  }
});
