// The reasons the placement supervisor writes in its history (the inspector
// and /admin/placement show them): a crash is a crash even when the leader
// writing the table never heard from the dead member.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MemberInfo } from '../../cluster/membership.ts';
import { describeChange } from '../../cluster/placement-supervisor.ts';

const member = (id: string, state: MemberInfo['state'] = 'active'): { info: MemberInfo } => ({
  info: { id, region: 'local', weight: 1, load: {}, state, startedAt: 1, beat: 1 },
});
const m = (...ids: string[]) => ids.map((id) => ({ id, weight: 1 }));

test('placement history: join, crash, drain and leave are told apart; a member the new leader never heard from is a crash, not a leave', () => {
  const seen = new Map([['n1', member('n1')], ['n2', member('n2', 'draining')], ['n4', member('n4')]]);
  const departed = new Map([['n3', 1]]);
  assert.equal(describeChange(m('n1', 'n2', 'n3'), m('n2', 'n3', 'n4'), seen, departed), 'join n4, crash n1');
  assert.equal(describeChange(m('n1', 'n2', 'n3'), m('n1', 'n3'), seen, departed), 'drain n2');
  assert.equal(describeChange(m('n1', 'n3'), m('n1'), seen, departed), 'leave n3');
  // n5: in the table, never seen by this leader (it took over after n5 died), never deregistered
  assert.equal(describeChange(m('n1', 'n5'), m('n1'), seen, departed), 'crash n5');
  assert.equal(describeChange(m('n1'), m('n1'), seen, departed), 'weights changed');
});
