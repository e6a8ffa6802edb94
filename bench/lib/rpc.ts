/**
 * Request/reply over a forked child's IPC channel: the benches drive their
 * servers and load generators (each its own process, so its CPU and memory
 * are measured apart) with `call(cmd, args)`; the child answers with `serve`.
 * Every call has a deadline, and a child that dies rejects what is pending.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

interface Request { rpc: number; cmd: string; args: unknown }
interface Response { rpc: number; ok: boolean; value?: unknown; error?: string }

/** A forked TypeScript child speaking the RPC protocol. */
export class Child {
  readonly proc: ChildProcess;
  readonly output: string[] = [];
  private next = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  private readonly exited: Promise<void>;
  private readyResolve!: (v: unknown) => void;
  /** The first message the child sends ({ ready: ... }). */
  readonly ready: Promise<unknown>;

  /**
   * Forks `script` (a path relative to bench/lib, run with tsx) with `env`
   * added to this process's environment. `nodeArgs` go before the script
   * (e.g. --expose-gc, --cpu-prof).
   */
  constructor(readonly name: string, script: string, env: Record<string, string> = {}, nodeArgs: string[] = []) {
    const path = fileURLToPath(new URL(script, import.meta.url));
    this.proc = fork(path, [], {
      execArgv: ['--import', 'tsx', ...nodeArgs],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    const keep = (d: Buffer) => {
      for (const l of String(d).split('\n')) if (l.trim()) this.output.push(l);
      if (this.output.length > 200) this.output.splice(0, this.output.length - 200);
      if (process.env.BENCH_VERBOSE) process.stderr.write(`[${name}] ${d}`);
    };
    this.proc.stdout!.on('data', keep);
    this.proc.stderr!.on('data', keep);
    this.ready = new Promise((resolve) => { this.readyResolve = resolve; });
    this.proc.on('message', (m: unknown) => {
      const r = m as Response & { ready?: unknown };
      if (r.ready !== undefined) return this.readyResolve(r.ready);
      const p = this.pending.get(r.rpc);
      if (!p) return;
      this.pending.delete(r.rpc);
      clearTimeout(p.timer);
      if (r.ok) p.resolve(r.value);
      else p.reject(new Error(`${name}: ${r.error}`));
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, sig) => {
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error(`${name} exited (${code ?? sig}) with a call pending:\n${this.output.slice(-15).join('\n')}`));
      }
      this.pending.clear();
      resolve();
    }));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Waits for the child's ready message (bounded). */
  async waitReady<T>(timeoutMs = 60_000): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const dead = this.exited.then(() => { throw new Error(`${this.name} exited before ready:\n${this.output.slice(-20).join('\n')}`); });
    const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${this.name} not ready after ${timeoutMs} ms:\n${this.output.slice(-20).join('\n')}`)), timeoutMs); });
    try {
      return (await Promise.race([this.ready, dead, late])) as T;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Calls `cmd` in the child; rejects after `timeoutMs`. */
  call<T = unknown>(cmd: string, args: unknown = {}, timeoutMs = 120_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) return reject(new Error(`${this.name} is not running`));
      const rpc = this.next++;
      const timer = setTimeout(() => {
        this.pending.delete(rpc);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(rpc, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.send({ rpc, cmd, args } satisfies Request);
    });
  }

  /** Asks the child to exit (`stop` command), then kills it if it has not within `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.call('stop', {}, graceMs).catch(() => {});
    const t = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  /** kill -9 (cleanup after a failure). */
  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/**
 * Child side: answers calls with `handlers[cmd](args)`. `stop` runs the
 * `stop` handler if any, answers, then exits the process.
 */
export function serve(handlers: Record<string, (args: never) => unknown>, ready: unknown = true): void {
  if (!process.send) throw new Error('serve() needs an IPC channel (run under fork)');
  process.on('message', (m: Request) => {
    if (typeof m?.rpc !== 'number') return;
    const h = handlers[m.cmd];
    Promise.resolve()
      .then(() => {
        if (!h && m.cmd !== 'stop') throw new Error(`unknown command ${m.cmd}`);
        return h ? h(m.args as never) : undefined;
      })
      .then(
        (value) => {
          process.send!({ rpc: m.rpc, ok: true, value } satisfies Response);
          if (m.cmd === 'stop') setTimeout(() => process.exit(0), 20);
        },
        (err: Error) => process.send!({ rpc: m.rpc, ok: false, error: err?.stack ?? String(err) } satisfies Response),
      );
  });
  // the parent going away ends the child too (no orphans after a failed run)
  process.on('disconnect', () => process.exit(0));
  process.send({ ready });
}
