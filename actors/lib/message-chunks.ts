/**
 * A channel's messages in a snapshot, as chunks of MESSAGE_CHUNK messages
 * each encoded on its own and kept encoded until one of its messages
 * changes. A channel actor holds every message of its channel (see
 * channel-state.ts), and a snapshot used to encode them all again each time:
 * measured on this machine, 100,000 messages of 80 characters made a 15 MB
 * snapshot that took 0.56 s to encode, 1,000,000 made 152 MB in 9.1 s, all of
 * it synchronous on the node's event loop (long enough for the node to miss
 * its membership lease and fence itself). Messages are only appended, and an
 * edit, delete, reaction, pin or reply changes one old message, so all but
 * the last chunk and the few touched since the last snapshot are reused as
 * bytes: a snapshot then costs a copy of the old chunks plus the encoding of
 * at most a few thousand messages.
 */
import type { Codec } from '../../runtime/codec.ts';
import type { ChannelEventRec, StoredMessage } from './channel-state.ts';

/** Messages per chunk. A constant of the snapshot format: a chunk's index is (seq - 1) / MESSAGE_CHUNK. */
export const MESSAGE_CHUNK = 1024;

/** The encoded chunks of one activation's messages (not part of the state: a cache of its encoding). */
export class MessageChunks {
  /** Encoded full chunks by index; undefined = not encoded since it last changed. */
  private readonly cache: (Uint8Array | undefined)[] = [];
  /** Chunks encoded so far (for tests and the curious). */
  encodedCount = 0;

  constructor(private readonly codec: Codec) {}

  /** Notes an event about to be applied: every event that changes a stored message names it, and its chunk is encoded again. */
  applied(e: ChannelEventRec): void {
    switch (e.type) {
      case 'posted':
        this.touch(e.msg.seq);
        if (e.msg.parent !== undefined) this.touch(e.msg.parent); // its reply list
        break;
      case 'edited': case 'deleted': case 'reaction': case 'pinned':
        this.touch(e.seq);
        break;
    }
  }

  /** Marks the chunk holding message `seq` as changed. */
  touch(seq: number): void {
    const i = Math.floor((seq - 1) / MESSAGE_CHUNK);
    if (i >= 0 && i < this.cache.length) this.cache[i] = undefined;
  }

  /**
   * The chunks of `messages` (messages[i] has seq i + 1), encoding only
   * those not kept from before. The last chunk is kept only once full.
   */
  encode(messages: readonly StoredMessage[]): Uint8Array[] {
    const n = Math.ceil(messages.length / MESSAGE_CHUNK);
    const out = new Array<Uint8Array>(n);
    for (let i = 0; i < n; i++) {
      let bytes = this.cache[i];
      if (!bytes) {
        const part = messages.slice(i * MESSAGE_CHUNK, (i + 1) * MESSAGE_CHUNK);
        // a copy: the codec's output may be a view of a larger buffer it reuses
        bytes = this.codec.encode(part).slice();
        this.encodedCount++;
        if (part.length === MESSAGE_CHUNK) this.cache[i] = bytes;
      }
      out[i] = bytes;
    }
    return out;
  }

  /** The messages of `chunks` (as `encode` made them), keeping the full chunks' bytes for the next `encode`. */
  decode(chunks: readonly Uint8Array[]): StoredMessage[] {
    this.cache.length = 0;
    const messages: StoredMessage[] = [];
    chunks.forEach((bytes, i) => {
      const part = this.codec.decode(bytes) as StoredMessage[];
      for (const m of part) messages.push(m);
      if (part.length === MESSAGE_CHUNK) this.cache[i] = bytes;
    });
    return messages;
  }

  /** Forgets every kept chunk (the state was replaced by one not read from chunks). */
  reset(): void {
    this.cache.length = 0;
  }
}
