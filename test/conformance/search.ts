/**
 * The search conformance suite: written once, run on PGlite, on a real
 * PostgreSQL and on the Elasticsearch adapter over Elastic's mock connection
 * (test/helpers/es-mock.ts). It projects a small chat log through
 * SearchProjectionSink (posts, a reply, files, an edit, a reaction, a
 * delete, three channels, a second workspace) and checks every query kind:
 * words, phrases, from:, dates, has:file, highlights, both orders,
 * pagination, the readable-channel set, idempotent replays, positions.
 *
 * Words used here are matched alike by every backend (no stop words, same
 * surface form), since the mock's evaluator does no stemming.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelEventRec } from '../../actors/lib/channel-state.ts';
import { parseSearchQuery } from '../../actors/search-query.ts';
import type { Search, SearchHit, SearchIndexWriter, SearchOrder, SearchRequest } from '../../actors/search.ts';
import { SearchProjectionSink } from '../../cluster/search/search-projection.ts';
import { codec } from '../../runtime/codec.ts';
import type { LogEntry } from '../../runtime/log/event-log.ts';

/** What a runner hands the suite. */
export interface SearchFixture {
  index: Search & SearchIndexWriter;
  close(): Promise<void>;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** 2026-01-10T00:00Z */
export const T0 = Date.UTC(2026, 0, 10);

/** A channel log under construction. */
export class LogBuilder {
  readonly entries: LogEntry[] = [];
  private readonly pos = new Map<string, number>();
  private readonly seqs = new Map<string, number>();
  /** Appends one record (one actor turn) to `channel.<ws>.<ch>`. */
  add(ws: string, ch: string, events: ChannelEventRec[]): void {
    const stream = `channel.${ws}.${ch}`;
    const p = (this.pos.get(stream) ?? 0) + 1;
    this.pos.set(stream, p);
    this.entries.push({ stream, pos: p, data: codec.encode(events), ts: T0 });
  }
  /** Posts a message; returns its seq. */
  post(ws: string, ch: string, user: string, ts: number, text: string, extra: Record<string, unknown> = {}): number {
    const k = `${ws}.${ch}`;
    const seq = (this.seqs.get(k) ?? 0) + 1;
    this.seqs.set(k, seq);
    this.add(ws, ch, [{ type: 'posted', msg: { seq, user, ts, text, cmid: `m${seq}`, ...extra } }]);
    return seq;
  }
}

/** The suite's log: workspace `ws` with channels c1 (public), c2 (private), d1 (a DM), and workspace `other`. */
export function searchLog(ws: string, other: string): LogBuilder {
  const b = new LogBuilder();
  b.add(ws, 'c1', [{ type: 'created', facts: { ws, ch: 'c1', name: 'general', kind: 'public', createdBy: 'alice', createdAt: T0 }, topic: '', members: ['alice', 'bob'] }]);
  b.post(ws, 'c1', 'alice', T0 + 1 * HOUR, 'Deploy the release notes today'); // 1
  b.post(ws, 'c1', 'bob', T0 + 2 * HOUR, 'notes about release planning'); // 2
  b.post(ws, 'c1', 'alice', T0 + 1 * DAY, 'deploy deploy deploy'); // 3
  b.post(ws, 'c1', 'bob', T0 + 2 * DAY, 'lunch menu attached', { files: [{ id: 'f1', name: 'menu.pdf', type: 'application/pdf', size: 10 }] }); // 4
  b.post(ws, 'c1', 'alice', T0 + 2 * DAY + HOUR, 'typo mesage'); // 5
  b.add(ws, 'c1', [{ type: 'edited', seq: 5, text: 'fixed message', mentions: [], channelMention: false, by: 'alice', at: T0 + 3 * DAY }]);
  b.post(ws, 'c1', 'bob', T0 + 2 * DAY + 2 * HOUR, 'doomed deploy remark'); // 6
  b.add(ws, 'c1', [{ type: 'deleted', seq: 6, by: 'bob', at: T0 + 3 * DAY }]);
  b.add(ws, 'c1', [{ type: 'reaction', seq: 1, emoji: 'tada', user: 'bob', add: true }]);
  b.post(ws, 'c1', 'bob', T0 + 3 * DAY, 'deploy reply in thread', { parent: 1 }); // 7
  b.add(ws, 'c2', [{ type: 'created', facts: { ws, ch: 'c2', name: 'secret', kind: 'private', createdBy: 'carol', createdAt: T0 }, topic: '', members: ['carol'] }]);
  b.post(ws, 'c2', 'carol', T0 + 3 * HOUR, 'secret deploy plan');
  b.post(ws, 'd1', 'alice', T0 + 4 * HOUR, 'deploy between friends');
  b.post(other, 'c1', 'mallory', T0 + 5 * HOUR, 'deploy from another workspace');
  return b;
}

/** Registers the suite under `describe(name)`; `make` is called once. */
export function describeSearch(name: string, make: () => Promise<SearchFixture>): void {
  describe(`Search conformance: ${name}`, () => {
    let fx: SearchFixture;
    let sink: SearchProjectionSink;
    const run = `s${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
    const ws = `w${run}`;
    const other = `o${run}`;
    let log: LogBuilder;

    const ask = (q: string, o: { channels?: string[]; order?: SearchOrder; limit?: number; cursor?: string; ws?: string } = {}) => {
      const req: SearchRequest = {
        ws: o.ws ?? ws, channels: o.channels ?? ['c1'], query: parseSearchQuery(q, 'alice'), order: o.order ?? 'newest', limit: o.limit ?? 50,
        ...(o.cursor ? { cursor: o.cursor } : {}),
      };
      return fx.index.search(req);
    };
    const seqs = async (q: string, o: Parameters<typeof ask>[1] = {}) => (await ask(q, o)).hits.map((h) => `${h.ch}#${h.seq}`);
    const project = async (batch: number) => {
      for (let i = 0; i < log.entries.length; i += batch) await sink.apply(log.entries.slice(i, i + batch));
    };

    before(async () => {
      fx = await make();
      sink = new SearchProjectionSink(fx.index);
      log = searchLog(ws, other);
      await project(3);
    });
    after(async () => {
      await fx?.close();
    });

    test('words: every word must occur; newest first; deleted messages are gone; replies are found', async () => {
      assert.deepEqual(await seqs('deploy'), ['c1#7', 'c1#3', 'c1#1']);
      assert.deepEqual(await seqs('release notes'), ['c1#2', 'c1#1']);
      assert.deepEqual(await seqs('deploy planning'), []);
      assert.deepEqual(await seqs('doomed'), [], 'a deleted message is removed from the index');
      const reply = (await ask('thread')).hits[0]!;
      assert.equal(reply.parent, 1);
    });

    test('phrases: words adjacent and in order', async () => {
      assert.deepEqual(await seqs('"release notes"'), ['c1#1']);
      assert.deepEqual(await seqs('"notes release"'), []);
    });

    test('only the channels passed in are searched: private channels, DMs and other workspaces never appear', async () => {
      assert.deepEqual(await seqs('deploy', { channels: ['c1'] }), ['c1#7', 'c1#3', 'c1#1']);
      assert.deepEqual(await seqs('deploy', { channels: ['c1', 'c2'] }), ['c1#7', 'c1#3', 'c2#1', 'c1#1']);
      assert.deepEqual(await seqs('deploy', { channels: ['d1'] }), ['d1#1']);
      assert.deepEqual(await seqs('deploy', { channels: [] }), [], 'no readable channel: no hits');
      assert.deepEqual(await seqs('deploy', { ws: other, channels: ['c1'] }), ['c1#1']);
      const own = await ask('deploy', { ws: other, channels: ['c1'] });
      assert.equal(own.hits[0]!.user, 'mallory', 'the other workspace answers its own message only');
      assert.deepEqual(await seqs('workspace', { channels: ['c1', 'c2', 'd1'] }), [], 'another workspace with the same channel id never leaks');
      assert.deepEqual(await seqs('deploy', { ws: `never${run}`, channels: ['c1'] }), [], 'a workspace with nothing indexed');
    });

    test('from:, dates and has:file filter, alone or with words', async () => {
      assert.deepEqual(await seqs('deploy from:alice'), ['c1#3', 'c1#1']);
      assert.deepEqual(await seqs('from:bob'), ['c1#7', 'c1#4', 'c1#2']);
      assert.deepEqual(await seqs('from:me deploy'), ['c1#3', 'c1#1'], 'from:me is the caller');
      assert.deepEqual(await seqs('deploy on:2026-01-10'), ['c1#1']);
      assert.deepEqual(await seqs('deploy after:2026-01-10'), ['c1#7', 'c1#3']);
      assert.deepEqual(await seqs('deploy before:2026-01-11'), ['c1#1']);
      assert.deepEqual(await seqs('after:2026-01-10 before:2026-01-12'), ['c1#3']);
      assert.deepEqual(await seqs('has:file'), ['c1#4']);
      const hit = (await ask('lunch has:file')).hits[0]!;
      assert.equal(hit.hasFile, true);
      assert.equal((await ask('deploy from:alice')).hits[0]!.hasFile, false);
    });

    test('edits replace the text; a reaction keeps the message searchable', async () => {
      assert.deepEqual(await seqs('mesage'), []);
      const [h] = (await ask('fixed')).hits;
      assert.equal(h?.seq, 5);
      assert.equal(h?.text, 'fixed message');
      assert.equal(h?.editedAt, T0 + 3 * DAY);
      assert.deepEqual(await seqs('"release notes"'), ['c1#1'], 'message 1 (with a reaction) is still indexed');
    });

    test('highlights mark the matched words in the text', async () => {
      const h = (await ask('deploy')).hits.find((x) => x.seq === 1)!;
      assert.ok(h.highlights.length >= 1);
      assert.deepEqual(h.highlights.map(([a, b]) => h.text.slice(a, b).toLowerCase()), ['deploy']);
      const p = (await ask('"release notes"')).hits[0]!;
      assert.deepEqual(p.highlights.map(([a, b]) => p.text.slice(a, b).toLowerCase()).join(' ').split(' '), ['release', 'notes']);
      assert.deepEqual((await ask('from:bob')).hits[0]!.highlights, [], 'no words, no highlights');
    });

    test('relevance order puts the best match first', async () => {
      const r = await seqs('deploy', { order: 'relevance' });
      assert.equal(r[0], 'c1#3', 'three occurrences in three words');
      assert.deepEqual([...r].sort(), ['c1#1', 'c1#3', 'c1#7']);
    });

    test('pagination walks every hit exactly once, in both orders', async () => {
      for (const order of ['newest', 'relevance'] as const) {
        for (const q of ['deploy', 'from:bob']) {
          const all = await seqs(q, { channels: ['c1', 'c2', 'd1'], order });
          const walked: string[] = [];
          let cursor: string | undefined;
          let pages = 0;
          do {
            const page = await ask(q, { channels: ['c1', 'c2', 'd1'], order, limit: 1, ...(cursor ? { cursor } : {}) });
            walked.push(...page.hits.map((h: SearchHit) => `${h.ch}#${h.seq}`));
            cursor = page.next;
            assert.ok(++pages <= all.length + 1, 'pagination ends');
          } while (cursor);
          assert.deepEqual(walked, all, `${order} ${q}`);
        }
      }
    });

    test('a malformed cursor, or one of the other order, is refused', async () => {
      await assert.rejects(ask('deploy', { cursor: 'not-a-cursor' }), (e: { code?: string }) => e.code === 'CHORUS_BAD_MESSAGE');
      const first = await ask('deploy', { limit: 1 });
      await assert.rejects(ask('deploy', { cursor: first.next!, order: 'relevance' }), (e: { code?: string }) => e.code === 'CHORUS_BAD_MESSAGE');
    });

    test('replaying the log (whole, in other batches) changes nothing; positions are stored per stream', async () => {
      const before = JSON.stringify(await ask('deploy', { channels: ['c1', 'c2', 'd1'] })) + JSON.stringify(await ask('from:bob'));
      await project(1);
      await project(100);
      const again = JSON.stringify(await ask('deploy', { channels: ['c1', 'c2', 'd1'] })) + JSON.stringify(await ask('from:bob'));
      assert.equal(again, before);
      const pos = await fx.index.positions();
      assert.equal(pos.get(`channel.${ws}.c1`), log.entries.filter((e) => e.stream === `channel.${ws}.c1`).length);
      assert.equal(pos.get(`channel.${other}.c1`), 1);
      const r = await sink.apply(log.entries);
      assert.equal(r.applied, 0);
      assert.equal(r.skipped, log.entries.length);
    });
  });
}
