/**
 * Message search on PostgreSQL full-text: indexing through the search
 * projection's sink and query latency, on PGlite (embedded) and on a real
 * PostgreSQL 15 (started by test/helpers/postgres.ts).
 *
 * Usage: `npm run bench -- search [--quick] [--messages=N] [--queries=N]`.
 *
 * Method: N messages (default 100,000; `--quick` 20,000) over 20 channels
 * of one workspace, 6-25 words each from a 3000-word vocabulary with a
 * skewed (Zipf-like) frequency, applied by SearchProjectionSink in batches
 * of 500 (the projection runner's batch), then ANALYZE; then, for each
 * query kind, `queries` (200) sequential searches of 20 hits over all 20
 * channels (the readable set), timing PostgresSearch.search. The
 * headline figures are PostgreSQL's.
 */
import pg from 'pg';
import { parseSearchQuery } from '../actors/search-query.ts';
import { pgliteClient, pgPoolClient, PostgresSearch, singleRouting, type SqlClient } from '../adapters/postgres/query.ts';
import { SearchProjectionSink } from '../cluster/search/search-projection.ts';
import { codec } from '../runtime/codec.ts';
import type { LogEntry } from '../runtime/log/event-log.ts';
import { seededRandom } from '../test/harness/rng.ts';
import { startPostgres } from '../test/helpers/postgres.ts';

const CHANNELS = 20;

function arg(args: string[], name: string): number | undefined {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : undefined;
}

function corpus(n: number) {
  const rnd = seededRandom(1);
  const vocab = Array.from({ length: 3000 }, (_, i) => `w${i.toString(36)}x`);
  const word = () => vocab[Math.min(vocab.length - 1, Math.floor(Math.pow(rnd(), 2.5) * vocab.length))]!;
  const seq = new Array<number>(CHANNELS).fill(0);
  const entries: LogEntry[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % CHANNELS;
    const s = ++seq[c]!;
    const text = Array.from({ length: 6 + Math.floor(rnd() * 20) }, word).join(' ');
    entries.push({ stream: `channel.wb.c${c}`, pos: s, ts: 0, data: codec.encode([{ type: 'posted', msg: { seq: s, user: `u${i % 50}`, ts: 1_700_000_000_000 + i * 1000, text, cmid: `m${i}` } }]) });
  }
  const kinds: Record<string, { q: () => string; order: 'newest' | 'relevance' }> = {
    'one word': { q: () => word(), order: 'newest' },
    'two words, relevance': { q: () => `${word()} ${word()}`, order: 'relevance' },
    'rare word': { q: () => vocab[2000 + Math.floor(rnd() * 900)]!, order: 'newest' },
    phrase: { q: () => `"${word()} ${word()}"`, order: 'newest' },
    'from: only': { q: () => `from:u${Math.floor(rnd() * 50)}`, order: 'newest' },
  };
  return { entries, kinds };
}

async function measure(db: string, client: SqlClient, n: number, queries: number) {
  const { entries, kinds } = corpus(n);
  const index = new PostgresSearch(singleRouting(client));
  const sink = new SearchProjectionSink(index);
  await index.ready();
  const t = performance.now();
  for (let i = 0; i < entries.length; i += 500) await sink.apply(entries.slice(i, i + 500));
  const indexSecs = (performance.now() - t) / 1000;
  await client.query('ANALYZE chat_search');
  const channels = Array.from({ length: CHANNELS }, (_, i) => `c${i}`);
  const rows: Array<{ db: string; kind: string; p50Ms: number; p99Ms: number }> = [];
  for (const [kind, k] of Object.entries(kinds)) {
    const times: number[] = [];
    for (let i = 0; i < queries; i++) {
      const query = parseSearchQuery(k.q());
      const t0 = performance.now();
      await index.search({ ws: 'wb', channels, query, order: k.order, limit: 20 });
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const at = (p: number) => Number(times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(2));
    rows.push({ db, kind, p50Ms: at(0.5), p99Ms: at(0.99) });
  }
  return { db, indexPerSec: Math.round(n / indexSecs), indexSecs: Number(indexSecs.toFixed(1)), rows };
}

/** Runs the bench; returns its figures. */
export async function run(args: string[]): Promise<Record<string, unknown>> {
  const n = arg(args, 'messages') ?? (args.includes('--quick') ? 20_000 : 100_000);
  const queries = arg(args, 'queries') ?? 200;
  const results = [];
  const lite = await pgliteClient();
  try {
    results.push(await measure('pglite', lite, n, queries));
  } finally {
    await lite.close();
  }
  const server = await startPostgres();
  const pool = new pg.Pool({ connectionString: server.url, max: 4 });
  const client = pgPoolClient(pool);
  try {
    results.push(await measure('postgresql', client, n, queries));
  } finally {
    await client.close();
    await server.stop();
  }
  console.log(`search: ${n} messages, ${CHANNELS} channels, ${queries} searches per kind, 20 hits each`);
  console.log('db          index msg/s   kind                    p50 ms   p99 ms');
  for (const r of results) {
    for (const q of r.rows) console.log(`${r.db.padEnd(11)} ${String(r.indexPerSec).padStart(11)}   ${q.kind.padEnd(22)} ${String(q.p50Ms).padStart(7)}  ${String(q.p99Ms).padStart(7)}`);
  }
  const pgRes = results[1]!;
  const one = pgRes.rows.find((r) => r.kind === 'one word')!;
  return { bench: 'search', messages: n, queries, indexPerSec: pgRes.indexPerSec, p50Ms: one.p50Ms, p99Ms: one.p99Ms, results };
}
