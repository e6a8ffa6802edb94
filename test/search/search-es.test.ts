// The Elasticsearch search adapter over Elastic's mock connection
// (test/helpers/es-mock.ts): the shared conformance suite (answered by the
// fake's small query evaluator), then what only the requests can show:
// mappings and settings, aliases with filter and routing, the search body,
// bulk retries on 429, the move to a dedicated index, force-merge.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ElasticsearchSearch, MESSAGE_MAPPINGS, buildSearchBody, resolveEsOptions } from '../../adapters/elasticsearch/index.ts';
import { parseSearchQuery } from '../../actors/search-query.ts';
import { SearchProjectionSink } from '../../cluster/search/search-projection.ts';
import { describeSearch, searchLog } from '../conformance/search.ts';
import { FakeElasticsearch } from '../helpers/es-mock.ts';

describeSearch('Elasticsearch through @elastic/elasticsearch-mock', async () => {
  const fake = new FakeElasticsearch();
  return { index: new ElasticsearchSearch({ client: fake.client, bulkBackoffMs: 1 }), close: async () => {} };
});

async function loaded(opts: { bulkBackoffMs?: number } = {}) {
  const fake = new FakeElasticsearch();
  const es = new ElasticsearchSearch({ client: fake.client, bulkBackoffMs: opts.bulkBackoffMs ?? 1, sharedIndices: 2 });
  const sink = new SearchProjectionSink(es);
  const log = searchLog('acme', 'other');
  await sink.apply(log.entries);
  return { fake, es, sink, log };
}

describe('Elasticsearch adapter: requests, aliases, bulk, maintenance', () => {
  test('indices are created with explicit mappings and the configured shards, replicas and refresh', async () => {
    const { fake, es } = await loaded();
    const shared = es.indices.names.allShared();
    assert.deepEqual(shared, ['chorus-messages-shared-0', 'chorus-messages-shared-1']);
    for (const name of shared) {
      const put = fake.sent(new RegExp(`^/${name}$`), 'PUT')[0]!;
      const body = put.body as { settings: Record<string, unknown>; mappings: typeof MESSAGE_MAPPINGS };
      assert.deepEqual(body.settings, { number_of_shards: 5, number_of_replicas: 1, refresh_interval: '1s' });
      assert.equal(body.mappings.dynamic, 'strict');
      assert.deepEqual(body.mappings.properties.text, { type: 'text', analyzer: 'english' });
      assert.equal(body.mappings.properties.ch.type, 'keyword');
    }
    assert.ok(fake.indices.has('chorus-messages-positions'));
  });

  test("a small workspace's alias points at its shared index with a workspace filter and routing; documents carry the routing", async () => {
    const { fake, es } = await loaded();
    const alias = es.indices.names.alias('acme');
    assert.equal(alias, 'chorus-messages-ws-acme');
    assert.deepEqual(fake.aliases.get(alias), [{ index: es.indices.names.shared('acme'), filter: { term: { ws: 'acme' } }, routing: 'acme', is_write_index: true }]);
    const docs = fake.indices.get(es.indices.names.shared('acme'))!.docs;
    const d = docs.get('acme:c1:1')!;
    assert.equal(d.routing, 'acme');
    assert.equal(d.source.ws, 'acme');
    assert.deepEqual(d.source.reaction_emojis, ['tada']);
    assert.equal(docs.has('acme:c1:6'), false, 'the deleted message is not indexed');
    // a capitalised workspace id still makes a valid (lower-case) index name, distinct from its lower-case twin
    assert.match(es.indices.names.alias('Acme'), /^chorus-messages-ws-acme\.[0-9a-f]+$/);
    // bulk bodies name the alias, never an index
    const bulkTargets = fake.sent(/^\/_bulk$/).flatMap((r) => (r.body as Array<Record<string, { _index?: string }>>).map((l) => Object.values(l)[0]?._index).filter(Boolean));
    assert.ok(bulkTargets.every((i) => i === 'chorus-messages-ws-acme' || i === 'chorus-messages-ws-other' || i === 'chorus-messages-positions'), bulkTargets.join());
  });

  test('the search body puts the readable channels and the workspace into the bool filter', async () => {
    const { fake, es } = await loaded();
    const query = parseSearchQuery('deploy "release notes" from:alice after:2026-01-01 has:file');
    await es.search({ ws: 'acme', channels: ['c1', 'c9'], query, order: 'newest', limit: 10 });
    const req = fake.sent(/\/_search$/).at(-1)!;
    assert.equal(req.path, '/chorus-messages-ws-acme/_search');
    const body = req.body as { query: { bool: { filter: unknown[]; must: unknown[] } }; sort: unknown[]; size: number; highlight: unknown };
    assert.deepEqual(body.query.bool.filter, [
      { term: { ws: 'acme' } }, { terms: { ch: ['c1', 'c9'] } }, { terms: { user: ['alice'] } },
      { range: { ts: { gte: Date.UTC(2026, 0, 2) } } }, { term: { has_file: true } },
    ]);
    assert.deepEqual(body.query.bool.must, [{ match: { text: { query: 'deploy', operator: 'and' } } }, { match_phrase: { text: 'release notes' } }]);
    assert.deepEqual(body.sort, [{ ts: 'desc' }, { ch: 'desc' }, { seq: 'desc' }]);
    assert.equal(body.size, 11);
    assert.ok(body.highlight);
    const ranked = buildSearchBody({ ws: 'acme', channels: ['c1'], query: parseSearchQuery('deploy'), order: 'relevance', limit: 5 });
    assert.deepEqual((ranked.sort as unknown[])[0], '_score');
  });

  test('bulk requests rejected with 429 are retried, and so are rejected items only', async () => {
    const fake = new FakeElasticsearch();
    const es = new ElasticsearchSearch({ client: fake.client, bulkBackoffMs: 1 });
    const sink = new SearchProjectionSink(es);
    const log = searchLog('acme', 'other');
    fake.faults.bulkRequests429 = 2;
    fake.faults.bulkItems429 = 3;
    const r = await sink.apply(log.entries);
    assert.equal(r.applied, log.entries.length);
    assert.equal(fake.faults.bulkRequests429, 0);
    assert.equal(fake.faults.bulkItems429, 0);
    const page = await es.search({ ws: 'acme', channels: ['c1'], query: parseSearchQuery('deploy'), order: 'newest', limit: 10 });
    assert.deepEqual(page.hits.map((h) => h.seq), [7, 3, 1]);
    // a retry of rejected items resends only them
    const bulks = fake.sent(/^\/_bulk$/).map((b) => (b.body as unknown[]).length);
    assert.ok(bulks.some((n) => n === 6), `a bulk of the 3 rejected index items (6 lines) was sent: ${bulks.join()}`);
    // too many rejections fail the write (the projection retries it later)
    fake.faults.bulkRequests429 = 100;
    const es2 = new ElasticsearchSearch({ client: fake.client, bulkBackoffMs: 1, bulkRetries: 2 });
    await assert.rejects(new SearchProjectionSink(es2).apply(searchLog('acme2', 'other2').entries), (e: { code?: string }) => e.code === 'CHORUS_BACKEND');
  });

  test('a workspace moves from its shared index to a dedicated one without losing reads or held writes', async () => {
    const { fake, es, sink } = await loaded();
    const before = await es.search({ ws: 'acme', channels: ['c1', 'c2'], query: parseSearchQuery('deploy'), order: 'newest', limit: 50 });
    // a write that arrives during the move waits for the switch and lands in the new index
    const moving = es.indices.promote('acme');
    const late = searchLog('acme', 'other');
    const extra = late.entries.slice(0, 1).map((e) => ({ ...e })); // already applied: skipped, but still held
    const held = sink.apply(extra);
    const r = await moving;
    await held;
    assert.equal(r.moved, true);
    const dedicated = es.indices.names.dedicated('acme');
    const put = fake.sent(new RegExp(`^/${dedicated}$`), 'PUT')[0]!;
    assert.deepEqual((put.body as { settings: unknown }).settings, { number_of_shards: 5, number_of_replicas: 1, refresh_interval: '5s' });
    const reindex = fake.sent(/^\/_reindex$/)[0]!.body as { source: unknown; dest: { index: string; routing: string } };
    assert.deepEqual(reindex.source, { index: es.indices.names.shared('acme'), query: { term: { ws: 'acme' } } });
    assert.equal(reindex.dest.routing, 'discard', 'a dedicated index spreads the workspace over its shards');
    const swap = fake.sent(/^\/_aliases$/).at(-1)!.body as { actions: unknown[] };
    assert.deepEqual(swap.actions, [
      { remove: { index: es.indices.names.shared('acme'), alias: 'chorus-messages-ws-acme' } },
      { add: { index: dedicated, alias: 'chorus-messages-ws-acme', is_write_index: true } },
    ], 'one atomic alias swap');
    assert.deepEqual(fake.aliases.get('chorus-messages-ws-acme'), [{ index: dedicated, is_write_index: true }]);
    const after = await es.search({ ws: 'acme', channels: ['c1', 'c2'], query: parseSearchQuery('deploy'), order: 'newest', limit: 50 });
    assert.deepEqual(after, before, 'the same answers from the dedicated index');
    assert.equal([...fake.indices.get(es.indices.names.shared('acme'))!.docs.values()].filter((d) => d.source.ws === 'acme').length, 0, 'the shared copies are deleted');
    assert.equal(await es.indices.placement('acme'), 'dedicated');
    assert.deepEqual(await es.indices.promote('acme'), { moved: false, docs: 0 }, 'idempotent');
    // new writes go to the dedicated index through the alias
    const more = searchLog('acme', 'other');
    more.post('acme', 'c1', 'alice', Date.UTC(2026, 1, 1), 'postmove deploy');
    await sink.apply(more.entries);
    assert.ok(fake.indices.get(dedicated)!.docs.has('acme:c1:8'));
  });

  test("maintain() promotes workspaces over the threshold and force-merges indices over 1,000,000 documents (the seed's rule)", async () => {
    const fake = new FakeElasticsearch();
    const es = new ElasticsearchSearch({ client: fake.client, bulkBackoffMs: 1, sharedIndices: 2, dedicatedThreshold: 5 });
    await new SearchProjectionSink(es).apply(searchLog('acme', 'other').entries);
    const big = es.indices.names.shared('other');
    fake.catDocCounts.set(big, 1_000_001);
    const small = es.indices.names.allShared().find((i) => i !== big);
    if (small) fake.catDocCounts.set(small, 1_000_000);
    const r = await es.indices.maintain();
    assert.deepEqual(r.promoted, ['acme'], 'acme has 8 messages (>= 5), other has 1');
    assert.deepEqual(r.merged, [big], 'only the index above 1,000,000');
    const fm = fake.sent(/_forcemerge$/);
    assert.equal(fm.length, 1);
    assert.equal(fm[0]!.path, `/${big}/_forcemerge`);
    assert.equal(fm[0]!.querystring.max_num_segments, '1');
    const agg = fake.sent(/_search$/).find((q) => (q.body as { aggs?: unknown }).aggs)!;
    assert.deepEqual((agg.body as { aggs: unknown }).aggs, { by_ws: { terms: { field: 'ws', size: 10_000, min_doc_count: 5 } } });
  });

  test('options are validated, every problem listed', () => {
    assert.throws(() => resolveEsOptions({ client: new FakeElasticsearch().client, prefix: 'Bad Prefix', sharedIndices: 0, dedicatedRefresh: 'soon' }),
      (e: Error) => /prefix/.test(e.message) && /sharedIndices/.test(e.message) && /dedicatedRefresh/.test(e.message));
  });
});
