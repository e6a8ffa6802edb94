/**
 * Helpers of the reliability suite: raw WebSocket clients that send anything
 * (text, binary, invalid UTF-8) and record every frame and the close, a
 * bystander that measures its ping round-trip while others attack the node,
 * the error catalogue of docs/errors.md, and latency statistics.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { waitFor } from '../helpers/ports.ts';

export { waitFor };

/** Every code of docs/errors.md: an error frame must carry one of them. */
export const CATALOGUE: ReadonlySet<string> = new Set(
  [...readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8').matchAll(/^\|\s*`([A-Z][A-Z0-9_]+)`/gm)].map((m) => m[1]!),
);

/** A server frame as the raw client saw it (or `undefined` when it was not JSON: itself a failure). */
export type Frame = Record<string, any>;

/** A WebSocket that records everything; `ask` correlates by id, `next` waits for the next reply or error frame. */
export class RawClient {
  readonly frames: Frame[] = [];
  /** Frames that were not JSON text (the server never sends such: a test fails on any). */
  readonly garbage: string[] = [];
  closed: { code: number; reason: string } | undefined;
  private nextId = 1;
  /** Checks run on every frame and on the close (no polling: round-trips are measured to the millisecond). */
  private readonly waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d, isBinary) => {
      if (isBinary) this.garbage.push('<binary>');
      else {
        try {
          this.frames.push(JSON.parse(String(d)));
        } catch {
          this.garbage.push(String(d).slice(0, 200));
        }
      }
      for (const w of [...this.waiters]) w();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) };
      for (const w of [...this.waiters]) w();
    });
    ws.on('error', () => {});
  }

  /** Resolves with the first truthy value of `check`, run now and after every frame and the close. */
  until<T>(check: () => T | undefined, timeoutMs = 10_000, what = 'a frame'): Promise<T> {
    return new Promise((resolve, reject) => {
      const run = () => {
        const v = check();
        if (!v) return;
        this.waiters.delete(run);
        clearTimeout(timer);
        resolve(v);
      };
      const timer = setTimeout(() => { this.waiters.delete(run); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)); }, timeoutMs);
      this.waiters.add(run);
      run();
    });
  }

  /** Opens a socket with `token` and waits for the hello frame. */
  static async open(baseUrl: string, token: string, opts: { localAddress?: string } = {}): Promise<RawClient> {
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(token)}`, { ...opts, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    const c = new RawClient(ws);
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`))); });
    await c.until(() => c.frames.some((f) => f.type === 'hello'), 10_000, 'hello');
    return c;
  }

  /** Reply and error frames (not events) received so far. */
  get answers(): Frame[] {
    return this.frames.filter((f) => f.type === 'reply' || f.type === 'error');
  }

  /** Sends a request with a fresh id and waits for its reply. */
  async ask(frame: Record<string, unknown>, timeoutMs = 10_000): Promise<Frame> {
    const id = `r${this.nextId++}`;
    this.ws.send(JSON.stringify({ ...frame, id }));
    let i = 0;
    return this.until(() => {
      for (; i < this.frames.length; i++) if (this.frames[i]!.type === 'reply' && this.frames[i]!.id === id) return this.frames[i];
      return this.closed ? { type: 'closed', ...this.closed } : undefined;
    }, timeoutMs, `reply to ${String(frame.op)}`);
  }

  /**
   * Sends raw data and waits for what it caused: the next reply or error
   * frame (one the client has not looked at yet), or the close.
   */
  async send(data: string | Buffer, opts: { binary?: boolean; timeoutMs?: number } = {}): Promise<Frame> {
    const before = this.answerCount();
    this.ws.send(data, { binary: opts.binary ?? typeof data !== 'string' });
    return this.nextAnswer(before, opts.timeoutMs);
  }

  /** Waits for the answer after the `before`-th one, or the close. */
  async nextAnswer(before: number, timeoutMs = 10_000): Promise<Frame> {
    return this.until(() => {
      const a = this.answers;
      if (a.length > before) return a[before];
      return this.closed ? { type: 'closed', ...this.closed } : undefined;
    }, timeoutMs, 'an answer or a close');
  }

  answerCount(): number {
    return this.answers.length;
  }

  /** Resolves when the socket is closed (by either side). */
  async waitClosed(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    return this.until(() => this.closed, timeoutMs, 'close');
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Checks that `f` is a typed error (reply or error frame): a catalogued code and a message; returns the code. */
export function typedError(f: Frame, id?: unknown): string {
  const e = f.type === 'reply' && f.ok === false ? f.error : f.type === 'error' ? f.error : undefined;
  if (!e) throw new Error(`expected an error frame, got ${JSON.stringify(f).slice(0, 300)}`);
  if (typeof e.code !== 'string' || !CATALOGUE.has(e.code)) throw new Error(`error code ${JSON.stringify(e.code)} is not in docs/errors.md`);
  if (typeof e.message !== 'string' || !e.message) throw new Error(`error ${e.code} has no message`);
  if (id !== undefined && f.id !== id) throw new Error(`error reply carries id ${JSON.stringify(f.id)}, expected ${JSON.stringify(id)}`);
  return e.code;
}

/** Checks that `f` is a close with a reason text; returns its code. */
export function closeWithReason(f: Frame): number {
  if (f.type !== 'closed') throw new Error(`expected a close, got ${JSON.stringify(f).slice(0, 300)}`);
  if (!f.reason) throw new Error(`close ${f.code} has no reason`);
  return f.code;
}

/** Either a typed error or a close with a reason: the only acceptable outcomes of hostile input. */
export function typedOutcome(f: Frame, id?: unknown): string {
  return f.type === 'closed' ? `close ${closeWithReason(f)}` : typedError(f, id);
}

/** Nearest-rank percentile statistics of a list of durations (ms). */
export function stats(xs: readonly number[]): { n: number; p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : NaN);
  return { n: s.length, p50: round(at(50)), p99: round(at(99)), max: round(s.at(-1) ?? NaN) };
}
function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/**
 * A well-behaved user pinging the edge in a loop (one ping in flight, the
 * next right after the answer, at most `ratePerSec`), recording each
 * round-trip under the current phase name: what an attack costs everyone else.
 */
export class Bystander {
  private phase = 'baseline';
  readonly samples = new Map<string, number[]>();
  private running = true;
  private loop: Promise<void>;
  errors = 0;

  constructor(readonly client: RawClient, ratePerSec = 15) {
    const gap = 1000 / ratePerSec;
    this.loop = (async () => {
      while (this.running && !client.closed) {
        const t0 = performance.now();
        const r = await client.ask({ op: 'ping' }, 30_000).catch(() => undefined);
        const dt = performance.now() - t0;
        if (r?.ok) {
          const list = this.samples.get(this.phase) ?? [];
          list.push(dt);
          this.samples.set(this.phase, list);
        } else this.errors++;
        const wait = gap - (performance.now() - t0);
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait)); // pacing, not a wait for a condition
      }
    })();
  }

  /** Starts recording under `name`. */
  mark(name: string): void {
    this.phase = name;
    this.samples.set(name, this.samples.get(name) ?? []);
  }

  /** Waits until the current phase has `n` samples. */
  async atLeast(n: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(() => (this.samples.get(this.phase)?.length ?? 0) >= n, { timeoutMs, what: `${n} bystander round-trips in ${this.phase}` });
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Per-phase statistics. */
  report(): Record<string, ReturnType<typeof stats>> {
    return Object.fromEntries([...this.samples].map(([k, v]) => [k, stats(v)]));
  }
}

/** GET /healthz answers 200. */
export async function healthy(baseUrl: string): Promise<boolean> {
  const r = await fetch(`${baseUrl}/healthz`);
  await r.arrayBuffer();
  return r.status === 200;
}

/** Signs in to the demo workspace through the dev endpoint; the token and the demo channel ids. */
export async function devSignIn(baseUrl: string, user: string): Promise<{ token: string; channels: string[] }> {
  const r = await fetch(`${baseUrl}/api/dev/signin`, { method: 'POST', body: JSON.stringify({ user }), headers: { 'content-type': 'application/json' } });
  const body = (await r.json()) as { token: string; channels: string[]; message?: string };
  if (!r.ok) throw new Error(`signin failed: ${body.message}`);
  return body;
}

/** Sends a write or read with a fresh clientMsgId (set-up steps), asserts it succeeded and returns its result. */
export async function okAsk(c: RawClient, frame: Record<string, unknown>): Promise<any> {
  const r = await c.ask({ clientMsgId: `m-${Math.random().toString(36).slice(2)}`, ...frame });
  assert.equal(r.ok, true, `${String(frame.op)}: ${JSON.stringify(r.error ?? r)}`);
  return r.result;
}

/** Raw clients of users with tokens signed by a node's signer, closed together after the tests. */
export class ClientPool {
  private readonly open: RawClient[] = [];
  /** A socket of `user` whose token grants `ws`. */
  async client(node: { url: string; signer: { sign(c: { sub: string; ws: readonly string[] }): string } }, user: string, ws: string[]): Promise<RawClient> {
    const c = await RawClient.open(node.url, node.signer.sign({ sub: user, ws }));
    this.open.push(c);
    return c;
  }
  closeAll(): void {
    for (const c of this.open) c.close();
  }
}
