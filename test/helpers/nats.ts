import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { freePort, waitFor } from './ports.ts';

/** One nats-server process started by a test. */
export interface NatsServerProc {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly proc: ChildProcess;
  /** kill -9, as a crash. */
  kill(): void;
  /** Starts it again on the same ports and store dir. */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT. */
  pause(): void;
  resume(): void;
}

/** A set of nats-server processes with JetStream, clustered when there are several. Dispose stops them and removes their dirs. */
export interface NatsCluster extends AsyncDisposable {
  readonly servers: NatsServerProc[];
  /** Comma-separated client URLs of every server. */
  readonly urls: string[];
  stop(): Promise<void>;
}

const BIN = process.env.NATS_SERVER_BIN ?? 'nats-server';

/**
 * Starts `size` nats-server processes (-js) on free loopback ports, each with
 * its own temp store dir; with size >= 3 they form one cluster so streams can
 * use R3. Waits until every server accepts clients and (for a cluster) until
 * JetStream has a meta leader.
 *
 * `host` is the address the servers accept clients on (default 127.0.0.1),
 * e.g. the host side of a network namespace's veth (test/helpers/netns.ts),
 * so a process inside the namespace can reach them; the routes between the
 * servers stay on loopback.
 */
export async function startNats(opts: { size?: number; name?: string; host?: string } = {}): Promise<NatsCluster> {
  const size = opts.size ?? 1;
  const host = opts.host ?? '127.0.0.1';
  const base = await mkdtemp(join(tmpdir(), 'chorus-nats-'));
  const clusterName = opts.name ?? `chorus-test-${process.pid}`;
  const clientPorts: number[] = [];
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) {
    clientPorts.push(await freePort());
    routePorts.push(await freePort());
  }
  const servers: NatsServerProc[] = [];
  for (let i = 0; i < size; i++) {
    const name = `n${i + 1}`;
    const dir = join(base, name);
    const conf = join(base, `${name}.conf`);
    const routes = routePorts.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`);
    const lines = [
      `server_name: ${name}`,
      `listen: ${host}:${clientPorts[i]}`,
      `jetstream { store_dir: "${dir}", max_memory_store: 256MB, max_file_store: 2GB }`,
      size > 1 ? `cluster { name: ${clusterName}, listen: 127.0.0.1:${routePorts[i]}, routes: [${routes.join(', ')}] }` : '',
    ];
    await writeFile(conf, lines.join('\n'));
    const server: NatsServerProc = {
      name,
      port: clientPorts[i]!,
      url: `nats://${host}:${clientPorts[i]}`,
      proc: undefined as unknown as ChildProcess,
      kill() {
        this.proc.kill('SIGKILL');
      },
      async restart() {
        (this as { proc: ChildProcess }).proc = launch(conf);
        await waitPort(host, this.port);
      },
      pause() {
        this.proc.kill('SIGSTOP');
      },
      resume() {
        this.proc.kill('SIGCONT');
      },
    };
    (server as { proc: ChildProcess }).proc = launch(conf);
    servers.push(server);
  }
  try {
    await Promise.all(servers.map((s) => waitPort(host, s.port)));
    if (size > 1) await waitJetStreamReady(host, servers[0]!.port);
  } catch (err) {
    for (const s of servers) s.proc.kill('SIGKILL');
    throw err;
  }
  const stop = async () => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => {
      if (s.proc.exitCode !== null || s.proc.signalCode !== null) return resolve();
      s.proc.once('exit', () => resolve());
      s.proc.kill('SIGCONT');
      s.proc.kill('SIGKILL');
    })));
    await rm(base, { recursive: true, force: true });
  };
  return { servers, urls: servers.map((s) => s.url), stop, [Symbol.asyncDispose]: stop };
}

function launch(conf: string): ChildProcess {
  const p = spawn(BIN, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  p.stderr?.resume();
  return p;
}

function waitPort(host: string, port: number): Promise<void> {
  return waitFor(() => new Promise<boolean>((resolve) => {
    const s = connect(port, host);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  }), { timeoutMs: 15_000, what: `nats-server on port ${port}` }).then(() => undefined);
}

/** Polls the server's $JS.API.INFO until the meta group has a leader (a cluster needs a few seconds). */
async function waitJetStreamReady(host: string, port: number): Promise<void> {
  const { connect: natsConnect } = await import('@nats-io/transport-node');
  const nc = await natsConnect({ servers: `${host}:${port}` });
  try {
    await waitFor(async () => {
      const r = await nc.request('$JS.API.INFO', undefined, { timeout: 1000 });
      const info = JSON.parse(new TextDecoder().decode(r.data)) as { error?: unknown };
      return !info.error;
    }, { timeoutMs: 20_000, intervalMs: 200, what: 'JetStream meta leader' });
  } finally {
    await nc.close();
  }
}
