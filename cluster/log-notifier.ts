import type { Notification, Notifier } from '../actors/notifier.ts';
import type { Logger, Metrics } from '../runtime/index.ts';
import { noopMetrics } from '../runtime/index.ts';

/**
 * The embedded profile's Notifier: writes each offline notification to the
 * log and counts it. A deployment plugs a push or e-mail service in its place.
 */
export class LogNotifier implements Notifier {
  private readonly sent;
  constructor(private readonly logger: Logger, metrics: Metrics = noopMetrics) {
    this.sent = metrics.counter('chorus_notifications_total', 'Offline notifications sent (push, e-mail)');
  }
  async notify(userKey: string, n: Notification): Promise<void> {
    this.sent.inc();
    this.logger.info({ userKey, ws: n.ws, ch: n.ch, seq: n.seq, title: n.title }, 'offline notification');
  }
}
