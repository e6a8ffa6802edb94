import { createHmac } from 'node:crypto';
import webpush from 'web-push';
import type { PushPayload, PushProvider, PushTarget, SendOutcome } from './push-notifier.ts';

/** Outcome of an HTTP status from a push service or webhook. */
function outcomeOf(status: number): SendOutcome {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 404 || status === 410) return 'gone';
  return 'retry';
}

/** Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291), through the `web-push` package. */
export class WebPushProvider implements PushProvider {
  readonly kind = 'webpush' as const;
  /**
   * @param vapid the application server keys (web-push generateVAPIDKeys()) and a contact (mailto: or https:).
   * @param opts.agent an https.Agent (custom CAs, e.g. a test push service with its own certificate).
   */
  constructor(private readonly vapid: { subject: string; publicKey: string; privateKey: string }, private readonly opts: { ttlSec?: number; agent?: import('node:https').Agent } = {}) {}
  async send(target: PushTarget, payload: PushPayload): Promise<SendOutcome> {
    if (!target.keys) return 'gone';
    try {
      const r = await webpush.sendNotification({ endpoint: target.endpoint, keys: target.keys }, JSON.stringify({ title: payload.title, body: payload.body, count: payload.count }), {
        vapidDetails: this.vapid, TTL: this.opts.ttlSec ?? 3600, contentEncoding: 'aes128gcm', timeout: 5000,
        ...(this.opts.agent ? { agent: this.opts.agent } : {}),
      });
      return outcomeOf(r.statusCode);
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      return status ? outcomeOf(status) : 'retry';
    }
  }
}

/** A generic webhook: POSTs the payload as JSON, signed with HMAC-SHA256 in `x-chorus-signature` (hex of the body). */
export class WebhookProvider implements PushProvider {
  readonly kind = 'webhook' as const;
  constructor(private readonly secret: string, private readonly timeoutMs = 5000) {}
  async send(target: PushTarget, payload: PushPayload): Promise<SendOutcome> {
    const body = JSON.stringify(payload);
    const signature = createHmac('sha256', this.secret).update(body).digest('hex');
    const r = await fetch(target.endpoint, {
      method: 'POST', body,
      headers: { 'content-type': 'application/json', 'x-chorus-signature': `sha256=${signature}` },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    return outcomeOf(r.status);
  }
}
