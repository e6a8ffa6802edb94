import type { Actor, ActorRef, ActorType } from '../../runtime/index.ts';
import type { TestCluster } from './test-cluster.ts';

/** Messages recorded per probe key, shared by the probe actors of every node of a TestCluster. */
export type ProbeRegistry = Map<string, unknown[]>;

/** The `probe` actor type: records every message and answers asks with 'ok'. */
export function probeType(registry: ProbeRegistry): ActorType {
  return {
    name: 'probe',
    reentrant: true,
    create: (id): Actor => ({
      receive(msg) {
        let list = registry.get(id.key);
        if (!list) registry.set(id.key, (list = []));
        list.push(msg);
        return 'ok';
      },
    }),
  };
}

/**
 * Records what actors send it, like Proto.Actor's TestProbe: give `ref` to an
 * actor, then `expectMessage` (waits in virtual time) or inspect `messages`.
 */
export class TestProbe {
  constructor(private readonly cluster: TestCluster, readonly name: string, private readonly registry: ProbeRegistry) {
    if (!registry.has(name)) registry.set(name, []);
  }
  /** A ref to this probe (an actor of type `probe`, key = name). */
  get ref(): ActorRef {
    return this.cluster.ref('probe', this.name);
  }
  /** Everything received so far, in arrival order. */
  get messages(): readonly unknown[] {
    return this.registry.get(this.name) ?? [];
  }
  /** Waits until a message matching `match` arrives (advancing virtual time); returns it. */
  async expectMessage<T = unknown>(match: (m: unknown) => boolean = () => true, opts: { withinMs?: number } = {}): Promise<T> {
    let found: unknown;
    let from = 0;
    await this.cluster.until(() => {
      const list = this.messages;
      for (let i = from; i < list.length; i++) if (match(list[i])) { found = list[i]; this.consumed(i); return true; }
      from = list.length;
      return false;
    }, { timeoutMs: opts.withinMs ?? 5000, what: `a message on probe ${this.name}` });
    return found as T;
  }
  /** Asserts that no message matching `match` arrives within `ms` of virtual time. */
  async expectNoMessage(match: (m: unknown) => boolean = () => true, ms = 500): Promise<void> {
    const before = this.messages.length;
    await this.cluster.advance(ms);
    const extra = this.messages.slice(before).filter(match);
    if (extra.length) throw new Error(`probe ${this.name} got ${JSON.stringify(extra[0])} (seed ${this.cluster.seed})`);
  }
  private consumed(i: number) {
    this.registry.get(this.name)!.splice(i, 1);
  }
}
