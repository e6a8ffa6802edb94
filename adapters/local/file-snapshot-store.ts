import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Snapshot, SnapshotStore } from '../../runtime/log/snapshot-store.ts';

const MAGIC = 0x43534e31; // "CSN1"
const HEADER = 16; // magic u32, length u32, position u64

/**
 * SnapshotStore on a local directory (the embedded profile): one file per
 * stream holding a 16-byte header (magic, length, position) and the state,
 * written to a temporary file, flushed, and renamed over the old one, so a
 * crash leaves the old snapshot or the new one, never a torn one (a file
 * whose length disagrees with its header reads as missing).
 *
 * Why not the PGlite database next to the log: snapshots are the largest
 * values Chorus writes, and that database is one connection that every
 * append and read waits on. With PGlite's own bytea codec a 1 MB snapshot
 * took 0.6-0.9 s to save there (under load the upserts took most of the
 * database's time); with Chorus's (adapters/postgres/pglite-options.mjs)
 * 50-70 ms, still all of it on the log's connection. A snapshot is a cache
 * of the log: losing one costs a longer replay, never data.
 *
 * Saves of one stream are serialised in this process; a save never replaces
 * a snapshot at a higher position.
 *
 * Loads read the file synchronously. An activation storm (10,000 clients
 * reconnecting to a restarted node) reads one snapshot per user actor, and
 * the asynchronous reads cost several times the synchronous one: 10,000
 * files of 300 bytes read 400 at a time with the callback `fs.readFile` took
 * 65-100 us of CPU each (open, fstat, read and close each a thread-pool
 * round trip and a callback), `fs.readFileSync` 20-25 us, and `fs/promises`
 * is slower still; in the fan-out bench's reconnect of 10,000 members the
 * asynchronous reads were a fifth of the node's busy time. The embedded
 * profile's PGlite does all its file I/O synchronously on this thread
 * anyway; a snapshot is a local file read through the page cache.
 */
export class FileSnapshotStore implements SnapshotStore {
  private readonly chains = new Map<string, Promise<void>>();
  private ready: Promise<unknown> | undefined;
  private seq = 0;

  /** `dir` is created on first use. */
  constructor(private readonly dir: string) {}

  async save(stream: string, snap: Snapshot): Promise<void> {
    if (!Number.isSafeInteger(snap.pos) || snap.pos < 0) throw new RangeError(`snapshot position must be a non-negative integer, got ${snap.pos}`);
    const prev = this.chains.get(stream) ?? Promise.resolve();
    const next = prev.then(() => this.write(stream, snap));
    const settled = next.catch(() => {});
    this.chains.set(stream, settled);
    void settled.then(() => { if (this.chains.get(stream) === settled) this.chains.delete(stream); });
    return next;
  }

  async load(stream: string): Promise<Snapshot | null> {
    await this.chains.get(stream);
    return this.read(stream);
  }

  async close(): Promise<void> {
    await Promise.all([...this.chains.values()]);
  }

  private read(stream: string): Snapshot | null {
    let buf: Buffer;
    try {
      buf = readFileSync(this.fileOf(stream));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    if (buf.length < HEADER || buf.readUInt32BE(0) !== MAGIC || buf.readUInt32BE(4) !== buf.length - HEADER) return null;
    return { pos: Number(buf.readBigUInt64BE(8)), data: new Uint8Array(buf.buffer, buf.byteOffset + HEADER, buf.length - HEADER) };
  }

  private async write(stream: string, snap: Snapshot): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true });
    await this.ready;
    const cur = this.read(stream);
    if (cur && cur.pos > snap.pos) return;
    const file = this.fileOf(stream);
    const tmp = `${file}.${process.pid}.${++this.seq}.tmp`;
    const header = Buffer.alloc(HEADER);
    header.writeUInt32BE(MAGIC, 0);
    header.writeUInt32BE(snap.data.byteLength, 4);
    header.writeBigUInt64BE(BigInt(snap.pos), 8);
    const fh = await open(tmp, 'w');
    try {
      await fh.writev([header, snap.data]);
      await fh.datasync();
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await fh.close();
    await rename(tmp, file);
  }

  /** Readable names for the usual stream names, a hash for anything else. */
  private fileOf(stream: string): string {
    const safe = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,150}$/.test(stream) ? stream : `h-${createHash('sha256').update(stream).digest('hex')}`;
    return join(this.dir, `${safe}.snap`);
  }
}
