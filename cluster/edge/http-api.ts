import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { ChorusError, toChorusError } from '../../runtime/index.ts';
import type { ChorusNode } from '../chorus-node.ts';
import { sendJson, type HttpServer } from '../http-server.ts';
import { AuthError, bearerOf, type TokenSigner } from './auth.ts';
import type { ChatEdge } from './chat-edge.ts';
import { chooseEdge, type EdgeCandidate } from './edge-router.ts';
import { joinDemoWorkspace } from './demo-workspace.ts';

/** Reads a small JSON body (at most `limit` bytes, within `deadlineMs`, default 10 s: a trickled body is cut off). */
export async function readJson(req: IncomingMessage, limit = 16 * 1024, deadlineMs = 10_000): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  const timer = setTimeout(() => req.destroy(new Error('request body too slow')), deadlineMs);
  try {
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > limit) throw new ChorusError('HTTP_BODY_TOO_LARGE', `body over ${limit} bytes`);
      chunks.push(c as Buffer);
    }
  } finally {
    clearTimeout(timer);
  }
  if (!size) return {};
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new ChorusError('HTTP_BAD_JSON', 'body must be a JSON object');
  }
}

function statusOf(code: string): number {
  if (code === 'AUTH_FORBIDDEN') return 403;
  if (code.startsWith('AUTH_')) return 401;
  if (code === 'HTTP_BODY_TOO_LARGE') return 413;
  if (code === 'HTTP_NOT_FOUND') return 404;
  if (code.startsWith('HTTP_') || code === 'CHORUS_BAD_MESSAGE') return 400;
  if (code === 'EDGE_NO_EDGE') return 503;
  return 500;
}

/**
 * The HTTP side a chat client needs: the connect call (which edge to open a
 * WebSocket to), the dev sign-in of the embedded profile, the demo page and
 * the browser SDK, and the WebSocket upgrade on /ws.
 */
export function mountChatHttp(http: HttpServer, o: {
  node: ChorusNode;
  edge: ChatEdge;
  signer: TokenSigner;
  devSignIn: boolean;
  /** This node's public base URL (http://host:port). */
  publicUrl: () => string;
  region: string;
  maxConnections?: number;
}): void {
  http.server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/ws') o.edge.handleUpgrade(req, socket, head);
    else socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
  });
  const demoDir = fileURLToPath(new URL('../../client/demo/', import.meta.url));
  http.route(async (req, res, url) => {
    try {
      if (url.pathname === '/api/connect' && (req.method === 'POST' || req.method === 'GET')) {
        const claims = o.signer.verify(bearerOf(req.headers, url));
        if (claims.kind !== 'user') throw new AuthError('AUTH_FORBIDDEN', 'not a user token');
        const region = url.searchParams.get('region') ?? undefined;
        const choice = chooseEdge(claims.sub, edgeCandidates(o), { ...(region ? { region } : {}), ...(o.maxConnections ? { maxConnections: o.maxConnections } : {}) });
        if (!choice) throw new ChorusError('EDGE_NO_EDGE', 'no healthy edge');
        const wsUrl = `${choice.edge.url.replace(/^http/, 'ws')}/ws`;
        sendJson(res, 200, { url: wsUrl, node: choice.edge.id, region: choice.edge.region, reason: choice.reason });
        return true;
      }
      if (url.pathname === '/api/dev/signin' && req.method === 'POST') {
        if (!o.devSignIn) throw new ChorusError('HTTP_NOT_FOUND', 'dev sign-in is disabled on this node');
        const body = await readJson(req);
        const user = typeof body.user === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(body.user) ? body.user : undefined;
        if (!user) throw new ChorusError('HTTP_BAD_REQUEST', 'user must match /^[A-Za-z0-9_-]{1,64}$/');
        const demo = await joinDemoWorkspace(o.node, user);
        sendJson(res, 200, { user, token: o.signer.sign({ sub: user, ws: [demo.ws] }), ...demo });
        return true;
      }
      if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
        const body = await readFile(demoDir + 'index.html');
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' });
        res.end(body);
        return true;
      }
      if (req.method === 'GET' && url.pathname === '/chorus-client.js') {
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' });
        res.end(await browserSdk());
        return true;
      }
      return false;
    } catch (err) {
      const e = toChorusError(err);
      sendJson(res, statusOf(e.code), e.toJSON());
      return true;
    }
  });
}

let sdkBundle: Promise<string> | undefined;
/** The SDK (client/sdk.ts) as one browser ES module, built once per process with esbuild. */
export function browserSdk(): Promise<string> {
  return (sdkBundle ??= import('esbuild').then(async (esbuild) => {
    const r = await esbuild.build({
      entryPoints: [fileURLToPath(new URL('../../client/sdk.ts', import.meta.url))],
      bundle: true, format: 'esm', platform: 'browser', target: 'es2020', write: false, minify: false,
    });
    return r.outputFiles[0]!.text;
  }));
}

/** The edges the cluster knows of, from member heartbeats. */
function edgeCandidates(o: { node: ChorusNode; edge: ChatEdge; publicUrl: () => string; region: string }): EdgeCandidate[] {
  const now = Date.now();
  const members = o.node.supervisor.liveMembers();
  const list: EdgeCandidate[] = members
    .filter((m) => typeof m.url === 'string')
    .map((m) => ({
      id: m.id, url: m.url!, region: m.region, connections: m.id === o.node.nodeId ? o.edge.connectionCount : (m.load.connections ?? 0),
      healthy: m.state === 'active' && now - m.lastSeen < o.node.timing.failureTimeoutMs, weight: m.weight,
    }));
  if (!list.some((e) => e.id === o.node.nodeId)) {
    list.push({ id: o.node.nodeId, url: o.publicUrl(), region: o.region, connections: o.edge.connectionCount, healthy: !o.node.membership.draining });
  }
  return list;
}
