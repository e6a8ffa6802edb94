import { z } from 'zod';
import type { PushSettingsStore } from '../../adapters/push/index.ts';
import { ChorusError, toChorusError } from '../../runtime/index.ts';
import { sendJson, type HttpServer } from '../http-server.ts';
import { AuthError, bearerOf, type TokenSigner } from './auth.ts';
import { readJson } from './http-api.ts';

const Id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
// https only: a user-supplied URL the server will call must not reach plain-HTTP internal services
const HttpsUrl = z.string().max(1024).url().refine((u) => u.startsWith('https://'), 'must be an https URL');
const Settings = z.object({
  ws: Id,
  targets: z.array(z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('webpush'), endpoint: HttpsUrl, keys: z.object({ p256dh: z.string().min(10).max(200), auth: z.string().min(8).max(100) }) }),
    z.object({ kind: z.literal('webhook'), endpoint: HttpsUrl }),
  ])).max(10),
  quietHours: z.object({ start: z.number().int().min(0).max(23), end: z.number().int().min(0).max(23), tz: z.string().min(1).max(64) }).optional(),
});

/**
 * Push registration over HTTP: `GET /api/push/vapid` gives the VAPID public
 * key a browser needs to subscribe; `PUT /api/push/settings` (user token)
 * stores the caller's targets and quiet hours for one workspace.
 */
export function mountPushApi(http: HttpServer, o: { signer: TokenSigner; store: PushSettingsStore; vapidPublicKey?: string }): void {
  http.route(async (req, res, url) => {
    if (!url.pathname.startsWith('/api/push/')) return false;
    try {
      if (req.method === 'GET' && url.pathname === '/api/push/vapid') {
        if (!o.vapidPublicKey) throw new ChorusError('HTTP_NOT_FOUND', 'Web Push is not configured on this node');
        sendJson(res, 200, { publicKey: o.vapidPublicKey });
        return true;
      }
      if (req.method === 'PUT' && url.pathname === '/api/push/settings') {
        const claims = o.signer.verify(bearerOf(req.headers, url));
        if (claims.kind !== 'user') throw new AuthError('AUTH_FORBIDDEN', 'not a user token');
        const parsed = Settings.safeParse(await readJson(req));
        if (!parsed.success) throw new ChorusError('HTTP_BAD_REQUEST', parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
        if (!claims.ws.includes(parsed.data.ws) && !claims.ws.includes('*')) throw new AuthError('AUTH_FORBIDDEN', `token does not grant workspace ${parsed.data.ws}`);
        const { ws, ...settings } = parsed.data;
        await o.store.put(`${ws}.${claims.sub}`, settings);
        sendJson(res, 200, { ok: true, targets: settings.targets.length });
        return true;
      }
      throw new ChorusError('HTTP_NOT_FOUND', `no route ${req.method} ${url.pathname}`);
    } catch (err) {
      const e = toChorusError(err);
      sendJson(res, e.code.startsWith('AUTH_') ? (e.code === 'AUTH_FORBIDDEN' ? 403 : 401) : e.code === 'HTTP_NOT_FOUND' ? 404 : e.code.startsWith('HTTP_') ? 400 : 500, e.toJSON());
      return true;
    }
  });
}
