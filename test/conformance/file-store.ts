import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { FileNotFoundError, UploadGuard, type FileStore } from '../../runtime/index.ts';

/** A file store and a way to release it. */
export interface FileStoreFixture {
  store: FileStore;
  /** Fetches a signed URL the store made (default: global fetch; the local store's links need the node's route, so its fixture supplies this). */
  fetchSigned?(url: string): Promise<{ status: number; body: Buffer; headers: Headers }>;
  close(): Promise<void>;
}

let seq = 0;
/** A fresh key prefix per test, so tests never share state in one bucket or directory. */
const prefix = () => `conf${process.pid}x${++seq}`;

async function* chunks(buf: Buffer, size = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}
async function* failing(buf: Buffer, after: number, err: Error): AsyncGenerator<Uint8Array> {
  let sent = 0;
  for await (const c of chunks(buf)) {
    if (sent >= after) throw err;
    sent += c.length;
    yield c;
  }
  throw err;
}
async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * The FileStore contract, written once and run against every implementation
 * (local directory, S3 on s3rver, MinIO client on s3rver, replicated).
 * `opts.multipartBytes`: a size that forces a multipart upload on this store.
 */
export function describeFileStore(name: string, make: () => Promise<FileStoreFixture>, opts: { multipartBytes?: number } = {}): void {
  describe(`FileStore conformance: ${name}`, () => {
    const withStore = (fn: (f: FileStoreFixture, p: string) => Promise<void>) => async () => {
      const f = await make();
      try {
        await fn(f, prefix());
      } finally {
        await f.close();
      }
    };

    test('put streams, get returns the same bytes, head and list describe it', withStore(async ({ store }, p) => {
      const data = randomBytes(300 * 1024 + 17);
      const info = await store.put(`${p}/a/one`, chunks(data), { contentType: 'application/octet-stream', size: data.length });
      assert.equal(info.size, data.length);
      assert.equal(info.storageClass, 'STANDARD');
      const { body, info: got } = await store.get(`${p}/a/one`);
      assert.equal(sha(await readAll(body)), sha(data));
      assert.equal(got.size, data.length);
      const h = await store.head(`${p}/a/one`);
      assert.equal(h?.size, data.length);
      await store.put(`${p}/b/two`, chunks(Buffer.from('x')), { contentType: 'text/plain' });
      assert.deepEqual((await store.list(`${p}/`)).map((o) => [o.key, o.size]), [[`${p}/a/one`, data.length], [`${p}/b/two`, 1]]);
      assert.deepEqual((await store.list(`${p}/a/`)).map((o) => o.key), [`${p}/a/one`]);
    }));

    test('an empty object round-trips', withStore(async ({ store }, p) => {
      await store.put(`${p}/empty`, chunks(Buffer.alloc(0)), { contentType: 'text/plain' });
      assert.equal((await store.head(`${p}/empty`))?.size, 0);
      assert.equal((await readAll((await store.get(`${p}/empty`)).body)).length, 0);
    }));

    test('a put over an existing key replaces it', withStore(async ({ store }, p) => {
      await store.put(`${p}/k`, chunks(Buffer.from('first')), { contentType: 'text/plain' });
      await store.put(`${p}/k`, chunks(Buffer.from('second!')), { contentType: 'text/plain' });
      assert.equal((await readAll((await store.get(`${p}/k`)).body)).toString(), 'second!');
    }));

    test('a body that fails midway stores nothing and rejects with its error', withStore(async ({ store }, p) => {
      const data = randomBytes(200 * 1024);
      const boom = new Error('client went away');
      await assert.rejects(store.put(`${p}/cut`, failing(data, 100 * 1024, boom), { contentType: 'application/octet-stream' }), (e) => e === boom);
      assert.equal(await store.head(`${p}/cut`), null);
      assert.deepEqual(await store.list(`${p}/`), []);
    }));

    test('a checksum failure at the end of the stream stores nothing (the guard fails before the commit)', withStore(async ({ store }, p) => {
      const data = randomBytes(150 * 1024);
      const guard = new UploadGuard({ maxBytes: 10 * 1024 * 1024, sha256: '0'.repeat(64) });
      const feed = (async () => {
        for await (const c of chunks(data)) if (!guard.write(c)) await new Promise((r) => guard.once('drain', r));
        guard.end();
      })();
      await assert.rejects(store.put(`${p}/bad`, guard, { contentType: 'application/octet-stream' }), { code: 'FILE_CHECKSUM_MISMATCH' });
      await feed.catch(() => {});
      assert.equal(await store.head(`${p}/bad`), null);
    }));

    if (opts.multipartBytes) {
      test(`a multipart-sized object (${opts.multipartBytes} bytes) round-trips; a failure after parts were sent stores nothing`, withStore(async ({ store }, p) => {
        const data = randomBytes(opts.multipartBytes!);
        await store.put(`${p}/big`, chunks(data, 1024 * 1024), { contentType: 'application/octet-stream' });
        assert.equal(sha(await readAll((await store.get(`${p}/big`)).body)), sha(data));
        const boom = new Error('cut after the first parts');
        await assert.rejects(store.put(`${p}/bigcut`, failing(data, data.length - 1024 * 1024, boom), { contentType: 'application/octet-stream' }), (e) => e === boom);
        assert.equal(await store.head(`${p}/bigcut`), null);
      }));
    }

    test('missing keys: get and setStorageClass reject FILE_NOT_FOUND, head is null, delete is a no-op', withStore(async ({ store }, p) => {
      await assert.rejects(store.get(`${p}/nope`), (e) => e instanceof FileNotFoundError);
      await assert.rejects(store.setStorageClass(`${p}/nope`, 'STANDARD_IA'), (e) => e instanceof FileNotFoundError);
      assert.equal(await store.head(`${p}/nope`), null);
      await store.delete(`${p}/nope`);
    }));

    test('delete removes the object', withStore(async ({ store }, p) => {
      await store.put(`${p}/d`, chunks(Buffer.from('bye')), { contentType: 'text/plain' });
      await store.delete(`${p}/d`);
      assert.equal(await store.head(`${p}/d`), null);
    }));

    test('setStorageClass moves the object in place; bytes and type stay', withStore(async ({ store }, p) => {
      await store.put(`${p}/t`, chunks(Buffer.from('tiered')), { contentType: 'text/plain' });
      await store.setStorageClass(`${p}/t`, 'STANDARD_IA');
      const h = await store.head(`${p}/t`);
      assert.equal(h?.storageClass, 'STANDARD_IA');
      if (h?.contentType !== undefined) assert.equal(h.contentType, 'text/plain');
      assert.equal((await readAll((await store.get(`${p}/t`)).body)).toString(), 'tiered');
      await store.setStorageClass(`${p}/t`, 'STANDARD_IA'); // already there: no-op
    }));

    test('a signed URL serves the object with the type and name asked for', withStore(async (f, p) => {
      const data = Buffer.from('signed content');
      await f.store.put(`${p}/s`, chunks(data), { contentType: 'application/octet-stream' });
      const url = await f.store.signedUrl(`${p}/s`, { expiresInSec: 60, filename: 'r\u00e9sum\u00e9.txt', contentType: 'text/plain' });
      const r = await (f.fetchSigned ?? defaultFetch)(url);
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'signed content');
      assert.equal(r.headers.get('content-type'), 'text/plain');
      assert.match(r.headers.get('content-disposition') ?? '', /attachment; filename="r_sum_.txt"; filename\*=UTF-8''r%C3%A9sum%C3%A9.txt/);
    }));

    test('keys outside the pattern are refused at the call site', withStore(async ({ store }) => {
      await assert.rejects(store.put('../escape', chunks(Buffer.from('x')), { contentType: 'text/plain' }), TypeError);
      await assert.rejects(store.head('a/../../b'), TypeError);
    }));
  });
}

async function defaultFetch(url: string): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const r = await fetch(url);
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()), headers: r.headers };
}
