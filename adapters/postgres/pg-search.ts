/**
 * PostgresSearch: the Search port and its index writer on PostgreSQL
 * full-text search (PGlite in the embedded profile, pg in the cluster
 * profile without Elasticsearch), on the query side's databases and shard
 * routing (docs/search.md).
 *
 * - Table `chat_search` (migration 3): one row per live message, with a
 *   generated `tsvector` (`to_tsvector('english', text)`: lower case,
 *   stemming, English stop words) and a GIN index on it.
 * - Positions: rows of `chorus_projection_positions` under projection
 *   'search', locked and written in the same transaction as the documents.
 * - Workspace moves between shards (shard-move.ts) carry the index
 *   (`PG_SEARCH_TABLES`; the projection is cluster/search's
 *   PG_SEARCH_SHARD_PROJECTION): writes of a workspace being switched wait
 *   (ShardWriteGate), and `barrier()` waits for the writes under way.
 * - Queries: one statement. Words become `plainto_tsquery`, each phrase a
 *   `phraseto_tsquery`, ANDed; the caller's readable channels are the
 *   `ch = ANY($2)` of the WHERE clause, next to `ws = $1`, so nothing else
 *   can ever be returned. Highlights come from `ts_headline` over the whole
 *   text, converted to ranges. Newest order pages by (ts, ch, seq) keyset;
 *   relevance (`ts_rank_cd`) by offset, up to MAX_SEARCH_OFFSET.
 */
import {
  HL_END, HL_START, MAX_SEARCH_OFFSET, decodeCursor, docKey, encodeCursor, highlightRanges, isRanked, SearchCursorError,
  type Search, type SearchChanges, type SearchDoc, type SearchDocKey, type SearchHit, type SearchIndexWriter, type SearchPage, type SearchRequest,
} from '../../actors/search.ts';
import { BackendError, ChorusError } from '../../runtime/errors.ts';
import { migrate } from './migrations.ts';
import { PositionBooks, reactionsFromJson, writeBatch, wsOfStream } from './query-projection.ts';
import { projectionPositions } from './query-sink.ts';
import type { QueryTable } from './query-tables.ts';
import { ShardWriteGate, type QueryRouting } from './shard-router.ts';
import { RETRYABLE_SQLSTATES, queryAll, sqlState, type SqlQueryable, type SqlStatement } from './sql-client.ts';

/** The projection name of the search rows in `chorus_projection_positions`. */
export const PG_SEARCH_PROJECTION = 'search';
/**
 * The search projection's tables, for the shard move tool (query-tables.ts):
 * `tsv` is generated from `text` (migration 3), so a copy writes the other
 * columns and the target computes it; checksums include it.
 */
export const PG_SEARCH_TABLES: readonly QueryTable[] = [{
  name: 'chat_search', key: ['ch', 'seq'], generated: ['tsv'], cols: [
    ['ws', 'text'], ['ch', 'text'], ['seq', 'bigint'], ['user_id', 'text'], ['ts', 'bigint'], ['text', 'text'], ['parent', 'bigint'],
    ['edited_at', 'bigint'], ['has_file', 'boolean'], ['reactions', 'jsonb'],
  ],
}];
/** Rows per INSERT/DELETE statement. */
const ROWS_PER_STATEMENT = 500;

/** Options of PostgresSearch; every field has a default. */
export interface PostgresSearchOptions {
  /** Runs the migrations on every database first. Default true. */
  readonly migrate?: boolean;
  /** Transaction attempts on a lost race. Default 10. */
  readonly maxAttempts?: number;
  /** Text search configuration (must match migration 3's generated column). Default 'english'. */
  readonly config?: string;
}

/** PostgreSQL full-text search over `chat_search`. */
export class PostgresSearch implements Search, SearchIndexWriter {
  private readyP: Promise<void> | undefined;
  private readonly cfg: string;
  private readonly gate: ShardWriteGate;
  /** Positions committed per shard database (see PositionBook). */
  private readonly books = new PositionBooks(PG_SEARCH_PROJECTION);

  constructor(private readonly routing: QueryRouting, private readonly opts: PostgresSearchOptions = {}) {
    this.gate = new ShardWriteGate(routing);
    this.cfg = opts.config ?? 'english';
    if (!/^[a-z_]+$/.test(this.cfg)) throw new RangeError(`PostgresSearch: config must be a text search configuration name, got ${JSON.stringify(this.cfg)}`);
  }

  /** Resolves once every database is migrated. */
  ready(): Promise<void> {
    this.readyP ??= (this.opts.migrate ?? true) ? Promise.all(this.routing.dbs().map((d) => migrate(d.sql.primary))).then(() => undefined) : Promise.resolve();
    return this.readyP;
  }

  // ---- writer ------------------------------------------------------------------

  async positions(): Promise<Map<string, number>> {
    await this.ready();
    return projectionPositions(this.routing, PG_SEARCH_PROJECTION);
  }

  partitionOf(ws: string): string {
    return this.routing.dbFor(ws).id;
  }

  /**
   * Writes one unit (see SearchIndexWriter). A unit with a workspace that is
   * being switched to another shard waits until the switch is done (like the
   * query projection's writes).
   */
  async update(streams: readonly string[], fn: Parameters<SearchIndexWriter['update']>[1]): Promise<void> {
    await this.ready();
    const wss = [...new Set(streams.map(wsOfStream))];
    await this.gate.run(wss, () => this.write(streams, wss, fn));
  }

  /** Resolves when every index write that started before the call has finished (the shard move tool's switch barrier). */
  barrier(): Promise<void> {
    return this.gate.barrier();
  }

  private async write(streams: readonly string[], wss: readonly string[], fn: Parameters<SearchIndexWriter['update']>[1]): Promise<void> {
    // the database is picked now, before any await (ShardWriteGate); the unit was grouped by partitionOf a moment ago,
    // and a move that switched one of its workspaces since then splits it: refuse, the projection retries the unit
    const dbs = new Set(wss.map((ws) => this.routing.dbFor(ws)));
    if (dbs.size > 1) throw new BackendError('postgres', `search index write: the workspaces of one unit now live on ${dbs.size} shards (a workspace move switched); retried`);
    const db = [...dbs][0] ?? this.routing.dbFor('');
    const maxAttempts = this.opts.maxAttempts ?? 10;
    const book = this.books.of(db.id);
    for (let attempt = 1; ; attempt++) {
      try {
        const after = await db.sql.primary.transaction(async (tx) => {
          const positions = await book.lock(tx, streams);
          const changes = await fn({ positions, load: (keys) => loadDocs(tx, keys) });
          const moved = new Map([...changes.positions].filter(([s, p]) => p !== positions.get(s)));
          await writeBatch(tx, changeStatements(changes), book.storeStatement(moved, positions));
          return new Map([...positions, ...moved]);
        });
        book.committed(after);
        return;
      } catch (err) {
        book.forget();
        const state = sqlState(err);
        if (state && RETRYABLE_SQLSTATES.has(state) && attempt < maxAttempts) {
          await new Promise((r) => setTimeout(r, Math.min(200, 5 * 2 ** attempt) * Math.random()));
          continue;
        }
        throw err instanceof ChorusError ? err : new BackendError('postgres', `search index write failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      }
    }
  }

  // ---- reader ------------------------------------------------------------------

  async search(req: SearchRequest): Promise<SearchPage> {
    await this.ready();
    const ranked = isRanked(req);
    const cursor = req.cursor !== undefined ? decodeCursor(req.cursor, ranked) : undefined;
    if (req.cursor !== undefined && !cursor) throw new SearchCursorError();
    if (!req.channels.length) return { hits: [] };
    const q = req.query;
    const params: unknown[] = [req.ws, [...req.channels]];
    const p = (v: unknown) => `$${params.push(v)}`;
    const cfg = `'${this.cfg}'::regconfig`;
    const tsParts: string[] = [];
    if (q.words.length) tsParts.push(`plainto_tsquery(${cfg}, ${p(q.words.join(' '))})`);
    for (const ph of q.phrases) tsParts.push(`phraseto_tsquery(${cfg}, ${p(ph)})`);
    const tsq = tsParts.length ? tsParts.join(' && ') : null;
    const where = ['s.ws = $1', 's.ch = ANY($2::text[])'];
    if (tsq) where.push('s.tsv @@ qq.q');
    if (q.from.length) where.push(`s.user_id = ANY(${p([...q.from])}::text[])`);
    if (q.after !== undefined) where.push(`s.ts >= ${p(q.after)}`);
    if (q.before !== undefined) where.push(`s.ts < ${p(q.before)}`);
    if (q.hasFile) where.push('s.has_file');
    const newest = 'ORDER BY s.ts DESC, s.ch COLLATE "C" DESC, s.seq DESC';
    let order: string;
    let offset = 0;
    if (!ranked) {
      if (cursor?.kind === 'key') where.push(`(s.ts, s.ch COLLATE "C", s.seq) < (${p(cursor.ts)}::bigint, ${p(cursor.ch)}::text COLLATE "C", ${p(cursor.seq)}::bigint)`);
      order = newest;
    } else {
      if (cursor?.kind === 'offset') offset = cursor.offset;
      order = `ORDER BY score DESC, s.ts DESC, s.ch COLLATE "C" DESC, s.seq DESC`;
    }
    const limit = Math.max(1, Math.min(100, req.limit));
    const hl = tsq
      ? `ts_headline(${cfg}, s.text, qq.q, ${p(`HighlightAll=true, StartSel=${HL_START}, StopSel=${HL_END}`)})`
      : 'NULL';
    const sql = `SELECT s.ch, s.seq, s.user_id, s.ts, s.text, s.parent, s.edited_at, s.has_file,
                        ${tsq ? 'ts_rank_cd(s.tsv, qq.q)' : '0'} AS score, ${hl} AS hl
                   FROM chat_search s${tsq ? `, (SELECT ${tsq} AS q) qq` : ''}
                  WHERE ${where.join(' AND ')}
                  ${order}
                  LIMIT ${limit + 1} OFFSET ${offset}`;
    const rows = await this.routing.dbFor(req.ws).sql.read((db) => db.query<Record<string, unknown>>(sql, params));
    const hits = rows.slice(0, limit).map((r): SearchHit => {
      const h: SearchHit = {
        ch: String(r.ch), seq: Number(r.seq), user: String(r.user_id), ts: Number(r.ts), text: String(r.text),
        hasFile: Boolean(r.has_file), highlights: typeof r.hl === 'string' ? highlightRanges(r.hl) : [],
      };
      if (r.parent !== null && r.parent !== undefined) h.parent = Number(r.parent);
      if (r.edited_at !== null && r.edited_at !== undefined) h.editedAt = Number(r.edited_at);
      return h;
    });
    if (rows.length <= limit) return { hits };
    const last = hits[hits.length - 1]!;
    if (ranked) {
      return offset + limit < MAX_SEARCH_OFFSET ? { hits, next: encodeCursor({ kind: 'offset', offset: offset + limit }) } : { hits };
    }
    return { hits, next: encodeCursor({ kind: 'key', ts: last.ts, ch: last.ch, seq: last.seq }) };
  }
}

async function loadDocs(tx: SqlQueryable, keys: readonly SearchDocKey[]): Promise<Map<string, SearchDoc>> {
  const out = new Map<string, SearchDoc>();
  const reads: SqlStatement[] = [];
  for (let i = 0; i < keys.length; i += ROWS_PER_STATEMENT) {
    const chunk = keys.slice(i, i + ROWS_PER_STATEMENT);
    reads.push({
      text: `SELECT s.ws, s.ch, s.seq, s.user_id, s.ts, s.text, s.parent, s.edited_at, s.has_file, s.reactions
               FROM chat_search s JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS k(ws, ch, seq)
                 ON s.ws = k.ws AND s.ch = k.ch AND s.seq = k.seq`,
      params: [chunk.map((k) => k.ws), chunk.map((k) => k.ch), chunk.map((k) => k.seq)],
    });
  }
  for (const rows of await queryAll(tx, reads)) {
    for (const r of rows) {
      const d: SearchDoc = {
        ws: String(r.ws), ch: String(r.ch), seq: Number(r.seq), user: String(r.user_id), ts: Number(r.ts), text: String(r.text),
        parent: r.parent === null || r.parent === undefined ? null : Number(r.parent),
        editedAt: r.edited_at === null || r.edited_at === undefined ? null : Number(r.edited_at),
        hasFile: Boolean(r.has_file), reactions: reactionsFromJson(r.reactions) ?? {},
      };
      out.set(docKey(d), d);
    }
  }
  return out;
}

/** The statements that write a batch's changes: deletes, then upserts. */
function changeStatements(c: SearchChanges): SqlStatement[] {
  const out: SqlStatement[] = [];
  for (let i = 0; i < c.deletes.length; i += ROWS_PER_STATEMENT) {
    const chunk = c.deletes.slice(i, i + ROWS_PER_STATEMENT);
    out.push({
      text: `DELETE FROM chat_search WHERE (ws, ch, seq) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]))`,
      params: [chunk.map((k) => k.ws), chunk.map((k) => k.ch), chunk.map((k) => k.seq)],
    });
  }
  for (let i = 0; i < c.upserts.length; i += ROWS_PER_STATEMENT) {
    const chunk = c.upserts.slice(i, i + ROWS_PER_STATEMENT);
    out.push({
      text: `INSERT INTO chat_search (ws, ch, seq, user_id, ts, text, parent, edited_at, has_file, reactions)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[], $9::boolean[], $10::text[]::jsonb[])
             ON CONFLICT (ws, ch, seq) DO UPDATE SET user_id = EXCLUDED.user_id, ts = EXCLUDED.ts, text = EXCLUDED.text, parent = EXCLUDED.parent,
               edited_at = EXCLUDED.edited_at, has_file = EXCLUDED.has_file, reactions = EXCLUDED.reactions`,
      params: [
        chunk.map((d) => d.ws), chunk.map((d) => d.ch), chunk.map((d) => d.seq), chunk.map((d) => d.user), chunk.map((d) => d.ts),
        chunk.map((d) => d.text), chunk.map((d) => d.parent), chunk.map((d) => d.editedAt), chunk.map((d) => d.hasFile),
        // reactions as [[emoji, users], ...]: jsonb would sort object keys (see reactionsFromJson)
        chunk.map((d) => (Object.keys(d.reactions).length ? JSON.stringify(Object.entries(d.reactions)) : null)),
      ],
    });
  }
  return out;
}
