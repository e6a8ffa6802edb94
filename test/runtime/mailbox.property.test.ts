import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryEventLog, MemoryNetwork, MemorySnapshotStore } from '../../adapters/memory/index.ts';
import { ActorNode, type ActorType } from '../../runtime/index.ts';

// Turns run one at a time in arrival order: whatever the mix of tells, asks
// and awaits inside turns, each sender's messages are seen in the order sent,
// and no two turns of one actor ever overlap.
test('mailbox: per-sender order is kept and turns never overlap', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ sender: fc.nat(3), ask: fc.boolean(), work: fc.nat(3) }), { minLength: 1, maxLength: 60 }),
      async (plan) => {
        const seen: Array<{ sender: number; n: number }> = [];
        let inTurn = 0;
        let overlap = false;
        const type: ActorType = {
          name: 'recorder',
          create: () => ({
            async receive(msg: any) {
              if (++inTurn > 1) overlap = true;
              for (let i = 0; i < msg.work; i++) await new Promise((r) => setImmediate(r));
              seen.push({ sender: msg.sender, n: msg.n });
              inTurn--;
              return msg.n;
            },
          }),
        };
        const log = new MemoryEventLog();
        const node = new ActorNode({ nodeId: 'n1', transport: new MemoryNetwork().transport('n1'), log, snapshots: new MemorySnapshotStore(log.server), types: [type] });
        node.setTable({ epoch: 1, members: [{ id: 'n1', weight: 1 }], overrides: {} });
        await node.start();
        const ref = node.ref('recorder', 'r');
        const counters = [0, 0, 0, 0];
        const asks: Promise<unknown>[] = [];
        for (const step of plan) {
          const msg = { sender: step.sender, n: counters[step.sender]!++, work: step.work };
          if (step.ask) asks.push(ref.ask(msg));
          else ref.tell(msg);
        }
        await Promise.all(asks);
        while (seen.length < plan.length) await new Promise((r) => setImmediate(r));
        await node.stop();
        assert.equal(overlap, false, 'two turns overlapped');
        for (let s = 0; s < 4; s++) {
          const ns = seen.filter((x) => x.sender === s).map((x) => x.n);
          assert.deepEqual(ns, [...ns].sort((a, b) => a - b), `sender ${s} out of order: ${ns}`);
        }
      },
    ),
    { numRuns: 60 },
  );
});
