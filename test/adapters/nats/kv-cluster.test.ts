import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, NatsKv, NatsTransport, natsOptions } from '../../../adapters/nats/index.ts';
import type { KvEvent } from '../../../runtime/kv/kv.ts';
import { startNats, type NatsCluster } from '../../helpers/nats.ts';
import { waitFor } from '../../helpers/ports.ts';

let nats: NatsCluster;
before(async () => {
  nats = await startNats({ size: 3 });
});
after(async () => {
  await nats?.stop();
});

const enc = new TextEncoder();
const dec = new TextDecoder();

// checkAPI: false skips the account info request, which the meta leader answers: it may be electing too
async function leaderOf(nc: NatsConnection, stream: string): Promise<string | undefined> {
  const jsm = await jetstreamManager(nc, { timeout: 2000, checkAPI: false });
  return (await jsm.streams.info(stream)).cluster?.leader;
}

async function consumerHosts(nc: NatsConnection, stream: string): Promise<(string | undefined)[]> {
  const jsm = await jetstreamManager(nc, { timeout: 2000, checkAPI: false });
  const hosts: (string | undefined)[] = [];
  for await (const ci of jsm.consumers.list(stream)) hosts.push(ci.cluster?.leader);
  return hosts;
}

describe('NATS cluster: R3 KV and transport across kill -9 of one server', () => {
  test('put/get/CAS, a watcher and request/reply keep working after the stream leader (and the client\'s server) is killed', async (t) => {
    const opts = natsOptions({ servers: nats.urls, name: 'chorus-cluster-test', prefix: 'ctest', replicas: 3, apiTimeoutMs: 2000 });
    const setup = await NatsKv.connect(opts);
    // right after startup the meta leader may not know all three peers yet: "no suitable peers for placement"
    await waitFor(() => setup.bucket('cluster_kv'), { timeoutMs: 20_000, intervalMs: 250, what: 'an R3 bucket to be placeable' });
    await setup.close();

    // the victim is the bucket's stream leader; the client under test is connected to it, so it must also reconnect
    const probe = await connectNats(opts);
    const leader = await leaderOf(probe, 'KV_cluster_kv');
    await probe.close();
    const victim = nats.servers.find((s) => s.name === leader);
    assert.ok(victim, `stream leader ${leader} is one of ours`);
    let nc: NatsConnection | undefined;
    for (let i = 0; i < 40 && !nc; i++) {
      const c = await connectNats(opts);
      if (c.getServer().endsWith(`:${victim.port}`)) nc = c;
      else await c.close();
    }
    assert.ok(nc, 'a client connected to the leader');

    const kv = new NatsKv(nc, { replicas: 3, apiTimeoutMs: 2000 });
    const other = await NatsTransport.connect(opts);
    const transport = new NatsTransport(nc, { prefix: 'ctest' });
    const admin = await connectNats(natsOptions({ servers: nats.urls.filter((u) => !u.endsWith(`:${victim.port}`)) }));
    try {
      const b = await kv.bucket('cluster_kv');
      const r1 = await b.put('table', enc.encode('e1'));
      // the watcher's (R1) consumer should sit on the victim too: the case the client library does not recover from by itself
      let events: KvEvent[] = [];
      let consumerHost: string | undefined;
      for (let i = 0; i < 15 && consumerHost !== victim.name; i++) {
        const mine: KvEvent[] = [];
        const w = await b.watch('>', (e) => mine.push(e));
        consumerHost = await waitFor(async () => {
          const hosts = await consumerHosts(admin, 'KV_cluster_kv');
          return hosts.length === 1 ? hosts[0] : undefined;
        }, { what: 'exactly one watch consumer' });
        if (consumerHost === victim.name) events = mine;
        else await w.dispose();
      }
      await waitFor(() => events.length === 1, { what: 'initial value' });
      await other.listen('survivor', (d, reply) => reply?.(d));
      // the two clients may sit on different servers: the listener's interest reaches the others by route a moment later
      await waitFor(async () => dec.decode(await transport.request('survivor', enc.encode('before'), 2000)) === 'before', { what: 'the listener across the cluster' });

      const t0 = Date.now();
      victim.kill();

      let r2 = 0;
      await waitFor(async () => (r2 = await b.put('table', enc.encode('e2'))) > 0, { timeoutMs: 30_000, intervalMs: 100, what: 'a put after the kill' });
      const putAfter = Date.now() - t0;
      assert.ok(r2 > r1);
      assert.ok(!nc.getServer().endsWith(`:${victim.port}`), 'the client reconnected to another server');
      const got = await b.get('table');
      assert.equal(dec.decode(got!.value), 'e2');
      assert.equal(got!.revision, r2);
      const r3 = await b.update('table', enc.encode('e3'), r2);
      await assert.rejects(b.update('table', enc.encode('stale'), r2), (e: any) => e.code === 'CHORUS_KV_CONFLICT');
      await assert.rejects(b.create('table', enc.encode('dup')), (e: any) => e.code === 'CHORUS_KV_CONFLICT');
      await b.create('lease', enc.encode('n2'));
      assert.equal(dec.decode((await b.get('table'))!.value), 'e3');

      await waitFor(() => events.some((e) => e.key === 'lease'), { timeoutMs: 30_000, what: 'the watcher to see the writes made after the kill' });
      const watchAfter = Date.now() - t0;
      // in order, no repeats; a key written several times while the watcher was reopening may show only its
      // latest value (the bucket keeps one value per key), so e2 may be skipped, but e3 must be there
      const revs = events.map((e) => e.revision);
      for (let i = 1; i < revs.length; i++) assert.ok(revs[i]! > revs[i - 1]!, `revisions in order: ${revs.join(',')}`);
      const tableChanges = events.slice(1).filter((e) => e.key === 'table').map((e) => dec.decode(e.value!));
      assert.equal(tableChanges.at(-1), 'e3');
      assert.ok(tableChanges.every((v) => v === 'e2' || v === 'e3'), `table changes ${tableChanges.join(',')}`);

      // both clients reconnect (and resubscribe) if their server was the victim: the first request may race that
      await waitFor(async () => dec.decode(await transport.request('survivor', enc.encode('after'), 2000)) === 'after', { timeoutMs: 15_000, what: 'request/reply after the kill' });
      const newLeader = await waitFor(() => leaderOf(nc!, 'KV_cluster_kv'), { timeoutMs: 15_000, what: 'stream info' });
      assert.ok(newLeader && newLeader !== victim.name, `new leader ${newLeader}`);
      t.diagnostic(`killed ${victim.name} (leader); put ok after ${putAfter} ms, watcher caught up after ${watchAfter} ms, new leader ${newLeader}`);
      t.diagnostic(`the watch consumer was on ${consumerHost === victim.name ? 'the killed server too' : `${consumerHost}, not the killed server`}`);
    } finally {
      await admin.close();
      await transport.close();
      await other.close();
      await kv.close();
      await nc.close();
    }
  });
});
