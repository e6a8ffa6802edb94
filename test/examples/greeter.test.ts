// The example from docs/testing.md: a user's own actor type, tested on a
// 3-node TestCluster with a virtual clock. docs/testing.md includes this file
// verbatim (a test keeps the two identical).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventSourcedActor, ChorusError, type ActorType } from '../../runtime/index.ts';
import { TestCluster } from '../harness/index.ts';

type State = { greeted: string[] };
type Event = { name: string };

/** Greets people and remembers whom; tells a listener about each greeting. */
class Greeter extends EventSourcedActor<State, Event> {
  protected initialState(): State { return { greeted: [] }; }
  protected apply(s: State, e: Event): State { s.greeted.push(e.name); return s; }
  protected async handle(msg: any) {
    if (msg.op === 'greet') {
      if (typeof msg.name !== 'string') throw new ChorusError('CHORUS_BAD_MESSAGE', 'name must be a string');
      await this.persist([{ name: msg.name }]); // durable before we answer
      this.ctx.ref('probe', msg.notify).tell({ greeted: msg.name });
      return `hello ${msg.name}`;
    }
    if (msg.op === 'who') return this.state.greeted;
  }
}
const greeterType: ActorType = { name: 'greeter', create: () => new Greeter() };

test('a greeter remembers whom it greeted, across a crash of its node', async () => {
  const cluster = await TestCluster.start({ nodes: 3, types: [greeterType], seed: 7 });
  const probe = cluster.probe('listener');
  const greeter = cluster.ref('greeter', 'front-desk');

  assert.equal(await cluster.run(greeter.ask({ op: 'greet', name: 'Ada', notify: probe.name })), 'hello Ada');
  await probe.expectMessage((m: any) => m.greeted === 'Ada');

  // kill -9 whichever node hosts the greeter; it comes back on a survivor with its state
  const [owner] = cluster.liveActivations().get('greeter/front-desk')!;
  cluster.crash(owner!);
  const again = cluster.ref('greeter', 'front-desk'); // routed through a running node
  assert.deepEqual(await cluster.run(again.ask({ op: 'who' })), ['Ada']);

  // bad input is a typed error, and the actor keeps working
  await assert.rejects(cluster.run(again.ask({ op: 'greet', name: 42 })), { code: 'CHORUS_BAD_MESSAGE' });
  cluster.checkInvariants(); // single activation held throughout
  await cluster.stop();
});
