import { BackendError, type FileCatalog, type FileRecord, type FileStats, type StorageClass } from '../../runtime/index.ts';
import { migrate } from './migrations.ts';
import type { SqlClient } from './sql-client.ts';

type Row = {
  id: string; ws: string; ch: string; uploader: string; name: string; type: string; size: number; sha256: string;
  created: number; key: string; storage_class: string; read_count: number; last_read: number | null;
};

function toRecord(r: Row): FileRecord {
  return {
    id: r.id, ws: r.ws, ch: r.ch, uploader: r.uploader, name: r.name, type: r.type, size: Number(r.size), sha256: r.sha256,
    created: Number(r.created), key: r.key, storageClass: r.storage_class as StorageClass, readCount: Number(r.read_count),
    lastRead: r.last_read === null ? null : Number(r.last_read),
  };
}

/**
 * The FileCatalog on PostgreSQL (PGlite in the embedded profile, pg in the
 * cluster): table `chorus_files` (migration 4). Migrates on first use.
 */
export class SqlFileCatalog implements FileCatalog {
  constructor(private readonly sql: SqlClient) {}

  private async q<R extends Record<string, unknown>>(text: string, params: readonly unknown[]): Promise<R[]> {
    await migrate(this.sql);
    try {
      return await this.sql.query<R>(text, params);
    } catch (err) {
      throw new BackendError('postgres', `file catalog: ${(err as Error).message}`, { cause: err });
    }
  }

  async insert(r: FileRecord): Promise<void> {
    await this.q(
      `INSERT INTO chorus_files (id, ws, ch, uploader, name, type, size, sha256, created, key, storage_class, read_count, last_read)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [r.id, r.ws, r.ch, r.uploader, r.name, r.type, r.size, r.sha256, r.created, r.key, r.storageClass, r.readCount, r.lastRead],
    );
  }

  async get(id: string): Promise<FileRecord | null> {
    const [r] = await this.q<Row>('SELECT * FROM chorus_files WHERE id = $1', [id]);
    return r ? toRecord(r) : null;
  }

  async delete(id: string): Promise<void> {
    await this.q('DELETE FROM chorus_files WHERE id = $1', [id]);
  }

  async recordRead(id: string, at: number): Promise<void> {
    await this.q('UPDATE chorus_files SET read_count = read_count + 1, last_read = greatest(coalesce(last_read, 0), $2) WHERE id = $1', [id, at]);
  }

  async setStorageClass(id: string, storageClass: StorageClass): Promise<void> {
    await this.q('UPDATE chorus_files SET storage_class = $2 WHERE id = $1', [id, storageClass]);
  }

  async createdBefore(before: number, opts: { limit?: number; afterId?: string } = {}): Promise<FileRecord[]> {
    const rows = await this.q<Row>(
      `SELECT * FROM chorus_files WHERE created < $1 AND id > $2 ORDER BY id LIMIT $3`,
      [before, opts.afterId ?? '', opts.limit ?? 10_000],
    );
    return rows.map(toRecord);
  }

  async stats(): Promise<FileStats> {
    const rows = await this.q<{ storage_class: string; n: number | string; bytes: number | string }>(
      'SELECT storage_class, count(*) AS n, coalesce(sum(size), 0) AS bytes FROM chorus_files GROUP BY storage_class ORDER BY storage_class', []);
    const byClass: Record<string, { files: number; bytes: number }> = {};
    let files = 0;
    let bytes = 0;
    for (const r of rows) {
      byClass[r.storage_class] = { files: Number(r.n), bytes: Number(r.bytes) };
      files += Number(r.n);
      bytes += Number(r.bytes);
    }
    return { files, bytes, byClass };
  }
}
