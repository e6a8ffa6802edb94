/**
 * ElasticsearchSearch: the Search port and its index writer on
 * Elasticsearch (@elastic/elasticsearch 9), with the workspace index
 * strategy of index-manager.ts and the bulk writer of bulk.ts
 * (docs/search.md, README.md here).
 *
 * Reads: one `_search` on the workspace's alias. The caller's readable
 * channels are a `terms` filter on `ch` inside the bool query, next to a
 * `term` on `ws` (the shared alias adds its own filter and routing), so a
 * hit from any other channel or workspace cannot be returned. Words are one
 * `match` with operator `and`, each phrase a `match_phrase`; `from:`,
 * dates and `has:file` are filters. Highlights: the whole text
 * (`number_of_fragments: 0`) with marker tags, turned into ranges. Newest
 * order pages with `search_after` on (ts, ch, seq); relevance with `from`.
 *
 * Writes: `update` loads documents with `_mget` (real time, no refresh
 * needed), folds, sends index/delete operations in bulk, then stores the
 * streams' positions in the positions index. A crash between the two
 * replays the unit from the old positions, which converges (whole
 * documents, applied in log order).
 */
import { errors } from '@elastic/elasticsearch';
import {
  HL_END, HL_START, MAX_SEARCH_OFFSET, decodeCursor, docKey, encodeCursor, highlightRanges, isRanked, SearchCursorError,
  type Search, type SearchChanges, type SearchDoc, type SearchDocKey, type SearchHit, type SearchIndexWriter, type SearchPage, type SearchRequest,
} from '../../actors/search.ts';
import { BackendError, ChorusError } from '../../runtime/errors.ts';
import { BulkWriter, type BulkOp } from './bulk.ts';
import { IndexManager } from './index-manager.ts';
import { resolveEsOptions, type ElasticsearchSearchOptions, type ResolvedEsOptions } from './options.ts';

/** The document as stored in Elasticsearch. */
export interface EsMessageDoc {
  ws: string; ch: string; seq: number; user: string; ts: number; text: string;
  parent: number | null; edited_at: number | null; has_file: boolean;
  reaction_emojis: string[]; reactions: Array<[string, string[]]>;
}

/** A SearchDoc as an Elasticsearch document. */
export function toEsDoc(d: SearchDoc): EsMessageDoc {
  return {
    ws: d.ws, ch: d.ch, seq: d.seq, user: d.user, ts: d.ts, text: d.text, parent: d.parent, edited_at: d.editedAt,
    has_file: d.hasFile, reaction_emojis: Object.keys(d.reactions), reactions: Object.entries(d.reactions),
  };
}

function fromEsDoc(s: EsMessageDoc): SearchDoc {
  return {
    ws: s.ws, ch: s.ch, seq: Number(s.seq), user: s.user, ts: Number(s.ts), text: s.text, parent: s.parent ?? null,
    editedAt: s.edited_at ?? null, hasFile: Boolean(s.has_file), reactions: Object.fromEntries((s.reactions ?? []).map(([e, u]) => [e, [...u]])),
  };
}

/** Builds the `_search` body for a request (exported for tests that check request bodies). */
export function buildSearchBody(req: SearchRequest): Record<string, unknown> {
  const ranked = isRanked(req);
  const cursor = req.cursor !== undefined ? decodeCursor(req.cursor, ranked) : undefined;
  if (req.cursor !== undefined && !cursor) throw new SearchCursorError();
  const q = req.query;
  const filter: unknown[] = [{ term: { ws: req.ws } }, { terms: { ch: [...req.channels] } }];
  if (q.from.length) filter.push({ terms: { user: [...q.from] } });
  if (q.after !== undefined || q.before !== undefined) {
    filter.push({ range: { ts: { ...(q.after !== undefined ? { gte: q.after } : {}), ...(q.before !== undefined ? { lt: q.before } : {}) } } });
  }
  if (q.hasFile) filter.push({ term: { has_file: true } });
  const must: unknown[] = [];
  if (q.words.length) must.push({ match: { text: { query: q.words.join(' '), operator: 'and' } } });
  for (const p of q.phrases) must.push({ match_phrase: { text: p } });
  const text = must.length > 0;
  const limit = Math.max(1, Math.min(100, req.limit));
  const tie = [{ ts: 'desc' }, { ch: 'desc' }, { seq: 'desc' }];
  const body: Record<string, unknown> = {
    query: { bool: { filter, ...(text ? { must } : {}) } },
    size: limit + 1,
    track_total_hits: false,
    _source: ['ch', 'seq', 'user', 'ts', 'text', 'parent', 'edited_at', 'has_file'],
  };
  if (ranked) {
    body.sort = ['_score', ...tie];
    if (cursor?.kind === 'offset') body.from = cursor.offset;
  } else {
    body.sort = tie;
    if (cursor?.kind === 'key') body.search_after = [cursor.ts, cursor.ch, cursor.seq];
  }
  if (text) body.highlight = { fields: { text: { number_of_fragments: 0, pre_tags: [HL_START], post_tags: [HL_END] } } };
  return body;
}

/** Elasticsearch search; see the file comment. */
export class ElasticsearchSearch implements Search, SearchIndexWriter {
  /** Index and alias management (promotion, maintenance). */
  readonly indices: IndexManager;
  private readonly o: ResolvedEsOptions;
  private readonly bulk: BulkWriter;
  private readonly writes = new Set<Promise<unknown>>();

  constructor(options: ElasticsearchSearchOptions) {
    this.o = resolveEsOptions(options);
    this.bulk = new BulkWriter(this.o.client, this.o);
    this.indices = new IndexManager(this.o, async () => {
      await Promise.allSettled([...this.writes]);
    });
  }

  ready(): Promise<void> {
    return this.indices.ensureBase();
  }

  // ---- writer ------------------------------------------------------------------

  async positions(): Promise<Map<string, number>> {
    await this.ready();
    const out = new Map<string, number>();
    let after: unknown[] | undefined;
    for (;;) {
      const r = await this.o.client.search<{ stream: string; pos: number }>({
        index: this.o.positionsIndex, size: 1000, sort: [{ stream: 'asc' }], query: { match_all: {} },
        ...(after ? { search_after: after as never } : {}),
      });
      const hits = r.hits.hits;
      for (const h of hits) if (h._source) out.set(h._source.stream, Number(h._source.pos));
      if (hits.length < 1000) return out;
      after = hits[hits.length - 1]!.sort as unknown[];
    }
  }

  partitionOf(): string {
    return 'es';
  }

  async update(streams: readonly string[], fn: Parameters<SearchIndexWriter['update']>[1]): Promise<void> {
    await this.ready();
    const wss = [...new Set(streams.map((s) => s.split('.')[1] ?? ''))];
    for (;;) {
      const holds = wss.map((ws) => this.indices.hold(ws)).filter((h): h is Promise<void> => h !== undefined);
      if (!holds.length) break;
      await Promise.all(holds);
    }
    // registered with no await since the hold check: a promotion that starts later waits for this write
    const p = this.write(streams, wss, fn);
    this.writes.add(p);
    const done = () => this.writes.delete(p);
    p.then(done, done);
    await p;
  }

  private async write(streams: readonly string[], wss: string[], fn: Parameters<SearchIndexWriter['update']>[1]): Promise<void> {
    try {
      const stored = await this.streamPositions(streams);
      const changes = await fn({ positions: stored, load: (keys) => this.load(keys) });
      await Promise.all(wss.map((ws) => this.indices.ensureAlias(ws)));
      await this.bulk.write(this.ops(changes));
      const moved = [...changes.positions].filter(([s, p]) => p !== stored.get(s));
      if (moved.length) {
        await this.bulk.write(moved.map(([stream, pos]) => ({
          op: 'index' as const, index: this.o.positionsIndex, id: stream,
          doc: { stream, ws: stream.split('.')[1] ?? '', pos, updated_at: Date.now() },
        })));
      }
    } catch (err) {
      if (err instanceof ChorusError) throw err;
      throw new BackendError('elasticsearch', `search index write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  private ops(c: SearchChanges): BulkOp[] {
    const ops: BulkOp[] = [];
    for (const k of c.deletes) ops.push({ op: 'delete', index: this.indices.names.alias(k.ws), id: docKey(k) });
    for (const d of c.upserts) ops.push({ op: 'index', index: this.indices.names.alias(d.ws), id: docKey(d), doc: toEsDoc(d) as unknown as Record<string, unknown> });
    return ops;
  }

  private async streamPositions(streams: readonly string[]): Promise<Map<string, number>> {
    const r = await this.o.client.mget<{ pos: number }>({ index: this.o.positionsIndex, ids: [...streams] });
    const out = new Map<string, number>();
    for (const d of r.docs) if ('found' in d && d.found && d._source) out.set(d._id, Number(d._source.pos));
    return out;
  }

  private async load(keys: readonly SearchDocKey[]): Promise<Map<string, SearchDoc>> {
    const out = new Map<string, SearchDoc>();
    if (!keys.length) return out;
    const r = await this.o.client.mget<EsMessageDoc>({ docs: keys.map((k) => ({ _index: this.indices.names.alias(k.ws), _id: docKey(k) })) });
    for (const d of r.docs) {
      if ('found' in d && d.found && d._source) {
        const doc = fromEsDoc(d._source);
        out.set(docKey(doc), doc);
      }
    }
    return out;
  }

  // ---- reader ------------------------------------------------------------------

  async search(req: SearchRequest): Promise<SearchPage> {
    const body = buildSearchBody(req);
    if (!req.channels.length) return { hits: [] };
    let r;
    try {
      r = await this.o.client.search<EsMessageDoc>({ index: this.indices.names.alias(req.ws), ...body });
    } catch (err) {
      // the workspace never had a message indexed: its alias does not exist yet
      if (err instanceof errors.ResponseError && err.meta.statusCode === 404) return { hits: [] };
      throw new BackendError('elasticsearch', `search failed: ${(err as Error).message}`, { cause: err });
    }
    const limit = Number(body.size) - 1;
    const rows = r.hits.hits;
    const hits = rows.slice(0, limit).map((h): SearchHit => {
      const s = h._source!;
      const marked = h.highlight?.text?.[0];
      const hit: SearchHit = {
        ch: s.ch, seq: Number(s.seq), user: s.user, ts: Number(s.ts), text: s.text, hasFile: Boolean(s.has_file),
        highlights: marked ? highlightRanges(marked) : [],
      };
      if (s.parent !== null && s.parent !== undefined) hit.parent = Number(s.parent);
      if (s.edited_at !== null && s.edited_at !== undefined) hit.editedAt = Number(s.edited_at);
      return hit;
    });
    if (rows.length <= limit) return { hits };
    if (isRanked(req)) {
      const offset = Number(body.from ?? 0) + limit;
      return offset < MAX_SEARCH_OFFSET ? { hits, next: encodeCursor({ kind: 'offset', offset }) } : { hits };
    }
    const last = hits[hits.length - 1]!;
    return { hits, next: encodeCursor({ kind: 'key', ts: last.ts, ch: last.ch, seq: last.seq }) };
  }
}
