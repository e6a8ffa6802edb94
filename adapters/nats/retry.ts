/**
 * Retries a JetStream management call (create a stream or a KV bucket) that
 * may time out or fail while the cluster is busy: on nats-server 2.9 two
 * clients creating the same R3 stream at once can leave one waiting without
 * an answer, and a new R3 asset right after start can fail with "no suitable
 * peers". The second attempt then usually finds the stream created. Gives up
 * after `deadlineMs` (default 20 s) with the last error.
 */
export async function retryJetStream<T>(what: string, fn: () => Promise<T>, opts: { deadlineMs?: number; pauseMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (opts.deadlineMs ?? 20_000);
  let pause = opts.pauseMs ?? 150;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || Date.now() + pause > deadline) throw err;
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 1000);
      void what;
    }
  }
}

/** Timeouts, "no suitable peers", 503s and leader elections: worth another try. */
export function isTransient(err: unknown): boolean {
  const e = err as { message?: string; code?: string | number; name?: string; api_error?: { err_code?: number } };
  const msg = String(e?.message ?? '').toLowerCase();
  return msg.includes('timeout') || msg.includes('no suitable peers') || msg.includes('503') || msg.includes('no responders')
    || msg.includes('jetstream is not enabled') || msg.includes('not enabled') || msg.includes('leader') || e?.code === 'TIMEOUT' || e?.name === 'TimeoutError'
    || e?.api_error?.err_code === 10008 || e?.api_error?.err_code === 10023;
}

/** The part of the JetStream manager `waitForLeader` uses. */
interface StreamInfoApi { streams: { info(name: string): Promise<{ cluster?: { leader?: string } }> } }

/**
 * Waits until a (just created) stream has a leader. On 2.9 a client that
 * raced another to create an R3 stream gets "created" at once, but requests
 * to the stream go unanswered until its group has elected a leader.
 */
export async function waitForLeader(jsm: StreamInfoApi, stream: string, deadlineMs = 15_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      const info = await jsm.streams.info(stream);
      if (!info.cluster || info.cluster.leader) return;
    } catch (err) {
      if (!isTransient(err) || Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
