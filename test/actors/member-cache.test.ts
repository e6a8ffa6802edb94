// MemberCache: roles with expiry, negative answers kept shortly, one entry in
// a field and a Map from the second on, oldest evicted past `max`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemberCache, NEGATIVE_TTL_MS } from '../../actors/lib/member-cache.ts';

test('one user, then several: same answers, expiry and drops on both paths', () => {
  const c = new MemberCache(10_000, 3);
  assert.equal(c.get('u1', 0), undefined);
  c.set('u1', 'member', 0);
  assert.equal(c.get('u1', 9_999), 'member');
  assert.equal(c.get('u2', 0), undefined);
  c.set('u1', 'admin', 100); // the same user again: replaced in place
  assert.equal(c.get('u1', 10_099), 'admin');
  assert.equal(c.get('u1', 10_100), undefined, 'expired');
  c.set('u1', 'member', 0);
  c.set('u2', null, 0); // a second user: both kept
  assert.equal(c.get('u1', 1), 'member');
  assert.equal(c.get('u2', NEGATIVE_TTL_MS - 1), null, 'a cached "not a member"');
  assert.equal(c.get('u2', NEGATIVE_TTL_MS), undefined, 'kept for NEGATIVE_TTL_MS only');
  c.set('u3', 'guest', 0);
  c.set('u4', 'owner', 0);
  c.set('u5', 'member', 0); // u2 left on expiry: u1, u3, u4, u5 is past max 3, the oldest goes
  assert.equal(c.get('u1', 1), undefined);
  assert.deepEqual(['u3', 'u4', 'u5'].map((u) => c.get(u, 1)), ['guest', 'owner', 'member']);
  c.drop('u4');
  assert.equal(c.get('u4', 1), undefined);
  const d = new MemberCache();
  d.set('a', 'member', 0);
  d.drop('a');
  assert.equal(d.get('a', 1), undefined, 'dropped from the field');
});
