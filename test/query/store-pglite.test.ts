// The query-store conformance suite on PGlite (embedded profile), in memory,
// plus the schema-version refusal on a durable directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIGRATIONS, SchemaTooNewError, migrate, pgliteClient, singleRouting } from '../../adapters/postgres/query.ts';
import { describeQueryStore } from '../conformance/store.ts';

describeQueryStore('PGlite', async () => {
  const client = await pgliteClient();
  return { routing: singleRouting(client), close: () => client.close() };
});

test('PGlite: migrations include the query store, and a newer schema is refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-qs-'));
  try {
    const a = await pgliteClient(dir);
    assert.equal(await migrate(a), MIGRATIONS.length);
    const tables = await a.query<{ t: string }>(`SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`);
    for (const t of ['chat_messages', 'chat_channels', 'chat_channel_members', 'chat_workspaces', 'chat_workspace_members', 'chat_profiles', 'chat_read_cursors', 'chorus_projection_positions']) {
      assert.ok(tables.some((r) => r.t === t), `table ${t}`);
    }
    await a.query('INSERT INTO chorus_schema_version (version, name, applied_at) VALUES ($1, $2, $3)', [MIGRATIONS.length + 1, 'future', Date.now()]);
    await a.close();
    const b = await pgliteClient(dir);
    await assert.rejects(migrate(b), (e: unknown) => e instanceof SchemaTooNewError && e.found === MIGRATIONS.length + 1);
    await b.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
