import { MemoryKv, MemoryKvServer } from '../../../adapters/memory/index.ts';
import { describeKv } from '../../conformance/kv.ts';

describeKv('memory', async () => ({ kv: new MemoryKv(new MemoryKvServer()), close: async () => {} }));
