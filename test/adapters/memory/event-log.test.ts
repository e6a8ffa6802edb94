import { MemoryEventLog, MemoryLogServer, MemorySnapshotStore } from '../../../adapters/memory/index.ts';
import { describeEventLog } from '../../conformance/event-log.ts';

describeEventLog('memory', async () => {
  const server = new MemoryLogServer();
  const log = new MemoryEventLog(server);
  const snapshots = new MemorySnapshotStore(server);
  return { log, snapshots, close: async () => { await log.close(); await snapshots.close(); } };
});
