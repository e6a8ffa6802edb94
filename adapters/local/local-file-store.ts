import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  FileBadSignatureError, FileNotFoundError, FileUrlExpiredError, STORAGE_CLASSES, checkFileKey,
  type FileObjectInfo, type FileStore, type PutOptions, type SignedUrlOptions, type StorageClass,
} from '../../runtime/index.ts';

/** Settings of the local store. */
export interface LocalFileStoreOptions {
  /** Root directory (created if missing), e.g. `<dataDir>/files`. */
  readonly dir: string;
  /** HMAC secret of the signed download URLs (at least 16 chars; every node serving the files uses the same). */
  readonly secret: string;
  /** Base URL the node serves `/files/...` on (a function: the port is known only after listen). */
  readonly baseUrl: () => string;
  /** Clock in ms (tests). Default Date.now. */
  readonly now?: () => number;
}

/** What a verified signed URL carries. */
export interface SignedRequest {
  readonly key: string;
  readonly contentType: string | undefined;
  readonly filename: string | undefined;
}

const TMP = '.tmp';

/**
 * The embedded profile's FileStore: one file per object under
 * `<dir>/<storage class>/<key>`. A put streams into `<dir>/.tmp/<random>` and
 * renames it into place only after the body ended cleanly, so a failed or cut
 * upload leaves nothing under the key (and the temp file is removed).
 * Storage classes are directories (a class change is a rename): there is no
 * cheaper disk, but tiering runs the same code as on S3. Downloads are served
 * by the node itself at `/files/<key>?exp=&sig=` (HMAC-SHA256 over key, expiry,
 * type and name; see `verify`).
 */
export class LocalFileStore implements FileStore {
  readonly name = 'local';
  private readonly now: () => number;

  constructor(private readonly o: LocalFileStoreOptions) {
    if (o.secret.length < 16) throw new TypeError('LocalFileStore: secret must be at least 16 characters');
    this.now = o.now ?? Date.now;
  }

  private path(cls: StorageClass, key: string): string {
    return join(this.o.dir, cls, ...key.split('/'));
  }

  /** Where the object is now: the first class directory that holds it. */
  private async locate(key: string): Promise<{ cls: StorageClass; size: number } | null> {
    checkFileKey(key);
    for (const cls of STORAGE_CLASSES) {
      try {
        const s = await stat(this.path(cls, key));
        if (s.isFile()) return { cls, size: s.size };
      } catch {
        /* not in this class */
      }
    }
    return null;
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions): Promise<FileObjectInfo> {
    checkFileKey(key);
    const cls = opts.storageClass ?? 'STANDARD';
    await mkdir(join(this.o.dir, TMP), { recursive: true });
    const tmp = join(this.o.dir, TMP, `${randomBytes(12).toString('hex')}`);
    try {
      await pipeline(Readable.from(body, { objectMode: false }), createWriteStream(tmp, { flags: 'wx' }));
      const size = (await stat(tmp)).size;
      const target = this.path(cls, key);
      await mkdir(dirname(target), { recursive: true });
      await rename(tmp, target); // the commit: atomic on one file system
      for (const other of STORAGE_CLASSES) if (other !== cls) await rm(this.path(other, key), { force: true });
      return { key, size, storageClass: cls };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async get(key: string): Promise<{ body: Readable; info: FileObjectInfo }> {
    const at = await this.locate(key);
    if (!at) throw new FileNotFoundError(key);
    return { body: createReadStream(this.path(at.cls, key)), info: { key, size: at.size, storageClass: at.cls } };
  }

  async head(key: string): Promise<FileObjectInfo | null> {
    const at = await this.locate(key);
    return at ? { key, size: at.size, storageClass: at.cls } : null;
  }

  async delete(key: string): Promise<void> {
    checkFileKey(key);
    for (const cls of STORAGE_CLASSES) await rm(this.path(cls, key), { force: true });
  }

  async list(prefix = ''): Promise<FileObjectInfo[]> {
    const out: FileObjectInfo[] = [];
    for (const cls of STORAGE_CLASSES) {
      const root = join(this.o.dir, cls);
      let names: string[];
      try {
        names = (await readdir(root, { recursive: true })) as string[];
      } catch {
        continue;
      }
      for (const n of names) {
        const key = n.split(sep).join('/');
        if (!key.startsWith(prefix)) continue;
        const s = await stat(join(root, n)).catch(() => null);
        if (s?.isFile()) out.push({ key, size: s.size, storageClass: cls });
      }
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async setStorageClass(key: string, storageClass: StorageClass): Promise<void> {
    const at = await this.locate(key);
    if (!at) throw new FileNotFoundError(key);
    if (at.cls === storageClass) return;
    const target = this.path(storageClass, key);
    await mkdir(dirname(target), { recursive: true });
    await rename(this.path(at.cls, key), target);
  }

  async signedUrl(key: string, opts: SignedUrlOptions): Promise<string> {
    checkFileKey(key);
    const exp = Math.floor(this.now() / 1000) + Math.max(1, Math.floor(opts.expiresInSec));
    const q = new URLSearchParams({ exp: String(exp) });
    if (opts.contentType) q.set('ct', opts.contentType);
    if (opts.filename) q.set('fn', opts.filename);
    q.set('sig', this.mac(key, exp, opts.contentType, opts.filename));
    return `${this.o.baseUrl()}/files/${key.split('/').map(encodeURIComponent).join('/')}?${q}`;
  }

  /**
   * Checks a request for `/files/<key>?exp=&sig=...`: FileBadSignatureError
   * when the signature does not cover exactly these parameters,
   * FileUrlExpiredError when it is valid but past its expiry.
   */
  verify(key: string, q: URLSearchParams): SignedRequest {
    const exp = Number(q.get('exp'));
    const sig = q.get('sig') ?? '';
    const ct = q.get('ct') ?? undefined;
    const fn = q.get('fn') ?? undefined;
    if (!Number.isSafeInteger(exp) || !/^[A-Za-z0-9_-]{43}$/.test(sig)) throw new FileBadSignatureError();
    try {
      checkFileKey(key);
    } catch {
      throw new FileBadSignatureError();
    }
    const want = Buffer.from(this.mac(key, exp, ct, fn));
    const got = Buffer.from(sig);
    if (want.length !== got.length || !timingSafeEqual(want, got)) throw new FileBadSignatureError();
    if (exp * 1000 < this.now()) throw new FileUrlExpiredError(exp);
    return { key, contentType: ct, filename: fn };
  }

  private mac(key: string, exp: number, ct: string | undefined, fn: string | undefined): string {
    return createHmac('sha256', this.o.secret).update(`${key}\n${exp}\n${ct ?? ''}\n${fn ?? ''}`).digest('base64url');
  }

  /** Temp files of puts in progress (or left by a crash; removed at the next start by `sweep`). */
  async pendingTemps(): Promise<string[]> {
    try {
      return (await readdir(join(this.o.dir, TMP))).map((n) => relative(this.o.dir, join(this.o.dir, TMP, n)));
    } catch {
      return [];
    }
  }

  /** Removes temp files left by a crash in the middle of a put (call once at start, before any upload). */
  async sweep(): Promise<void> {
    await rm(join(this.o.dir, TMP), { recursive: true, force: true });
  }

  async close(): Promise<void> {}
}
