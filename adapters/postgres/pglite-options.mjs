// Options every PGlite database of Chorus is created with, shared by the
// in-thread client (pglite-client.ts) and the worker (pglite-worker.mjs).
// Plain JavaScript so the worker can import it (see pglite-worker.mjs).
//
// bytea results through Buffer's native hex codec: PGlite's own parser
// builds the bytes with one parseInt per byte; reading a log stream of five
// 300-byte records spent about 190 us of its 510 there. bytea parameters go
// in binary (pglite-prepared.mjs); the serializer here is the fallback for
// what is not bytes, which it refuses (PGlite's would send a string as text).
import { Buffer } from 'node:buffer';

const BYTEA = 17;

/** `\x...` text -> a Uint8Array of its own (not a view of Buffer's shared pool, which a long-lived value would pin). */
function parseBytea(text) {
  const out = new Uint8Array((text.length - 2) >>> 1);
  Buffer.from(out.buffer, out.byteOffset, out.byteLength).write(text.slice(2), 'hex');
  return out;
}

function serializeBytea(v) {
  if (!(v instanceof Uint8Array)) throw new TypeError('Invalid input for bytea type');
  return `\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
}

/** `parsers` and `serializers` for PGlite.create. */
export const PGLITE_TYPE_OPTIONS = Object.freeze({
  parsers: Object.freeze({ [BYTEA]: parseBytea }),
  serializers: Object.freeze({ [BYTEA]: serializeBytea }),
});
