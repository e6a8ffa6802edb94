/**
 * `npm run chaos -- --minutes N --seed S`: chaos under load on a local
 * 3-node cluster over 3 nats-servers (see test/cluster/chaos.ts). Prints the
 * faults as they happen and, last line, one JSON object with the accounting.
 */
import { parseArgs } from 'node:util';
import { runChaos } from '../test/cluster/chaos.ts';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '1' }, seed: { type: 'string' } } });
const minutes = Number(values.minutes);
if (!(minutes > 0 && minutes <= 120)) {
  console.error('--minutes must be in (0, 120]');
  process.exit(2);
}
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
console.error(`chaos: ${minutes} min, seed ${seed}`);
const figures = await runChaos({ seconds: minutes * 60, seed, log: (s) => console.error(`${new Date().toISOString()} ${s}`) });
console.table({ acked: figures.acked, stored: figures.stored, delivered: figures.delivered, lost: figures.lost, duplicates: figures.duplicates, gaps: figures.gaps, doubleActivations: figures.doubleActivations });
console.log(JSON.stringify(figures));
process.exit(figures.lost + figures.duplicates + figures.gaps + figures.deliveryLost + figures.deliveryDuplicates + figures.doubleActivations === 0 ? 0 : 1);
