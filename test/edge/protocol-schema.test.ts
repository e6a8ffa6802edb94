/**
 * docs/protocol-schema.json is generated from the zod schemas
 * (scripts/gen-protocol-schema.ts): this test fails when the committed file
 * is stale, when PROTOCOL.md misses an op, and when a real session sends a
 * frame the documented server-frame schemas do not describe exactly (a field
 * missing from the docs fails too: parsing strips unknown keys, and the
 * result must equal the frame).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import {
  ChannelListingZ, MessageViewZ, PROTOCOL_FILE, SCHEMA_FILE, PresenceSubResultZ, ServerFrameZ, SubscribeResultZ, UnreadEntryZ, clientOps, protocolSchemaText, refreshProtocolDoc,
} from '../../scripts/gen-protocol-schema.ts';
import { closeAll, person, rawSocket, waitFor, WS } from '../e2e/helpers.ts';
import { embeddedNode } from './fixture.ts';

/** Parses with `schema` and requires the result to equal the input (nothing unknown, nothing coerced). */
function exactly(schema: z.ZodType, value: unknown, what: string): void {
  const r = schema.safeParse(value);
  assert.ok(r.success, `${what} does not match its schema: ${r.success ? '' : r.error.message}\n${JSON.stringify(value).slice(0, 500)}`);
  assert.deepEqual(r.data, value, `${what} has fields the schema does not document: ${JSON.stringify(value).slice(0, 500)}`);
}

describe('the protocol schema', () => {
  test('docs/protocol-schema.json is up to date (run: node --import tsx scripts/gen-protocol-schema.ts)', async () => {
    const committed = await readFile(SCHEMA_FILE, 'utf8').catch(() => '');
    assert.ok(committed === protocolSchemaText(), 'docs/protocol-schema.json is stale: regenerate it with `node --import tsx scripts/gen-protocol-schema.ts`');
  });

  test('PROTOCOL.md links the schema, and its generated ops table is fresh and names every client op', async () => {
    const doc = await readFile(PROTOCOL_FILE, 'utf8');
    assert.ok(doc.includes('docs/protocol-schema.json'));
    assert.ok(doc === refreshProtocolDoc(doc), 'the ops table of PROTOCOL.md is stale: regenerate it with `node --import tsx scripts/gen-protocol-schema.ts`');
    const missing = clientOps().filter((op) => !doc.includes(`\`${op}\``));
    assert.deepEqual(missing, [], 'ops missing from PROTOCOL.md');
  });

  test('every frame of a real session matches the documented server frames exactly', async () => {
    await using node = await embeddedNode();
    try {
      const ada = await person(node, 'ps-ada');
      const bob = await person(node, 'ps-bob');
      const [general, random] = ada.channels as [string, string];
      const a = await rawSocket(node.url, ada.token);
      const b = await rawSocket(node.url, bob.token);
      const ok = async (r: Promise<any>) => {
        const f = await r;
        assert.equal(f.ok, true, JSON.stringify(f));
        return f.result;
      };
      exactly(SubscribeResultZ, await ok(b.ask('subscribe', { ws: WS, ch: general })), 'subscribe result (from now)');
      const p = await ok(a.ask('post', { ws: WS, ch: general, text: 'hello <@ps-bob>', clientMsgId: 'p1' }));
      await ok(b.ask('post', { ws: WS, ch: general, text: 'a reply', parent: p.seq, clientMsgId: 'p2' }));
      await ok(a.ask('edit', { ws: WS, ch: general, seq: p.seq, text: 'hello again', clientMsgId: 'e1' }));
      await ok(b.ask('react', { ws: WS, ch: general, seq: p.seq, emoji: '+1', clientMsgId: 'r1' }));
      await ok(a.ask('pin', { ws: WS, ch: general, seq: p.seq, clientMsgId: 'pin1' }));
      await ok(a.ask('setTopic', { ws: WS, ch: general, topic: 'schemas', clientMsgId: 't1' }));
      await ok(a.ask('typing', { ws: WS, ch: general }));
      const q = await ok(a.ask('post', { ws: WS, ch: general, text: 'to delete', clientMsgId: 'p3' }));
      await ok(a.ask('delete', { ws: WS, ch: general, seq: q.seq, clientMsgId: 'd1' }));
      const dm = await ok(a.ask('openDm', { ws: WS, users: ['ps-bob'], clientMsgId: 'dm' }));
      await ok(a.ask('post', { ws: WS, ch: dm.ch, text: 'psst', clientMsgId: 'p4' }));
      await ok(b.ask('markRead', { ws: WS, ch: general, seq: q.seq, clientMsgId: 'm1' }));
      await ok(a.ask('createChannel', { ws: WS, name: 'schema-news', kind: 'public', clientMsgId: 'c1' }));
      exactly(PresenceSubResultZ, await ok(a.ask('presenceSub', { ws: WS, users: ['ps-bob', 'ps-cat'] })), 'presenceSub result');
      await person(node, 'ps-cat'); // a new member: workspace member_joined; presence (watched by a)
      exactly(SubscribeResultZ, await ok(b.ask('subscribe', { ws: WS, ch: random, seq: 0 })), 'subscribe result (from seq 0)');
      for (const m of (await ok(b.ask('history', { ws: WS, ch: general }))).messages) exactly(MessageViewZ, m, 'history message');
      for (const c of await ok(b.ask('listChannels', { ws: WS }))) exactly(ChannelListingZ, c, 'listChannels entry');
      for (const u of await ok(b.ask('unreads', { ws: WS }))) exactly(UnreadEntryZ, u, 'unreads entry');
      // refusals and unreadable frames
      assert.equal((await b.ask('nope', {})).error.code, 'EDGE_UNKNOWN_OP');
      b.ws.send('{not json');
      const kinds = (frames: any[]) => new Set(frames.map((f) => (f.type === 'event' ? `${f.scope}:${f.event.type}` : f.type === 'reply' ? `reply:${f.ok}` : f.type)));
      await waitFor(() => {
        const k = kinds(b.frames);
        return ['error', 'user:mention', 'user:read', 'user:channel_joined', 'workspace:member_joined', 'workspace:channel_created', 'channel:typing', 'channel:topic'].every((x) => k.has(x));
      }, { what: 'every kind of frame at bob' });
      const seen = new Set([...kinds(a.frames), ...kinds(b.frames)]);
      for (const k of ['hello', 'reply:true', 'reply:false', 'error', 'channel:message', 'channel:message_edited', 'channel:message_deleted', 'channel:reaction', 'channel:pin',
        'channel:topic', 'channel:typing', 'user:mention', 'user:read', 'user:channel_joined', 'presence:presence', 'workspace:member_joined', 'workspace:channel_created']) {
        assert.ok(seen.has(k), `saw a ${k} frame`);
      }
      for (const f of [...a.frames, ...b.frames]) exactly(ServerFrameZ, f, `a ${f.type} frame`);
    } finally {
      closeAll();
    }
  });
});
