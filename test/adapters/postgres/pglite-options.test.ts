import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pgliteClient } from '../../../adapters/postgres/pglite-client.ts';
import { workerPgliteClient } from '../../../adapters/postgres/pglite-worker-client.ts';
import { PGLITE_TYPE_OPTIONS } from '../../../adapters/postgres/pglite-options.mjs';

const sizes = [0, 1, 300, 70_000];
const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) % 256);

for (const [name, open] of [['in thread', () => pgliteClient()], ['worker', () => workerPgliteClient()]] as const) {
  test(`PGlite (${name}): bytea round-trips as a plain Uint8Array of its own, as a parameter and as a result`, async () => {
    const db = await open();
    try {
      for (const n of sizes) {
        const [row] = await db.query<{ b: Uint8Array; len: number }>('SELECT $1::bytea AS b, octet_length($1::bytea) AS len', [bytes(n)]);
        assert.equal(row!.len, n);
        assert.equal(row!.b.constructor, Uint8Array, 'not a Buffer');
        assert.equal(row!.b.buffer.byteLength, n, 'not a view of a shared pool');
        assert.deepEqual(row!.b, bytes(n));
      }
      const [row] = await db.query<{ b: Uint8Array }>(`SELECT decode('00ff10', 'hex') AS b`);
      assert.deepEqual(row!.b, new Uint8Array([0, 255, 16]));
    } finally {
      await db.close();
    }
  });
}

test('the bytea serializer refuses what is not bytes', () => {
  assert.throws(() => PGLITE_TYPE_OPTIONS.serializers[17]!('abc'), TypeError);
});
