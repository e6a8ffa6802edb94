import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** A route handler; return false to fall through to the next. */
export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean | void> | boolean | void;

/** What /readyz checks; each returns true or a reason. */
export type ReadinessCheck = () => Promise<true | string> | true | string;

/**
 * The node's HTTP server: health, readiness, metrics, and whatever the edge
 * adds (routes and the WebSocket upgrade). Routes run in registration order.
 */
export class HttpServer {
  readonly server: Server;
  private readonly routes: Route[] = [];

  constructor(private readonly o: { metrics?: () => Promise<{ text: string; contentType: string }>; readiness?: Record<string, ReadinessCheck> }) {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.headersTimeout = 10_000;
    // No deadline for a whole request: a large upload on a slow link may take minutes (files-api streams it).
    // Instead a socket idle for 30 s is closed (WebSocket upgrades clear it; keep-alive has its own 5 s), and
    // small bodies have their own deadline (readJson), so a trickled body cannot hold a socket for long.
    this.server.requestTimeout = 0;
    this.server.timeout = 30_000;
    this.route(async (req, res, url) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false;
      if (url.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' }), true;
      if (url.pathname === '/readyz') {
        const checks: Record<string, true | string> = {};
        for (const [name, check] of Object.entries(this.o.readiness ?? {})) {
          try {
            checks[name] = await check();
          } catch (err) {
            checks[name] = (err as Error).message;
          }
        }
        const ok = Object.values(checks).every((v) => v === true);
        return sendJson(res, ok ? 200 : 503, { status: ok ? 'ready' : 'not ready', checks }), true;
      }
      if (url.pathname === '/metrics' && this.o.metrics) {
        const m = await this.o.metrics();
        res.writeHead(200, { 'content-type': m.contentType });
        res.end(m.text);
        return true;
      }
      return false;
    });
  }

  /** Adds a route (after the built-in ones). */
  route(r: Route): void {
    this.routes.push(r);
  }

  /** Listens; resolves with the bound port (useful with port 0). */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections?.();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return sendJson(res, 400, { code: 'HTTP_BAD_URL', message: 'malformed URL' });
    }
    try {
      for (const r of this.routes) if (await r(req, res, url)) return;
      sendJson(res, 404, { code: 'HTTP_NOT_FOUND', message: `no route for ${req.method} ${url.pathname}` });
    } catch (err) {
      if (!res.headersSent) sendJson(res, 500, { code: 'HTTP_INTERNAL', message: (err as Error).message });
      else res.destroy();
    }
  }
}

/** Writes a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(text);
}
