import { MemoryNetwork } from '../../../adapters/memory/index.ts';
import { describeTransport } from '../../conformance/transport.ts';

describeTransport('memory', async () => {
  const net = new MemoryNetwork();
  const a = net.transport('a');
  const b = net.transport('b');
  return { a, b, close: async () => { await a.close(); await b.close(); } };
});
