// Search end to end over real WebSockets on the embedded profile (PGlite
// full-text search fed by the search projection): the `search` op through
// the edge and the SDK, and who sees what: public channels, a private
// channel before and right after leaving it, DMs of others, in:/from:.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { embeddedNode } from '../edge/fixture.ts';
import { closeAll, person, refused, waitFor, WS, type Person } from '../e2e/helpers.ts';

type Node = Awaited<ReturnType<typeof embeddedNode>>;
type Page = { hits: Array<{ ch: string; seq: number; user: string; text: string; highlights: Array<[number, number]> }>; next?: string };

describe('search end to end (embedded profile)', () => {
  let node: Node;
  let ada: Person;
  let bob: Person;
  let cat: Person;
  let priv: string;
  let dm: string;
  const chans = (p: Page) => p.hits.map((h) => h.ch).sort();

  before(async () => {
    node = await embeddedNode();
    ada = await person(node, 'srch-ada');
    bob = await person(node, 'srch-bob');
    cat = await person(node, 'srch-cat');
    priv = (await ada.client.request<{ ch: string }>('createChannel', { ws: WS, name: 'srch-private', kind: 'private', clientMsgId: 'c1' })).ch;
    await ada.client.request('inviteToChannel', { ws: WS, ch: priv, user: 'srch-bob', clientMsgId: 'i1' });
    dm = (await ada.client.request<{ ch: string }>('openDm', { ws: WS, users: ['srch-cat'], clientMsgId: 'd1' })).ch;
    await ada.client.post(WS, ada.channels[0]!, 'zebracorn sighting in public');
    await ada.client.post(WS, priv, 'zebracorn sighting in private');
    await ada.client.post(WS, dm, 'zebracorn sighting in a DM');
  });
  after(async () => {
    closeAll();
    await node?.[Symbol.asyncDispose]();
  });

  test('a member finds messages of public and private channels; never a DM of others', async () => {
    const page = (await waitFor(async () => {
      const p = await bob.client.search(WS, 'zebracorn');
      return p.hits.length === 2 ? p : undefined;
    }, { what: 'bob finds the public and the private message' }))!;
    assert.deepEqual(chans(page), [ada.channels[0]!, priv].sort());
    const h = page.hits[0]!;
    assert.equal(h.text.slice(h.highlights[0]![0], h.highlights[0]![1]).toLowerCase(), 'zebracorn');
    const forCat = (await waitFor(async () => {
      const p = await cat.client.search(WS, 'zebracorn');
      return p.hits.length === 2 ? p : undefined;
    }, { what: 'cat finds the public message and the DM' }))!;
    assert.deepEqual(chans(forCat), [ada.channels[0]!, dm].sort(), 'cat is not in the private channel');
  });

  test('leaving a private channel ends its visibility at once', async () => {
    await bob.client.request('leaveChannel', { ws: WS, ch: priv, clientMsgId: 'l1' });
    const page = await bob.client.search(WS, 'zebracorn');
    assert.deepEqual(chans(page), [ada.channels[0]!]);
    assert.deepEqual(chans(await bob.client.search(WS, `zebracorn in:${priv}`)), [], 'not even when asked for by id');
  });

  test('in:, from:, order and pages through the SDK', async () => {
    assert.deepEqual(chans(await ada.client.search(WS, 'zebracorn in:srch-private')), [priv]);
    assert.equal((await ada.client.search(WS, 'zebracorn from:srch-bob')).hits.length, 0);
    const first = await ada.client.search(WS, 'zebracorn', { limit: 1, order: 'relevance' });
    assert.equal(first.hits.length, 1);
    assert.ok(first.next);
    const second = await ada.client.search(WS, 'zebracorn', { limit: 1, order: 'relevance', cursor: first.next });
    assert.notEqual(`${second.hits[0]!.ch}#${second.hits[0]!.seq}`, `${first.hits[0]!.ch}#${first.hits[0]!.seq}`);
    await refused(ada.client.search(WS, 'zebracorn', { cursor: 'bogus' }), ['CHORUS_BAD_MESSAGE'], 'bad cursor');
    await refused(ada.client.request('search', { ws: WS, query: 'x'.repeat(501) }), ['CHORUS_BAD_MESSAGE'], 'too long');
    assert.deepEqual((await ada.client.search(WS, '   ')).hits, [], 'an empty query finds nothing');
  });
});
