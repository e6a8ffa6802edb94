import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectNats, NatsKv, natsOptions } from '../../../adapters/nats/index.ts';
import type { KvEvent } from '../../../runtime/kv/kv.ts';
import { describeKv } from '../../conformance/kv.ts';
import { startNats, type NatsCluster } from '../../helpers/nats.ts';
import { waitFor } from '../../helpers/ports.ts';

let nats: NatsCluster;
before(async () => {
  nats = await startNats({ size: 1 });
});
after(async () => {
  await nats?.stop();
});

const opts = () => natsOptions({ servers: nats.urls, name: 'chorus-test' });

describeKv('nats', async () => {
  const kv = await NatsKv.connect(opts());
  return { kv, close: () => kv.close() };
});

const enc = new TextEncoder();

describe('NatsKv specifics', () => {
  test('a throwing watch handler is logged and the watch goes on', async () => {
    const errors: unknown[] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (o: object) => void errors.push(o), child() { return logger; } };
    const nc = await connectNats(opts());
    const kv = new NatsKv(nc, { logger });
    try {
      const b = await kv.bucket('throwing_watch');
      const seen: KvEvent[] = [];
      await b.watch('>', (e) => {
        seen.push(e);
        if (e.key === 'boom') throw new Error('boom');
      });
      await b.put('boom', enc.encode('1'));
      await b.put('after', enc.encode('2'));
      await waitFor(() => seen.length === 2, { what: 'both events' });
      assert.equal(errors.length, 1);
    } finally {
      await kv.close();
      await nc.close();
    }
  });

  test('invalid keys, filters and bucket names are refused with CHORUS_BAD_MESSAGE', async () => {
    const kv = await NatsKv.connect(opts());
    try {
      const b = await kv.bucket('validation');
      for (const k of ['', 'a..b', '.a', 'a.', 'a b', 'a.*', '>']) await assert.rejects(b.get(k), (e: any) => e.code === 'CHORUS_BAD_MESSAGE', `key ${JSON.stringify(k)}`);
      await assert.rejects(b.watch('a.>.b', () => {}), (e: any) => e.code === 'CHORUS_BAD_MESSAGE');
      await assert.rejects(kv.bucket('bad.name'), (e: any) => e.code === 'CHORUS_BAD_MESSAGE');
      await assert.rejects(kv.bucket('h', { history: 65 }), RangeError);
    } finally {
      await kv.close();
    }
  });

  test('buckets get the configured replicas; on one server R3 is refused with CHORUS_BACKEND', async () => {
    const kv = await NatsKv.connect(natsOptions({ servers: nats.urls, replicas: 3, apiTimeoutMs: 2000 }));
    try {
      await assert.rejects(kv.bucket('r3_on_one_server'), (e: any) => e.code === 'CHORUS_BACKEND' && e.cause !== undefined);
    } finally {
      await kv.close();
    }
  });
});
