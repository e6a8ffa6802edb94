/**
 * Helpers of the files tests: raw uploads over HTTP (fetch, or node:http for
 * cut connections), deterministic large bodies, metric reads.
 */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import type { RunningNode } from '../../cluster/bootstrap.ts';

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** What the files API answered. */
export interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

/** POST /api/files with fetch; `sha` defaults to the body's real sha256. */
export async function upload(node: RunningNode, token: string, q: { ws: string; ch: string; name?: string }, body: Uint8Array, opts: { type?: string; sha?: string } = {}): Promise<Answer> {
  const params = new URLSearchParams({ ws: q.ws, ch: q.ch, name: q.name ?? 'f.bin' });
  const r = await fetch(`${node.url}/api/files?${params}`, {
    method: 'POST', body, headers: { authorization: `Bearer ${token}`, 'content-type': opts.type ?? 'application/octet-stream', 'x-chorus-sha256': opts.sha ?? sha256(body) },
  });
  return { status: r.status, body: (await r.json().catch(() => ({}))) as Record<string, unknown>, headers: r.headers };
}

/** GET a files API path with a token, no redirect following. */
export async function get(node: RunningNode, path: string, token?: string): Promise<Answer> {
  const r = await fetch(`${node.url}${path}`, { redirect: 'manual', headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await r.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: r.status, body, headers: r.headers };
}

/** `n` deterministic pseudo-random bytes in chunks of `chunk` (the same for the same seed), without holding them all. */
export function* blocks(n: number, chunk = 1024 * 1024, seed = 1): Generator<Buffer> {
  let s = seed;
  const base = Buffer.alloc(chunk);
  for (let i = 0; i < chunk; i += 4) base.writeUInt32LE((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), i);
  for (let off = 0, k = 0; off < n; off += chunk, k++) {
    const b = Buffer.from(base.subarray(0, Math.min(chunk, n - off)));
    b.writeUInt32LE(k, 0); // every block differs
    yield b;
  }
}

/** sha256 of `blocks(n, chunk, seed)`. */
export function blocksSha(n: number, chunk = 1024 * 1024, seed = 1): string {
  const h = createHash('sha256');
  for (const b of blocks(n, chunk, seed)) h.update(b);
  return h.digest('hex');
}

/**
 * Streams a body over node:http with back-pressure. `cutAfter`: destroy the
 * socket after that many bytes (a truncated upload). Resolves with the answer
 * or `{ status: 0 }` when the connection died first.
 */
export function streamUpload(node: RunningNode, token: string, q: { ws: string; ch: string; name?: string }, body: Iterable<Buffer>, o: {
  sha: string; type?: string; contentLength?: number; cutAfter?: number;
}): Promise<{ status: number; body: Record<string, unknown> }> {
  const u = new URL(`${node.url}/api/files?${new URLSearchParams({ ws: q.ws, ch: q.ch, name: q.name ?? 'big.bin' })}`);
  return new Promise((resolve) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': o.type ?? 'application/octet-stream', 'x-chorus-sha256': o.sha };
    if (o.contentLength !== undefined) headers['content-length'] = String(o.contentLength);
    const req = request({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: 'POST', headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString() || '{}') as Record<string, unknown> }));
      res.on('error', () => resolve({ status: 0, body: {} }));
    });
    req.on('error', () => resolve({ status: 0, body: {} }));
    const it = body[Symbol.iterator]();
    let sent = 0;
    const pump = () => {
      for (;;) {
        const n = it.next();
        if (n.done) return void req.end();
        if (o.cutAfter !== undefined && sent + n.value.length > o.cutAfter) {
          req.write(n.value.subarray(0, o.cutAfter - sent), () => req.destroy());
          return;
        }
        sent += n.value.length;
        if (!req.write(n.value)) return void req.once('drain', pump);
      }
    };
    pump();
  });
}

/** The value of a counter or gauge sample on the node's /metrics (0 when absent). */
export async function metric(node: RunningNode, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}
