import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ChorusClient, type ChorusClientOptions, type WebSocketCtor } from '../../client/sdk.ts';
import { startNode, type RunningNode, type StartOptions } from '../../cluster/bootstrap.ts';
import { makeConfig } from '../../cluster/config.ts';

/** One embedded node on a free port with a temp data dir; disposed after. */
export async function embeddedNode(extra: Record<string, unknown> = {}, opts: StartOptions = {}): Promise<RunningNode & AsyncDisposable & { dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-node-'));
  const config = makeConfig({ profile: 'embedded', nodeId: 'node-1', port: 0, dataDir: dir, logLevel: 'silent', authSecret: 'test-secret-0123456789abcdef', ...extra });
  const running = await startNode(config, opts);
  return Object.assign(running, {
    dir,
    async [Symbol.asyncDispose]() {
      await running.stop();
      await rm(dir, { recursive: true, force: true });
    },
  });
}

/** Signs in through the dev endpoint (joins the demo workspace) and connects the SDK. */
export async function demoClient(node: RunningNode, user: string, opts: Partial<ChorusClientOptions> = {}): Promise<{ client: ChorusClient; token: string; channels: string[] }> {
  const r = await fetch(`${node.url}/api/dev/signin`, { method: 'POST', body: JSON.stringify({ user }), headers: { 'content-type': 'application/json' } });
  const body = (await r.json()) as { token: string; channels: string[]; message?: string };
  if (!r.ok) throw new Error(`signin failed: ${body.message}`);
  const client = await ChorusClient.connect({ baseUrl: node.url, token: body.token, WebSocket: WebSocket as unknown as WebSocketCtor, ...opts });
  return { client, token: body.token, channels: body.channels };
}
