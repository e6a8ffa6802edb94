import { Packr } from 'msgpackr';
import { BadMessageError } from './errors.ts';

/**
 * Encodes everything that crosses a process: envelopes between nodes, log
 * records, snapshots, KV values. JSON is used only at the browser edge.
 */
export interface Codec {
  /** Encodes a value; throws BadMessageError for values msgpack cannot carry. */
  encode(value: unknown): Uint8Array;
  /** Decodes bytes; throws BadMessageError (never a raw parser error) on malformed input. */
  decode(bytes: Uint8Array): unknown;
}

/**
 * Record structures known to every process. msgpackr encodes an object of one
 * of these shapes as a one-byte record reference plus its values, which is both
 * smaller and faster than a map. The list is append-only: never reorder or
 * remove an entry, or old log records stop decoding.
 */
export const SHARED_STRUCTURES: readonly (readonly string[])[] = Object.freeze([
  // node-to-node envelope: kind, type, key, message, epoch, sender node, hops, id
  ['k', 't', 'y', 'm', 'e', 's', 'h'],
  // reply: ok, value, error, epoch
  ['ok', 'v', 'err', 'e'],
  ['ok', 'v', 'e'],
  ['ok', 'err', 'e'],
  // wire error
  ['code', 'message'],
  ['code', 'message', 'details'],
]);

/** msgpackr with the shared record structures; no new shared structures are ever added, so every process decodes every other's bytes. */
export class MsgpackCodec implements Codec {
  private readonly packr: Packr;
  constructor(structures: readonly (readonly string[])[] = SHARED_STRUCTURES) {
    this.packr = new Packr({
      structures: structures.map((s) => [...s]),
      maxSharedStructures: Math.max(structures.length, 1),
      // a shape not in the list is written inline (self-describing), never added
      // to the shared list: another process would not know it
      shouldShareStructure: () => false,
      moreTypes: true,
      useRecords: true,
      mapsAsObjects: true,
    } as ConstructorParameters<typeof Packr>[0]);
  }
  encode(value: unknown): Uint8Array {
    try {
      return this.packr.pack(value);
    } catch (err) {
      throw new BadMessageError(`cannot encode: ${(err as Error).message}`);
    }
  }
  decode(bytes: Uint8Array): unknown {
    try {
      return this.packr.unpack(bytes);
    } catch (err) {
      throw new BadMessageError(`cannot decode ${bytes.length} bytes: ${(err as Error).message}`);
    }
  }
}

/** The process-wide default codec. */
export const codec: Codec = new MsgpackCodec();
