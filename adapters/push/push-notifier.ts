import type { Notification, Notifier } from '../../actors/notifier.ts';
import { noopMetrics, silentLogger, systemClock, type Clock, type Logger, type Metrics } from '../../runtime/index.ts';

/** Where a user's notifications go, and when not to disturb them. */
export interface PushTarget {
  /** 'webpush': a browser PushSubscription; 'webhook': a URL that receives signed JSON. */
  readonly kind: 'webpush' | 'webhook';
  /** Web Push: the subscription's endpoint and keys. Webhook: the URL. */
  readonly endpoint: string;
  readonly keys?: { p256dh: string; auth: string };
}

/** A user's push settings. */
export interface PushSettings {
  readonly targets: readonly PushTarget[];
  /** Quiet hours in the user's time zone, e.g. { start: 22, end: 7, tz: 'Europe/Paris' }: held, then sent as one digest. */
  readonly quietHours?: { start: number; end: number; tz: string };
}

/** Stores push settings per user key (`ws.user`). */
export interface PushSettingsStore {
  get(userKey: string): Promise<PushSettings | undefined>;
  put(userKey: string, s: PushSettings): Promise<void>;
  /** Drops a target the push service said is gone (HTTP 404/410). */
  removeTarget(userKey: string, endpoint: string): Promise<void>;
}

/** In-memory PushSettingsStore (embedded profile and tests). */
export class MemoryPushSettings implements PushSettingsStore {
  private readonly m = new Map<string, PushSettings>();
  async get(k: string) { return this.m.get(k); }
  async put(k: string, s: PushSettings) { this.m.set(k, s); }
  async removeTarget(k: string, endpoint: string) {
    const s = this.m.get(k);
    if (s) this.m.set(k, { ...s, targets: s.targets.filter((t) => t.endpoint !== endpoint) });
  }
}

/** One delivery attempt's outcome. `gone` means the target should be removed. */
export type SendOutcome = 'ok' | 'retry' | 'gone';

/** Sends one payload to one target (Web Push or webhook). */
export interface PushProvider {
  readonly kind: PushTarget['kind'];
  send(target: PushTarget, payload: PushPayload): Promise<SendOutcome>;
}

/** What a user receives: one or several notifications batched together. */
export interface PushPayload {
  readonly userKey: string;
  readonly title: string;
  readonly body: string;
  readonly count: number;
  readonly items: readonly Notification[];
}

/** Settings of the notifier. */
export interface PushNotifierOptions {
  /** Notifications to one user within this window go out as one push. Default 2000 ms. */
  batchMs?: number;
  /** Attempts per target before giving up. Default 4 (backoff 500 ms, 1 s, 2 s). */
  attempts?: number;
  retryBaseMs?: number;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
}

/**
 * The Notifier for offline members: batches per user, holds notifications
 * during the user's quiet hours and sends them as one digest when they end,
 * sends to every target of the user through its provider, retries with
 * backoff, and forgets targets the push service says are gone. Whether a
 * message warrants a notification at all (preferences: all, mentions, none)
 * is the UserActor's decision; this only delivers.
 */
export class PushNotifier implements Notifier {
  private readonly pending = new Map<string, { items: Notification[]; timer: unknown }>();
  private readonly o: Required<Omit<PushNotifierOptions, 'logger' | 'metrics'>> & { logger: Logger };
  private readonly sent;
  private readonly failed;

  constructor(private readonly store: PushSettingsStore, private readonly providers: readonly PushProvider[], opts: PushNotifierOptions = {}) {
    this.o = { batchMs: opts.batchMs ?? 2000, attempts: opts.attempts ?? 4, retryBaseMs: opts.retryBaseMs ?? 500, clock: opts.clock ?? systemClock, logger: opts.logger ?? silentLogger };
    const m = opts.metrics ?? noopMetrics;
    this.sent = m.counter('chorus_push_sent_total', 'Push notifications delivered', ['kind']);
    this.failed = m.counter('chorus_push_failed_total', 'Push notifications given up after retries', ['kind']);
  }

  async notify(userKey: string, n: Notification): Promise<void> {
    let p = this.pending.get(userKey);
    if (!p) {
      p = { items: [], timer: undefined };
      this.pending.set(userKey, p);
      p.timer = this.o.clock.setTimeout(() => void this.flush(userKey), this.o.batchMs);
    }
    p.items.push(n);
  }

  /** Sends what is pending for a user now (or reschedules it after quiet hours). */
  async flush(userKey: string): Promise<void> {
    const p = this.pending.get(userKey);
    if (!p) return;
    const settings = await this.store.get(userKey).catch(() => undefined);
    if (!settings?.targets.length) {
      this.pending.delete(userKey);
      return;
    }
    const wait = settings.quietHours ? msUntilQuietEnds(this.o.clock.now(), settings.quietHours) : 0;
    if (wait > 0) {
      p.timer = this.o.clock.setTimeout(() => void this.flush(userKey), wait);
      return;
    }
    this.pending.delete(userKey);
    const items = p.items;
    const payload: PushPayload = items.length === 1
      ? { userKey, title: items[0]!.title, body: items[0]!.body, count: 1, items }
      : { userKey, title: `${items.length} new notifications`, body: items.slice(0, 3).map((i) => i.title).join(' · '), count: items.length, items };
    await Promise.all(settings.targets.map((t) => this.deliver(userKey, t, payload)));
  }

  private async deliver(userKey: string, target: PushTarget, payload: PushPayload): Promise<void> {
    const provider = this.providers.find((p) => p.kind === target.kind);
    if (!provider) return;
    for (let attempt = 0; attempt < this.o.attempts; attempt++) {
      let outcome: SendOutcome;
      try {
        outcome = await provider.send(target, payload);
      } catch (err) {
        this.o.logger.debug({ err: (err as Error).message, kind: target.kind }, 'push attempt failed');
        outcome = 'retry';
      }
      if (outcome === 'ok') {
        this.sent.inc({ kind: target.kind });
        return;
      }
      if (outcome === 'gone') {
        await this.store.removeTarget(userKey, target.endpoint).catch(() => {});
        return;
      }
      await new Promise((r) => this.o.clock.setTimeout(() => r(undefined), this.o.retryBaseMs * 2 ** attempt));
    }
    this.failed.inc({ kind: target.kind });
    this.o.logger.warn({ userKey, kind: target.kind }, 'push notification given up after retries');
  }
}

/** Milliseconds until the quiet hours end, or 0 when `now` is outside them. */
export function msUntilQuietEnds(now: number, q: { start: number; end: number; tz: string }): number {
  const hourIn = (t: number) => {
    const parts = new Intl.DateTimeFormat('en-US', { timeZone: q.tz, hour: 'numeric', minute: 'numeric', hourCycle: 'h23' }).formatToParts(new Date(t));
    return Number(parts.find((x) => x.type === 'hour')!.value) + Number(parts.find((x) => x.type === 'minute')!.value) / 60;
  };
  const h = hourIn(now);
  const inQuiet = q.start <= q.end ? h >= q.start && h < q.end : h >= q.start || h < q.end;
  if (!inQuiet) return 0;
  const hoursLeft = (q.end - h + 24) % 24;
  return Math.ceil(hoursLeft * 3_600_000);
}
