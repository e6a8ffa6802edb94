/**
 * The durable log: append throughput and latency with acks, through Chorus's
 * EventLog port against the raw JetStream client on the same nats-server,
 * and the embedded log (PostgresEventLog on PGlite; on a real PostgreSQL too
 * when its binaries are installed).
 *
 * Usage: `npm run bench -- log [--quick] [--replicas=3]`.
 *
 * Every system does what the actors need from a log: each append carries a
 * dedup id and the expected last position of its stream (optimistic
 * fencing); the raw client sends the same `Nats-Msg-Id` and
 * `Nats-Expected-Last-Subject-Sequence` headers, so the difference is the
 * port's own cost (checks, retries, stream placement, copying). Workloads:
 * - sequential: one stream, one append at a time (latency of one ack);
 * - concurrent: S streams, each appending one at a time (S in flight), as S
 *   busy channel actors do; S = 16 and 256.
 * CPU is the bench process plus the server process (nats-server or
 * postgres; PGlite runs inside the bench process), per 1,000 appends.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, StorageType, DiscardPolicy } from '@nats-io/jetstream';
import { JetStreamEventLog, singleStream } from '../adapters/nats/jetstream-event-log.ts';
import { PostgresEventLog } from '../adapters/postgres/pg-event-log.ts';
import { pgliteClient } from '../adapters/postgres/pglite-client.ts';
import pg from 'pg';
import { pgPoolClient } from '../adapters/postgres/pg-client.ts';
import { startNats } from '../test/helpers/nats.ts';
import { startPostgres } from '../test/helpers/postgres.ts';
import { cpuOf, Histogram, round } from './lib/stats.ts';

/** One way of appending: `append(stream, i, expected)` resolves with the new position. */
interface Appender {
  readonly name: string;
  /** Pids of server processes whose CPU counts (the bench process always counts). */
  readonly serverPids: number[];
  append(stream: string, data: Uint8Array, dedupId: string, expected: number): Promise<number>;
  close(): Promise<void>;
}

interface Row {
  system: string;
  workload: string;
  appends: number;
  appendsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuMsPer1k: number;
}

const payload = new Uint8Array(200).fill(7); // about a chat post event, msgpack-encoded

/** Runs `streams` sequential appenders for `ms` (or `count` appends in total), measuring each ack. */
async function drive(a: Appender, tag: string, streams: number, limit: { ms?: number; count?: number }): Promise<Omit<Row, 'system' | 'workload'>> {
  const h = new Histogram();
  const last = new Array<number>(streams).fill(0);
  let done = 0;
  let issued = 0;
  const cpu0 = process.cpuUsage();
  const srv0 = cpuOf(a.serverPids);
  const t0 = performance.now();
  const until = limit.ms !== undefined ? t0 + limit.ms : Infinity;
  const loops = Array.from({ length: streams }, async (_, s) => {
    const stream = `bench.${tag}.s${s}`;
    while (performance.now() < until && (limit.count === undefined || issued < limit.count)) {
      const i = issued++;
      const t = performance.now();
      last[s] = await a.append(stream, payload, `${tag}-${s}-${i}`, last[s]!);
      h.record((performance.now() - t) * 1000);
      done++;
    }
  });
  await Promise.all(loops);
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000 + (cpuOf(a.serverPids) - srv0) * 1000;
  return { appends: done, appendsPerSec: Math.round((done / elapsed) * 1000), p50Ms: h.ms(0.5), p99Ms: h.ms(0.99), cpuMsPer1k: round((cpuMs / done) * 1000, 1) };
}

async function rawJetStream(nc: NatsConnection, replicas: number, pids: number[]): Promise<Appender> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'RAW_BENCH', subjects: ['raw.>'], storage: StorageType.File, num_replicas: replicas, duplicate_window: 120_000_000_000, discard: DiscardPolicy.Old, allow_direct: true });
  const js = jetstream(nc);
  return {
    name: `raw JetStream client (R${replicas})`,
    serverPids: pids,
    async append(stream, data, dedupId, expected) {
      const ack = await js.publish(`raw.${stream}`, data, { msgID: dedupId, expect: { lastSubjectSequence: expected } });
      return ack.seq;
    },
    close: async () => {},
  };
}

function chorusJetStream(nc: NatsConnection, replicas: number, pids: number[]): Appender {
  const log = new JetStreamEventLog(nc, { streamOf: singleStream('CHORUS_BENCH'), replicas });
  return {
    name: `Chorus JetStreamEventLog (R${replicas})`,
    serverPids: pids,
    async append(stream, data, dedupId, expected) {
      return (await log.append(stream, { data, dedupId }, { expectedLastPos: expected })).pos;
    },
    close: () => log.close(),
  };
}

function chorusPostgres(name: string, log: PostgresEventLog, pids: number[], close: () => Promise<void>): Appender {
  return {
    name,
    serverPids: pids,
    async append(stream, data, dedupId, expected) {
      return (await log.append(stream, { data, dedupId }, { expectedLastPos: expected })).pos;
    },
    close: async () => {
      await log.close();
      await close();
    },
  };
}

function postgresPids(dataDir: string): number[] {
  // the postmaster is the first line of postmaster.pid; its children (backends, WAL writer) do the work
  try {
    const pm = execFileSync('head', ['-1', join(dataDir, 'postmaster.pid')]).toString().trim();
    const kids = execFileSync('pgrep', ['-P', pm]).toString().trim().split('\n').filter(Boolean).map(Number);
    return [Number(pm), ...kids];
  } catch {
    return [];
  }
}

/** Runs the log bench; prints a table, returns the figures. */
export async function run(args: string[]): Promise<Record<string, unknown>> {
  const quick = args.includes('--quick');
  const replicas = Number(args.find((a) => a.startsWith('--replicas='))?.slice(11) ?? 1);
  if (![1, 3].includes(replicas)) throw new RangeError('--replicas must be 1 or 3');
  const seqCount = quick ? 1000 : 5000;
  const concMs = quick ? 2000 : 5000;
  const concurrency = [16, 256];
  const rows: Row[] = [];
  const t0 = Date.now();

  /** Every workload on each system in turn, interleaved (so drift of a shared machine hits all systems alike). */
  const measure = async (systems: Appender[]) => {
    for (const a of systems) await drive(a, 'warm', 16, { count: 200 }); // streams, JIT, connections
    for (const a of systems) rows.push({ system: a.name, workload: 'sequential (1 in flight)', ...(await drive(a, 'seq', 1, { count: seqCount })) });
    for (const c of concurrency) {
      for (const a of systems) rows.push({ system: a.name, workload: `${c} streams in flight`, ...(await drive(a, `c${c}`, c, { ms: concMs })) });
    }
    for (const a of systems) await a.close();
  };

  // JetStream: one nats-server (or a 3-server cluster for R3), the raw client and Chorus's log on separate connections
  const nats = await startNats({ size: replicas === 3 ? 3 : 1 });
  try {
    const pids = nats.servers.map((s) => s.proc.pid!).filter(Boolean);
    const nc1 = await connect({ servers: nats.urls });
    const nc2 = await connect({ servers: nats.urls });
    await measure([await rawJetStream(nc1, replicas, pids), chorusJetStream(nc2, replicas, pids)]);
    await nc1.close();
    await nc2.close();
  } finally {
    await nats.stop();
  }

  // the embedded log: PGlite in this process, durable in a temp dir
  const dir = await mkdtemp(join(tmpdir(), 'chorus-bench-log-'));
  try {
    const client = await pgliteClient(join(dir, 'pglite'));
    const log = new PostgresEventLog(client);
    await log.ready();
    await measure([chorusPostgres('Chorus PostgresEventLog (PGlite, embedded)', log, [], () => client.close())]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  // a real PostgreSQL when its binaries are here (the cluster profile without JetStream as log)
  let pgNote = '';
  if (existsSync('/usr/lib/postgresql/15/bin/initdb')) {
    const server = await startPostgres();
    try {
      const client = pgPoolClient(new pg.Pool({ connectionString: server.url, max: 8 }));
      const log = new PostgresEventLog(client);
      await log.ready();
      await measure([chorusPostgres('Chorus PostgresEventLog (PostgreSQL 15, fsync off)', log, postgresPids(server.dataDir), () => client.close())]);
    } finally {
      await server.stop();
    }
    pgNote = 'the test helper runs PostgreSQL with fsync off, so its row is not durable like the others';
  } else pgNote = 'PostgreSQL 15 not installed: its row is missing';

  console.log(`log: payload ${payload.length} B, dedup id and expected position on every append; replicas ${replicas}${pgNote ? `; ${pgNote}` : ''}`);
  console.table(rows.map((r) => ({ system: r.system, workload: r.workload, 'appends/s': r.appendsPerSec, 'p50 ms': r.p50Ms, 'p99 ms': r.p99Ms, 'CPU ms / 1k': r.cpuMsPer1k, appends: r.appends })));
  const find = (sys: string, wl: string) => rows.find((r) => r.system.startsWith(sys) && r.workload.startsWith(wl));
  const ratio = (a?: number, b?: number) => (a && b ? round(a / b, 2) : null);
  const raw = find('raw JetStream', '256');
  const ours = find('Chorus JetStreamEventLog', '256');
  const rawSeq = find('raw JetStream', 'sequential');
  const oursSeq = find('Chorus JetStreamEventLog', 'sequential');
  const lite = find('Chorus PostgresEventLog (PGlite', '256');
  const figures = {
    bench: 'log',
    replicas,
    appendsPerSec: ours?.appendsPerSec,
    p50Ms: oursSeq?.p50Ms,
    p99Ms: oursSeq?.p99Ms,
    rawAppendsPerSec: raw?.appendsPerSec,
    rawP50Ms: rawSeq?.p50Ms,
    rawP99Ms: rawSeq?.p99Ms,
    embeddedAppendsPerSec: lite?.appendsPerSec,
    embeddedP50Ms: find('Chorus PostgresEventLog (PGlite', 'sequential')?.p50Ms,
    postgresAppendsPerSec: find('Chorus PostgresEventLog (PostgreSQL', '256')?.appendsPerSec ?? null,
    ratios: {
      throughputVsRaw: ratio(ours?.appendsPerSec, raw?.appendsPerSec),
      p50VsRaw: ratio(oursSeq?.p50Ms, rawSeq?.p50Ms),
      cpuVsRaw: ratio(ours?.cpuMsPer1k, raw?.cpuMsPer1k),
    },
    rows,
    elapsedSec: Math.round((Date.now() - t0) / 1000),
  };
  console.log(`Chorus's JetStream log vs the raw client (256 in flight): ${figures.ratios.throughputVsRaw}x throughput, ${figures.ratios.cpuVsRaw}x CPU per append; one at a time: p50 ${figures.ratios.p50VsRaw}x`);
  return figures;
}
