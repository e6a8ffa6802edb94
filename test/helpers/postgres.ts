import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from './ports.ts';

const run = promisify(execFile);
const BIN = process.env.POSTGRES_BIN_DIR ?? '/usr/lib/postgresql/15/bin';
const OS_USER = 'postgres';

/** A throwaway PostgreSQL server; dispose stops it and removes its directory. */
export interface PostgresServer extends AsyncDisposable {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth, no password). */
  readonly url: string;
  readonly port: number;
  /** The data directory. */
  readonly dataDir: string;
  /** Stops the server at once (`pg_ctl stop -m immediate`), keeping its data: clients see it down. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data (after kill). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs a command as the `postgres` OS user when we are root (initdb refuses to run as root). */
function asPostgres(cmd: string, args: string[]) {
  const isRoot = process.getuid?.() === 0;
  return isRoot ? run('runuser', ['-u', OS_USER, '--', cmd, ...args]) : run(cmd, args);
}

async function tempBase(prefix: string): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), prefix));
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', OS_USER]);
    const { stdout: gid } = await run('id', ['-g', OS_USER]);
    await chown(base, Number(stdout.trim()), Number(gid.trim()));
  }
  return base;
}

/** A server on `data` (already initialised or base-backed-up): start, kill, restart, stop (which removes `base`). */
async function serve(base: string, data: string, port: number): Promise<PostgresServer> {
  let started = false;
  const opts = `-p ${port} -c listen_addresses=127.0.0.1 -k ${base} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50`
    + ' -c wal_level=replica -c max_wal_senders=10 -c hot_standby=on -c wal_receiver_status_interval=1s -c hot_standby_feedback=on';
  const start = async () => {
    await asPostgres(join(BIN, 'pg_ctl'), ['start', '-D', data, '-o', opts, '-l', join(base, 'postgres.log'), '-w', '-t', '30']);
    started = true;
    await waitFor(async () => {
      await run(join(BIN, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port)]);
      return true;
    }, { timeoutMs: 15_000, intervalMs: 100, what: `postgres on port ${port}` });
  };
  const kill = async () => {
    if (!started) return;
    started = false;
    await asPostgres(join(BIN, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-w']).catch(() => undefined);
  };
  const stop = async () => {
    await kill();
    await rm(base, { recursive: true, force: true });
  };
  try {
    await start();
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, dataDir: data, kill, restart: start, stop, [Symbol.asyncDispose]: stop };
}

/**
 * Starts a PostgreSQL 15 server from /usr/lib/postgresql/15/bin (override with
 * POSTGRES_BIN_DIR) on a free loopback port with a temp data dir: initdb with
 * trust auth (replication connections too), fsync off (test data only), unix
 * socket in the temp dir, WAL ready for streaming replicas.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const base = await tempBase('chorus-pg-');
  const data = join(base, 'data');
  try {
    await asPostgres(join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  } catch (err) {
    await rm(base, { recursive: true, force: true });
    throw err;
  }
  return serve(base, data, await freePort());
}

/** A streaming replica of `primary`: `pg_basebackup -R` (standby.signal + primary_conninfo), then pg_ctl on its own port. */
export async function startReplica(primary: PostgresServer): Promise<PostgresServer> {
  const base = await tempBase('chorus-pg-replica-');
  const data = join(base, 'data');
  try {
    await asPostgres(join(BIN, 'pg_basebackup'), ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', data, '-R', '-X', 'stream', '--no-sync', '-c', 'fast']);
  } catch (err) {
    await rm(base, { recursive: true, force: true });
    throw err;
  }
  return serve(base, data, await freePort());
}

/** A primary and its streaming replicas; dispose stops them all. */
export interface PostgresReplicaSet extends AsyncDisposable {
  readonly primary: PostgresServer;
  readonly replicas: readonly PostgresServer[];
  stop(): Promise<void>;
}

/** Starts a primary and `n` streaming replicas (default 1) on loopback ports. */
export async function startPostgresWithReplicas(n = 1): Promise<PostgresReplicaSet> {
  const primary = await startPostgres();
  const replicas: PostgresServer[] = [];
  const stop = async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await primary.stop();
  };
  try {
    for (let i = 0; i < n; i++) replicas.push(await startReplica(primary));
  } catch (err) {
    await stop();
    throw err;
  }
  return { primary, replicas, stop, [Symbol.asyncDispose]: stop };
}
