import { connect, type NatsConnection } from '@nats-io/transport-node';
import { BackendError } from '../../runtime/errors.ts';
import { silentLogger, type Logger } from '../../runtime/metrics.ts';
import type { NatsOptions } from './options.ts';

/**
 * Opens one NATS connection with Chorus's settings: reconnect forever (by
 * default) every `reconnectWaitMs` across every listed server, so a killed
 * server is survived; pings detect a paused one. A failed first connect
 * rejects with BackendError('nats', ..., { cause }) instead of retrying
 * forever, so a misconfigured node fails at startup.
 *
 * Connection state changes (disconnect, reconnect, errors) go to `logger`.
 */
export async function connectNats(opts: NatsOptions, deps: { logger?: Logger } = {}): Promise<NatsConnection> {
  const logger = deps.logger ?? silentLogger;
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: [...opts.servers],
      name: opts.name,
      timeout: opts.connectTimeoutMs,
      reconnect: true,
      maxReconnectAttempts: opts.maxReconnectAttempts,
      reconnectTimeWait: opts.reconnectWaitMs,
      reconnectJitter: opts.reconnectJitterMs,
      reconnectJitterTLS: opts.reconnectJitterMs,
      pingInterval: opts.pingIntervalMs,
      maxPingOut: opts.maxPingOut,
    });
  } catch (err) {
    throw new BackendError('nats', `cannot connect to ${opts.servers.join(',')}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  if (logger !== silentLogger) void logStatus(nc, logger);
  return nc;
}

async function logStatus(nc: NatsConnection, logger: Logger): Promise<void> {
  try {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect': logger.warn({ server: s.server }, 'nats disconnected'); break;
        case 'reconnect': logger.info({ server: s.server }, 'nats reconnected'); break;
        case 'error': logger.error({ err: s.error }, 'nats connection error'); break;
        default: break;
      }
    }
  } catch {
    // the status iterator ends when the connection closes
  }
}
