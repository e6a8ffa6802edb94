import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

/** A throwaway S3-compatible server (s3rver) on a free loopback port; dispose stops it and removes its directory. */
export interface S3Server extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  readonly port: number;
  /** The credentials s3rver accepts. */
  readonly accessKeyId: 'S3RVER';
  readonly secretAccessKey: 'S3RVER';
  /** Buckets created at start. */
  readonly buckets: readonly string[];
  /** Stops the server (clients then see connection refused); the data directory stays. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (after kill). */
  restart(): Promise<void>;
  /** Stops it and removes its directory. */
  stop(): Promise<void>;
}

/**
 * Starts s3rver (an S3 API over HTTP backed by a directory) on a free port
 * with a temp dir and the given buckets (names of 3+ characters). Port 0 on
 * the first start; `restart` reuses the port it got.
 */
export async function startS3(opts: { buckets?: string[] } = {}): Promise<S3Server> {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-s3-'));
  const buckets = opts.buckets ?? ['chorus-files'];
  let port = 0;
  let server: S3rver | undefined;
  const launch = async () => {
    const s = new S3rver({ port, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: buckets.map((name) => ({ name, configs: [] })) });
    const addr = (await s.run()) as { port: number };
    port = addr.port;
    server = s;
  };
  const kill = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    const closed = s.close();
    s.httpServer?.closeAllConnections(); // keep-alive sockets of SDK clients would hold close() open
    await closed;
  };
  const stop = async () => {
    await kill();
    await rm(dir, { recursive: true, force: true });
  };
  await launch();
  return {
    get endpoint() { return `http://127.0.0.1:${port}`; },
    get port() { return port; },
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    buckets,
    kill,
    restart: async () => {
      if (!server) await launch();
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
