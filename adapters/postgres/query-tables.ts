/**
 * The shard databases' tables as data (name, columns with types, key), for
 * the tools that handle a workspace as a unit: copy to another database,
 * delete, checksum. Every table has a `ws` column (migrations 2 and 3). The
 * query projection's tables are here; other projections that live in the
 * shard databases describe theirs the same way (pg-search.ts).
 */
import type { SqlQueryable } from './sql-client.ts';

type ColType = 'text' | 'bigint' | 'integer' | 'boolean' | 'jsonb';

/** One query table. */
export interface QueryTable {
  readonly name: string;
  readonly cols: ReadonlyArray<readonly [string, ColType]>;
  /** Primary key after `ws` (the position table: its whole key). */
  readonly key: readonly string[];
  /** Columns left out of checksums (times of writing, which differ between databases). */
  readonly volatile?: readonly string[];
  /** Generated columns (GENERATED ALWAYS ... STORED): never written (each database computes them), but checksummed. */
  readonly generated?: readonly string[];
}

/** Every table that holds a workspace's query data (the query projection's; positions apart: POSITIONS_TABLE). */
export const QUERY_TABLES: readonly QueryTable[] = [
  {
    name: 'chat_messages', key: ['ch', 'seq'], cols: [
      ['ws', 'text'], ['ch', 'text'], ['seq', 'bigint'], ['user_id', 'text'], ['ts', 'bigint'], ['text', 'text'], ['parent', 'bigint'],
      ['reply_count', 'integer'], ['last_reply_at', 'bigint'], ['edited_at', 'bigint'], ['deleted', 'boolean'], ['reactions', 'jsonb'],
      ['pinned', 'boolean'], ['client_msg_id', 'text'], ['mentions', 'jsonb'], ['channel_mention', 'boolean'], ['files', 'jsonb'],
    ],
  },
  {
    name: 'chat_channels', key: ['ch'], cols: [
      ['ws', 'text'], ['ch', 'text'], ['name', 'text'], ['kind', 'text'], ['topic', 'text'], ['created_by', 'text'], ['created_at', 'bigint'],
      ['member_count', 'integer'],
    ],
  },
  { name: 'chat_channel_members', key: ['ch', 'user_id'], cols: [['ws', 'text'], ['ch', 'text'], ['user_id', 'text'], ['joined_at', 'bigint'], ['added_by', 'text'], ['ord', 'bigint']] },
  { name: 'chat_workspaces', key: [], cols: [['ws', 'text'], ['name', 'text'], ['created_by', 'text'], ['created_at', 'bigint'], ['settings', 'jsonb']] },
  { name: 'chat_workspace_members', key: ['user_id'], cols: [['ws', 'text'], ['user_id', 'text'], ['role', 'text'], ['joined_at', 'bigint']] },
  {
    name: 'chat_profiles', key: ['user_id'], cols: [
      ['ws', 'text'], ['user_id', 'text'], ['display_name', 'text'], ['title', 'text'], ['avatar_url', 'text'], ['tz', 'text'], ['away', 'boolean'], ['updated_at', 'bigint'],
    ],
  },
  {
    name: 'chat_read_cursors', key: ['user_id', 'ch'], cols: [
      ['ws', 'text'], ['user_id', 'text'], ['ch', 'text'], ['kind', 'text'], ['name', 'text'], ['read_seq', 'bigint'], ['latest_seq', 'bigint'],
      ['mentions', 'jsonb'], ['member', 'boolean'],
    ],
  },
];

/** The projections' stored positions (one row per projection and stream; rows of one projection: `eq: { projection }`). */
export const POSITIONS_TABLE: QueryTable = {
  name: 'chorus_projection_positions', key: ['projection', 'stream'], volatile: ['updated_at'],
  cols: [['projection', 'text'], ['stream', 'text'], ['ws', 'text'], ['pos', 'bigint'], ['updated_at', 'bigint']],
};

const conflictKey = (t: QueryTable) => (t === POSITIONS_TABLE ? t.key : ['ws', ...t.key]);

/** Equality filters on other columns than `ws` (e.g. `{ projection: 'query' }` on the position table). */
export type RowFilter = Readonly<Record<string, string>>;

/** `ws = $1 AND <col> = $n ...` and its parameters; more parameters can be pushed after them. */
function whereWs(ws: string, eq: RowFilter = {}): { sql: string; params: unknown[] } {
  const params: unknown[] = [ws];
  const sql = ['ws = $1', ...Object.entries(eq).map(([c, v]) => `${c} = $${params.push(v)}`)].join(' AND ');
  return { sql, params };
}

/**
 * Reads every row of `ws` (and `eq`) in `t` in key order, `pageSize` at a
 * time (keyset pagination), calling `page` with each page.
 */
export async function scanWorkspace(
  q: SqlQueryable, t: QueryTable, ws: string, pageSize: number, page: (rows: Record<string, unknown>[]) => Promise<void>, eq?: RowFilter,
): Promise<number> {
  const cols = t.cols.map((c) => c[0]).join(', ');
  const key = t.key;
  let last: unknown[] | undefined;
  let total = 0;
  for (;;) {
    const { sql: where, params } = whereWs(ws, eq);
    const limit = `$${params.push(pageSize)}`;
    const cond = last && key.length
      ? ` AND (${key.join(', ')}) > (${key.map((k, i) => `$${params.push(last![i])}::${t.cols.find((c) => c[0] === k)![1]}`).join(', ')})`
      : '';
    const rows = await q.query<Record<string, unknown>>(
      `SELECT ${cols} FROM ${t.name} WHERE ${where}${cond} ORDER BY ${key.length ? key.join(', ') : 'ws'} LIMIT ${limit}`, params,
    );
    if (rows.length) await page(rows);
    total += rows.length;
    if (rows.length < pageSize || !key.length) return total;
    const r = rows[rows.length - 1]!;
    last = key.map((k) => r[k]);
  }
}

/** Upserts rows (as read by scanWorkspace) into `t`. */
export async function insertRows(q: SqlQueryable, t: QueryTable, rows: Record<string, unknown>[]): Promise<void> {
  if (!rows.length) return;
  const names = t.cols.map((c) => c[0]);
  const params = t.cols.map((c, i) => (c[1] === 'jsonb' ? `$${i + 1}::text[]::jsonb[]` : `$${i + 1}::${c[1]}[]`));
  const key = conflictKey(t);
  const sets = names.filter((n) => !key.includes(n)).map((n) => `${n} = EXCLUDED.${n}`);
  await q.query(
    `INSERT INTO ${t.name} (${names.join(', ')}) SELECT * FROM unnest(${params.join(', ')})
     ON CONFLICT (${key.join(', ')}) DO ${sets.length ? `UPDATE SET ${sets.join(', ')}` : 'NOTHING'}`,
    t.cols.map(([n, type]) => rows.map((r) => (type === 'jsonb' && r[n] !== null && r[n] !== undefined ? JSON.stringify(r[n]) : r[n] ?? null))),
  );
}

/** Deletes every row of `ws` (and `eq`) from `t`. */
export async function deleteRows(q: SqlQueryable, t: QueryTable, ws: string, eq?: RowFilter): Promise<void> {
  const { sql, params } = whereWs(ws, eq);
  await q.query(`DELETE FROM ${t.name} WHERE ${sql}`, params);
}

/** Row count and an md5 over the rows of `ws` (and `eq`) in `t` in key order (volatile columns left out, generated ones in). */
export async function checksumRows(q: SqlQueryable, t: QueryTable, ws: string, eq?: RowFilter): Promise<{ rows: number; md5: string }> {
  const cols = [...t.cols.map((c) => c[0]), ...(t.generated ?? [])].filter((c) => !t.volatile?.includes(c));
  // byte order for text keys: both databases must walk the rows alike, whatever their collations
  const order = t.key.length ? t.key.map((k) => (t.cols.find((c) => c[0] === k)?.[1] === 'text' ? `${k} COLLATE "C"` : k)).join(', ') : 'ws';
  const { sql, params } = whereWs(ws, eq);
  const [r] = await q.query<{ n: number; h: string | null }>(
    `SELECT count(*)::int AS n, md5(string_agg(md5(row(${cols.join(', ')})::text), '' ORDER BY ${order})) AS h FROM ${t.name} WHERE ${sql}`, params);
  return { rows: Number(r?.n ?? 0), md5: r?.h ?? '' };
}
