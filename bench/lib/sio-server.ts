/**
 * The Socket.IO peer: Socket.IO 4 rooms over its WebSocket transport. A
 * client joins the room named in its handshake query; `post` (a text) is
 * broadcast to the room with `io.to(room).emit('msg', {room, user, ts,
 * text})`, sender included. With BENCH_REDIS_URL set, the node uses
 * @socket.io/redis-adapter (ioredis pub/sub) so several nodes share rooms.
 *
 * Run by the benches as a forked child (bench/lib/rpc.ts): answers `stats`,
 * `gc` and `stop`; env BENCH_PORT (default 0 = any).
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { profileHandlers } from './profiler.ts';
import { serve } from './rpc.ts';

const server = createServer();
const io = new Server(server, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, maxHttpBufferSize: 64 * 1024 });
let closeRedis: (() => Promise<void>) | undefined;
if (process.env.BENCH_REDIS_URL) {
  const { Redis } = await import('ioredis');
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const pub = new Redis(process.env.BENCH_REDIS_URL);
  const sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub));
  closeRedis = async () => { pub.disconnect(); sub.disconnect(); };
}
let connections = 0;
io.on('connection', (socket) => {
  const q = socket.handshake.query;
  const room = typeof q.room === 'string' ? q.room : 'lobby';
  const user = typeof q.user === 'string' ? q.user : 'anon';
  void socket.join(room);
  connections++;
  socket.on('post', (text: unknown) => {
    if (typeof text !== 'string') return;
    io.to(room).emit('msg', { room, user, ts: Date.now(), text });
  });
  socket.on('disconnect', () => { connections--; });
});
server.listen(Number(process.env.BENCH_PORT ?? 0), process.env.BENCH_HOST ?? '127.0.0.1', 2048, () => {
  const addr = server.address();
  serve({
    ...profileHandlers,
    stats: () => ({ connections, rss: process.memoryUsage.rss(), heapUsed: process.memoryUsage().heapUsed }),
    gc: () => { (globalThis as { gc?: () => void }).gc?.(); return true; },
    stop: async () => {
      io.disconnectSockets(true);
      await closeRedis?.();
      server.close();
    },
  }, { port: typeof addr === 'object' && addr ? addr.port : 0 });
});
