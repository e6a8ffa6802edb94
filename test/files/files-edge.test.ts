import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalFileStore } from '../../adapters/local/index.ts';
import { closeAll, person, record, refused, waitFor, WS, type Person } from '../e2e/helpers.ts';
import { embeddedNode } from '../edge/fixture.ts';
import { get, metric, sha256, streamUpload, upload, blocks, blocksSha } from './helpers.ts';
import { startS3 } from '../helpers/s3.ts';

// Uploads and downloads over the real edge HTTP side of an embedded node (local directory store under dataDir).
const MAX = 2 * 1024 * 1024;
type Node = Awaited<ReturnType<typeof embeddedNode>>;

async function storedObjects(node: Node): Promise<string[]> {
  return (await node.files!.store.list()).map((o) => o.key);
}
async function tempFiles(node: Node): Promise<string[]> {
  return readdir(join(node.dir, 'files', '.tmp')).catch(() => []);
}

describe('files over the edge (embedded, local store)', () => {
  let node: Node;
  let ada: Person;
  let bob: Person;
  let priv: string;
  before(async () => {
    node = await embeddedNode({ filesMaxBytes: MAX, filesAllowedTypes: ['image/*', 'text/plain', 'application/octet-stream'] });
    ada = await person(node, 'ada');
    bob = await person(node, 'bob');
    priv = (await ada.client.request<{ ch: string }>('createChannel', { ws: WS, name: 'files-private', kind: 'private', clientMsgId: 'fp1' })).ch;
  });
  after(async () => {
    closeAll();
    await node?.[Symbol.asyncDispose]();
  });

  test('upload, attach to a post (event and history carry the file), download by signed link', async () => {
    const general = ada.channels[0]!;
    const rec = await record(bob.client, general);
    const data = Buffer.from('hello files \u2603');
    const f = await ada.client.uploadFile(WS, general, { name: 'hello.txt', type: 'text/plain; charset=utf-8', data });
    assert.match(f.id, /^F[A-Z2-7]{20}$/);
    assert.deepEqual([f.name, f.type, f.size, f.sha256, f.uploader], ['hello.txt', 'text/plain', data.length, sha256(data), 'ada']);
    const { seq } = await ada.client.post(WS, general, 'see attached', { files: [f.id] });
    const ref = { id: f.id, name: 'hello.txt', type: 'text/plain', size: data.length };
    await waitFor(() => rec.events.some((e) => e.type === 'message' && e.seq === seq));
    const ev = rec.events.find((e) => e.type === 'message' && e.seq === seq) as unknown as { message: { files?: unknown[] } };
    assert.deepEqual(ev.message.files, [ref]);
    const hist = await bob.client.request<{ messages: Array<{ seq: number; files?: unknown[] }> }>('history', { ws: WS, ch: general, limit: 5 });
    assert.deepEqual(hist.messages.find((m) => m.seq === seq)?.files, [ref]);
    // GET /api/files/:id: 302 to a signed link on this node; the link serves the bytes without a token
    const r = await get(node, `/api/files/${f.id}`, bob.token);
    assert.equal(r.status, 302);
    const loc = r.headers.get('location')!;
    assert.match(loc, new RegExp(`^${node.url}/files/demo/${general}/${f.id}\\?exp=\\d+&ct=text%2Fplain&fn=hello.txt&sig=`));
    const dl = await fetch(loc);
    assert.equal(dl.status, 200);
    assert.equal(Buffer.from(await dl.arrayBuffer()).toString(), data.toString());
    assert.equal(dl.headers.get('content-type'), 'text/plain');
    // the SDK helper, and the read count the tiering job uses
    const link = await bob.client.fileUrl(f.id);
    assert.equal((await fetch(link.url)).status, 200);
    // (read as the tiering job reads it: `get` may serve a cached record, whose counters can be one TTL old)
    const rows = await node.files!.service.catalog.createdBefore(Date.now() + 1000);
    assert.equal(rows.find((x) => x.id === f.id)?.readCount, 2);
    const meta = await get(node, `/api/files/${f.id}/meta`, bob.token);
    assert.equal(meta.body.sha256, sha256(data));
  });

  test('tampered and expired links are refused with clear errors', async () => {
    const general = ada.channels[0]!;
    const f = await ada.client.uploadFile(WS, general, { name: 'x.txt', type: 'text/plain', data: Buffer.from('x') });
    const loc = (await get(node, `/api/files/${f.id}`, ada.token)).headers.get('location')!;
    const tampered = await get(node, new URL(loc.replace('fn=x.txt', 'fn=y.txt')).pathname + new URL(loc.replace('fn=x.txt', 'fn=y.txt')).search);
    assert.equal(tampered.status, 403);
    assert.equal(tampered.body.code, 'FILE_BAD_SIGNATURE');
    const otherKey = await get(node, `/files/demo/${general}/FAAAAAAAAAAAAAAAAAAAA${new URL(loc).search}`);
    assert.equal(otherKey.body.code, 'FILE_BAD_SIGNATURE');
    // a link signed with the node's secret an hour ago for 60 s
    const past = new LocalFileStore({ dir: join(node.dir, 'files'), secret: 'test-secret-0123456789abcdef:files', baseUrl: () => node.url, now: () => Date.now() - 3_600_000 });
    const expired = await get(node, new URL(await past.signedUrl(`demo/${general}/${f.id}`, { expiresInSec: 60 })).pathname + new URL(await past.signedUrl(`demo/${general}/${f.id}`, { expiresInSec: 60 })).search);
    assert.equal(expired.status, 403);
    assert.equal(expired.body.code, 'FILE_URL_EXPIRED');
    assert.match(String(expired.body.message), /expired at .* ask for a new one/);
  });

  test('non-members cannot upload, download, or attach (also through a guessed id)', async () => {
    const f = await ada.client.uploadFile(WS, priv, { name: 'secret.png', type: 'image/png', data: Buffer.from('png-bytes') });
    // upload to a private channel bob is not in: refused by the channel actor before anything is read
    const up = await upload(node, bob.token, { ws: WS, ch: priv }, Buffer.from('nope'));
    assert.deepEqual([up.status, up.body.code], [403, 'CHAT_NOT_MEMBER']);
    // download: the same answer as an unknown id, so a guess learns nothing
    for (const id of [f.id, 'FAAAAAAAAAAAAAAAAAAAA', '../../etc']) {
      const r = await get(node, `/api/files/${encodeURIComponent(id)}`, bob.token);
      assert.deepEqual([r.status, r.body.code], [404, 'FILE_NOT_FOUND'], id);
      assert.equal((await get(node, `/api/files/${encodeURIComponent(id)}/meta`, bob.token)).status, 404);
    }
    // a token for another workspace only
    const carol = node.signer.sign({ sub: 'carol', ws: ['elsewhere'] });
    assert.equal((await get(node, `/api/files/${f.id}`, carol)).body.code, 'FILE_NOT_FOUND');
    assert.equal((await upload(node, carol, { ws: WS, ch: priv }, Buffer.from('x'))).body.code, 'AUTH_FORBIDDEN');
    assert.equal((await get(node, `/api/files/${f.id}`)).body.code, 'AUTH_MISSING');
    // attach: ada's file in bob's post (another channel, and the same channel where bob is a member)
    const general = ada.channels[0]!;
    await refused(bob.client.post(WS, general, 'stolen', { files: [f.id] }), ['CHAT_NOT_FOUND'], 'attach a file of another channel');
    const g = await ada.client.uploadFile(WS, general, { name: 'a.txt', type: 'text/plain', data: Buffer.from('a') });
    await refused(bob.client.post(WS, general, 'stolen', { files: [g.id] }), ['CHAT_FORBIDDEN'], "attach someone else's file");
    await refused(bob.client.post(WS, general, 'guess', { files: ['FAAAAAAAAAAAAAAAAAAAA'] }), ['CHAT_NOT_FOUND'], 'attach a guessed id');
    await refused(ada.client.post(WS, general, 'twice', { files: [g.id, g.id] }), ['CHORUS_BAD_MESSAGE'], 'a repeated id');
    // the edge-only ops cannot be sent by a client: nobody registers someone else's upload as theirs
    await refused(bob.client.request('fileAdded', { ws: WS, ch: general, file: { id: g.id, name: 'a.txt', type: 'text/plain', size: 1 } }), ['EDGE_UNKNOWN_OP'], 'a forged fileAdded');
    await refused(bob.client.request('authorizeFile', { ws: WS, ch: priv, access: 'read' }), ['EDGE_UNKNOWN_OP'], 'a client authorizeFile');
    // the member can
    assert.ok((await ada.client.post(WS, priv, 'mine', { files: [f.id] })).seq > 0);
  });

  test('bad uploads get typed errors and leave nothing stored', async () => {
    const general = ada.channels[0]!;
    const before = await storedObjects(node);
    const failures = async (code: string) => metric(node, 'file_upload_failures_total', { code });
    // too large, declared (refused before the body is read)
    const big = Buffer.alloc(MAX + 1, 1);
    let r = await upload(node, ada.token, { ws: WS, ch: general }, big);
    assert.deepEqual([r.status, r.body.code, (r.body.details as { maxBytes: number }).maxBytes], [413, 'FILE_TOO_LARGE', MAX]);
    // too large, streamed without a length (counted while streaming)
    const chunked = await streamUpload(node, ada.token, { ws: WS, ch: general }, blocks(MAX + 512 * 1024, 256 * 1024), { sha: 'a'.repeat(64) });
    assert.ok(chunked.status === 413 || chunked.status === 0, `chunked too large: ${chunked.status}`);
    await waitFor(async () => (await failures('FILE_TOO_LARGE')) >= 2, { what: 'the streamed too-large upload to fail' });
    // wrong type
    r = await upload(node, ada.token, { ws: WS, ch: general }, Buffer.from('<html>'), { type: 'text/html' });
    assert.deepEqual([r.status, r.body.code], [415, 'FILE_TYPE_NOT_ALLOWED']);
    r = await upload(node, ada.token, { ws: WS, ch: general }, Buffer.from('x'), { type: 'not a type' });
    assert.deepEqual([r.status, r.body.code], [415, 'FILE_TYPE_NOT_ALLOWED']);
    // wrong checksum (found at the end of the stream, before the commit)
    r = await upload(node, ada.token, { ws: WS, ch: general }, Buffer.alloc(700_000, 7), { sha: 'b'.repeat(64) });
    assert.deepEqual([r.status, r.body.code], [422, 'FILE_CHECKSUM_MISMATCH']);
    assert.equal((r.body.details as { actual: string }).actual, sha256(Buffer.alloc(700_000, 7)));
    // no checksum
    r = await upload(node, ada.token, { ws: WS, ch: general }, Buffer.from('x'), { sha: '' });
    assert.deepEqual([r.status, r.body.code], [400, 'FILE_BAD_REQUEST']);
    // truncated: the connection is cut after 300 KB of a declared 1 MB
    const cut = await streamUpload(node, ada.token, { ws: WS, ch: general }, blocks(1024 * 1024, 64 * 1024), { sha: blocksSha(1024 * 1024, 64 * 1024), contentLength: 1024 * 1024, cutAfter: 300 * 1024 });
    assert.equal(cut.status, 0);
    await waitFor(async () => (await failures('FILE_TRUNCATED')) >= 1, { what: 'the cut upload to fail as FILE_TRUNCATED' });
    // nothing half-stored: no new object, no temp file, no catalog row
    assert.deepEqual(await storedObjects(node), before);
    await waitFor(async () => (await tempFiles(node)).length === 0, { what: 'temp files removed' });
    assert.equal((await node.files!.service.catalog.stats()).files, before.length);
  });

  test('tiering through the admin endpoint and `npm run tiering`: dry run, apply, costs', async () => {
    const op = node.signer.sign({ sub: 'op', ws: ['*'], kind: 'operator' });
    const later = Date.now() + 100 * 86_400_000; // a virtual "now": every file is 100 days old
    assert.equal((await get(node, '/admin/files/tiering', ada.token)).body.code, 'AUTH_FORBIDDEN');
    const dry = await get(node, `/admin/files/tiering?now=${later}`, op);
    const plan = dry.body.plan as { moves: Array<{ to: string; readCount: number }>; monthlySaving: number };
    const files = (await node.files!.service.catalog.stats()).files;
    assert.equal(plan.moves.length, files); // every file was read fewer than 5 times
    assert.ok(plan.moves.every((m) => m.to === 'GLACIER_IR' && m.readCount < 5));
    const cli = await new Promise<string>((resolve, reject) => execFile(process.execPath, ['--import', 'tsx', 'scripts/tiering.ts', '--url', node.url, '--token', op, '--now', String(later)],
      (err, out) => (err ? reject(err) : resolve(out))));
    console.log(cli);
    assert.match(cli, /tiering plan \(dry run\)/);
    assert.match(cli, new RegExp(`${files} to move`));
    assert.match(cli, /estimated saving \$[0-9.]+\/month/);
    const report = await node.files!.costReport(later);
    assert.equal(report.recommendations[0]?.recommendedTier, 'GLACIER_IR');
    const applied = await fetch(`${node.url}/admin/files/tiering?now=${later}`, { method: 'POST', headers: { authorization: `Bearer ${op}` } });
    assert.equal(((await applied.json()) as { result: { moved: number } }).result.moved, files);
    assert.equal(((await get(node, `/admin/files/tiering?now=${later}`, op)).body.plan as { moves: unknown[] }).moves.length, 0);
    assert.ok((await node.files!.store.list()).every((o) => o.storageClass === 'GLACIER_IR'));
    // still downloadable from the cold class
    const any = (await node.files!.store.list())[0]!;
    const id = any.key.split('/')[2]!;
    const link = await get(node, `/api/files/${id}`, ada.token);
    assert.equal((await fetch(link.headers.get('location')!)).status, 200);
  });

  test('a 64 MB upload streams through the edge without holding the file in memory', async () => {
    const general = ada.channels[0]!;
    const size = 64 * 1024 * 1024;
    // a node with the default 1 GiB limit
    await using big = await embeddedNode();
    const carla = await person(big, 'carla');
    const sha = blocksSha(size);
    // rss can hide a buffered file in memory the process had freed earlier; Buffers also show in arrayBuffers, so watch both.
    // Bounds are generous (garbage not yet collected counts too) but below the 64 MB a buffered file would take.
    const m0 = process.memoryUsage();
    const peak = { rss: m0.rss, ab: m0.arrayBuffers };
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak.rss = Math.max(peak.rss, m.rss);
      peak.ab = Math.max(peak.ab, m.arrayBuffers);
    }, 10);
    const t0 = performance.now();
    const r = await streamUpload(big, carla.token, { ws: WS, ch: carla.channels[0]! }, blocks(size), { sha, contentLength: size });
    const secs = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const mb = (n: number) => n / 1024 / 1024;
    console.log(`64 MB upload (local store): ${(64 / secs).toFixed(1)} MB/s, peak delta: rss ${mb(peak.rss - m0.rss).toFixed(1)} MB, arrayBuffers ${mb(peak.ab - m0.arrayBuffers).toFixed(1)} MB`);
    assert.ok(mb(peak.rss - m0.rss) < 48, `rss grew ${mb(peak.rss - m0.rss).toFixed(1)} MB for a 64 MB upload`);
    assert.ok(mb(peak.ab - m0.arrayBuffers) < 48, `arrayBuffers grew ${mb(peak.ab - m0.arrayBuffers).toFixed(1)} MB for a 64 MB upload`);
    const f = r.body.file as { id: string; size: number; sha256: string };
    assert.deepEqual([f.size, f.sha256], [size, sha]);
    assert.ok(general);
  });
});

describe('files over the edge: CDN base URL', () => {
  test('download links get the CDN origin and path prefix', async () => {
    await using node = await embeddedNode({ filesCdnBaseUrl: 'https://cdn.example.com/chorus/' });
    const ada = await person(node, 'ada');
    try {
      const f = await ada.client.uploadFile(WS, ada.channels[0]!, { name: 'c.txt', type: 'text/plain', data: Buffer.from('cdn') });
      const loc = (await get(node, `/api/files/${f.id}`, ada.token)).headers.get('location')!;
      assert.match(loc, new RegExp(`^https://cdn\\.example\\.com/chorus/files/demo/${ada.channels[0]}/${f.id}\\?exp=`));
      // the signature does not cover the host: the same path and query work on the node behind the CDN
      const u = new URL(loc);
      assert.equal((await fetch(`${node.url}${u.pathname.replace(/^\/chorus/, '')}${u.search}`)).status, 200);
    } finally {
      closeAll();
    }
  });
});

describe('files over the edge: S3 store (s3rver), multipart through the edge', () => {
  test('a 24 MB upload is a multipart upload on S3; download by presigned link; a cut upload leaves nothing', async () => {
    await using s3 = await startS3({ buckets: ['edge-files'] });
    await using node = await embeddedNode({
      s3Endpoint: s3.endpoint, s3Bucket: 'edge-files', s3AccessKeyId: s3.accessKeyId, s3SecretAccessKey: s3.secretAccessKey, s3ForcePathStyle: true,
    });
    const ada = await person(node, 'ada');
    try {
      assert.equal(node.files!.store.name, 's3');
      const size = 24 * 1024 * 1024;
      const t0 = performance.now();
      const r = await streamUpload(node, ada.token, { ws: WS, ch: ada.channels[0]! }, blocks(size, 1024 * 1024, 7), { sha: blocksSha(size, 1024 * 1024, 7), contentLength: size });
      console.log(`24 MB upload (S3 on s3rver, 8 MiB parts): ${(24 / ((performance.now() - t0) / 1000)).toFixed(1)} MB/s`);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const f = r.body.file as { id: string };
      const loc = (await get(node, `/api/files/${f.id}`, ada.token)).headers.get('location')!;
      assert.ok(loc.startsWith(`${s3.endpoint}/edge-files/demo/`), loc);
      assert.match(loc, /X-Amz-Signature=/);
      const dl = await fetch(loc);
      assert.equal(sha256(Buffer.from(await dl.arrayBuffer())), blocksSha(size, 1024 * 1024, 7));
      const cut = await streamUpload(node, ada.token, { ws: WS, ch: ada.channels[0]! }, blocks(size, 1024 * 1024, 8), { sha: blocksSha(size, 1024 * 1024, 8), contentLength: size, cutAfter: 20 * 1024 * 1024 });
      assert.equal(cut.status, 0);
      await waitFor(async () => (await metric(node, 'file_upload_failures_total', { code: 'FILE_TRUNCATED' })) >= 1, { what: 'the cut upload to fail' });
      assert.deepEqual((await node.files!.store.list()).map((o) => o.key), [`demo/${ada.channels[0]}/${f.id}`]);
    } finally {
      closeAll();
    }
  });
});
