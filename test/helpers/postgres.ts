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
  stop(): Promise<void>;
}

/** Runs a command as the `postgres` OS user when we are root (initdb refuses to run as root). */
function asPostgres(cmd: string, args: string[]) {
  const isRoot = process.getuid?.() === 0;
  return isRoot ? run('runuser', ['-u', OS_USER, '--', cmd, ...args]) : run(cmd, args);
}

/**
 * Starts a PostgreSQL 15 server from /usr/lib/postgresql/15/bin (override with
 * POSTGRES_BIN_DIR) on a free loopback port with a temp data dir: initdb with
 * trust auth, fsync off (test data only), unix socket in the temp dir.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const base = await mkdtemp(join(tmpdir(), 'chorus-pg-'));
  const data = join(base, 'data');
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', OS_USER]);
    const { stdout: gid } = await run('id', ['-g', OS_USER]);
    await chown(base, Number(stdout.trim()), Number(gid.trim()));
  }
  const port = await freePort();
  let started = false;
  const stop = async () => {
    if (started) {
      started = false;
      await asPostgres(join(BIN, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-w']).catch(() => undefined);
    }
    await rm(base, { recursive: true, force: true });
  };
  try {
    await asPostgres(join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    const opts = `-p ${port} -c listen_addresses=127.0.0.1 -k ${base} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50`;
    await asPostgres(join(BIN, 'pg_ctl'), ['start', '-D', data, '-o', opts, '-l', join(base, 'postgres.log'), '-w', '-t', '30']);
    started = true;
    await waitFor(async () => {
      await run(join(BIN, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port)]);
      return true;
    }, { timeoutMs: 15_000, intervalMs: 100, what: `postgres on port ${port}` });
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, stop, [Symbol.asyncDispose]: stop };
}
