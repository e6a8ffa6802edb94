import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalFileStore } from '../../adapters/local/index.ts';
import { describeFileStore } from '../conformance/file-store.ts';

// The local store's signed links are served by the node (/files/...); here the fixture plays that route with `verify` + `get`.
describeFileStore('local directory', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-files-'));
  const store = new LocalFileStore({ dir, secret: 'conformance-secret-123', baseUrl: () => 'http://node.invalid' });
  return {
    store,
    async fetchSigned(url) {
      const u = new URL(url);
      const key = u.pathname.slice('/files/'.length).split('/').map(decodeURIComponent).join('/');
      const s = store.verify(key, u.searchParams);
      const { body } = await store.get(s.key);
      const parts: Buffer[] = [];
      for await (const c of body) parts.push(c as Buffer);
      const { contentDisposition } = await import('../../adapters/s3/index.ts');
      return { status: 200, body: Buffer.concat(parts), headers: new Headers({ 'content-type': s.contentType ?? '', 'content-disposition': s.filename ? contentDisposition(s.filename) : '' }) };
    },
    async close() {
      await rm(dir, { recursive: true, force: true });
    },
  };
});
