/**
 * A load-generator process (forked by the benches, driven over IPC with
 * bench/lib/rpc.ts). It holds up to ~19,000 WebSocket clients (one process
 * may have 20,000 open files) bound to one or more loopback source
 * addresses, and speaks three dialects over the same lean client:
 *
 * - `chorus`: the Chorus protocol (PROTOCOL.md): token in the query, hello,
 *   `subscribe`, then `post` commands; replies and events come back.
 * - `ws`: the raw ws relay peer (bench/lib/ws-server.ts): `{"text":...}` in,
 *   `{"type":"message",...,"text":...}` out to every member of the room.
 * - `sio`: Socket.IO 4 over its WebSocket transport (Engine.IO v4 packets:
 *   `0` open, `40` connect, `2`/`3` ping/pong, `42[...]` events).
 *
 * The client is a few dozen lines on `net` rather than the `ws` package:
 * with two cores, the generator shares the machine with the server, and a
 * client that does not validate UTF-8, parse JSON or emit events per frame
 * leaves the server more of the machine (and costs every system the same).
 * Client frames are masked with a zero key (valid per RFC 6455 5.3, and the
 * payload then goes out as is).
 *
 * Every posted text is `b:<client index>:<send time µs> ...`; a receiver
 * finds `"text":"b:` in the frame bytes and records now - send time. All
 * members of a channel live in one generator, so both times come from the
 * same clock. A post is complete when its sender receives it back (every
 * system delivers to the sender too); the saturation mode keeps a fixed
 * number of posts in flight that way.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { TokenSigner } from '../../cluster/edge/auth.ts';
import { serve } from './rpc.ts';
import { Histogram, type SparseHistogram } from './stats.ts';

/** Which server dialect the clients speak. */
export type Dialect = 'chorus' | 'ws' | 'sio';

/** The clients of one generator, as columns (cheap over IPC). */
export interface ClientPlan {
  dialect: Dialect;
  host: string;
  /** Server ports; `node[i]` picks one per client. */
  ports: number[];
  node: number[];
  /** Global client index (used in the post marker) per client. */
  index: number[];
  user: string[];
  /** Chorus: workspace and channel ids; ws/sio: room = `${ws}.${ch}`. */
  ws: string[];
  ch: string[];
  /** Loopback source addresses, used round-robin per client. */
  localAddresses: string[];
  /** Chorus: the shared token secret. */
  secret?: string;
  /** Chorus: subscribe to the client's channel once connected (default true). */
  subscribe?: boolean;
  /** Chorus: workspaces in the token (default: the client's own). */
  tokenWs?: 'own' | 'none';
  /** Opens in flight at once. Default 200. */
  concurrency?: number;
  /** Bytes of filler after the marker in each posted text. Default 60. */
  pad?: number;
}

/** One load phase. */
export interface PhaseSpec {
  /** 'rate': posts at `rate`/s from all clients in turn; 'window': keeps `window` posts in flight. */
  mode: 'rate' | 'window';
  rate?: number;
  window?: number;
  warmupMs: number;
  measureMs: number;
  /** After the window: most time to wait for posts still in flight. Default 5000. */
  drainMs?: number;
}

/** What a phase measured in this generator. */
export interface PhaseResult {
  sent: number;
  /** Deliveries received inside the measured window. */
  deliveries: number;
  /** Posts completed (echoed to their sender) inside the window. */
  completed: number;
  replies: number;
  errors: number;
  /** Posts given up after 10 s without their echo. */
  lost: number;
  closed: number;
  hist: SparseHistogram;
  measuredMs: number;
  /** CPU seconds this generator used during the window. */
  cpuSec: number;
  sampleError?: string;
}

const MARK = Buffer.from('"text":"b:');
const CRLF2 = Buffer.from('\r\n\r\n');
const LOST_AFTER_MS = 10_000;

/** One client connection. */
class Conn {
  sock: Socket | undefined;
  /** 0 connecting, 1 upgraded, 2 ready, 3 closed/failed. */
  state = 0;
  pending: Buffer | undefined;
  head: Buffer | undefined;
  /** Send time (ms, performance clock) of this client's post in flight, or 0. */
  inflightAt = 0;
  onReady: ((err?: string) => void) | undefined;
  constructor(readonly i: number) {}
}

let plan: ClientPlan | undefined;
let conns: Conn[] = [];
let paths: string[] = [];
const stats = {
  inPhase: false, measureFrom: 0, measureTo: 0, deliveries: 0, completed: 0, replies: 0, errors: 0, closed: 0, lost: 0, firstError: '' as string,
  hist: new Histogram(),
};
let postCounter = 0;
const idle: number[] = [];
let windowMode = false;
let phaseEnd = 0;
const pad = () => ' '.padEnd(plan?.pad ?? 60, 'lorem ipsum dolor sit amet ');
let filler = '';

function frameText(text: string): Buffer {
  const len = Buffer.byteLength(text);
  const hdr = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const b = Buffer.allocUnsafe(hdr + 4 + len);
  b[0] = 0x81;
  if (len < 126) b[1] = 0x80 | len;
  else if (len < 65536) {
    b[1] = 0x80 | 126;
    b.writeUInt16BE(len, 2);
  } else {
    b[1] = 0x80 | 127;
    b.writeUInt32BE(0, 2);
    b.writeUInt32BE(len, 6);
  }
  b.writeUInt32BE(0, hdr); // zero mask key: payload goes as is
  b.write(text, hdr + 4, 'utf8');
  return b;
}
const PONG_EMPTY = Buffer.from([0x8a, 0x80, 0, 0, 0, 0]);

function sendText(c: Conn, text: string): void {
  if (c.state >= 3 || !c.sock) return;
  c.sock.write(frameText(text));
}

/**
 * Local ports are chosen here, per source address, from a cursor that
 * starts at a random place in 10000-60999: binding to (address, 0) makes the
 * kernel search its port table on every connect, which grows quadratic past
 * ~10,000 sockets (a 50,000-socket run spent most of its time there). A port
 * still in use (TIME_WAIT of an earlier run, a listener) is skipped.
 */
const PORT_LO = 10_000;
const PORT_HI = 61_000;
const cursors = new Map<string, number>();
function nextPort(addr: string): number {
  const c = cursors.get(addr) ?? PORT_LO + Math.floor(Math.random() * (PORT_HI - PORT_LO));
  const n = c + 1 >= PORT_HI ? PORT_LO : c + 1;
  cursors.set(addr, n);
  return c;
}

function open(c: Conn, port: number, path: string, localAddress: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let done = false;
    let tries = 0;
    const finish = (err?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(err);
    };
    const timer = setTimeout(() => { finish('open timed out after 30 s'); c.sock?.destroy(); }, 30_000);
    c.onReady = finish;
    const attempt = () => {
      const sock = connect({ host: plan!.host, port, localAddress, localPort: nextPort(localAddress), noDelay: true });
      c.sock = sock;
      sock.on('connect', () => {
        sock.write(`GET ${path} HTTP/1.1\r\nHost: ${plan!.host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
      sock.on('data', (d: Buffer) => onData(c, d));
      sock.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EADDRINUSE' && c.state === 0 && ++tries < 200) {
          sock.removeAllListeners('close');
          sock.destroy();
          return attempt();
        }
        if (!stats.firstError) stats.firstError = e.message;
        finish(e.message);
      });
      sock.on('close', () => {
        if (c.state === 2 && stats.inPhase) stats.closed++;
        c.state = 3;
        finish('closed');
      });
    };
    attempt();
  });
}

function onData(c: Conn, d: Buffer): void {
  if (c.state === 0) {
    const buf: Buffer = c.head ? Buffer.concat([c.head, d]) : d;
    const end = buf.indexOf(CRLF2);
    if (end < 0) {
      c.head = buf;
      return;
    }
    c.head = undefined;
    const status = buf.subarray(0, Math.min(end, 200)).toString('latin1');
    if (!status.startsWith('HTTP/1.1 101')) {
      c.state = 3;
      c.onReady?.(`upgrade refused: ${status.split('\r\n')[0]} ${buf.subarray(end + 4, end + 204).toString()}`);
      c.sock?.destroy();
      return;
    }
    c.state = 1;
    if (plan!.dialect === 'ws') ready(c);
    d = buf.subarray(end + 4);
    if (d.length === 0) return;
  }
  let buf = c.pending ? Buffer.concat([c.pending, d]) : d;
  c.pending = undefined;
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const b0 = buf[off]!;
    let len = buf[off + 1]! & 0x7f;
    let h = 2;
    if (len === 126) {
      if (buf.length - off < 4) break;
      len = buf.readUInt16BE(off + 2);
      h = 4;
    } else if (len === 127) {
      if (buf.length - off < 10) break;
      len = buf.readUInt32BE(off + 6);
      h = 10;
    }
    if (buf.length - off < h + len) break;
    const payload = buf.subarray(off + h, off + h + len);
    off += h + len;
    const op = b0 & 0x0f;
    if (op === 1) onText(c, payload);
    else if (op === 9) c.sock?.write(PONG_EMPTY); // (pings carry no data from these servers)
    else if (op === 8) c.sock?.end();
  }
  if (off < buf.length) c.pending = Buffer.from(buf.subarray(off));
}

function ready(c: Conn): void {
  c.state = 2;
  c.onReady?.();
  c.onReady = undefined;
}

function onText(c: Conn, p: Buffer): void {
  const at = p.indexOf(MARK);
  if (at >= 0) return onDelivery(c, p, at + MARK.length);
  const dialect = plan!.dialect;
  if (dialect === 'chorus') {
    // {"type":"reply" / "hello" / "event" / "error"
    const t = p[9];
    if (t === 0x72 /* r */) {
      if (c.state === 1) {
        const s = p.toString();
        if (s.includes('"id":"s"')) {
          if (s.includes('"ok":true')) ready(c);
          else {
            c.onReady?.(`subscribe failed: ${s.slice(0, 300)}`);
            c.onReady = undefined;
          }
        }
        return;
      }
      stats.replies++;
      if (p.indexOf('"ok":false') >= 0) {
        stats.errors++;
        if (!stats.firstError) stats.firstError = p.toString().slice(0, 300);
      }
    } else if (t === 0x68 /* h */ && c.state === 1) {
      if (plan!.subscribe === false) return ready(c);
      sendText(c, `{"id":"s","op":"subscribe","ws":"${plan!.ws[c.i]}","ch":"${plan!.ch[c.i]}"}`);
    } else if (t === 0x65 /* e */ && p[10] === 0x72 /* error */) {
      stats.errors++;
      if (!stats.firstError) stats.firstError = p.toString().slice(0, 300);
    }
    return;
  }
  if (dialect === 'sio') {
    const t = p[0];
    if (t === 0x32 /* 2 ping */ && p.length === 1) return sendText(c, '3');
    if (t === 0x30 /* 0 open */ && c.state === 1) return sendText(c, '40');
    if (t === 0x34 && p[1] === 0x30 && c.state === 1) return ready(c); // 40{"sid":...}
    if (t === 0x34 && p[1] === 0x34) {
      stats.errors++;
      if (!stats.firstError) stats.firstError = p.toString().slice(0, 300);
    }
  }
}

function onDelivery(c: Conn, p: Buffer, i: number): void {
  const now = performance.now();
  let sender = 0;
  let ch: number;
  while ((ch = p[i++]!) !== 0x3a /* : */) sender = sender * 10 + (ch - 48);
  let tUs = 0;
  while ((ch = p[i++]!) >= 48 && ch <= 57) tUs = tUs * 10 + (ch - 48);
  if (!stats.inPhase) return;
  const inWindow = now >= stats.measureFrom && now < stats.measureTo;
  if (inWindow) {
    stats.deliveries++;
    stats.hist.record(now * 1000 - tUs);
  }
  if (sender === plan!.index[c.i] && c.inflightAt > 0) {
    c.inflightAt = 0;
    if (inWindow) stats.completed++;
    if (windowMode) {
      idle.push(c.i);
      if (now < phaseEnd) postNext();
    }
  }
}

function post(c: Conn): void {
  const t = performance.now();
  c.inflightAt = t;
  const text = `b:${plan!.index[c.i]}:${Math.round(t * 1000)}${filler}`;
  const d = plan!.dialect;
  if (d === 'chorus') sendText(c, `{"op":"post","ws":"${plan!.ws[c.i]}","ch":"${plan!.ch[c.i]}","text":"${text}","clientMsgId":"m${++postCounter}"}`);
  else if (d === 'ws') sendText(c, `{"text":"${text}"}`);
  else sendText(c, `42["post","${text}"]`);
  sent++;
}
let sent = 0;

/** Window mode: the next idle client posts. */
function postNext(): void {
  while (idle.length) {
    const i = idle.shift()!;
    const c = conns[i]!;
    if (c.state !== 2) continue;
    post(c);
    return;
  }
}

async function connectAll(p: ClientPlan): Promise<{ connected: number; failed: number; ms: number; firstFailure?: string }> {
  plan = p;
  filler = pad();
  const signer = p.dialect === 'chorus' ? new TokenSigner(p.secret!) : undefined;
  const n = p.user.length;
  conns = Array.from({ length: n }, (_, i) => new Conn(i));
  paths = p.user.map((u, i) => {
    if (p.dialect === 'chorus') {
      const token = signer!.sign({ sub: u, ws: p.tokenWs === 'none' ? [] : [p.ws[i]!] });
      return `/ws?token=${token}&device=bench`;
    }
    const room = `${p.ws[i]}.${p.ch[i]}`;
    if (p.dialect === 'ws') return `/?room=${room}&user=${u}`;
    return `/socket.io/?EIO=4&transport=websocket&room=${room}&user=${u}`;
  });
  const t0 = performance.now();
  let next = 0;
  let connected = 0;
  let failed = 0;
  let firstFailure: string | undefined;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const err = await open(conns[i]!, p.ports[p.node[i]!]!, paths[i]!, p.localAddresses[i % p.localAddresses.length]!);
      if (err) {
        failed++;
        firstFailure ??= err;
        conns[i]!.sock?.destroy();
      } else connected++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, p.concurrency ?? 200) }, worker));
  return { connected, failed, ms: Math.round(performance.now() - t0), ...(firstFailure ? { firstFailure } : {}) };
}

async function phase(s: PhaseSpec): Promise<PhaseResult> {
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  stats.deliveries = stats.completed = stats.replies = stats.errors = stats.closed = stats.lost = 0;
  stats.firstError = '';
  stats.hist = new Histogram();
  stats.measureFrom = start + s.warmupMs;
  stats.measureTo = stats.measureFrom + s.measureMs;
  stats.inPhase = true;
  phaseEnd = stats.measureTo;
  sent = 0;
  for (const c of conns) c.inflightAt = 0;
  idle.length = 0;
  const order = conns.filter((c) => c.state === 2).map((c) => c.i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  windowMode = s.mode === 'window';
  let cpuAtFrom: NodeJS.CpuUsage | undefined;
  let cpuAtTo: NodeJS.CpuUsage | undefined;
  await new Promise<void>((resolve) => {
    let rr = 0;
    const sweep = setInterval(() => {
      const now = performance.now();
      if (!cpuAtFrom && now >= stats.measureFrom) cpuAtFrom = process.cpuUsage();
      if (!cpuAtTo && now >= stats.measureTo) cpuAtTo = process.cpuUsage();
      for (const c of conns) {
        if (c.inflightAt > 0 && now - c.inflightAt > LOST_AFTER_MS) {
          c.inflightAt = 0;
          stats.lost++;
          if (windowMode) {
            idle.push(c.i);
            if (now < phaseEnd) postNext();
          }
        }
      }
    }, 100);
    let ticker: NodeJS.Timeout | undefined;
    if (windowMode) {
      idle.push(...order);
      for (let k = 0; k < (s.window ?? 100); k++) postNext();
    } else {
      const rate = s.rate ?? 100;
      let due = 0;
      ticker = setInterval(() => {
        const now = performance.now();
        if (now >= phaseEnd) return;
        const want = Math.floor(((now - start) * rate) / 1000);
        while (due < want) {
          due++;
          // next client with nothing in flight (a client never has two posts out)
          for (let tries = 0; tries < order.length; tries++) {
            const c = conns[order[rr++ % order.length]!]!;
            if (c.state === 2 && c.inflightAt === 0) {
              post(c);
              break;
            }
          }
        }
      }, 1);
    }
    // after the window, stop posting and let what is in flight arrive (not
    // counted; bounded by drainMs), so the next phase starts on an idle system
    setTimeout(() => {
      if (ticker) clearInterval(ticker);
      cpuAtTo ??= process.cpuUsage();
      const until = performance.now() + (s.drainMs ?? 5000);
      const drained = setInterval(() => {
        if (performance.now() < until && conns.some((c) => c.inflightAt > 0 && c.state === 2)) return;
        clearInterval(drained);
        clearInterval(sweep);
        stats.inPhase = false;
        resolve();
      }, 20);
    }, s.warmupMs + s.measureMs);
  });
  const a = cpuAtFrom ?? cpu0;
  const b = cpuAtTo!;
  return {
    sent, deliveries: stats.deliveries, completed: stats.completed, replies: stats.replies, errors: stats.errors, lost: stats.lost, closed: stats.closed,
    hist: stats.hist.sparse(), measuredMs: s.measureMs, cpuSec: (b.user + b.system - a.user - a.system) / 1e6,
    ...(stats.firstError ? { sampleError: stats.firstError } : {}),
  };
}

async function closeAll(): Promise<number> {
  let n = 0;
  for (const c of conns) {
    if (c.sock && !c.sock.destroyed) {
      c.sock.destroy();
      n++;
    }
  }
  conns = [];
  return n;
}

serve({
  connect: (p: ClientPlan) => connectAll(p),
  phase: (s: PhaseSpec) => phase(s),
  open: () => conns.filter((c) => c.state === 2).length,
  close: () => closeAll(),
  stop: () => closeAll(),
});
