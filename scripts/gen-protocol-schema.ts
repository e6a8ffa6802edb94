/**
 * Generates docs/protocol-schema.json: a JSON Schema (draft 2020-12) of every
 * WebSocket frame of the Chorus protocol (PROTOCOL.md).
 *
 * - Client frames come from the zod schemas the edge validates with
 *   (`COMMANDS` in actors/protocol.ts), minus `by` (the edge sets it from the
 *   token) plus the optional request `id`, and the edge's own ops
 *   (`subscribe`, `unsubscribe`, `presenceSub`, `ping`).
 * - Server frames (hello, reply, error, event, catchup, unsubscribed) are
 *   described here in zod, mirroring the TypeScript types of actors/events.ts;
 *   compile-time checks below fail the typecheck if the two drift apart.
 *
 * Usage: `node --import tsx scripts/gen-protocol-schema.ts` writes the file and
 * refreshes the ops table of PROTOCOL.md (between its `generated:ops`
 * markers); `--check` exits 1 if either is stale.
 * test/edge/protocol-schema.test.ts fails when either is stale.
 */
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { COMMANDS, ID_PATTERN, LIMITS, type CommandOp } from '../actors/protocol.ts';
import type {
  ChannelUpdate, MessageEvent, MessageView, PresenceEvent, TypingEvent, UserEvent, UnreadEntry, WorkspaceEvent, WorkspaceSettings, ChannelListing,
} from '../actors/events.ts';

/** Where the generated schema lives. */
export const SCHEMA_FILE = fileURLToPath(new URL('../docs/protocol-schema.json', import.meta.url));
/** The protocol page; the ops table between the markers below is generated too. */
export const PROTOCOL_FILE = fileURLToPath(new URL('../PROTOCOL.md', import.meta.url));
const BEGIN = '<!-- generated:ops (scripts/gen-protocol-schema.ts) -->';
const END = '<!-- /generated:ops -->';

const Id = z.string().regex(ID_PATTERN);
const SeqNum = z.number().int().min(0);
/** The request id: echoed in the reply. A longer string (or anything else) is ignored: the reply then has no id. */
const RequestId = z.union([z.string().max(64), z.number()]).describe('echoed in the reply; up to 64 characters');

// ---- client frames ---------------------------------------------------------

/** The doc comment of each op's schema in actors/protocol.ts, as one line. */
function opDocs(): Map<string, string> {
  const src = readFileSync(fileURLToPath(new URL('../actors/protocol.ts', import.meta.url)), 'utf8');
  const docs = new Map<string, string>();
  for (const m of src.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*?)\*\/\s*export const \w+ = z\.object\(\{\s*op: z\.literal\('(\w+)'\)/g)) {
    docs.set(m[2]!, m[1]!.split('\n').map((l) => l.trim().replace(/^\*\s?/, '')).join(' ').replace(/\s+/g, ' ').trim());
  }
  return docs;
}

function clientFrameOf(op: CommandOp): z.ZodObject {
  const schema = COMMANDS[op].schema as unknown as z.ZodObject;
  return schema.omit({ by: true } as never).extend({ id: RequestId.optional() });
}

/** The edge's own ops. */
export const EdgeClientFrames = {
  subscribe: z.object({
    op: z.literal('subscribe'), id: RequestId.optional(), ws: Id, ch: Id,
    seq: SeqNum.optional().describe('the last message seq the client has; omitted: start from now'),
  }).describe('Subscribes to a channel: missed messages (after `seq`) in the reply, then live events, each message once and in order.'),
  unsubscribe: z.object({ op: z.literal('unsubscribe'), id: RequestId.optional(), ws: Id, ch: Id }).describe('Stops live events of a channel.'),
  presenceSub: z.object({
    op: z.literal('presenceSub'), id: RequestId.optional(), ws: Id,
    users: z.array(Id).max(LIMITS.presenceUsers).describe('replaces the list watched in ws; [] stops it'),
  }).describe('Watches the presence of these users in a workspace: the current presence of those newly watched in the reply, then their changes as presence events.'),
  ping: z.object({ op: z.literal('ping'), id: RequestId.optional() }).describe('Answers {pong: server time in ms}.'),
};

// ---- server frames ---------------------------------------------------------

export const WireErrorZ = z.object({
  code: z.string().describe('a code of docs/errors.md, e.g. CHAT_NOT_MEMBER'),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

export const MessageViewZ = z.object({
  seq: z.number().int().min(1),
  user: z.string(),
  ts: z.number().describe('ms since the epoch, set by the channel'),
  text: z.string().optional().describe('absent on a deleted message (tombstone)'),
  clientMsgId: z.string().optional(),
  parent: z.number().int().optional().describe('seq of the thread parent, for replies'),
  replyCount: z.number().int().optional(),
  lastReplyAt: z.number().optional(),
  editedAt: z.number().optional(),
  deleted: z.literal(true).optional(),
  reactions: z.record(z.string(), z.array(z.string())).optional().describe('emoji -> user ids, in reaction order'),
  pinned: z.literal(true).optional(),
  mentions: z.array(z.string()).optional(),
  channelMention: z.literal(true).optional(),
  files: z.array(z.object({ id: z.string(), name: z.string(), type: z.string().describe('MIME type'), size: z.number().describe('bytes') })).optional()
    .describe('files attached at posting (GET /api/files/:id gives a download link)'),
});

const chanAddr = { ws: z.string(), ch: z.string() };
export const MessageEventZ = z.object({
  type: z.literal('message'), ...chanAddr, seq: z.number().int().min(1), message: MessageViewZ,
  thread: z.object({ parent: z.number().int(), replyCount: z.number().int(), lastReplyAt: z.number() }).optional()
    .describe("for replies: the parent's thread summary after this reply"),
});
const atSeq = { atSeq: z.number().int().min(0).describe("the channel's latest seq when the update happened") };
export const ChannelUpdateZ = z.discriminatedUnion('type', [
  z.object({ type: z.literal('message_edited'), ...chanAddr, seq: z.number().int(), text: z.string(), editedAt: z.number(), by: z.string(), mentions: z.array(z.string()), ...atSeq }),
  z.object({ type: z.literal('message_deleted'), ...chanAddr, seq: z.number().int(), by: z.string(), ...atSeq }),
  z.object({ type: z.literal('reaction'), ...chanAddr, seq: z.number().int(), emoji: z.string(), users: z.array(z.string()).describe('everyone who reacted with this emoji now'), ...atSeq }),
  z.object({ type: z.literal('pin'), ...chanAddr, seq: z.number().int(), pinned: z.boolean(), by: z.string(), ...atSeq }),
  z.object({ type: z.literal('topic'), ...chanAddr, topic: z.string(), by: z.string(), ...atSeq }),
  z.object({ type: z.literal('member_joined'), ...chanAddr, user: z.string(), by: z.string(), ...atSeq }),
  z.object({ type: z.literal('member_left'), ...chanAddr, user: z.string(), by: z.string(), reason: z.enum(['left', 'removed', 'left_workspace']), ...atSeq }),
]);
export const TypingEventZ = z.object({ type: z.literal('typing'), ...chanAddr, user: z.string() }).describe('ephemeral: never stored, never replayed');
export const ChannelEventZ = z.union([MessageEventZ, ChannelUpdateZ, TypingEventZ]);

const RoleZ = z.enum(['owner', 'admin', 'member', 'guest']);
const KindZ = z.enum(['public', 'private', 'dm']);
export const UserEventZ = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('mention'), ...chanAddr, seq: z.number().int(), kind: z.enum(['dm', 'mention', 'channel']), from: z.string(), preview: z.string(),
    mentions: z.number().int().describe("the user's unread mention count in this channel after this one"),
  }),
  z.object({ type: z.literal('read'), ...chanAddr, seq: z.number().int().describe('the read cursor now'), mentions: z.number().int() }),
  z.object({ type: z.literal('channel_joined'), ...chanAddr, kind: KindZ, name: z.string(), by: z.string() }),
  z.object({ type: z.literal('channel_left'), ...chanAddr, reason: z.string() }),
  z.object({ type: z.literal('removed_from_workspace'), ws: z.string(), by: z.string() }),
  z.object({ type: z.literal('role_changed'), ws: z.string(), role: RoleZ }),
]);
export const WorkspaceSettingsZ = z.object({ allowGuestsToCreateChannels: z.boolean(), allowMembersToInvite: z.boolean() });
const PresenceZ = z.enum(['online', 'away', 'offline']);
export const PresenceEventZ = z.object({ type: z.literal('presence'), ws: z.string(), user: z.string(), presence: PresenceZ });
export const WorkspaceEventZ = z.discriminatedUnion('type', [
  z.object({ type: z.literal('member_joined'), ws: z.string(), user: z.string(), role: RoleZ }),
  z.object({ type: z.literal('member_removed'), ws: z.string(), user: z.string(), by: z.string() }),
  z.object({ type: z.literal('role_changed'), ws: z.string(), user: z.string(), role: RoleZ, by: z.string() }),
  z.object({ type: z.literal('channel_created'), ...chanAddr, name: z.string(), kind: z.literal('public') }),
  z.object({ type: z.literal('settings_changed'), ws: z.string(), name: z.string(), settings: WorkspaceSettingsZ }),
]);

/** Query results clients use often (documentation; `reply.result` is not checked against them). */
export const ChannelListingZ = z.object({ ch: z.string(), name: z.string(), kind: KindZ, member: z.boolean(), members: z.array(z.string()).optional() });
export const UnreadEntryZ = z.object({
  ch: z.string(), kind: KindZ, name: z.string(), readSeq: z.number().int(), latestSeq: z.number().int(),
  unread: z.number().int().describe('top-level messages from others after the cursor, not deleted (capped at 1000)'),
  mentions: z.number().int(), stale: z.literal(true).optional(), level: z.enum(['all', 'mentions', 'none']),
});
export const SubscribeResultZ = z.object({
  subscribed: z.literal(true),
  latestSeq: z.number().int().min(0).describe('the highest seq the session has now been sent (or the latest, when subscribed without seq)'),
  info: z.record(z.string(), z.unknown()).optional().describe('channelInfo, when subscribed without seq'),
  messages: z.array(MessageViewZ).optional().describe('missed messages (seq > the asked seq), oldest first'),
  updates: z.array(ChannelUpdateZ).optional().describe('updates since the asked seq; may repeat, apply idempotently'),
  resync: z.literal(true).optional().describe('the update window was exceeded: reload history'),
});
export const PresenceSubResultZ = z.object({
  ws: z.string(),
  presence: z.array(z.object({ user: z.string(), presence: PresenceZ })).describe('the users newly watched by this call, in no particular order'),
});

export const ServerFrames = {
  hello: z.object({ type: z.literal('hello'), session: z.string(), user: z.string(), node: z.string(), workspaces: z.array(z.string()).describe('the token\'s workspace grant ("*" = any)') })
    .describe('The first frame on every connection.'),
  replyOk: z.object({ type: z.literal('reply'), id: RequestId.optional(), ok: z.literal(true), result: z.unknown().describe('the op\'s result (docs/domain.md); null when it has none') })
    .describe('The answer to a request with an id (exactly one per request).'),
  replyError: z.object({ type: z.literal('reply'), id: RequestId.optional(), ok: z.literal(false), error: WireErrorZ })
    .describe('A refused request.'),
  error: z.object({ type: z.literal('error'), error: WireErrorZ })
    .describe('A frame that could not be read (not JSON, not an object, binary), or rate-limited without an id.'),
  channelEvent: z.object({ type: z.literal('event'), scope: z.literal('channel'), event: ChannelEventZ })
    .describe('A live event of a subscribed channel.'),
  userEvent: z.object({ type: z.literal('event'), scope: z.literal('user'), event: UserEventZ })
    .describe('An event for this user in a workspace of the token.'),
  workspaceEvent: z.object({ type: z.literal('event'), scope: z.literal('workspace'), event: WorkspaceEventZ })
    .describe('A workspace-wide event (members, roles, public channels, settings).'),
  presenceEvent: z.object({ type: z.literal('event'), scope: z.literal('presence'), event: PresenceEventZ })
    .describe('A presence change of a user the connection watches (presenceSub).'),
  catchup: z.object({ type: z.literal('catchup'), ...chanAddr, messages: z.array(MessageViewZ), updates: z.array(ChannelUpdateZ), resync: z.literal(true).optional() })
    .describe('Messages (and updates) the edge read to fill a gap in live delivery; then live events resume.'),
  unsubscribed: z.object({ type: z.literal('unsubscribed'), ...chanAddr, error: WireErrorZ })
    .describe('The edge stopped delivering a channel (a gap read failed, e.g. access lost).'),
};
/** Any frame the server sends. */
export const ServerFrameZ = z.union(Object.values(ServerFrames) as unknown as [z.ZodObject, ...z.ZodObject[]]);

// ---- compile-time checks: the zod mirrors equal the TypeScript types ------------------
// (identity, not mere mutual assignability: a field missing or extra on one side fails)
type Same<X, Y> = (<T>() => T extends X ? 1 : 2) extends (<T>() => T extends Y ? 1 : 2) ? true : false;
function same<T extends true>(): T | undefined { return undefined; }
same<Same<z.infer<typeof MessageViewZ>, MessageView>>();
same<Same<z.infer<typeof MessageEventZ>, MessageEvent>>();
same<Same<z.infer<typeof ChannelUpdateZ>, ChannelUpdate>>();
same<Same<z.infer<typeof TypingEventZ>, TypingEvent>>();
same<Same<z.infer<typeof UserEventZ>, UserEvent>>();
same<Same<z.infer<typeof WorkspaceEventZ>, WorkspaceEvent>>();
same<Same<z.infer<typeof PresenceEventZ>, PresenceEvent>>();
same<Same<z.infer<typeof WorkspaceSettingsZ>, WorkspaceSettings>>();
same<Same<z.infer<typeof ChannelListingZ>, ChannelListing>>();
same<Same<z.infer<typeof UnreadEntryZ>, UnreadEntry>>();

// ---- the document ------------------------------------------------------------

/** The client ops, in COMMANDS order, then the edge's own. */
export function clientOps(): string[] {
  return [...Object.keys(COMMANDS), ...Object.keys(EdgeClientFrames)];
}

/** Builds the JSON Schema document (deterministic: same input, same output). */
export function buildProtocolSchema(): Record<string, unknown> {
  const reg = z.registry<{ id: string; description?: string }>();
  const clientIds: string[] = [];
  const docs = opDocs();
  for (const op of Object.keys(COMMANDS) as CommandOp[]) {
    const id = `client.${op}`;
    reg.add(clientFrameOf(op), { id, description: `Client frame: op "${op}" (actor ${COMMANDS[op].target}). ${docs.get(op) ?? ''}`.trim() });
    clientIds.push(id);
  }
  for (const [op, schema] of Object.entries(EdgeClientFrames)) {
    reg.add(schema, { id: `client.${op}`, description: `Client frame: op "${op}" (answered by the edge). ${schema.description ?? ''}`.trim() });
    clientIds.push(`client.${op}`);
  }
  const shared: Array<[z.ZodType, string, string]> = [
    [WireErrorZ, 'WireError', 'An error: code, message, optional details.'],
    [MessageViewZ, 'MessageView', 'A message as clients see it; a deleted message is a tombstone (seq, user, ts, deleted).'],
    [MessageEventZ, 'MessageEvent', 'A new message or thread reply.'],
    [ChannelUpdateZ, 'ChannelUpdate', 'A change to existing messages or the channel; carries the resulting state (idempotent).'],
    [TypingEventZ, 'TypingEvent', 'Someone is typing (ephemeral).'],
    [UserEventZ, 'UserEvent', 'Events for one user in one workspace.'],
    [WorkspaceEventZ, 'WorkspaceEvent', 'Workspace-wide events.'],
    [PresenceEventZ, 'PresenceEvent', 'A watched user\'s presence changed.'],
    [ChannelListingZ, 'ChannelListing', 'One entry of the listChannels result.'],
    [UnreadEntryZ, 'UnreadEntry', 'One entry of the unreads result.'],
    [SubscribeResultZ, 'SubscribeResult', 'The result of subscribe.'],
    [PresenceSubResultZ, 'PresenceSubResult', 'The result of presenceSub.'],
  ];
  for (const [schema, id, description] of shared) reg.add(schema, { id, description });
  const serverIds: string[] = [];
  for (const [name, schema] of Object.entries(ServerFrames)) {
    reg.add(schema, { id: `server.${name}`, description: schema.description ?? name });
    serverIds.push(`server.${name}`);
  }
  const out = z.toJSONSchema(reg, { uri: (id) => `#/$defs/${id}`, io: 'input', unrepresentable: 'any' }) as { schemas: Record<string, Record<string, unknown>> };
  const defs: Record<string, unknown> = {};
  for (const id of Object.keys(out.schemas).sort()) {
    const { $schema: _s, $id: _i, ...rest } = out.schemas[id]!;
    defs[id] = rest;
  }
  const ref = (id: string) => ({ $ref: `#/$defs/${id}` });
  defs.ClientFrame = { description: 'Any frame a client sends (a JSON object, one per WebSocket text frame).', oneOf: clientIds.map(ref) };
  defs.ServerFrame = { description: 'Any frame the server sends.', oneOf: serverIds.map(ref) };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://chorus.invalid/protocol-schema.json',
    title: 'Chorus WebSocket protocol frames',
    description: 'GENERATED by scripts/gen-protocol-schema.ts from actors/protocol.ts (client frames) and its zod mirrors of actors/events.ts (server frames). Do not edit; see PROTOCOL.md.',
    anyOf: [ref('ClientFrame'), ref('ServerFrame')],
    $defs: defs,
  };
}

/** The file's exact text. */
export function protocolSchemaText(): string {
  return `${JSON.stringify(buildProtocolSchema(), null, 2)}\n`;
}

/** The markdown table of client ops for PROTOCOL.md: op, who answers, fields (`?` = optional), what it does. */
export function opsTable(): string {
  const docs = opDocs();
  const firstSentence = (d: string) => (d.match(/^.*?[.!?](?=\s|$)/)?.[0] ?? d);
  const fieldsOf = (schema: z.ZodObject) => Object.entries(schema.shape)
    .filter(([k]) => k !== 'op' && k !== 'by' && k !== 'id')
    .map(([k, v]) => ((v as z.ZodType).safeParse(undefined).success ? `${k}?` : k))
    .join(', ');
  const rows = [
    ...(Object.keys(COMMANDS) as CommandOp[]).map((op) => [op, COMMANDS[op].target, fieldsOf(clientFrameOf(op)), firstSentence(docs.get(op) ?? '')]),
    ...Object.entries(EdgeClientFrames).map(([op, schema]) => [op, 'edge', fieldsOf(schema), firstSentence(schema.description ?? '')]),
  ];
  return [
    BEGIN,
    '| op | answered by | fields (`?` optional; every frame may carry `id`) | what |',
    '|---|---|---|---|',
    ...rows.map(([op, target, fields, what]) => `| \`${op}\` | ${target} | ${fields} | ${what!.replace(/\|/g, '\\|')} |`),
    END,
  ].join('\n');
}

/** PROTOCOL.md with its generated ops table refreshed (unchanged when the markers are missing). */
export function refreshProtocolDoc(doc: string): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) return doc;
  return doc.slice(0, a) + opsTable() + doc.slice(b + END.length);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = protocolSchemaText();
  const doc = await readFile(PROTOCOL_FILE, 'utf8');
  const fresh = refreshProtocolDoc(doc);
  if (process.argv.includes('--check')) {
    const current = await readFile(SCHEMA_FILE, 'utf8').catch(() => '');
    if (current !== text || fresh !== doc) {
      console.error('docs/protocol-schema.json or the ops table of PROTOCOL.md is stale: run node --import tsx scripts/gen-protocol-schema.ts');
      process.exit(1);
    }
    console.log('docs/protocol-schema.json and PROTOCOL.md are up to date');
  } else {
    await writeFile(SCHEMA_FILE, text);
    if (fresh !== doc) await writeFile(PROTOCOL_FILE, fresh);
    console.log(`wrote ${SCHEMA_FILE} (${clientOps().length} client ops, ${Object.keys(ServerFrames).length} server frame kinds)${fresh !== doc ? ' and the ops table of PROTOCOL.md' : ''}`);
  }
}
