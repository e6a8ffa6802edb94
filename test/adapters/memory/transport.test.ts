import { MemoryNetwork } from '../../../adapters/memory/index.ts';
import { describeTransport } from '../../conformance/transport.ts';

describeTransport('memory', async () => {
  const net = new MemoryNetwork();
  const a = net.transport('a');
  const b = net.transport('b');
  return { a, b, close: async () => { await a.close(); await b.close(); } };
}, {
  // Known gaps of the memory twin (adapters/memory/memory-network.ts), reported to the lead; remove when fixed.
  todo: {
    'close rejects pending requests at once': 'MemoryTransport.close() leaves pending requests to their timeout (AskTimeoutError) instead of rejecting them with NodeUnavailableError',
    'after close, listen and subscribe are refused': 'MemoryTransport.listen()/subscribe() still register after close()',
  },
});
