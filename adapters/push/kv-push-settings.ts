import { codec, KvConflictError, type KvBucket, type KvStore } from '../../runtime/index.ts';
import type { PushSettings, PushSettingsStore } from './push-notifier.ts';

/** Push settings in a KV bucket (`chorus_push`, key = user key), shared by every node of a cluster. */
export class KvPushSettings implements PushSettingsStore {
  private bucket: Promise<KvBucket> | undefined;
  constructor(private readonly kv: KvStore) {}
  private b(): Promise<KvBucket> {
    return (this.bucket ??= this.kv.bucket('chorus_push'));
  }
  async get(userKey: string): Promise<PushSettings | undefined> {
    const e = await (await this.b()).get(userKey);
    return e ? (codec.decode(e.value) as PushSettings) : undefined;
  }
  async put(userKey: string, s: PushSettings): Promise<void> {
    await (await this.b()).put(userKey, codec.encode(s));
  }
  async removeTarget(userKey: string, endpoint: string): Promise<void> {
    const b = await this.b();
    for (let i = 0; i < 5; i++) {
      const e = await b.get(userKey);
      if (!e) return;
      const s = codec.decode(e.value) as PushSettings;
      try {
        await b.update(userKey, codec.encode({ ...s, targets: s.targets.filter((t) => t.endpoint !== endpoint) }), e.revision);
        return;
      } catch (err) {
        if (!(err instanceof KvConflictError)) throw err;
      }
    }
  }
}
