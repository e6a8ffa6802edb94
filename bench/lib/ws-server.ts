/**
 * The raw ws peer (the ceiling): a minimal chat relay on the `ws` package.
 * A client joins one room from the URL (`/?room=R&user=U`); a text frame
 * `{"text": ...}` from it is parsed, wrapped once as
 * `{"type":"message","room","user","ts","text"}` and sent to every member of
 * the room, sender included. No auth, no persistence, no ordering state:
 * what a WebSocket server costs before any chat semantics.
 *
 * Run by the benches as a forked child (bench/lib/rpc.ts): answers `stats`,
 * `gc` and `stop`; env BENCH_PORT (default 0 = any).
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { profileHandlers } from './profiler.ts';
import { serve } from './rpc.ts';

const rooms = new Map<string, Set<WebSocket>>();
let connections = 0;
const server = createServer((_, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: false, maxPayload: 64 * 1024 });
wss.on('connection', (ws, req) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const room = url.searchParams.get('room') ?? 'lobby';
  const user = url.searchParams.get('user') ?? 'anon';
  let set = rooms.get(room);
  if (!set) rooms.set(room, (set = new Set()));
  set.add(ws);
  connections++;
  const members = set;
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let text: unknown;
    try {
      text = (JSON.parse(data.toString()) as { text?: unknown }).text;
    } catch {
      return;
    }
    if (typeof text !== 'string') return;
    const frame = JSON.stringify({ type: 'message', room, user, ts: Date.now(), text });
    for (const m of members) m.send(frame);
  });
  ws.on('close', () => {
    connections--;
    members.delete(ws);
    if (members.size === 0) rooms.delete(room);
  });
  ws.on('error', () => {});
});
server.listen(Number(process.env.BENCH_PORT ?? 0), process.env.BENCH_HOST ?? '127.0.0.1', 2048, () => {
  const addr = server.address();
  serve({
    ...profileHandlers,
    stats: () => ({ connections, rss: process.memoryUsage.rss(), heapUsed: process.memoryUsage().heapUsed }),
    gc: () => { (globalThis as { gc?: () => void }).gc?.(); return true; },
    stop: () => new Promise<void>((r) => server.close(() => r())),
  }, { port: typeof addr === 'object' && addr ? addr.port : 0 });
});
