// The search box syntax (actors/search-query.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isEmptyQuery, parseSearchQuery } from '../../actors/search-query.ts';

test('the example of the docs parses into every part', () => {
  assert.deepEqual(parseSearchQuery('deploy "release notes" in:general from:alice after:2026-01-01 has:file'), {
    words: ['deploy'], phrases: ['release notes'], in: ['general'], from: ['alice'], after: Date.UTC(2026, 0, 2), hasFile: true,
  });
});

test('dates: before is strictly before the day, after strictly after it, on is the day; several narrow the range', () => {
  const d = (s: string) => Date.parse(`${s}T00:00:00Z`);
  assert.deepEqual(parseSearchQuery('before:2026-03-01'), { words: [], phrases: [], in: [], from: [], before: d('2026-03-01') });
  assert.deepEqual(parseSearchQuery('on:2026-03-01'), { words: [], phrases: [], in: [], from: [], after: d('2026-03-01'), before: d('2026-03-02') });
  const q = parseSearchQuery('after:2026-01-01 after:2026-02-01 before:2026-05-01 before:2026-04-01');
  assert.equal(q.after, d('2026-02-02'));
  assert.equal(q.before, d('2026-04-01'));
  // a malformed or impossible date is a word, not a filter
  assert.deepEqual(parseSearchQuery('after:2026-02-31').words, ['after:2026-02-31']);
  assert.deepEqual(parseSearchQuery('on:yesterday').words, ['on:yesterday']);
});

test('in: and from: accept #, @, quotes and me; they repeat', () => {
  const q = parseSearchQuery('in:#general in:"release team" from:@bob from:me', 'ada');
  assert.deepEqual(q.in, ['general', 'release team']);
  assert.deepEqual(q.from, ['bob', 'ada']);
});

test('phrases of one word are words; unknown keys and punctuation-only terms', () => {
  const q = parseSearchQuery('"deploy" "" ... lang:en "two words');
  assert.deepEqual(q.words, ['deploy', 'lang:en']);
  assert.deepEqual(q.phrases, ['two words'], 'an unclosed quote runs to the end');
});

test('an empty query has no condition; filters alone are a query', () => {
  assert.equal(isEmptyQuery(parseSearchQuery('   ')), true);
  assert.equal(isEmptyQuery(parseSearchQuery('"" ...')), true);
  assert.equal(isEmptyQuery(parseSearchQuery('has:file')), false);
  assert.equal(isEmptyQuery(parseSearchQuery('from:bob')), false);
});

test('long input is cut, terms are capped, duplicates dropped', () => {
  const q = parseSearchQuery(Array.from({ length: 100 }, (_, i) => `w${i}`).join(' '));
  assert.equal(q.words.length, 32);
  assert.deepEqual(parseSearchQuery('a a b').words, ['a', 'b']);
  assert.ok(parseSearchQuery('x'.repeat(10_000)).words[0]!.length <= 500);
});
