import { BackendError, ChorusError } from '../../runtime/errors.ts';
import type { SqlClient } from './sql-client.ts';

/**
 * The schema of every PostgreSQL-backed port (log, snapshots, and later the
 * query side) as an ordered list of versioned migrations. A migration is never
 * edited once released: append a new one. Each statement is a single SQL
 * command (PGlite's and pg's parameterised protocol run one command at a time).
 */
export interface Migration {
  /** 1, 2, 3, ... with no gaps. */
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

/** The migrations this code knows. Other issues append to this list. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'event log and snapshots',
    statements: [
      `CREATE TABLE chorus_log (
         stream   text   NOT NULL,
         pos      bigint NOT NULL,
         dedup_id text,
         data     bytea  NOT NULL,
         ts       bigint NOT NULL,
         gseq     bigserial NOT NULL,
         -- the writing transaction: tail() only passes rows of finished transactions, see pg-event-log.ts
         txid     xid8   NOT NULL DEFAULT pg_current_xact_id(),
         PRIMARY KEY (stream, pos),
         UNIQUE (stream, dedup_id)
       )`,
      `CREATE INDEX chorus_log_tail ON chorus_log (txid, gseq)`,
      `CREATE TABLE chorus_snapshots (
         stream text   PRIMARY KEY,
         pos    bigint NOT NULL,
         data   bytea  NOT NULL
       )`,
    ],
  },
  {
    // The query side (adapters/postgres/query-*.ts, docs/query-side.md): tables
    // the projections fill from the log. Every row carries its workspace, so a
    // workspace can be copied to another shard as a unit.
    version: 2,
    name: 'query store',
    statements: [
      `CREATE TABLE chat_messages (
         ws            text    NOT NULL,
         ch            text    NOT NULL,
         seq           bigint  NOT NULL,
         user_id       text    NOT NULL,
         ts            bigint  NOT NULL,
         text          text    NOT NULL,
         parent        bigint,
         reply_count   integer NOT NULL DEFAULT 0,
         last_reply_at bigint,
         edited_at     bigint,
         deleted       boolean NOT NULL DEFAULT false,
         reactions     jsonb,
         pinned        boolean NOT NULL DEFAULT false,
         client_msg_id text    NOT NULL,
         mentions      jsonb,
         channel_mention boolean NOT NULL DEFAULT false,
         PRIMARY KEY (ws, ch, seq)
       )`,
      // history pages walk top-level messages by seq; threads walk replies by parent
      `CREATE INDEX chat_messages_top ON chat_messages (ws, ch, seq) WHERE parent IS NULL`,
      `CREATE INDEX chat_messages_thread ON chat_messages (ws, ch, parent, seq) WHERE parent IS NOT NULL`,
      `CREATE TABLE chat_channels (
         ws           text    NOT NULL,
         ch           text    NOT NULL,
         name         text    NOT NULL,
         kind         text    NOT NULL,
         topic        text    NOT NULL,
         created_by   text    NOT NULL,
         created_at   bigint  NOT NULL,
         member_count integer NOT NULL DEFAULT 0,
         latest_seq   bigint  NOT NULL DEFAULT 0,
         PRIMARY KEY (ws, ch)
       )`,
      `CREATE TABLE chat_channel_members (
         ws        text   NOT NULL,
         ch        text   NOT NULL,
         user_id   text   NOT NULL,
         joined_at bigint NOT NULL,
         added_by  text   NOT NULL,
         -- insertion order (log pos * 65536 + index in the record): ties of joined_at list like the actor's table
         ord       bigint NOT NULL,
         PRIMARY KEY (ws, ch, user_id)
       )`,
      `CREATE TABLE chat_workspaces (
         ws         text   PRIMARY KEY,
         name       text   NOT NULL,
         created_by text   NOT NULL,
         created_at bigint NOT NULL,
         settings   jsonb  NOT NULL
       )`,
      `CREATE TABLE chat_workspace_members (
         ws        text   NOT NULL,
         user_id   text   NOT NULL,
         role      text   NOT NULL,
         joined_at bigint NOT NULL,
         PRIMARY KEY (ws, user_id)
       )`,
      `CREATE TABLE chat_profiles (
         ws           text    NOT NULL,
         user_id      text    NOT NULL,
         display_name text,
         title        text,
         avatar_url   text,
         tz           text,
         away         boolean NOT NULL DEFAULT false,
         updated_at   bigint  NOT NULL DEFAULT 0,
         PRIMARY KEY (ws, user_id)
       )`,
      `CREATE TABLE chat_read_cursors (
         ws         text    NOT NULL,
         user_id    text    NOT NULL,
         ch         text    NOT NULL,
         kind       text    NOT NULL,
         name       text    NOT NULL,
         read_seq   bigint  NOT NULL,
         latest_seq bigint  NOT NULL,
         mentions   jsonb   NOT NULL,
         member     boolean NOT NULL,
         PRIMARY KEY (ws, user_id, ch)
       )`,
      // one row per (projection, log stream): the last log position whose effects are in this database,
      // written in the same transaction as the rows, which is what makes replays and crashes harmless
      `CREATE TABLE chorus_projection_positions (
         projection text   NOT NULL,
         stream     text   NOT NULL,
         ws         text   NOT NULL,
         pos        bigint NOT NULL,
         updated_at bigint NOT NULL,
         PRIMARY KEY (projection, stream)
       )`,
      `CREATE INDEX chorus_projection_positions_ws ON chorus_projection_positions (ws)`,
    ],
  },
  {
    // Message search (adapters/postgres/pg-search.ts, docs/search.md): one row per live message, filled by the
    // 'search' projection; positions in chorus_projection_positions under projection 'search'.
    version: 3,
    name: 'message search',
    statements: [
      `CREATE TABLE chat_search (
         ws        text    NOT NULL,
         ch        text    NOT NULL,
         seq       bigint  NOT NULL,
         user_id   text    NOT NULL,
         ts        bigint  NOT NULL,
         text      text    NOT NULL,
         parent    bigint,
         edited_at bigint,
         has_file  boolean NOT NULL DEFAULT false,
         reactions jsonb,
         tsv       tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
         PRIMARY KEY (ws, ch, seq)
       )`,
      `CREATE INDEX chat_search_tsv ON chat_search USING GIN (tsv)`,
      // the newest-first walk and filter-only queries (from:, dates) within a workspace
      `CREATE INDEX chat_search_ws_ts ON chat_search (ws, ts DESC)`,
    ],
  },
  {
    // File metadata (adapters/postgres/sql-file-catalog.ts, docs/files.md): one row per stored upload,
    // written after the bytes are committed to the FileStore; read counts drive the tiering job.
    version: 4,
    name: 'file metadata',
    statements: [
      `CREATE TABLE chorus_files (
         id            text    PRIMARY KEY,
         ws            text    NOT NULL,
         ch            text    NOT NULL,
         uploader      text    NOT NULL,
         name          text    NOT NULL,
         type          text    NOT NULL,
         size          bigint  NOT NULL,
         sha256        text    NOT NULL,
         created       bigint  NOT NULL,
         key           text    NOT NULL,
         storage_class text    NOT NULL DEFAULT 'STANDARD',
         read_count    integer NOT NULL DEFAULT 0,
         last_read     bigint
       )`,
      // the tiering job walks files by age
      `CREATE INDEX chorus_files_created ON chorus_files (created, id)`,
      `CREATE INDEX chorus_files_channel ON chorus_files (ws, ch, created)`,
      // the file refs a message carries (MessageView.files), so history read from the query side shows them
      `ALTER TABLE chat_messages ADD COLUMN files jsonb`,
    ],
  },
  {
    // A channel's latest seq is max(seq) of its messages (the primary key's last entry): kept in the channel row,
    // it made every post rewrite that row, a third of the query projection's database time under load.
    version: 5,
    name: 'channel latest seq derived from messages',
    statements: [`ALTER TABLE chat_channels DROP COLUMN latest_seq`],
  },
];

/** The database was migrated by newer code than this: running on it could corrupt data. */
export class SchemaTooNewError extends ChorusError {
  constructor(readonly found: number, readonly known: number) {
    super('CHORUS_SCHEMA_TOO_NEW', `database schema version ${found} is newer than this code knows (${known}); upgrade the code`, { found, known });
  }
}

const LOCK_KEY = 0x63686f72; // 'chor': serialises migrators of one database (pg only; PGlite has one connection)
const applied = new WeakMap<SqlClient, Promise<number>>();

/**
 * Brings the schema to the newest version in `migrations`, in one transaction
 * (all or nothing), under an advisory lock so several nodes may start at once.
 * Rejects with SchemaTooNewError when the database is ahead of the code.
 * Memoised per client: every adapter may call it, the work happens once.
 * Resolves to the schema version.
 */
export function migrate(client: SqlClient, migrations: readonly Migration[] = MIGRATIONS): Promise<number> {
  let p = applied.get(client);
  if (!p) {
    p = runMigrations(client, migrations);
    applied.set(client, p);
    p.catch(() => applied.delete(client));
  }
  return p;
}

async function runMigrations(client: SqlClient, migrations: readonly Migration[]): Promise<number> {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration #${i} has version ${m.version}; versions must be 1, 2, 3, ...`);
  });
  const known = migrations.length;
  try {
    return await client.transaction(async (tx) => {
      if (client.dialect === 'pg') await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
      await tx.query(`CREATE TABLE IF NOT EXISTS chorus_schema_version (
        version    integer PRIMARY KEY,
        name       text    NOT NULL,
        applied_at bigint  NOT NULL
      )`);
      const [row] = await tx.query<{ v: number | null }>('SELECT max(version) AS v FROM chorus_schema_version');
      const current = Number(row?.v ?? 0);
      if (current > known) throw new SchemaTooNewError(current, known);
      for (const m of migrations.slice(current)) {
        for (const s of m.statements) await tx.query(s);
        await tx.query('INSERT INTO chorus_schema_version (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
      }
      return known;
    });
  } catch (err) {
    if (err instanceof ChorusError) throw err;
    throw new BackendError('postgres', `schema migration failed: ${(err as Error).message}`, { cause: err });
  }
}
