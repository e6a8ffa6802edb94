import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { JetStreamApiCodes, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Snapshot, SnapshotStore } from '../../runtime/log/snapshot-store.ts';
import { checkLogical, checkPos, isApiError, wrap } from './jetstream-common.ts';
import { retryJetStream, waitForLeader } from './retry.ts';

/** Options of JetStreamSnapshotStore. */
export interface JetStreamSnapshotStoreOptions {
  /** KV bucket name; the parts of big snapshots go in `<bucket>_PARTS`. Default `CHORUS_SNAPSHOTS`. */
  readonly bucket?: string;
  /** Replicas of the buckets if this store creates them. Default 1 (3 in a cluster). */
  readonly replicas?: number;
  /**
   * Largest value stored in one KV entry, position included; a bigger
   * snapshot is stored in parts of this size. Default: the server's
   * `max_payload` (1 MiB unless configured) less 4 KiB for headers.
   */
  readonly partBytes?: number;
  /** `close()` also closes the NATS connection. Default false. */
  readonly closeConnection?: boolean;
}

const SAFE_KEY = /^[-_.A-Za-z0-9]+$/;

/** KV keys allow `[-/_=.a-zA-Z0-9]`; other names are stored as `=` + base64url, which never collides with a plain name. */
function kvKey(stream: string): string {
  return SAFE_KEY.test(stream) && !stream.startsWith('.') && !stream.endsWith('.') && !stream.includes('..')
    ? stream
    : `=${Buffer.from(stream).toString('base64url')}`;
}

/** Set in the first 8 bytes of an entry that lists parts instead of holding the snapshot (positions stay below 2^53). */
const PARTS_FLAG = 1n << 63n;
/** A parts entry: flagged position (u64), part count (u32), total bytes (u64). */
const MANIFEST_BYTES = 20;

interface Buckets {
  main: KV;
  parts: KV;
  jsm: JetStreamManager;
}

interface Manifest {
  pos: number;
  parts: number;
  bytes: number;
}

/**
 * SnapshotStore port on JetStream KV (the cluster profile). Key = stream
 * name, history 1. An entry holds the position (8 bytes, big-endian)
 * followed by the snapshot bytes; keep-the-highest is a compare-and-set loop
 * on the entry's revision. Reads go through the stream leader (no direct
 * get), so a load sees the last save.
 *
 * A snapshot bigger than one NATS message (`max_payload`, 1 MiB by default;
 * a channel of some 7,000 messages) is written in parts to a second bucket,
 * keys `<key>.<pos>.<i>`, and the entry then lists them (a manifest: the
 * position with its top bit set, the part count, the size). Parts are
 * written before the manifest points at them, and the previous manifest's
 * parts are deleted after it is replaced, so a load finds every part its
 * manifest lists unless a newer save replaced it meanwhile: it then reads
 * the newer one. Before parts, such a save failed ("max_payload size
 * exceeded") and the actor replayed its log from the last snapshot that had
 * fit, longer at every activation. Parts of a save that lost the race to a
 * higher position, or of a process that died between parts and manifest,
 * stay behind as garbage (the next save of the same position overwrites them).
 */
export class JetStreamSnapshotStore implements SnapshotStore {
  private kvP: Promise<Buckets> | undefined;
  private readonly bucket: string;
  private readonly replicas: number;

  constructor(private readonly nc: NatsConnection, private readonly options: JetStreamSnapshotStoreOptions = {}) {
    this.bucket = options.bucket ?? 'CHORUS_SNAPSHOTS';
    this.replicas = options.replicas ?? 1;
    if (!/^[-_A-Za-z0-9]+$/.test(this.bucket)) throw new RangeError(`bucket must be [-_A-Za-z0-9]+, got "${this.bucket}"`);
    if (options.partBytes !== undefined && (!Number.isSafeInteger(options.partBytes) || options.partBytes < 1024)) {
      throw new RangeError(`partBytes must be an integer of at least 1024, got ${options.partBytes}`);
    }
  }

  private kv(): Promise<Buckets> {
    const open = async (name: string) => {
      const kv = await retryJetStream(`bucket ${name}`, () => new Kvm(this.nc).create(name, { replicas: this.replicas, history: 1, allow_direct: false }));
      await waitForLeader(await jetstreamManager(this.nc), `KV_${name}`);
      return kv;
    };
    this.kvP ??= Promise.all([open(this.bucket), open(`${this.bucket}_PARTS`), jetstreamManager(this.nc)]).then(([main, parts, jsm]) => ({ main, parts, jsm })).catch((err) => {
      this.kvP = undefined;
      throw err;
    });
    return this.kvP;
  }

  /** Bytes per KV value. */
  private get partBytes(): number {
    return this.options.partBytes ?? Math.max(64 * 1024, (this.nc.info?.max_payload ?? 1024 * 1024) - 4096);
  }

  async save(stream: string, snap: Snapshot): Promise<void> {
    checkLogical(stream);
    checkPos('snapshot pos', snap?.pos);
    if (!(snap.data instanceof Uint8Array)) throw new TypeError('snapshot data must be a Uint8Array');
    const key = kvKey(stream);
    try {
      const b = await this.kv();
      const { main, parts } = b;
      const inline = 8 + snap.data.byteLength <= this.partBytes;
      let value: Uint8Array;
      if (inline) {
        value = new Uint8Array(8 + snap.data.byteLength);
        new DataView(value.buffer).setBigUint64(0, BigInt(snap.pos));
        value.set(snap.data, 8);
      } else {
        if ((storedPos(await main.get(key)) ?? -1) >= snap.pos) return; // a newer one is there: no parts to write
        const size = this.partBytes;
        const n = Math.ceil(snap.data.byteLength / size);
        for (let i = 0; i < n; i++) await parts.put(`${key}.${snap.pos}.${i}`, snap.data.subarray(i * size, (i + 1) * size));
        value = manifest({ pos: snap.pos, parts: n, bytes: snap.data.byteLength });
      }
      for (let attempt = 0; attempt < 100; attempt++) {
        const cur = await main.get(key);
        const pos = storedPos(cur);
        if (pos !== undefined && pos >= snap.pos) return;
        try {
          if (cur === null) await main.create(key, value);
          else await main.update(key, value, cur.revision);
        } catch (err) {
          // someone else saved in between: look again
          if (isApiError(err, JetStreamApiCodes.StreamWrongLastSequence)) continue;
          throw err;
        }
        const old = pos !== undefined ? manifestOf(cur!.value) : undefined;
        if (old) await this.dropParts(b, key, old);
        return;
      }
      throw new Error('too many concurrent saves');
    } catch (err) {
      throw wrap(`save snapshot ${stream}`, err);
    }
  }

  async load(stream: string): Promise<Snapshot | null> {
    checkLogical(stream);
    const key = kvKey(stream);
    try {
      const { main, parts } = await this.kv();
      for (let attempt = 0; attempt < 10; attempt++) {
        const e = await main.get(key);
        const pos = storedPos(e);
        if (pos === undefined) return null;
        const m = manifestOf(e!.value);
        if (!m) return { pos, data: new Uint8Array(e!.value.subarray(8)) };
        const data = new Uint8Array(m.bytes);
        let at = 0;
        for (let i = 0; i < m.parts; i++) {
          const p = await parts.get(`${key}.${m.pos}.${i}`);
          if (!p || p.operation !== 'PUT') break; // replaced by a newer save meanwhile: read that one
          data.set(p.value, at);
          at += p.value.byteLength;
        }
        if (at === m.bytes) return { pos: m.pos, data };
      }
      throw new Error('the snapshot kept changing while it was read');
    } catch (err) {
      throw wrap(`load snapshot ${stream}`, err);
    }
  }

  async close(): Promise<void> {
    if (this.options.closeConnection && !this.nc.isClosed()) await this.nc.close();
  }

  /**
   * Removes the parts of a replaced manifest, markers included (one stream
   * purge by subject; a KV delete would leave a marker per part forever).
   * Best effort: what is left is garbage, never read.
   */
  private async dropParts(b: Buckets, key: string, m: Manifest): Promise<void> {
    const name = `${this.bucket}_PARTS`;
    await b.jsm.streams.purge(`KV_${name}`, { filter: `$KV.${name}.${key}.${m.pos}.*` }).catch(() => {});
  }
}

/** The position a live entry stands for; undefined for none, a delete marker or a value too short to hold one. */
function storedPos(e: KvEntry | null): number | undefined {
  return e !== null && e.operation === 'PUT' && e.value.byteLength >= 8 ? readPos(e.value) : undefined;
}

/** The position an entry stands for (a manifest's without its flag). */
function readPos(v: Uint8Array): number {
  return Number(new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0) & ~PARTS_FLAG);
}

function manifest(m: Manifest): Uint8Array {
  const v = new Uint8Array(MANIFEST_BYTES);
  const d = new DataView(v.buffer);
  d.setBigUint64(0, BigInt(m.pos) | PARTS_FLAG);
  d.setUint32(8, m.parts);
  d.setBigUint64(12, BigInt(m.bytes));
  return v;
}

/** The manifest an entry holds, or undefined for an entry holding its snapshot. */
function manifestOf(v: Uint8Array): Manifest | undefined {
  if (v.byteLength !== MANIFEST_BYTES) return undefined;
  const d = new DataView(v.buffer, v.byteOffset, v.byteLength);
  const first = d.getBigUint64(0);
  if ((first & PARTS_FLAG) === 0n) return undefined;
  return { pos: Number(first & ~PARTS_FLAG), parts: d.getUint32(8), bytes: Number(d.getBigUint64(12)) };
}
