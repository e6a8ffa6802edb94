// startSearch, the composition root's entry: Elasticsearch (here through
// the mock connection) or PostgreSQL full-text on the query side's
// routing; the search projection tails the log; metrics for query time and
// indexing lag; one projector per cluster by KV lease; settings from env.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEventLog } from '../../adapters/memory/memory-event-log.ts';
import { MemoryKv, MemoryKvServer } from '../../adapters/memory/memory-kv.ts';
import { MemoryMetrics } from '../../adapters/memory/memory-metrics.ts';
import { pgliteClient, singleRouting } from '../../adapters/postgres/query.ts';
import { parseSearchQuery } from '../../actors/search-query.ts';
import { searchEnv, startSearch } from '../../cluster/search/index.ts';
import { searchLog } from '../conformance/search.ts';
import { FakeElasticsearch } from '../helpers/es-mock.ts';
import { waitFor } from '../helpers/ports.ts';

async function fill(log: MemoryEventLog) {
  for (const e of searchLog('w1', 'w2').entries) await log.append(e.stream, { data: e.data });
}
const deploy = { ws: 'w1', channels: ['c1'], query: parseSearchQuery('deploy'), order: 'newest' as const, limit: 10 };

test('cluster profile with Elasticsearch: the projection indexes the log; query time and lag are measured', async () => {
  const fake = new FakeElasticsearch();
  const log = new MemoryEventLog();
  const metrics = new MemoryMetrics();
  const side = await startSearch({ profile: 'cluster', log, es: fake.client, metrics, runProjections: true, esOptions: { bulkBackoffMs: 1 } });
  try {
    assert.equal(side.backend, 'elasticsearch');
    await fill(log);
    const page = await waitFor(async () => {
      const p = await side.search.search(deploy);
      return p.hits.length === 3 ? p : undefined;
    }, { what: 'the projection indexed the log' });
    assert.deepEqual(page!.hits.map((h) => h.seq), [7, 3, 1]);
    assert.ok(metrics.observed('chorus_search_query_seconds', { backend: 'elasticsearch', order: 'newest' }).length >= 1);
    await waitFor(() => metrics.value('chorus_projection_records_total', { projection: 'search', outcome: 'applied' }) > 0);
    assert.ok(side.projection, 'this node runs the projection');
  } finally {
    await side.close();
  }
});

test('embedded profile: PostgreSQL full-text on the query side\'s PGlite', async () => {
  const client = await pgliteClient();
  const log = new MemoryEventLog();
  const side = await startSearch({ profile: 'embedded', log, routing: singleRouting(client) });
  try {
    assert.equal(side.backend, 'postgres');
    await fill(log);
    await waitFor(async () => (await side.search.search(deploy)).hits.length === 3, { what: 'indexed' });
  } finally {
    await side.close();
    await client.close();
  }
});

test('with a KV lease only one of two nodes runs the projection', async () => {
  const server = new MemoryKvServer();
  const log = new MemoryEventLog();
  const client = await pgliteClient();
  const a = await startSearch({ profile: 'cluster', log, routing: singleRouting(client), kv: new MemoryKv(server), nodeId: 'a' });
  const b = await startSearch({ profile: 'cluster', log, routing: singleRouting(client), kv: new MemoryKv(server), nodeId: 'b' });
  try {
    assert.equal(Number(Boolean(a.projection)) + Number(Boolean(b.projection)), 1);
  } finally {
    await a.close();
    await b.close();
    await client.close();
  }
});

test('settings: CHORUS_ES_URL picks Elasticsearch; bad values are all listed; no backend is an error', async () => {
  assert.deepEqual(searchEnv({}), { esOptions: {} });
  assert.deepEqual(searchEnv({ CHORUS_ES_URL: 'http://es:9200', CHORUS_ES_DEDICATED_THRESHOLD: '1000', CHORUS_SEARCH_PROJECTIONS: 'lease' }),
    { esUrl: 'http://es:9200', esOptions: { dedicatedThreshold: 1000 }, runProjections: 'lease' });
  assert.throws(() => searchEnv({ CHORUS_ES_URL: 'es:9200', CHORUS_ES_SHARED_INDICES: '0', CHORUS_SEARCH_PROJECTIONS: 'maybe' }),
    (e: Error) => /CHORUS_ES_URL/.test(e.message) && /CHORUS_ES_SHARED_INDICES/.test(e.message) && /CHORUS_SEARCH_PROJECTIONS/.test(e.message));
  await assert.rejects(startSearch({ profile: 'cluster', log: new MemoryEventLog() }), RangeError);
});
