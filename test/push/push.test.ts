import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, createECDH, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type RequestListener } from 'node:http';
import { createServer as createHttpsServer, Agent } from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import webpush from 'web-push';
import { MemoryPushSettings, PushNotifier, WebhookProvider, WebPushProvider, msUntilQuietEnds } from '../../adapters/push/index.ts';
import { VirtualClock } from '../../runtime/index.ts';
import { waitFor } from '../helpers/ports.ts';

/** A self-signed certificate for a local HTTPS push service (web-push speaks HTTPS only). */
function selfSigned(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) };
}

/** A local HTTP(S) receiver: records requests, answers with the statuses given in turn (then 201). */
async function receiver(statuses: number[] = [], tls?: { key: Buffer; cert: Buffer }) {
  const got: Array<{ url: string; headers: IncomingMessage['headers']; body: Buffer }> = [];
  const handler: RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(statuses.shift() ?? 201).end();
    });
  };
  const server = tls ? createHttpsServer(tls, handler) : createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { got, url, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const note = (seq: number) => ({ title: `ada in #general`, body: `hello ${seq}`, ws: 'w1', ch: 'c1', seq });

test('webhook: batched per user, signed, retried on 5xx, target dropped on 410', async () => {
  const rx = await receiver([503, 500]);
  const store = new MemoryPushSettings();
  await store.put('w1.bob', { targets: [{ kind: 'webhook', endpoint: `${rx.url}/hook` }] });
  const n = new PushNotifier(store, [new WebhookProvider('hook-secret-123')], { batchMs: 50, retryBaseMs: 10 });
  await n.notify('w1.bob', note(1));
  await n.notify('w1.bob', note(2));
  await n.notify('w1.bob', note(3));
  await waitFor(() => rx.got.length === 3, { timeoutMs: 5000 });
  const last = rx.got[2]!;
  const payload = JSON.parse(last.body.toString());
  assert.equal(payload.count, 3, 'three notifications in one push');
  assert.equal(payload.title, '3 new notifications');
  assert.equal(last.headers['x-chorus-signature'], `sha256=${createHmac('sha256', 'hook-secret-123').update(last.body).digest('hex')}`);
  // a gone target is forgotten
  const rx2 = await receiver([410]);
  await store.put('w1.eve', { targets: [{ kind: 'webhook', endpoint: `${rx2.url}/gone` }] });
  await n.notify('w1.eve', note(4));
  await waitFor(async () => (await store.get('w1.eve'))!.targets.length === 0, { timeoutMs: 5000 });
  await rx.close();
  await rx2.close();
});

test('Web Push: VAPID-signed, aes128gcm-encrypted payload the subscriber can decrypt', async () => {
  const tls = selfSigned();
  const rx = await receiver([], tls);
  const ua = createECDH('prime256v1');
  ua.generateKeys();
  const auth = randomBytes(16);
  const vapid = webpush.generateVAPIDKeys();
  const store = new MemoryPushSettings();
  await store.put('w1.bob', { targets: [{ kind: 'webpush', endpoint: `${rx.url}/push/abc`, keys: { p256dh: ua.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } }] });
  const n = new PushNotifier(store, [new WebPushProvider({ subject: 'mailto:ops@example.com', ...vapid }, { agent: new Agent({ ca: tls.cert }) })], { batchMs: 10 });
  await n.notify('w1.bob', note(7));
  await waitFor(() => rx.got.length === 1, { timeoutMs: 5000 });
  const req = rx.got[0]!;
  assert.equal(req.headers['content-encoding'], 'aes128gcm');
  assert.match(String(req.headers.authorization), /^vapid t=.+, k=.+/);
  // decrypt as the browser would (RFC 8291)
  const body = req.body;
  const salt = body.subarray(0, 16);
  const idlen = body[20]!;
  const asPublic = body.subarray(21, 21 + idlen);
  const ciphertext = body.subarray(21 + idlen);
  const ecdhSecret = ua.computeSecret(asPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), ua.getPublicKey(), asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const d = createDecipheriv('aes-128-gcm', cek, nonce);
  d.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  const plain = Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - 16)), d.final()]);
  const text = plain.subarray(0, plain.lastIndexOf(2)).toString();
  assert.deepEqual(JSON.parse(text), { title: 'ada in #general', body: 'hello 7', count: 1 });
  await rx.close();
});

test('quiet hours hold notifications and send one digest when they end', async () => {
  const clock = new VirtualClock(Date.UTC(2026, 5, 1, 21, 30)); // 23:30 in Paris (UTC+2)
  const q = { start: 22, end: 7, tz: 'Europe/Paris' };
  assert.equal(msUntilQuietEnds(clock.now(), q), 7.5 * 3_600_000);
  assert.equal(msUntilQuietEnds(Date.UTC(2026, 5, 1, 10, 0), q), 0);
  const sent: unknown[] = [];
  const store = new MemoryPushSettings();
  await store.put('w1.bob', { targets: [{ kind: 'webhook', endpoint: 'http://unused' }], quietHours: q });
  const n = new PushNotifier(store, [{ kind: 'webhook', send: async (_t, p) => { sent.push(p); return 'ok'; } }], { batchMs: 1000, clock });
  await n.notify('w1.bob', note(1));
  await clock.advance(2000);
  await n.notify('w1.bob', note(2));
  await clock.advance(3 * 3_600_000);
  assert.equal(sent.length, 0, 'nothing during quiet hours');
  await clock.advance(5 * 3_600_000);
  assert.equal(sent.length, 1);
  assert.equal((sent[0] as { count: number }).count, 2, 'one digest of both');
});

test('end to end: an offline member mentioned in a channel gets one push through the target registered over HTTP', async () => {
  const { embeddedNode, demoClient } = await import('../edge/fixture.ts');
  const pushed: Array<{ endpoint: string; payload: { userKey: string; count: number; items: Array<{ ch: string }> } }> = [];
  await using node = await embeddedNode({}, { pushProviders: [{ kind: 'webhook', send: async (t, p) => { pushed.push({ endpoint: t.endpoint, payload: p as never }); return 'ok'; } }] });
  const bob = await demoClient(node, 'bob-push');
  const ada = await demoClient(node, 'ada-push');
  const put = (body: unknown, token = bob.token) => fetch(`${node.url}/api/push/settings`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  assert.equal((await put({ ws: 'demo', targets: [{ kind: 'webhook', endpoint: 'http://169.254.169.254/latest' }] })).status, 400, 'plain-http targets are refused');
  assert.equal((await put({ ws: 'demo', targets: [] }, 'forged.token')).status, 401);
  assert.equal((await put({ ws: 'demo', targets: [{ kind: 'webhook', endpoint: 'https://hooks.example.com/bob' }] })).status, 200);
  bob.client.close();
  await new Promise((r) => setTimeout(r, 300));
  await ada.client.post('demo', ada.channels[0]!, 'ping <@bob-push>');
  await waitFor(() => pushed.length === 1, { timeoutMs: 5000 });
  assert.equal(pushed[0]!.endpoint, 'https://hooks.example.com/bob');
  assert.equal(pushed[0]!.payload.userKey, 'demo.bob-push');
  assert.equal(pushed[0]!.payload.items[0]!.ch, ada.channels[0]);
  // ada, online, is not pushed for her own message; bob's next mention while offline is pushed again
  await ada.client.post('demo', ada.channels[0]!, 'again <@bob-push>');
  await waitFor(() => pushed.length === 2, { timeoutMs: 5000 });
  ada.client.close();
});
