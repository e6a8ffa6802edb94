import { ChorusError, EventSourcedActor, type ActorType } from '../../runtime/index.ts';

/** A durable append-only list: the minimal "channel" for cluster invariants (gapless seq, dedup by id). */
export class Ledger extends EventSourcedActor<{ items: string[]; ids: Record<string, number> }, { id: string }> {
  protected initialState() { return { items: [], ids: {} }; }
  protected apply(s: { items: string[]; ids: Record<string, number> }, e: { id: string }) {
    s.items.push(e.id);
    s.ids[e.id] = s.items.length;
    return s;
  }
  protected async handle(msg: any) {
    if (msg.op === 'add') {
      const seen = this.state.ids[msg.id];
      if (seen) return seen;
      await this.persist([{ id: msg.id }], msg.id);
      return this.state.items.length;
    }
    if (msg.op === 'list') return this.state.items.slice();
    throw new ChorusError('CHORUS_BAD_MESSAGE', `unknown op ${msg.op}`);
  }
}
export const ledgerType: ActorType = { name: 'ledger', create: () => new Ledger() };
