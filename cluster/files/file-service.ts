import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  ChorusError, FileBadRequestError, FileError, FileNotFoundError, FileTooLargeError, FileTruncatedError, FileTypeNotAllowedError,
  UploadGuard, noopMetrics, silentLogger, type FileCatalog, type FileRecord, type FileStore, type Logger, type Metrics,
} from '../../runtime/index.ts';

/** Upload and download settings. */
export interface FileServiceOptions {
  /** Largest upload in bytes. Default 1 GiB. */
  maxBytes?: number;
  /** Allowed MIME types; `type/*` matches a family, `*` anything. Default: images, audio, video, text, PDF, zip, JSON, octet-stream. */
  allowedTypes?: readonly string[];
  /** Life of a download link in seconds. Default 300. */
  urlTtlSec?: number;
  /** When set, download links get this origin (and path prefix) instead of the store's: a CDN in front of the bucket or node. */
  cdnBaseUrl?: string | undefined;
  metrics?: Metrics;
  logger?: Logger;
  /** Clock in ms. Default Date.now. */
  now?: () => number;
}

/** The default allowed types. */
export const DEFAULT_ALLOWED_TYPES: readonly string[] = Object.freeze([
  'image/*', 'audio/*', 'video/*', 'text/*', 'application/pdf', 'application/zip', 'application/json', 'application/octet-stream',
]);

/** One upload as the edge hands it over. */
export interface UploadRequest {
  readonly ws: string;
  readonly ch: string;
  readonly by: string;
  readonly name: string;
  readonly contentType: string;
  /** Content-Length, when the client sent one. */
  readonly declaredBytes?: number | undefined;
  /** Lower-case hex sha256 the client computed. */
  readonly sha256: string;
  readonly body: Readable;
}

const FILE_NAME = /^[^\x00-\x1f\x7f/\\]{1,255}$/;
const SHA256 = /^[0-9a-f]{64}$/;

/** The MIME type without parameters, lower-case. */
export function bareType(ct: string | undefined): string {
  return (ct ?? '').split(';')[0]!.trim().toLowerCase();
}

/** True when `type` matches one of `allowed` (`*`, `family/*` or exact). */
export function typeAllowed(type: string, allowed: readonly string[]): boolean {
  if (!/^[a-z0-9][a-z0-9.+-]*\/[a-z0-9][a-z0-9.+-]*$/.test(type)) return false;
  return allowed.some((a) => a === '*' || a === type || (a.endsWith('/*') && type.startsWith(a.slice(0, -1))));
}

/** Replaces the origin (and prefixes the path) of `url` with `cdnBaseUrl`'s. */
export function cdnUrl(url: string, cdnBaseUrl: string | undefined): string {
  if (!cdnBaseUrl) return url;
  const u = new URL(url);
  const cdn = new URL(cdnBaseUrl);
  return `${cdn.origin}${cdn.pathname.replace(/\/$/, '')}${u.pathname}${u.search}`;
}

/** A new file id: `F` and 20 base32 characters (100 random bits: not guessable). */
export function newFileId(): string {
  const b = randomBytes(13);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = 'F';
  for (const byte of b) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 21) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/**
 * Uploads and download links over a FileStore and a FileCatalog. Permission
 * is not decided here: callers pass `authorize`, which asks the channel actor
 * (the edge's files API does), before anything is stored or a link is issued.
 *
 * An upload streams request -> UploadGuard (size limit, sha256, length) ->
 * store.put; the guard fails the stream before the store commits, so a bad
 * upload stores nothing. Then the catalog row, then `committed` (the channel
 * records the file); if either fails, the object and row are removed.
 */
export class FileService {
  readonly maxBytes: number;
  readonly allowedTypes: readonly string[];
  readonly urlTtlSec: number;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(readonly store: FileStore, readonly catalog: FileCatalog, private readonly o: FileServiceOptions = {}) {
    this.maxBytes = o.maxBytes ?? 1024 ** 3;
    this.allowedTypes = o.allowedTypes ?? DEFAULT_ALLOWED_TYPES;
    this.urlTtlSec = o.urlTtlSec ?? 300;
    this.metrics = o.metrics ?? noopMetrics;
    this.logger = o.logger ?? silentLogger;
    this.now = o.now ?? Date.now;
  }

  /** Checks what can be checked before reading the body: name, type, declared size, checksum format. */
  precheck(r: Omit<UploadRequest, 'body'>): void {
    if (!FILE_NAME.test(r.name)) throw new FileBadRequestError('name: 1-255 characters, no control characters or slashes');
    if (!SHA256.test(r.sha256)) throw new FileBadRequestError('x-chorus-sha256: the lower-case hex sha256 of the body is required');
    const type = bareType(r.contentType);
    if (!typeAllowed(type, this.allowedTypes)) throw new FileTypeNotAllowedError(type || '(none)');
    if (r.declaredBytes !== undefined && r.declaredBytes > this.maxBytes) throw new FileTooLargeError(this.maxBytes);
  }

  /** Stores one upload; resolves to its catalog record. */
  async upload(r: UploadRequest, hooks: { authorize: () => Promise<void>; committed: (rec: FileRecord) => Promise<void> }): Promise<FileRecord> {
    const started = performance.now();
    const duration = this.metrics.histogram('file_upload_duration_seconds', 'Time from the start of an upload to its answer', ['store', 'outcome'], [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]);
    const failures = this.metrics.counter('file_upload_failures_total', 'Uploads refused or failed, by error code', ['code']);
    try {
      this.precheck(r);
      await hooks.authorize();
      const id = newFileId();
      const key = `${r.ws}/${r.ch}/${id}`;
      const type = bareType(r.contentType);
      const guard = new UploadGuard({ maxBytes: this.maxBytes, expectedBytes: r.declaredBytes, sha256: r.sha256 });
      // the request feeds the guard by hand, not with pipeline(): a refused upload must not destroy the request's socket, or the
      // client would never read the error. A request that closes before its end (cut connection) fails the guard as truncated.
      const cut = () => {
        if (!r.body.readableEnded) guard.destroy(new FileTruncatedError(r.declaredBytes ?? null, guard.bytes));
      };
      r.body.once('close', cut);
      r.body.once('error', cut);
      r.body.pipe(guard);
      let info;
      try {
        info = await this.store.put(key, guard, { contentType: type, size: r.declaredBytes });
      } finally {
        r.body.off('close', cut);
        r.body.off('error', cut);
        r.body.unpipe(guard);
      }
      const rec: FileRecord = {
        id, ws: r.ws, ch: r.ch, uploader: r.by, name: r.name, type, size: info.size, sha256: guard.digest ?? r.sha256, created: this.now(),
        key, storageClass: info.storageClass, readCount: 0, lastRead: null,
      };
      try {
        await this.catalog.insert(rec);
        await hooks.committed(rec);
      } catch (err) {
        await this.catalog.delete(id).catch(() => {});
        await this.store.delete(key).catch(() => {});
        throw err;
      }
      this.metrics.counter('file_upload_bytes_total', 'Bytes of files stored by uploads', ['store']).inc({ store: this.store.name }, info.size);
      duration.observe((performance.now() - started) / 1000, { store: this.store.name, outcome: 'ok' });
      return rec;
    } catch (err) {
      const code = err instanceof ChorusError ? err.code : 'ERROR';
      failures.inc({ code });
      duration.observe((performance.now() - started) / 1000, { store: this.store.name, outcome: 'error' });
      if (!(err instanceof FileError)) this.logger.warn({ err: (err as Error).message, code }, 'upload failed');
      throw err;
    }
  }

  /** The catalog record of `id`, after `authorize` (a refusal is FILE_NOT_FOUND: a guessed id reveals nothing). */
  async describe(id: string, authorize: (rec: FileRecord) => Promise<void>): Promise<FileRecord> {
    const rec = /^F[A-Z2-7]{20}$/.test(id) ? await this.catalog.get(id) : null;
    if (!rec) throw new FileNotFoundError(id);
    try {
      await authorize(rec);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'CHAT_NOT_MEMBER' || code === 'CHAT_FORBIDDEN' || code === 'CHAT_NOT_FOUND' || code === 'AUTH_FORBIDDEN') throw new FileNotFoundError(id);
      throw err;
    }
    return rec;
  }

  /** A short-lived download link for `id` (through the CDN when configured); counts a read. */
  async downloadUrl(id: string, authorize: (rec: FileRecord) => Promise<void>): Promise<{ url: string; expiresAt: number; file: FileRecord }> {
    const rec = await this.describe(id, authorize);
    const url = await this.store.signedUrl(rec.key, { expiresInSec: this.urlTtlSec, filename: rec.name, contentType: rec.type });
    await this.catalog.recordRead(id, this.now()).catch((err) => this.logger.warn({ err: (err as Error).message, id }, 'read count not recorded'));
    this.metrics.counter('file_downloads_total', 'Download links issued').inc();
    return { url: cdnUrl(url, this.o.cdnBaseUrl), expiresAt: Math.floor(this.now() / 1000) + this.urlTtlSec, file: rec };
  }
}
