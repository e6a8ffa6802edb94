import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectNats, NatsOptionsError, NatsTransport, natsOptions, natsOptionsFrom, DEFAULT_NATS_OPTIONS } from '../../../adapters/nats/index.ts';
import { describeTransport } from '../../conformance/transport.ts';
import { startNats, type NatsCluster } from '../../helpers/nats.ts';
import { waitFor } from '../../helpers/ports.ts';

let nats: NatsCluster;
before(async () => {
  nats = await startNats({ size: 1 });
});
after(async () => {
  await nats?.stop();
});

const opts = () => natsOptions({ servers: nats.urls, name: 'chorus-test', prefix: 'ctest' });

describeTransport('nats', async () => {
  const a = await NatsTransport.connect(opts());
  const b = await NatsTransport.connect(opts());
  return { a, b, close: async () => { await a.close(); await b.close(); } };
});

const enc = new TextEncoder();
const dec = new TextDecoder();

describe('NatsTransport specifics', () => {
  test('a throwing handler is caught: the listener and subscriptions keep working', async () => {
    const errors: unknown[] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (o: object) => void errors.push(o), child() { return logger; } };
    const b = await NatsTransport.connect(opts(), { logger });
    const a = await NatsTransport.connect(opts());
    try {
      await b.listen('thrower', (data, reply) => {
        if (dec.decode(data) === 'boom') throw new Error('boom');
        reply?.(data);
      });
      let subCalls = 0;
      b.subscribe('ctest.sub.x', () => { subCalls++; throw new Error('sub boom'); });
      await b.listen('barrier', (_d, reply) => reply?.(new Uint8Array(0)));
      a.send('thrower', enc.encode('boom'));
      await assert.rejects(a.request('thrower', enc.encode('boom'), 300), (e: any) => e.code === 'CHORUS_ASK_TIMEOUT');
      a.publish('ctest.sub.x', enc.encode('1'));
      a.publish('ctest.sub.x', enc.encode('2'));
      await a.request('barrier', new Uint8Array(0), 5000);
      assert.equal(dec.decode(await a.request('thrower', enc.encode('ok'), 5000)), 'ok');
      await waitFor(() => subCalls === 2, { what: 'both subscription calls' });
      assert.ok(errors.length >= 4, `logged ${errors.length} handler errors`);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('invalid subjects and node ids throw BadMessageError at the call site', async () => {
    const t = await NatsTransport.connect(opts());
    try {
      const bad = (fn: () => unknown) => assert.throws(fn, (e: any) => e.code === 'CHORUS_BAD_MESSAGE');
      const data = new Uint8Array(1);
      bad(() => t.publish('', data));
      bad(() => t.publish('a..b', data));
      bad(() => t.publish('.a', data));
      bad(() => t.publish('a.', data));
      bad(() => t.publish('a b', data));
      bad(() => t.publish('a.*', data));
      bad(() => t.publish('a.>', data));
      bad(() => t.subscribe('a.>.b', () => {}));
      bad(() => t.subscribe('a..b', () => {}));
      bad(() => t.subscribe('a\tb', () => {}));
      bad(() => t.send('n.1', data));
      bad(() => t.send('*', data));
      bad(() => t.request('', data, 100));
      await assert.rejects(t.listen('a b', () => {}), (e: any) => e.code === 'CHORUS_BAD_MESSAGE');
      // valid ones
      t.subscribe('a.*.c', () => {}).dispose();
      t.subscribe('>', () => {}).dispose();
      t.subscribe('a.b*', () => {}).dispose();
      t.publish('chat.w1.c-2.msg', data);
      assert.equal(t.inboxOf('node-1'), 'ctest.node.node-1');
    } finally {
      await t.close();
    }
  });

  test('a transport on a shared connection leaves it open on close', async () => {
    const nc = await connectNats(opts());
    try {
      const t = new NatsTransport(nc, { prefix: 'ctest' });
      await t.listen('shared', (d, r) => r?.(d));
      await t.close();
      assert.equal(nc.isClosed(), false);
      const again = new NatsTransport(nc, { prefix: 'ctest' });
      await again.listen('shared', (d, r) => r?.(d));
      assert.equal(dec.decode(await again.request('shared', enc.encode('x'), 5000)), 'x');
      await again.close();
    } finally {
      await nc.close();
    }
  });

  test('connecting to a server that is not there fails with CHORUS_BACKEND', async () => {
    await assert.rejects(NatsTransport.connect(natsOptions({ servers: ['nats://127.0.0.1:1'], connectTimeoutMs: 1000 })), (e: any) => e.code === 'CHORUS_BACKEND' && e.cause !== undefined);
  });
});

describe('NATS options', () => {
  test('defaults when the environment says nothing; frozen', () => {
    const o = natsOptionsFrom({});
    assert.deepEqual({ ...o, servers: [...o.servers] }, { ...DEFAULT_NATS_OPTIONS, servers: [...DEFAULT_NATS_OPTIONS.servers] });
    assert.ok(Object.isFrozen(o) && Object.isFrozen(o.servers));
    assert.equal(o.reconnectWaitMs, 250);
    assert.equal(o.maxReconnectAttempts, -1);
  });

  test('reads CHORUS_NATS_* variables', () => {
    const o = natsOptionsFrom({
      CHORUS_NATS_URL: 'nats://10.0.0.1:4222, 10.0.0.2:4222 ,tls://user:pw@nats.example:4443',
      CHORUS_NATS_NAME: 'node-7',
      CHORUS_NATS_PREFIX: 'prod.chorus',
      CHORUS_NATS_REPLICAS: '3',
      CHORUS_NATS_RECONNECT_WAIT_MS: '500',
      CHORUS_NATS_MAX_RECONNECTS: '10',
      CHORUS_NATS_API_TIMEOUT_MS: '',
    });
    assert.deepEqual(o.servers, ['nats://10.0.0.1:4222', '10.0.0.2:4222', 'tls://user:pw@nats.example:4443']);
    assert.equal(o.name, 'node-7');
    assert.equal(o.prefix, 'prod.chorus');
    assert.equal(o.replicas, 3);
    assert.equal(o.reconnectWaitMs, 500);
    assert.equal(o.maxReconnectAttempts, 10);
    assert.equal(o.apiTimeoutMs, 5000);
  });

  test('lists every problem at once', () => {
    try {
      natsOptionsFrom({
        CHORUS_NATS_URL: 'http://x:1,,nats://ok:4222',
        CHORUS_NATS_PREFIX: 'bad prefix.*',
        CHORUS_NATS_REPLICAS: '7',
        CHORUS_NATS_CONNECT_TIMEOUT_MS: 'soon',
        CHORUS_NATS_MAX_RECONNECTS: '-5',
      });
      assert.fail('should throw');
    } catch (err) {
      assert.ok(err instanceof NatsOptionsError);
      const text = err.problems.join('\n');
      for (const needle of ['http:', 'empty URL', 'prefix', 'replicas', 'CHORUS_NATS_CONNECT_TIMEOUT_MS', 'maxReconnectAttempts']) assert.match(text, new RegExp(needle), `missing ${needle} in\n${text}`);
      assert.equal(err.problems.length, 6);
    }
    assert.throws(() => natsOptions({ servers: [] }), NatsOptionsError);
  });
});
