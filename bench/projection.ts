/**
 * What the projections cost per post: the query projection (history, member
 * lists, unread counts) and the search projection (PostgreSQL full-text), each
 * writing a fresh PGlite database in a temporary directory on this thread, so
 * wall time is their CPU time and the file system's.
 *
 * Usage: `npm run bench -- projection [--quick] [--posts=N] [--channels=N] [--batch=N]`.
 *
 * Method: `channels` (default 1,000) channels created, then N posts (default
 * 40,000; `--quick` 10,000) spread round-robin over them (the fan-out bench's
 * shape A: every batch touches 500 different channels), encoded as the
 * channel actor logs them and applied by each sink in batches of 500 (the
 * projection runner's batch under load; `--batch` for the small batches of
 * a light load) after a warm-up of one batch. Figures: µs of wall
 * and process CPU per post; the fan-out bench's shape A delivers each post to
 * 10 members, so CPU-seconds per million deliveries is a tenth of µs per post.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, pgliteClient, PostgresProjectionSink, PostgresSearch, singleRouting } from '../adapters/postgres/query.ts';
import { SearchProjectionSink } from '../cluster/search/search-projection.ts';
import { codec } from '../runtime/codec.ts';
import type { LogEntry } from '../runtime/log/event-log.ts';
import { round } from './lib/stats.ts';

/** Records per sink write by default: the projection runner's maxBatch. */
const DEFAULT_BATCH = 500;

function arg(args: string[], name: string): number | undefined {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : undefined;
}

/** The channels' `created` records, then `posts` posts round-robin over them. */
function chatLog(channels: number, posts: number): { created: LogEntry[]; posted: LogEntry[] } {
  const created: LogEntry[] = [];
  const posted: LogEntry[] = [];
  const pos: number[] = [];
  for (let c = 0; c < channels; c++) {
    pos.push(1);
    const members = Array.from({ length: 10 }, (_, i) => `u${c * 10 + i}`);
    created.push({ stream: `channel.w1.c${c}`, pos: 1, ts: 1, data: codec.encode([{ type: 'created', facts: { ws: 'w1', ch: `c${c}`, name: `c${c}`, kind: 'public', createdBy: members[0], createdAt: 1 }, topic: '', members }]) });
  }
  for (let i = 0; i < posts; i++) {
    const c = i % channels;
    const p = ++pos[c]!;
    const msg = { seq: p - 1, user: `u${c * 10 + (i % 10)}`, ts: 1_700_000_000_000 + i, text: `b:${i}:1700000000000 the deploy of build ${i} went out to staging`, cmid: `m${i}` };
    posted.push({ stream: `channel.w1.c${c}`, pos: p, ts: msg.ts, data: codec.encode([{ type: 'posted', msg }]) });
  }
  return { created, posted };
}

/** Runs the bench; returns its figures (and prints a table). */
export async function run(args: string[]): Promise<Record<string, unknown>> {
  const quick = args.includes('--quick');
  const posts = arg(args, 'posts') ?? (quick ? 10_000 : 40_000);
  const channels = arg(args, 'channels') ?? 1000;
  const batch = arg(args, 'batch') ?? DEFAULT_BATCH;
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError('--batch must be a positive integer');
  if (!Number.isInteger(posts) || posts < 2 * batch || !Number.isInteger(channels) || channels < 1) throw new RangeError(`--posts must be an integer >= ${2 * batch}, --channels >= 1`);
  const { created, posted } = chatLog(channels, posts);
  const rows: Array<Record<string, unknown>> = [];
  for (const projection of ['query', 'search'] as const) {
    // on disk, as the embedded query side (an in-memory PGlite spends its time growing its file arrays)
    const dir = await mkdtemp(join(tmpdir(), 'chorus-bench-projection-'));
    const client = await pgliteClient(dir);
    try {
      await migrate(client);
      const sink = projection === 'query' ? new PostgresProjectionSink(singleRouting(client)) : new SearchProjectionSink(new PostgresSearch(singleRouting(client)));
      for (let i = 0; i < created.length; i += batch) await sink.apply(created.slice(i, i + batch));
      await sink.apply(posted.slice(0, batch)); // warm-up
      const measured = posted.length - batch;
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      for (let i = batch; i < posted.length; i += batch) await sink.apply(posted.slice(i, i + batch));
      const wallUs = ((performance.now() - t0) * 1000) / measured;
      const cpu = process.cpuUsage(c0);
      const cpuUs = (cpu.user + cpu.system) / measured;
      rows.push({ projection, posts: measured, channels, wallUsPerPost: round(wallUs, 1), cpuUsPerPost: round(cpuUs, 1), postsPerSec: Math.round(1e6 / wallUs) });
    } finally {
      await client.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
  console.table(rows);
  const q = rows[0]!;
  const s = rows[1]!;
  return {
    bench: 'projection', posts, channels, batch,
    queryCpuUsPerPost: q.cpuUsPerPost, searchCpuUsPerPost: s.cpuUsPerPost,
    queryWallUsPerPost: q.wallUsPerPost, searchWallUsPerPost: s.wallUsPerPost,
    rows,
  };
}
