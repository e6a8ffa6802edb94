// The search projection driven by the query side's ProjectionRunner on a
// real log: index on post, update on edit and reaction, remove on delete;
// idempotent (a second runner replaying everything changes nothing) and
// resumable (a runner killed mid-stream, then a new one, ends in the same
// index as one clean run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEventLog, MemoryLogServer } from '../../adapters/memory/memory-event-log.ts';
import { MemoryMetrics } from '../../adapters/memory/memory-metrics.ts';
import { pgliteClient, PostgresSearch, singleRouting } from '../../adapters/postgres/query.ts';
import { parseSearchQuery } from '../../actors/search-query.ts';
import { ProjectionRunner } from '../../cluster/query/projection-runner.ts';
import { SEARCH_PROJECTION, SearchProjectionSink } from '../../cluster/search/search-projection.ts';
import { searchLog } from '../conformance/search.ts';
import { waitFor } from '../helpers/ports.ts';

async function fill(log: MemoryEventLog, from = 0, to?: number) {
  const entries = searchLog('w1', 'w2').entries.slice(from, to);
  for (const e of entries) await log.append(e.stream, { data: e.data });
  return entries.length;
}

async function dump(index: PostgresSearch) {
  const all = [];
  for (const q of ['deploy', 'from:bob', 'from:alice', 'has:file', 'fixed', 'secret', 'friends']) {
    all.push((await index.search({ ws: 'w1', channels: ['c1', 'c2', 'd1'], query: parseSearchQuery(q), order: 'newest', limit: 100 })).hits);
  }
  return JSON.stringify(all);
}

test('a killed runner resumes from its stored positions; a second full replay changes nothing', async () => {
  const server = new MemoryLogServer();
  const log = new MemoryEventLog(server);
  const client = await pgliteClient();
  const index = new PostgresSearch(singleRouting(client));
  const sink = new SearchProjectionSink(index);
  const metrics = new MemoryMetrics();
  const total = searchLog('w1', 'w2').entries.length;

  await fill(log, 0, 8);
  const first = await new ProjectionRunner(log, sink, { name: SEARCH_PROJECTION, prefixes: ['channel.'], densePositions: true, metrics }).start();
  await first.waitFor('channel.w1.c1', 8);
  await first.kill(); // a crash: nothing buffered survives
  await fill(log, 8);
  const second = await new ProjectionRunner(log, sink, { name: SEARCH_PROJECTION, prefixes: ['channel.'], densePositions: true, metrics }).start();
  await waitFor(async () => [...(await index.positions()).values()].reduce((a, b) => a + b, 0) === total, { what: 'every record indexed' });
  const resumed = await dump(index);
  await second.stop();

  // a clean index of the same log, for comparison
  const client2 = await pgliteClient();
  const clean = new PostgresSearch(singleRouting(client2));
  await new SearchProjectionSink(clean).apply(searchLog('w1', 'w2').entries);
  assert.equal(resumed, await dump(clean));

  // replay everything again with a fresh runner: all skipped, same index
  const third = await new ProjectionRunner(log, sink, { name: SEARCH_PROJECTION, prefixes: ['channel.'], densePositions: true, metrics }).start();
  const r = await sink.apply(searchLog('w1', 'w2').entries);
  assert.equal(r.applied, 0);
  assert.equal(await dump(index), resumed);
  await third.stop();
  assert.ok(resumed.includes('fixed message') && !resumed.includes('doomed'), 'edit applied, delete removed');
  await client.close();
  await client2.close();
});
