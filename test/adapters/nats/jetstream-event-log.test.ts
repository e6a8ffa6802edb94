import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { JetStreamEventLog, singleStream } from '../../../adapters/nats/jetstream-event-log.ts';
import { JetStreamSnapshotStore } from '../../../adapters/nats/jetstream-snapshot-store.ts';
import { describeEventLog } from '../../conformance/event-log.ts';
import { startNats, type NatsCluster } from '../../helpers/nats.ts';

let nats: NatsCluster;
const conns: NatsConnection[] = [];
const newConn = async (servers: string[]) => {
  const nc = await connect({ servers, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  conns.push(nc);
  return nc;
};

before(async () => {
  nats = await startNats({ size: 1 });
});
after(async () => {
  for (const nc of conns) if (!nc.isClosed()) await nc.close();
  await nats?.stop();
});

const fixture = (layout: 'per-workspace' | 'single') => async () => {
  const open = async () => {
    const nc = await newConn(nats.urls);
    const opts = { tailDiscoveryMs: 200, ...(layout === 'single' ? { streamOf: singleStream('CHORUS_LOG_ALL'), subjectPrefix: 'one' } : {}) };
    return { nc, log: new JetStreamEventLog(nc, opts), snapshots: new JetStreamSnapshotStore(nc, { bucket: `SNAP_${layout === 'single' ? 'one' : 'ws'}` }) };
  };
  let cur = await open();
  return {
    log: cur.log,
    snapshots: cur.snapshots,
    async reopen() {
      await cur.log.close();
      await cur.nc.close();
      if (layout === 'per-workspace') {
        // the real thing: kill -9 the server and start it again on the same store
        nats.servers[0]!.kill();
        await new Promise((r) => nats.servers[0]!.proc.once('exit', r));
        await nats.servers[0]!.restart();
      }
      cur = await open();
      return { log: cur.log, snapshots: cur.snapshots };
    },
    async close() {
      await cur.log.close();
    },
  };
};

describeEventLog('JetStream R1, stream per workspace', fixture('per-workspace'));
describeEventLog('JetStream R1, single stream', fixture('single'));

describe('JetStreamSnapshotStore: snapshots in parts', () => {
  test('a replaced big snapshot leaves no part behind; a manifest whose part is missing is an error, not a short snapshot', async () => {
    const nc = await newConn(nats.urls);
    const store = new JetStreamSnapshotStore(nc, { bucket: 'SNAP_PARTS_T', partBytes: 64 * 1024 });
    const jsm = await jetstreamManager(nc);
    const partsLeft = async () => (await jsm.streams.info('KV_SNAP_PARTS_T_PARTS')).state.messages;
    const bytes = (n: number, salt: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + salt) & 0xff);
    await store.save('channel.w1.c1', { pos: 5, data: bytes(300 * 1024, 1) }); // 5 parts of 64 KiB
    assert.equal(await partsLeft(), 5);
    await store.save('channel.w1.c1', { pos: 6, data: bytes(200 * 1024, 2) }); // 4 parts; the 5 of pos 5 purged
    assert.equal(await partsLeft(), 4);
    await store.save('channel.w1.c1', { pos: 7, data: bytes(1000, 3) }); // inline
    assert.equal(await partsLeft(), 0, 'replaced by an inline snapshot: no part, no marker left');
    // a reader that finds a part gone (purged by a newer save) reads the entry again
    await store.save('channel.w1.c2', { pos: 1, data: bytes(150 * 1024, 4) });
    const parts = await new Kvm(nc).open('SNAP_PARTS_T_PARTS');
    await parts.purge('channel.w1.c2.1.2');
    await assert.rejects(store.load('channel.w1.c2'), /kept changing/, 'a manifest whose part is gone for good is an error, not a short snapshot');
  });
});

describe('JetStreamEventLog on a 3-server cluster (R3)', () => {
  test('kill -9 of the stream leader while appending loses no acknowledged append and stores none twice (G8)', { timeout: 60_000 }, async (t) => {
    const cluster = await startNats({ size: 3, name: `chorus-r3-${process.pid}` });
    const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100, timeout: 2000 });
    const log = new JetStreamEventLog(nc, { replicas: 3, operationTimeoutMs: 20_000, requestTimeoutMs: 1000 });
    const enc = (s: string) => new TextEncoder().encode(s);
    try {
      const writers = 4;
      const streams = Array.from({ length: writers }, (_, k) => `channel.wr3.c${k}`);
      await log.append(streams[0]!, { data: enc('warmup') });
      const acked = new Map<string, { stream: string; pos: number }>();
      const ackedAfterKill = { n: 0 };
      let killed = false;
      let stop = false;
      let failures = 0;
      let retriedDuplicates = 0;
      // each writer: one record at a time, like an actor's turn; a failed append is retried with the same dedup id
      const loops = streams.map(async (s, k) => {
        for (let i = 0; !stop; i++) {
          const id = `w${k}-${i}`;
          for (;;) {
            try {
              const r = await log.append(s, { data: enc(id), dedupId: id });
              acked.set(id, { stream: s, pos: r.pos });
              if (r.duplicate) retriedDuplicates++;
              if (killed) ackedAfterKill.n++;
              break;
            } catch {
              failures++;
              if (stop) return;
            }
          }
        }
      });
      const waitUntil = async (cond: () => boolean, what: string, ms = 30_000) => {
        const deadline = Date.now() + ms;
        while (!cond()) {
          if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      await waitUntil(() => acked.size >= 200, '200 appends before the kill');
      const jsm = await (await import('@nats-io/jetstream')).jetstreamManager(nc);
      const info = await jsm.streams.info('CHORUS_LOG_channel_wr3');
      assert.equal(info.config.num_replicas, 3);
      const leader = cluster.servers.find((s) => s.name === info.cluster?.leader) ?? cluster.servers[0]!;
      leader.kill();
      killed = true;
      await waitUntil(() => ackedAfterKill.n >= 200, '200 appends after the kill (new leader elected)');
      stop = true;
      await Promise.all(loops);

      // every acked append is there, at its acked position, with its data; no dedup id is stored twice
      for (const s of streams) {
        const entries = await log.read(s, 0, 100_000);
        const seen = new Set<string>();
        for (let i = 1; i < entries.length; i++) assert.ok(entries[i]!.pos > entries[i - 1]!.pos);
        for (const e of entries) {
          const id = new TextDecoder().decode(e.data);
          if (id === 'warmup') continue;
          assert.ok(!seen.has(id), `${id} stored twice`);
          seen.add(id);
          assert.equal(e.dedupId, id);
        }
        const byPos = new Map(entries.map((e) => [e.pos, new TextDecoder().decode(e.data)]));
        for (const [id, a] of acked) if (a.stream === s) assert.equal(byPos.get(a.pos), id, `acked ${id} at ${a.pos}`);
        // a writer's records are stored in the order it wrote them
        const order = entries.map((e) => new TextDecoder().decode(e.data)).filter((d) => d !== 'warmup').map((d) => Number(d.split('-')[1]));
        assert.deepEqual(order, [...order].sort((x, y) => x - y));
      }
      assert.ok(acked.size >= 400);
      // keep the numbers visible in the test output
      t.diagnostic(`acked ${acked.size}, failed append calls ${failures}, acks that were a retry's duplicate ${retriedDuplicates}, leader killed: ${leader.name}`);
    } finally {
      await log.close();
      await nc.close();
      await cluster.stop();
    }
  });
});
