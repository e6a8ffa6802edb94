import type { IncomingMessage, ServerResponse } from 'node:http';
import { ChorusError, FileBadRequestError, FileError, FileNotFoundError, toChorusError, type FileRecord } from '../../runtime/index.ts';
import { contentDisposition } from '../../adapters/s3/index.ts';
import type { ChorusNode } from '../chorus-node.ts';
import type { Files } from '../files/index.ts';
import { formatPlan } from '../files/tiering.ts';
import { sendJson, type HttpServer } from '../http-server.ts';
import { AuthError, bearerOf, type TokenClaims, type TokenSigner } from './auth.ts';

const ID = /^[A-Za-z0-9_-]{1,64}$/;

function statusOf(e: ChorusError): number {
  if (e instanceof FileError) return e.status;
  if (e.code === 'AUTH_FORBIDDEN' || e.code === 'CHAT_NOT_MEMBER' || e.code === 'CHAT_FORBIDDEN') return 403;
  if (e.code.startsWith('AUTH_')) return 401;
  if (e.code === 'CHAT_NOT_FOUND') return 404;
  if (e.code === 'CHORUS_BAD_MESSAGE' || e.code.startsWith('HTTP_')) return 400;
  if (e.code === 'CHORUS_ASK_TIMEOUT' || e.code === 'CHORUS_NODE_UNAVAILABLE' || e.code === 'CHORUS_NO_OWNER' || e.code === 'CHORUS_BACKEND') return 503;
  return 500;
}

/** The public view of a file record (what upload and meta return). */
export function fileView(r: FileRecord): Record<string, unknown> {
  return { id: r.id, ws: r.ws, ch: r.ch, uploader: r.uploader, name: r.name, type: r.type, size: r.size, sha256: r.sha256, created: r.created };
}

/**
 * The files API on the edge's HTTP side (docs/files.md):
 *
 * - `POST /api/files?ws=&ch=&name=` (user token; headers `content-type`,
 *   `x-chorus-sha256`, `content-length` or chunked): the channel actor
 *   authorises (`authorizeFile`, upload: channel members), the body streams to
 *   the store through the size/checksum guard, the channel records the file
 *   (`fileAdded`) so its uploader can attach it to a post. 201 with the file.
 * - `GET /api/files/:id` (user token, header or `?token=`): the channel actor
 *   authorises (read: the history rule), then 302 to a short-lived signed URL
 *   (`?redirect=0`: 200 with `{ url, expiresAt, file }`). Unknown ids and
 *   refusals both answer FILE_NOT_FOUND.
 * - `GET /api/files/:id/meta`: the record, same check.
 * - `GET /files/<key>?exp=&sig=`: the local store's signed links, served by the node.
 * - `GET|POST /admin/files/tiering` (operator token): the tiering plan (dry run) / apply;
 *   `GET /admin/files/replication`: the replication backlog.
 *
 * Errors are `{ code, message, details? }` with the FileError's status; an
 * upload refused before its body was read closes the connection after the
 * answer, so the unread body is not drained.
 */
export function mountFilesApi(http: HttpServer, o: { node: ChorusNode; signer: TokenSigner; files: Files }): void {
  const { files, node } = o;
  const userOf = (req: IncomingMessage, url: URL, ws: string): TokenClaims => {
    const claims = o.signer.verify(bearerOf(req.headers, url));
    if (claims.kind !== 'user') throw new AuthError('AUTH_FORBIDDEN', 'not a user token');
    if (!claims.ws.includes(ws) && !claims.ws.includes('*')) throw new AuthError('AUTH_FORBIDDEN', `token does not grant workspace ${ws}`);
    return claims;
  };
  const channel = (ws: string, ch: string) => node.ref('channel', `${ws}.${ch}`);
  const readCheck = (req: IncomingMessage, url: URL) => async (rec: FileRecord) => {
    const claims = userOf(req, url, rec.ws);
    await channel(rec.ws, rec.ch).ask({ op: 'authorizeFile', by: claims.sub, ws: rec.ws, ch: rec.ch, access: 'read' });
  };

  http.route(async (req, res, url) => {
    const p = url.pathname;
    if (!p.startsWith('/api/files') && !p.startsWith('/files/') && !p.startsWith('/admin/files/')) return false;
    try {
      if (p === '/api/files' && req.method === 'POST') return await upload(req, res, url), true;
      const m = /^\/api\/files\/([^/]+)(\/meta)?$/.exec(p);
      if (m && (req.method === 'GET' || req.method === 'HEAD')) {
        const id = decodeURIComponent(m[1]!);
        if (m[2]) {
          sendJson(res, 200, fileView(await files.service.describe(id, readCheck(req, url))));
        } else {
          const d = await files.service.downloadUrl(id, readCheck(req, url));
          if (url.searchParams.get('redirect') === '0') sendJson(res, 200, { url: d.url, expiresAt: d.expiresAt, file: fileView(d.file) });
          else res.writeHead(302, { location: d.url, 'cache-control': 'no-store' }).end();
        }
        return true;
      }
      if (p.startsWith('/files/') && req.method === 'GET' && files.local) return await serveLocal(req, res, url), true;
      if (p.startsWith('/admin/files/')) return await admin(req, res, url), true;
      throw new ChorusError('HTTP_NOT_FOUND', `no route ${req.method} ${p}`);
    } catch (err) {
      const e = toChorusError(err);
      const unread = !req.readableEnded;
      if (res.headersSent) res.destroy();
      else sendJson(res, e.code === 'HTTP_NOT_FOUND' ? 404 : statusOf(e), e.toJSON(), unread ? { connection: 'close' } : {});
      return true;
    }
  });

  async function upload(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const ws = url.searchParams.get('ws') ?? '';
    const ch = url.searchParams.get('ch') ?? '';
    if (!ID.test(ws) || !ID.test(ch)) throw new FileBadRequestError('ws and ch query parameters are required ids');
    const claims = userOf(req, url, ws);
    const lenHeader = req.headers['content-length'];
    const declared = lenHeader === undefined ? undefined : Number(lenHeader);
    if (declared !== undefined && !Number.isSafeInteger(declared)) throw new FileBadRequestError('content-length is not a number');
    const sha = req.headers['x-chorus-sha256'];
    const rec = await files.service.upload({
      ws, ch, by: claims.sub, name: url.searchParams.get('name') ?? '', contentType: req.headers['content-type'] ?? '',
      declaredBytes: declared, sha256: (Array.isArray(sha) ? sha[0] : sha ?? '').toLowerCase(), body: req,
    }, {
      authorize: async () => void (await channel(ws, ch).ask({ op: 'authorizeFile', by: claims.sub, ws, ch, access: 'upload' })),
      committed: async (r) => void (await channel(ws, ch).ask({
        op: 'fileAdded', by: claims.sub, ws, ch, file: { id: r.id, name: r.name, type: r.type, size: r.size },
      })),
    });
    sendJson(res, 201, { file: fileView(rec) });
  }

  async function serveLocal(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const key = url.pathname.slice('/files/'.length).split('/').map(decodeURIComponent).join('/');
    const signed = files.local!.verify(key, url.searchParams);
    const { body, info } = await files.local!.get(signed.key).catch((err) => {
      throw err instanceof FileNotFoundError ? new FileNotFoundError(key) : err;
    });
    res.writeHead(200, {
      'content-type': signed.contentType ?? 'application/octet-stream',
      'content-length': String(info.size),
      'cache-control': 'private, max-age=300',
      'x-content-type-options': 'nosniff',
      ...(signed.filename ? { 'content-disposition': contentDisposition(signed.filename) } : {}),
    });
    if (req.method === 'HEAD') return void (body.destroy(), res.end());
    await new Promise<void>((resolve) => {
      body.pipe(res);
      body.once('error', () => (res.destroy(), resolve()));
      res.once('close', () => (body.destroy(), resolve()));
    });
  }

  async function admin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const claims = o.signer.verify(bearerOf(req.headers, url));
    if (claims.kind !== 'operator') throw new AuthError('AUTH_FORBIDDEN', 'operator credentials required');
    const nowParam = url.searchParams.get('now');
    const now = nowParam ? (/^\d+$/.test(nowParam) ? Number(nowParam) : Date.parse(nowParam)) : Date.now();
    if (!Number.isFinite(now)) throw new ChorusError('HTTP_BAD_REQUEST', 'now: ms since the epoch or an ISO date');
    if (url.pathname === '/admin/files/tiering' && req.method === 'GET') {
      const plan = await files.plan(now);
      return sendJson(res, 200, { plan, text: formatPlan(plan) });
    }
    if (url.pathname === '/admin/files/tiering' && req.method === 'POST') {
      const r = await files.applyTiering(now);
      return sendJson(res, 200, { plan: r.plan, result: r.result, text: r.text });
    }
    if (url.pathname === '/admin/files/replication' && req.method === 'GET') {
      const rep = files.replicated;
      return sendJson(res, 200, rep ? { store: files.location, backlog: rep.backlog(), pending: rep.pending().slice(0, 100) } : { store: files.location, backlog: 0, pending: [] });
    }
    throw new ChorusError('HTTP_NOT_FOUND', `no route ${req.method} ${url.pathname}`);
  }
}
