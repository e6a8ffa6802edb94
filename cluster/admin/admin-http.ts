/**
 * The HTTP front door of the admin operations: `GET /admin/<op>` for reads,
 * `POST /admin/<op>` for changes (`drain`), the operator token as
 * `Authorization: Bearer ...` (or `?token=`), other query parameters as the
 * operation's arguments. It answers for the node it runs on, so every
 * operation (node-scoped ones too) is served here.
 */
import { toChorusError } from '../../runtime/index.ts';
import { sendJson, type HttpServer } from '../http-server.ts';
import { bearerOf } from '../edge/auth.ts';
import type { AdminService } from './admin-ops.ts';

/** HTTP status of an admin failure. */
export function adminHttpStatus(code: string): number {
  if (code === 'AUTH_FORBIDDEN') return 403;
  if (code.startsWith('AUTH_')) return 401;
  if (code === 'ADMIN_UNKNOWN_OP') return 404;
  if (code === 'ADMIN_BAD_REQUEST' || code === 'ADMIN_WRONG_SCOPE') return 400;
  if (code === 'ADMIN_UNSUPPORTED') return 501;
  return 500;
}

/** Serves `/admin/<op>` on `http` from `service` (register it before routes that answer other `/admin/` paths). */
export function mountAdminHttp(http: HttpServer, service: AdminService): void {
  http.route(async (req, res, url) => {
    if (!url.pathname.startsWith('/admin/')) return false;
    try {
      const op = url.pathname.slice('/admin/'.length);
      const args: Record<string, string> = {};
      for (const [k, v] of url.searchParams) if (k !== 'token') args[k] = v;
      const outcome = await service.handle({ op, token: bearerOf(req.headers, url), args, via: 'node', verb: req.method ?? 'GET' });
      sendJson(res, outcome.status ?? 200, outcome.result);
      outcome.after?.();
    } catch (err) {
      const e = toChorusError(err);
      sendJson(res, adminHttpStatus(e.code), e.toJSON());
    }
    return true;
  });
}
