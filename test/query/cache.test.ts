// The cache conformance suite on the memory twin and on a real redis-server
// (started by test/helpers/redis.ts; killed and restarted for the outage test).
import { MemoryCacheHub, MemoryCacheStore } from '../../cluster/query/cache-store.ts';
import { RedisCacheStore } from '../../adapters/redis/index.ts';
import { describeCache } from '../conformance/cache.ts';
import { startRedis } from '../helpers/redis.ts';

describeCache('memory', async () => {
  const hub = new MemoryCacheHub();
  return {
    a: new MemoryCacheStore(hub),
    b: new MemoryCacheStore(hub),
    close: async () => {},
    outage: { down: async () => hub.setDown(true), up: async () => hub.setDown(false) },
  };
});

describeCache('redis-server', async () => {
  const server = await startRedis();
  const a = await new RedisCacheStore({ url: server.url, prefix: 'chorus-test:', maxReconnectDelayMs: 200 }).connect();
  const b = await new RedisCacheStore({ url: server.url, prefix: 'chorus-test:', maxReconnectDelayMs: 200 }).connect();
  return {
    a, b,
    close: async () => {
      await a.close();
      await b.close();
      await server.stop();
    },
    outage: { down: () => server.kill(), up: () => server.restart() },
  };
});
