/**
 * Options of the NATS adapters: defaults, validation that lists every
 * problem, then a frozen object. Only the composition root reads the
 * environment; it hands `process.env` to `natsOptionsFrom`.
 */

/** Connection and naming options shared by NatsTransport, NatsKv (and the JetStream event log). */
export interface NatsOptions {
  /** Server URLs (`nats://host:port`, `tls://host:port` or `host:port`); credentials may sit in the URL. Default `['nats://127.0.0.1:4222']`. */
  readonly servers: readonly string[];
  /** Client name shown by the server's monitoring (`/connz`). Default `'chorus'`. */
  readonly name: string;
  /** First token(s) of every subject Chorus uses, so several clusters can share one NATS. Default `'chorus'`. */
  readonly prefix: string;
  /** How long the first connect may take, in ms. Default 5000. */
  readonly connectTimeoutMs: number;
  /** Wait between reconnect attempts, in ms. Default 250: a killed server is left fast. */
  readonly reconnectWaitMs: number;
  /** Random extra wait added to each reconnect attempt, in ms, so clients do not reconnect in lockstep. Default 100. */
  readonly reconnectJitterMs: number;
  /** Reconnect attempts per server before giving up; -1 is forever. Default -1. */
  readonly maxReconnectAttempts: number;
  /** Interval of client pings, in ms; `maxPingOut` unanswered pings mark the connection stale (a paused server). Default 5000. */
  readonly pingIntervalMs: number;
  /** Unanswered pings before the client reconnects elsewhere. Default 2. */
  readonly maxPingOut: number;
  /** Timeout of JetStream API calls and acknowledged publishes (KV writes), in ms. Default 5000. */
  readonly apiTimeoutMs: number;
  /** Replicas of the KV buckets (and streams) this adapter creates: 1 on a single server, 3 in a cluster. Default 1. */
  readonly replicas: number;
}

/** The defaults (single local server, reconnect forever every 250 ms). */
export const DEFAULT_NATS_OPTIONS: Readonly<NatsOptions> = Object.freeze({
  servers: Object.freeze(['nats://127.0.0.1:4222']),
  name: 'chorus',
  prefix: 'chorus',
  connectTimeoutMs: 5000,
  reconnectWaitMs: 250,
  reconnectJitterMs: 100,
  maxReconnectAttempts: -1,
  pingIntervalMs: 5000,
  maxPingOut: 2,
  apiTimeoutMs: 5000,
  replicas: 1,
});

/** Thrown when options are invalid; `problems` lists every one of them. */
export class NatsOptionsError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid NATS options:\n  - ${problems.join('\n  - ')}`);
    this.name = 'NatsOptionsError';
  }
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** Returns every problem with `o` (empty when valid). */
export function validateNatsOptions(o: NatsOptions): string[] {
  const problems: string[] = [];
  if (!Array.isArray(o.servers) || o.servers.length === 0) problems.push('servers must list at least one URL');
  else for (const s of o.servers) {
    const p = serverProblem(s);
    if (p) problems.push(p);
  }
  if (typeof o.name !== 'string' || o.name.length === 0 || /\s/.test(o.name)) problems.push(`name must be a non-empty string without spaces (got ${JSON.stringify(o.name)})`);
  if (typeof o.prefix !== 'string' || !o.prefix.split('.').every((t) => TOKEN.test(t))) {
    problems.push(`prefix must be dot-separated tokens of [A-Za-z0-9_-] (got ${JSON.stringify(o.prefix)})`);
  }
  const positive: (keyof NatsOptions)[] = ['connectTimeoutMs', 'reconnectWaitMs', 'pingIntervalMs', 'apiTimeoutMs'];
  for (const k of positive) if (!isInt(o[k]) || (o[k] as number) <= 0) problems.push(`${k} must be a positive integer of ms (got ${String(o[k])})`);
  if (!isInt(o.reconnectJitterMs) || o.reconnectJitterMs < 0) problems.push(`reconnectJitterMs must be an integer >= 0 (got ${String(o.reconnectJitterMs)})`);
  if (!isInt(o.maxReconnectAttempts) || o.maxReconnectAttempts < -1) problems.push(`maxReconnectAttempts must be -1 (forever) or an integer >= 0 (got ${String(o.maxReconnectAttempts)})`);
  if (!isInt(o.maxPingOut) || o.maxPingOut < 1) problems.push(`maxPingOut must be an integer >= 1 (got ${String(o.maxPingOut)})`);
  // JetStream allows 1 to 5 replicas; an even count only adds latency
  if (!isInt(o.replicas) || o.replicas < 1 || o.replicas > 5) problems.push(`replicas must be an integer from 1 to 5 (got ${String(o.replicas)})`);
  return problems;
}

/** Defaults, then `partial`, validated and frozen. Throws NatsOptionsError listing every problem. */
export function natsOptions(partial: Partial<NatsOptions> = {}): Readonly<NatsOptions> {
  const o: NatsOptions = { ...DEFAULT_NATS_OPTIONS, ...stripUndefined(partial) };
  const problems = validateNatsOptions(o);
  if (problems.length) throw new NatsOptionsError(problems);
  return Object.freeze({ ...o, servers: Object.freeze([...o.servers]) });
}

/**
 * Reads options from environment variables (unset or empty ones keep their default):
 * - `CHORUS_NATS_URL`: comma-separated server URLs
 * - `CHORUS_NATS_NAME`, `CHORUS_NATS_PREFIX`
 * - `CHORUS_NATS_CONNECT_TIMEOUT_MS`, `CHORUS_NATS_RECONNECT_WAIT_MS`, `CHORUS_NATS_RECONNECT_JITTER_MS`,
 *   `CHORUS_NATS_MAX_RECONNECTS` (-1 forever), `CHORUS_NATS_PING_INTERVAL_MS`, `CHORUS_NATS_MAX_PING_OUT`,
 *   `CHORUS_NATS_API_TIMEOUT_MS`, `CHORUS_NATS_REPLICAS`
 * Unparsable numbers and invalid values are all reported together in one NatsOptionsError.
 */
export function natsOptionsFrom(env: Record<string, string | undefined>): Readonly<NatsOptions> {
  const problems: string[] = [];
  const partial: { -readonly [K in keyof NatsOptions]?: NatsOptions[K] } = {};
  const str = (name: string) => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const int = (name: string): number | undefined => {
    const v = str(name);
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v)) {
      problems.push(`${name} must be an integer (got ${JSON.stringify(v)})`);
      return undefined;
    }
    return Number(v);
  };
  const url = str('CHORUS_NATS_URL');
  if (url !== undefined) partial.servers = url.split(',').map((s) => s.trim());
  partial.name = str('CHORUS_NATS_NAME');
  partial.prefix = str('CHORUS_NATS_PREFIX');
  partial.connectTimeoutMs = int('CHORUS_NATS_CONNECT_TIMEOUT_MS');
  partial.reconnectWaitMs = int('CHORUS_NATS_RECONNECT_WAIT_MS');
  partial.reconnectJitterMs = int('CHORUS_NATS_RECONNECT_JITTER_MS');
  partial.maxReconnectAttempts = int('CHORUS_NATS_MAX_RECONNECTS');
  partial.pingIntervalMs = int('CHORUS_NATS_PING_INTERVAL_MS');
  partial.maxPingOut = int('CHORUS_NATS_MAX_PING_OUT');
  partial.apiTimeoutMs = int('CHORUS_NATS_API_TIMEOUT_MS');
  partial.replicas = int('CHORUS_NATS_REPLICAS');
  const o: NatsOptions = { ...DEFAULT_NATS_OPTIONS, ...stripUndefined(partial) };
  problems.push(...validateNatsOptions(o));
  if (problems.length) throw new NatsOptionsError(problems);
  return Object.freeze({ ...o, servers: Object.freeze([...o.servers]) });
}

function serverProblem(s: unknown): string | undefined {
  if (typeof s !== 'string' || s.length === 0) return 'servers must not contain an empty URL';
  if (/\s/.test(s)) return `server URL ${JSON.stringify(s)} contains whitespace`;
  let u: URL;
  try {
    u = new URL(s.includes('://') ? s : `nats://${s}`);
  } catch {
    return `server URL ${JSON.stringify(s)} is not a URL`;
  }
  if (u.protocol !== 'nats:' && u.protocol !== 'tls:') return `server URL ${JSON.stringify(s)} must use nats:// or tls:// (got ${u.protocol})`;
  if (!u.hostname) return `server URL ${JSON.stringify(s)} has no host`;
  return undefined;
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
