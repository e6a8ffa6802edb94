/**
 * The Notifier port: how a user who is not connected hears about a mention
 * or a DM (mobile push, e-mail digest...). User actors call it; the
 * composition root chooses the implementation. `RecordingNotifier` is the
 * in-memory twin used by tests.
 */

/** One offline notification. */
export interface Notification {
  title: string;
  body: string;
  ws: string;
  ch: string;
  seq: number;
}

/** Delivers offline notifications. Implementations must not throw synchronously; a rejected promise is logged and dropped. */
export interface Notifier {
  /** Notifies the user `userKey` (`${ws}.${user}`). */
  notify(userKey: string, n: Notification): Promise<void>;
}

/** Keeps every notification in memory, in call order. */
export class RecordingNotifier implements Notifier {
  /** Everything notified so far. */
  readonly sent: Array<{ userKey: string } & Notification> = [];
  async notify(userKey: string, n: Notification): Promise<void> {
    this.sent.push({ userKey, ...n });
  }
  /** Notifications for one user key. */
  for(userKey: string): Array<{ userKey: string } & Notification> {
    return this.sent.filter((x) => x.userKey === userKey);
  }
}
