/**
 * A log append whose ack is lost after the record was stored: what a client
 * sees when the JetStream stream leader dies between storing a post and
 * answering, or when a publish attempt times out and the retry is deduped.
 * The retry with the same clientMsgId must get the record's own seq, never a
 * conflict or a wrong seq, and the actor's state must match the log.
 * In-process (memory ports), so it is deterministic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEventLog, MemoryLogServer, MemoryNetwork, MemorySnapshotStore } from '../../adapters/memory/index.ts';
import { chatActorTypes } from '../../actors/index.ts';
import { RecordingNotifier } from '../../actors/notifier.ts';
import { ActorNode, BackendError, type AppendOptions, type AppendRecord, type AppendResult, type EventLog } from '../../runtime/index.ts';
import { ledgerType } from '../sim/fixtures.ts';

/** Stores every append, but loses the ack of the ones `lose` picks (the caller gets a backend error). */
class LossyLog implements EventLog {
  lost = 0;
  constructor(private readonly inner: EventLog, private readonly lose: (stream: string, record: AppendRecord) => boolean) {}
  async append(stream: string, record: AppendRecord, opts?: AppendOptions): Promise<AppendResult> {
    const r = await this.inner.append(stream, record, opts);
    if (!r.duplicate && this.lose(stream, record)) {
      this.lost++;
      throw new BackendError('jetstream', `append to ${stream}: timeout (ack lost)`);
    }
    return r;
  }
  read: EventLog['read'] = (...a) => this.inner.read(...a);
  lastPos: EventLog['lastPos'] = (...a) => this.inner.lastPos(...a);
  tail: EventLog['tail'] = (...a) => this.inner.tail(...a);
  close: EventLog['close'] = () => this.inner.close();
}

function node(lose: (stream: string, record: AppendRecord) => boolean) {
  const server = new MemoryLogServer();
  const log = new LossyLog(new MemoryEventLog(server), lose);
  const n = new ActorNode({
    nodeId: 'n1', transport: new MemoryNetwork().transport('n1'), log, snapshots: new MemorySnapshotStore(server),
    types: [ledgerType, ...chatActorTypes({ notifier: new RecordingNotifier() })], strictSerialization: true,
  });
  n.setTable({ epoch: 1, members: [{ id: 'n1', weight: 1 }], overrides: {} });
  return { n, log };
}

test('lost ack on an event-sourced append: the retry answers with the stored position, state follows the log', async () => {
  let loseNext = false;
  const { n, log } = node(() => loseNext && !(loseNext = false));
  await n.start();
  const ledger = n.ref('ledger', 'a');
  assert.equal(await ledger.ask({ op: 'add', id: 'x1' }), 1);
  loseNext = true;
  await assert.rejects(ledger.ask({ op: 'add', id: 'x2' }), /ack lost/);
  assert.equal(log.lost, 1);
  // the client retries with the same id: stored once, at seq 2, and said so
  assert.equal(await ledger.ask({ op: 'add', id: 'x2' }), 2);
  assert.equal(await ledger.ask({ op: 'add', id: 'x3' }), 3);
  assert.deepEqual(await ledger.ask({ op: 'list' }), ['x1', 'x2', 'x3']);
  await n.stop();
});

test('lost ack on a chat post: the retried post gets its seq, no CHAT_CONFLICT, and the channel has it once (G5)', async () => {
  let losePost = false;
  const { n } = node((stream) => stream.startsWith('channel.') && losePost && !(losePost = false));
  await n.start();
  const ws = n.ref('workspace', 'w1');
  await ws.ask({ op: 'createWorkspace', by: 'owner', ws: 'w1', name: 'W', clientMsgId: 'c1' });
  const { ch } = await ws.ask<{ ch: string }>({ op: 'createChannel', by: 'owner', ws: 'w1', name: 'general', kind: 'public', clientMsgId: 'c2' });
  const chan = n.ref('channel', `w1.${ch}`);
  const post = (id: string) => chan.ask<{ seq: number }>({ op: 'post', by: 'owner', ws: 'w1', ch, text: `hello ${id}`, clientMsgId: id });
  assert.equal((await post('p1')).seq, 1);
  losePost = true;
  await assert.rejects(post('p2'), /ack lost/);
  assert.equal((await post('p2')).seq, 2, 'the retry is answered with the stored seq');
  assert.equal((await post('p3')).seq, 3);
  const page = await chan.ask<{ messages: Array<{ seq: number; clientMsgId?: string }> }>({ op: 'since', by: 'owner', ws: 'w1', ch, seq: 0 });
  assert.deepEqual(page.messages.map((m) => m.seq), [1, 2, 3]);
  await n.stop();
});
