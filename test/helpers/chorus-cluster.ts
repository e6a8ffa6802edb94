import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenSigner } from '../../cluster/edge/auth.ts';
import { NODE_FLAGS } from '../../cluster/node-flags.ts';
import { startNats, type NatsCluster } from './nats.ts';
import { freePort, waitFor } from './ports.ts';

/** The shared secret of test clusters. */
export const TEST_SECRET = 'chorus-test-secret-0123456789';

/** One Chorus node process. */
export interface NodeProc {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  proc: ChildProcess;
  /** Lines the process wrote (stdout and stderr), for diagnosis. */
  readonly output: string[];
  /** kill -9 */
  kill(): void;
  /** Resolves when the process has exited. */
  exited(): Promise<void>;
  running(): boolean;
}

/**
 * Where a node process runs when not on loopback: spawned through `prefix`
 * (e.g. `ip netns exec <ns>`, see test/helpers/netns.ts) and listening on
 * `host`, an address the test process can reach.
 */
export interface NodePlacement {
  prefix: readonly string[];
  host: string;
}

/** A NATS cluster plus Chorus node processes on loopback; disposing stops everything, even after a failure. */
export interface ChorusCluster extends AsyncDisposable {
  readonly nats: NatsCluster;
  readonly nodes: NodeProc[];
  readonly signer: TokenSigner;
  /** Operator token for /admin endpoints. */
  readonly operatorToken: string;
  /** Starts one more node and waits until it is ready (on loopback, or as `placement` says). */
  addNode(id?: string, env?: Record<string, string>, placement?: NodePlacement): Promise<NodeProc>;
  /** Base URLs of running nodes. */
  urls(): string[];
  /** GET an admin endpoint of a node. */
  admin<T = unknown>(node: NodeProc, path: string, method?: string): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Starts `natsServers` clustered nats-servers (JetStream, R3 when 3) and
 * `nodes` Chorus processes in the cluster profile, each on its own port, and
 * waits until every node is ready and all follow one placement table.
 */
export async function startChorusCluster(opts: { nodes?: number; natsServers?: number; env?: Record<string, string>; natsHost?: string } = {}): Promise<ChorusCluster> {
  const nats = await startNats({ size: opts.natsServers ?? 3, ...(opts.natsHost ? { host: opts.natsHost } : {}) });
  const dir = await mkdtemp(join(tmpdir(), 'chorus-cluster-'));
  const signer = new TokenSigner(TEST_SECRET);
  const operatorToken = signer.sign({ sub: 'operator', ws: ['*'], kind: 'operator' });
  const nodes: NodeProc[] = [];
  let next = 1;
  const replicas = nats.servers.length >= 3 ? '3' : '1';

  const addNode = async (id = `n${next++}`, env: Record<string, string> = {}, placement?: NodePlacement): Promise<NodeProc> => {
    const port = await freePort();
    const output: string[] = [];
    const host = placement?.host ?? '127.0.0.1';
    const [cmd, ...args] = [...(placement?.prefix ?? []), process.execPath, ...NODE_FLAGS, '--import', 'tsx', 'cluster/main.ts'];
    const proc = spawn(cmd!, args, {
      env: {
        ...process.env,
        CHORUS_PROFILE: 'cluster', CHORUS_NODE_ID: id, CHORUS_PORT: String(port), CHORUS_HOST: host,
        CHORUS_NATS_URL: nats.urls.join(','), CHORUS_NATS_REPLICAS: replicas, CHORUS_AUTH_SECRET: TEST_SECRET,
        CHORUS_DATA_DIR: join(dir, id), CHORUS_LOG_LEVEL: process.env.CHORUS_TEST_LOG_LEVEL ?? 'warn', ...opts.env, ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => { for (const l of String(d).split('\n')) if (l) output.push(l); if (output.length > 500) output.splice(0, output.length - 500); };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    const exit = new Promise<void>((r) => proc.once('exit', () => r()));
    const node: NodeProc = {
      id, port, url: `http://${host}:${port}`, proc, output,
      kill: () => { proc.kill('SIGKILL'); },
      exited: () => exit,
      running: () => proc.exitCode === null && proc.signalCode === null,
    };
    nodes.push(node);
    await waitFor(async () => {
      if (!node.running()) throw new Error(`node ${id} exited:\n${output.slice(-20).join('\n')}`);
      const r = await fetch(`${node.url}/readyz`).catch(() => undefined);
      return r?.status === 200;
    }, { timeoutMs: 30_000, intervalMs: 100, what: `node ${id} ready` });
    return node;
  };

  const stop = async () => {
    await Promise.all(nodes.map(async (n) => {
      if (n.running()) {
        n.proc.kill('SIGKILL');
        await n.exited();
      }
    }));
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < (opts.nodes ?? 3); i++) await addNode();
    const cluster: ChorusCluster = {
      nats, nodes, signer, operatorToken, addNode, stop,
      [Symbol.asyncDispose]: stop,
      urls: () => nodes.filter((n) => n.running()).map((n) => n.url),
      admin: async <T>(node: NodeProc, path: string, method = 'GET') => {
        const r = await fetch(`${node.url}${path}`, { method, headers: { authorization: `Bearer ${operatorToken}` } });
        if (!r.ok) throw new Error(`${path} on ${node.id}: ${r.status} ${await r.text()}`);
        return (await r.json()) as T;
      },
    };
    await waitStable(cluster);
    return cluster;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Waits until every running node follows one table whose members are exactly the running nodes. */
export async function waitStable(c: ChorusCluster, timeoutMs = 20_000): Promise<number> {
  let epoch = 0;
  await waitFor(async () => {
    const running = c.nodes.filter((n) => n.running());
    const views = await Promise.all(running.map((n) => c.admin<{ table: { epoch: number; members: Array<{ id: string }> } }>(n, '/admin/placement')));
    const e = views[0]!.table.epoch;
    const ids = running.map((n) => n.id).sort().join();
    epoch = e;
    return views.every((v) => v.table.epoch === e && v.table.members.map((m) => m.id).sort().join() === ids);
  }, { timeoutMs, intervalMs: 100, what: 'a stable placement table' });
  return epoch;
}
