/**
 * The Search port: full-text search over the messages of a workspace
 * (docs/search.md). The index is a read model, filled by a projection of the
 * channel logs (cluster/search); the actors stay the only writers of truth
 * and decide every permission: the user actor computes the channels the
 * caller may read and hands them to `search`, and an implementation must
 * put that set into the query itself (a `WHERE ch = ANY(...)`, a `terms`
 * filter), so a hit from any other channel, workspace or DM can never come
 * back, whatever the page size.
 *
 * Two sides, one module (both are types; the helpers at the end are pure):
 * - `Search`: what the user actor calls;
 * - `SearchIndexWriter`: what the projection writes through
 *   (cluster/search/search-projection.ts), with the stored log position of
 *   every channel stream kept by the implementation (in the same
 *   transaction as the documents on PostgreSQL, after them on Elasticsearch).
 *
 * Implementations: adapters/postgres `PostgresSearch` (PGlite embedded,
 * PostgreSQL full-text), adapters/elasticsearch `ElasticsearchSearch`.
 */
import { ChorusError } from '../runtime/errors.ts';

/** A parsed query (see `parseSearchQuery` in search-query.ts). Every part is ANDed. */
export interface SearchQuery {
  /** Words that must all occur (analysed by the backend: case, stems). */
  readonly words: readonly string[];
  /** Phrases that must each occur, words adjacent and in order. */
  readonly phrases: readonly string[];
  /** `in:` channel names or ids, as typed (the actor resolves them); empty: any readable channel. */
  readonly in: readonly string[];
  /** `from:` user ids; empty: anyone. */
  readonly from: readonly string[];
  /** Messages with `ts >= after` (ms since the epoch, UTC). */
  readonly after?: number | undefined;
  /** Messages with `ts < before`. */
  readonly before?: number | undefined;
  /** `has:file`: only messages with files. */
  readonly hasFile?: boolean | undefined;
}

/** Result order: newest first (by ts, then channel and seq), or best match first (ties newest first). */
export type SearchOrder = 'newest' | 'relevance';

/** One search as the actor hands it to the port: already resolved to channel ids the caller may read. */
export interface SearchRequest {
  readonly ws: string;
  /**
   * The only channels searched: the caller may read every one of them. The
   * implementation must filter by this set inside the query. Empty: no hits.
   */
  readonly channels: readonly string[];
  readonly query: SearchQuery;
  readonly order: SearchOrder;
  /** Hits per page, 1..100. */
  readonly limit: number;
  /** The `next` of the previous page (opaque; only valid with the same query and order). */
  readonly cursor?: string | undefined;
}

/** One hit. */
export interface SearchHit {
  ch: string;
  seq: number;
  user: string;
  ts: number;
  text: string;
  /** Thread parent, for replies. */
  parent?: number;
  editedAt?: number;
  hasFile: boolean;
  /** Highlighted ranges of `text`: [start, end) in UTF-16 code units, ascending; empty without words. */
  highlights: Array<[number, number]>;
}

/** A page of hits. */
export interface SearchPage {
  hits: SearchHit[];
  /** Pass as `cursor` for the next page; absent on the last page. */
  next?: string;
}

/** The reader side, called by the user actor after its permission checks. */
export interface Search {
  search(req: SearchRequest): Promise<SearchPage>;
}

/** Token for the tsyringe container. */
export const SEARCH = Symbol.for('chorus.Search');

// ---- the writer side ---------------------------------------------------------------

/** One indexed message (a live, top-level message or a reply; deleted messages are not in the index). */
export interface SearchDoc {
  ws: string;
  ch: string;
  seq: number;
  user: string;
  ts: number;
  text: string;
  parent: number | null;
  editedAt: number | null;
  hasFile: boolean;
  /** emoji -> user ids, in reaction order. */
  reactions: Record<string, string[]>;
}

/** Identifies a document: workspace, channel, seq. */
export interface SearchDocKey {
  readonly ws: string;
  readonly ch: string;
  readonly seq: number;
}

/** What one write unit sees: the stored positions (locked where the backend can) and a loader of current documents. */
export interface SearchWriteTx {
  /** The stored position of each stream of the unit (0 when none). */
  readonly positions: ReadonlyMap<string, number>;
  /** Current documents by `docKey`; missing keys are not indexed. */
  load(keys: readonly SearchDocKey[]): Promise<Map<string, SearchDoc>>;
}

/** What a write unit changes: documents to write in full, documents to remove, new stream positions. */
export interface SearchChanges {
  readonly upserts: readonly SearchDoc[];
  readonly deletes: readonly SearchDocKey[];
  readonly positions: ReadonlyMap<string, number>;
}

/** The writer side, driven by the search projection. */
export interface SearchIndexWriter {
  /** Prepares the backend (schema, indices); idempotent. */
  ready(): Promise<void>;
  /** The stored position of every channel stream. */
  positions(): Promise<Map<string, number>>;
  /** Units of work that can be written together (e.g. one per database shard); `update` gets streams of one partition. */
  partitionOf(ws: string): string;
  /**
   * Runs `fn` with the stored positions of `streams`, then writes what it
   * returns, positions last (PostgreSQL: one transaction with the position
   * rows locked; Elasticsearch: bulk, then positions). Rejects on failure;
   * the projection retries the whole unit, which is safe because replaying
   * a suffix of a stream from its stored position converges.
   */
  update(streams: readonly string[], fn: (tx: SearchWriteTx) => Promise<SearchChanges>): Promise<void>;
}

// ---- shared helpers ---------------------------------------------------------------

/** The key of a document in maps and as an id suffix: `${ws}:${ch}:${seq}` (ids never contain ':'). */
export function docKey(k: SearchDocKey): string {
  return `${k.ws}:${k.ch}:${k.seq}`;
}

/** Markers the backends put around highlighted words (control characters: they never reach a client). */
export const HL_START = '\u0002';
/** See HL_START. */
export const HL_END = '\u0003';

/** Turns a text with HL_START/HL_END markers into ranges of the unmarked text. */
export function highlightRanges(marked: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let pos = 0;
  let start = -1;
  for (const c of marked) {
    if (c === HL_START) start = pos;
    else if (c === HL_END) {
      if (start >= 0 && pos > start) {
        const last = out[out.length - 1];
        if (last && last[1] === start) last[1] = pos; // adjacent marks (a phrase) become one range
        else out.push([start, pos]);
      }
      start = -1;
    } else pos += c.length;
  }
  return out;
}

/** Where a page ends: newest order resumes after a (ts, ch, seq) key, relevance order at an offset. */
export type SearchCursor = { kind: 'key'; ts: number; ch: string; seq: number } | { kind: 'offset'; offset: number };

/** Encodes a cursor (base64url of a small JSON array). */
export function encodeCursor(c: SearchCursor): string {
  const v = c.kind === 'key' ? ['k', c.ts, c.ch, c.seq] : ['o', c.offset];
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

/** Most hits a relevance walk pages through (offset pagination; the newest order has no limit). */
export const MAX_SEARCH_OFFSET = 1000;

/**
 * Decodes a cursor; undefined for a malformed one or one of the wrong kind:
 * `ranked` (relevance order with words or phrases) pages by offset, every
 * other search by key. The caller answers an error.
 */
export function decodeCursor(s: string, ranked: boolean): SearchCursor | undefined {
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString()) as unknown[];
    if (!Array.isArray(v)) return undefined;
    if (!ranked && v[0] === 'k' && Number.isSafeInteger(v[1]) && typeof v[2] === 'string' && Number.isSafeInteger(v[3])) {
      return { kind: 'key', ts: v[1] as number, ch: v[2], seq: v[3] as number };
    }
    if (ranked && v[0] === 'o' && Number.isSafeInteger(v[1]) && (v[1] as number) >= 0 && (v[1] as number) <= MAX_SEARCH_OFFSET) {
      return { kind: 'offset', offset: v[1] as number };
    }
  } catch {
    // fall through
  }
  return undefined;
}

/** A cursor that is malformed or does not fit the request's order (code CHORUS_BAD_MESSAGE). */
export class SearchCursorError extends ChorusError {
  constructor() {
    super('CHORUS_BAD_MESSAGE', 'invalid search cursor (it must come from the previous page of the same query and order)');
  }
}

/** Whether a request is ordered by relevance (relevance order and something to rank by); others are ordered newest first. */
export function isRanked(req: Pick<SearchRequest, 'order' | 'query'>): boolean {
  return req.order === 'relevance' && (req.query.words.length > 0 || req.query.phrases.length > 0);
}

/** Whether a posted message carries files (the files feature adds `files` to messages; absent means none). */
export function messageHasFiles(msg: object): boolean {
  const f = (msg as { files?: unknown }).files;
  return Array.isArray(f) ? f.length > 0 : false;
}
