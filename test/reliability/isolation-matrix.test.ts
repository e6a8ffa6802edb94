/**
 * Auth and tenant isolation matrix (invariant 5): every client op of
 * `COMMANDS` (plus the edge's own subscribe) against every boundary, each
 * cell its own test. The ops come from the COMMANDS table and their frames
 * from SAMPLES, a per-op factory: a new op (search, files...) without a
 * sample fails the suite loudly, and with one it is tried at every boundary.
 *
 * A cell passes when the op is refused with a denial code (a schema error
 * would mean the sample is wrong, not that the boundary held), or, for ops
 * on ALLOWED (legitimately allowed at that boundary, each with its reason),
 * when its answer carries none of the protected texts and names. After the
 * matrix, the protected channels get new messages and no intruder socket
 * may have received a protected text in any frame.
 *
 * HTTP: every route literal under cluster/ is found by scanning the source
 * and must have an entry in HTTP_ROUTES; each is tried without a token, with
 * a forged, a tampered and an expired token, and with the wrong kind of token.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { COMMANDS } from '../../actors/protocol.ts';
import { makeConfig } from '../../cluster/config.ts';
import { TokenSigner } from '../../cluster/edge/auth.ts';
import { mountChatHttp } from '../../cluster/edge/http-api.ts';
import { HttpServer } from '../../cluster/http-server.ts';
import { embeddedNode } from '../edge/fixture.ts';
import { RawClient, okAsk, typedError, waitFor, type Frame } from './helpers.ts';

type Node = Awaited<ReturnType<typeof embeddedNode>>;

/** What a boundary's frames address. */
interface Target { ws: string; ch: string; seq: number; user: string; /** A word of the protected message (search). */ word: string }

/** Client ops covered: every COMMANDS op and the edge's ops. */
const EDGE_OPS = ['subscribe', 'unsubscribe', 'presenceSub', 'ping'] as const;
const OPS = [...Object.keys(COMMANDS), ...EDGE_OPS];

/**
 * A frame for each op aimed at the target: the op's fields filled so the
 * frame is valid by the schema, reaching the boundary check. An op missing
 * here fails the suite (see "every op has a sample").
 */
const SAMPLES: Record<string, (t: Target) => Record<string, unknown>> = {
  createWorkspace: (t) => ({ ws: t.ws, name: 'taken over' }),
  workspaceInfo: (t) => ({ ws: t.ws }),
  updateSettings: (t) => ({ ws: t.ws, name: 'pwned', allowMembersToInvite: true }),
  createInvite: (t) => ({ ws: t.ws, role: 'member' }),
  joinWorkspace: (t) => ({ ws: t.ws, code: '0123456789abcdef01234567' }),
  removeMember: (t) => ({ ws: t.ws, user: t.user }),
  setRole: (t) => ({ ws: t.ws, user: t.user, role: 'guest' }),
  listMembers: (t) => ({ ws: t.ws }),
  createChannel: (t) => ({ ws: t.ws, name: `intruder-${Math.random().toString(36).slice(2, 8)}`, kind: 'public' }),
  openDm: (t) => ({ ws: t.ws, users: [t.user] }),
  listChannels: (t) => ({ ws: t.ws }),
  post: (t) => ({ ws: t.ws, ch: t.ch, text: 'let me in' }),
  edit: (t) => ({ ws: t.ws, ch: t.ch, seq: t.seq, text: 'mine now' }),
  delete: (t) => ({ ws: t.ws, ch: t.ch, seq: t.seq }),
  react: (t) => ({ ws: t.ws, ch: t.ch, seq: t.seq, emoji: 'eyes' }),
  unreact: (t) => ({ ws: t.ws, ch: t.ch, seq: t.seq, emoji: 'eyes' }),
  pin: (t) => ({ ws: t.ws, ch: t.ch, seq: t.seq }),
  unpin: (t) => ({ ws: t.ws, ch: t.ch, seq: t.seq }),
  setTopic: (t) => ({ ws: t.ws, ch: t.ch, topic: 'pwned' }),
  joinChannel: (t) => ({ ws: t.ws, ch: t.ch }),
  leaveChannel: (t) => ({ ws: t.ws, ch: t.ch }),
  inviteToChannel: (t) => ({ ws: t.ws, ch: t.ch, user: t.user }),
  removeFromChannel: (t) => ({ ws: t.ws, ch: t.ch, user: t.user }),
  history: (t) => ({ ws: t.ws, ch: t.ch, limit: 200 }),
  thread: (t) => ({ ws: t.ws, ch: t.ch, parent: t.seq }),
  since: (t) => ({ ws: t.ws, ch: t.ch, seq: 0 }),
  channelInfo: (t) => ({ ws: t.ws, ch: t.ch }),
  channelMembers: (t) => ({ ws: t.ws, ch: t.ch }),
  typing: (t) => ({ ws: t.ws, ch: t.ch }),
  getProfile: (t) => ({ ws: t.ws, user: t.user }),
  updateProfile: (t) => ({ ws: t.ws, user: t.user, displayName: 'pwned' }),
  setAway: (t) => ({ ws: t.ws, user: t.user, away: true }),
  getPresence: (t) => ({ ws: t.ws, user: t.user }),
  markRead: (t) => ({ ws: t.ws, user: t.user, ch: t.ch, seq: t.seq }),
  unreads: (t) => ({ ws: t.ws, user: t.user }),
  setNotifyPrefs: (t) => ({ ws: t.ws, user: t.user, ch: t.ch, level: 'none' }),
  me: (t) => ({ ws: t.ws, user: t.user }),
  search: (t) => ({ ws: t.ws, query: t.word, limit: 100 }),
  subscribe: (t) => ({ ws: t.ws, ch: t.ch, seq: 0 }),
  unsubscribe: (t) => ({ ws: t.ws, ch: t.ch }),
  presenceSub: (t) => ({ ws: t.ws, users: [t.user] }),
  ping: () => ({}),
};

/** Codes that mean "refused at the boundary". */
const DENIALS = new Set(['AUTH_FORBIDDEN', 'AUTH_EXPIRED', 'CHAT_NOT_MEMBER', 'CHAT_FORBIDDEN', 'CHAT_NOT_FOUND', 'CHAT_CONFLICT']);

/** Ops that touch nothing protected at any boundary. */
const HARMLESS: Record<string, string> = {
  ping: 'answers the server time; reads nothing',
  unsubscribe: 'only removes a subscription of the caller\'s own socket (there is none); answers a constant',
};
/** What a workspace member may do whatever channel or user the boundary protects. */
const MEMBER: Record<string, string> = {
  workspaceInfo: 'a member reads the workspace name, settings and counts',
  listMembers: 'a member sees the member list (user ids and roles)',
  listChannels: 'lists public channels and the caller\'s own; checked to carry no protected name',
  createChannel: 'a member creates a new channel of its own (touches no existing one)',
  openDm: 'opens the caller\'s own DM with the target (not the protected DM)',
  joinWorkspace: 'already a member: answers the caller\'s own role (the code is not looked at)',
  getProfile: 'any workspace member may read a profile',
  getPresence: 'workspace members see each other\'s presence',
  presenceSub: 'workspace members watch each other\'s presence',
  search: 'searches only what the caller may read; checked to return no protected text',
};
const { createChannel: _guestsCannot, ...GUEST } = MEMBER;

/** The boundaries: who tries (token), what it addresses, what may legitimately succeed. */
interface Boundary {
  name: string;
  /** The intruder's socket token, and extra fields put in every frame. */
  token: () => string;
  extra?: Record<string, unknown>;
  target: () => Target;
  allowed: Record<string, string>;
  /** Texts and names the intruder must never see, in an answer or any frame. */
  secrets: () => string[];
}

const IDS = { ada: 'iso-ada', bob: 'iso-bob', carl: 'iso-carl', gus: 'iso-gus', rem: 'iso-rem', zed: 'iso-zed', eve: 'iso-eve' };
const SECRET = { priv: 'SECRET-PRIV-7f3a', dm: 'SECRET-DM-91c2', pub: 'SECRET-PUB-55d0', other: 'SECRET-OTHER-c0de', late: 'SECRET-LATE-' };
const PRIVATE_NAME = 'secret-priv-room';
const PUB_NAME = 'iso-pub-room';
const OTHER_NAME = 'other-secret-room';

describe('auth and tenant isolation matrix', () => {
  let node: Node;
  let owner: RawClient;
  const ctx = { priv: '', dm: '', pub: '', otherCh: '', privSeq: 0, dmSeq: 0, pubSeq: 0, otherSeq: 0 };
  const tokens: Record<string, string> = {};
  const intruders: RawClient[] = [];


  const BOUNDARIES: Boundary[] = [
    {
      name: 'other workspace, token replayed from another workspace',
      token: () => tokens.bob!, target: () => ({ ws: 'iso-other', ch: ctx.otherCh, seq: ctx.otherSeq, user: IDS.zed, word: 'roadmap' }), allowed: { ...HARMLESS }, secrets: () => [SECRET.other, OTHER_NAME],
    },
    {
      name: 'other workspace, wildcard token of a non-member',
      token: () => tokens.eveStar!, target: () => ({ ws: 'iso-other', ch: ctx.otherCh, seq: ctx.otherSeq, user: IDS.zed, word: 'roadmap' }), allowed: { ...HARMLESS }, secrets: () => [SECRET.other, OTHER_NAME],
    },
    {
      name: 'private channel of the same workspace',
      token: () => tokens.carl!, target: () => ({ ws: 'iso', ch: ctx.priv, seq: ctx.privSeq, user: IDS.ada, word: 'plans' }), allowed: { ...HARMLESS, ...MEMBER }, secrets: () => [SECRET.priv, PRIVATE_NAME, `${SECRET.late}${ctx.priv}`],
    },
    {
      name: "others' DM",
      token: () => tokens.carl!, target: () => ({ ws: 'iso', ch: ctx.dm, seq: ctx.dmSeq, user: IDS.bob, word: 'whispered' }), allowed: { ...HARMLESS, ...MEMBER }, secrets: () => [SECRET.dm, `${IDS.ada},${IDS.bob}`, `${SECRET.late}${ctx.dm}`],
    },
    {
      name: 'guest role on a public channel it was not invited to',
      token: () => tokens.gus!, target: () => ({ ws: 'iso', ch: ctx.pub, seq: ctx.pubSeq, user: IDS.ada, word: 'members' }), allowed: { ...HARMLESS, ...GUEST }, secrets: () => [SECRET.pub, `${SECRET.late}${ctx.pub}`, SECRET.priv, SECRET.dm],
    },
    {
      name: 'removed member (token still names the workspace)',
      token: () => tokens.rem!, target: () => ({ ws: 'iso', ch: ctx.pub, seq: ctx.pubSeq, user: IDS.ada, word: 'members' }), allowed: { ...HARMLESS }, secrets: () => [SECRET.pub, `${SECRET.late}${ctx.pub}`, `${SECRET.late}room`, SECRET.priv, SECRET.dm],
    },
    {
      name: 'token replayed as another user (by and user fields name the owner)',
      token: () => tokens.carl!, extra: { by: IDS.ada }, target: () => ({ ws: 'iso', ch: ctx.priv, seq: ctx.privSeq, user: IDS.ada, word: 'plans' }), allowed: { ...HARMLESS, ...MEMBER }, secrets: () => [SECRET.priv, PRIVATE_NAME, `${SECRET.late}${ctx.priv}`],
    },
  ];
  const everySecret = () => [SECRET.priv, SECRET.dm, SECRET.pub, SECRET.other, SECRET.late, PRIVATE_NAME, OTHER_NAME, `${IDS.ada},${IDS.bob}`];

  before(async () => {
    // per-user connection limit raised: the expired-token cells open one socket per op
    node = await embeddedNode({}, { edge: { maxConnectionsPerUser: 100, limits: { framesPerSecond: 1000, frameBurst: 1000 } } });
    const sign = (sub: string, ws: string[]) => node.signer.sign({ sub, ws });
    for (const k of ['ada', 'bob', 'carl', 'gus', 'rem'] as const) tokens[k] = sign(IDS[k], ['iso']);
    tokens.zed = sign(IDS.zed, ['iso-other']);
    tokens.eveStar = sign(IDS.eve, ['*']);
    owner = await RawClient.open(node.url, tokens.ada!);
    await okAsk(owner, { op: 'createWorkspace', ws: 'iso', name: 'Isolation' });
    const join = async (who: 'bob' | 'carl' | 'gus' | 'rem', role: string) => {
      const { code } = await okAsk(owner, { op: 'createInvite', ws: 'iso', role });
      const c = await RawClient.open(node.url, tokens[who]!);
      await okAsk(c, { op: 'joinWorkspace', ws: 'iso', code });
      return c;
    };
    const bob = await join('bob', 'member');
    await join('carl', 'member');
    await join('gus', 'guest');
    const rem = await join('rem', 'member');
    ctx.priv = (await okAsk(owner, { op: 'createChannel', ws: 'iso', name: PRIVATE_NAME, kind: 'private' })).ch;
    await okAsk(owner, { op: 'inviteToChannel', ws: 'iso', ch: ctx.priv, user: IDS.bob });
    ctx.privSeq = (await okAsk(owner, { op: 'post', ws: 'iso', ch: ctx.priv, text: `${SECRET.priv} plans` })).seq;
    await okAsk(bob, { op: 'post', ws: 'iso', ch: ctx.priv, text: `${SECRET.priv} reply`, parent: ctx.privSeq });
    ctx.dm = (await okAsk(owner, { op: 'openDm', ws: 'iso', users: [IDS.bob] })).ch;
    ctx.dmSeq = (await okAsk(bob, { op: 'post', ws: 'iso', ch: ctx.dm, text: `${SECRET.dm} whispered secrets` })).seq;
    ctx.pub = (await okAsk(owner, { op: 'createChannel', ws: 'iso', name: PUB_NAME, kind: 'public' })).ch;
    await okAsk(rem, { op: 'joinChannel', ws: 'iso', ch: ctx.pub });
    ctx.pubSeq = (await okAsk(owner, { op: 'post', ws: 'iso', ch: ctx.pub, text: `${SECRET.pub} for members` })).seq;
    await okAsk(owner, { op: 'removeMember', ws: 'iso', user: IDS.rem });
    const zed = await RawClient.open(node.url, tokens.zed!);
    await okAsk(zed, { op: 'createWorkspace', ws: 'iso-other', name: 'Other' });
    ctx.otherCh = (await okAsk(zed, { op: 'createChannel', ws: 'iso-other', name: OTHER_NAME, kind: 'private' })).ch;
    ctx.otherSeq = (await okAsk(zed, { op: 'post', ws: 'iso-other', ch: ctx.otherCh, text: `${SECRET.other} roadmap` })).seq;
    // the search cells mean something only once the protected texts are indexed: wait until their members find them
    if ('search' in COMMANDS) {
      for (const [c, ws, word, secret] of [[owner, 'iso', 'plans', SECRET.priv], [bob, 'iso', 'whispered', SECRET.dm], [owner, 'iso', 'members', SECRET.pub], [zed, 'iso-other', 'roadmap', SECRET.other]] as const) {
        await waitFor(async () => {
          const r = await c.ask({ op: 'search', ws, query: word, limit: 100 });
          assert.equal(r.ok, true, `a member's search failed: ${JSON.stringify(r.error)}`);
          return JSON.stringify(r.result).includes(secret);
        }, { timeoutMs: 20_000, what: `search to find ${secret} for a member` });
      }
    } else console.log('# no search op in COMMANDS: no search cells');
    bob.close();
    rem.close();
    zed.close();
  });
  after(async () => {
    for (const c of intruders) c.close();
    owner?.close();
    await node?.[Symbol.asyncDispose]();
  });

  test('every op has a sample frame and every sample is valid by its schema', () => {
    const missing = OPS.filter((op) => !SAMPLES[op]);
    assert.deepEqual(missing, [], `ops without an isolation sample (add one to SAMPLES in ${import.meta.url}): ${missing.join(', ')}`);
    const t: Target = { ws: 'w', ch: 'c1', seq: 1, user: 'u', word: 'w' };
    for (const op of Object.keys(COMMANDS)) {
      const r = (COMMANDS as Record<string, { schema: { safeParse(v: unknown): { success: boolean; error?: unknown } } }>)[op]!.schema.safeParse({ op, by: 'x', clientMsgId: 'm', ...SAMPLES[op]!(t) });
      assert.ok(r.success, `the sample of ${op} is not valid: ${String(r.error)}`);
    }
    for (const b of BOUNDARIES) for (const op of Object.keys(b.allowed)) assert.ok(OPS.includes(op), `${b.name}: allowed op ${op} does not exist`);
  });

  for (const b of BOUNDARIES) {
    describe(`boundary: ${b.name} (G16)`, () => {
      let c: RawClient;
      before(async () => {
        c = await RawClient.open(node.url, b.token());
        intruders.push(c);
      });
      for (const op of OPS) {
        const why = b.allowed[op];
        test(`${op} ${why ? `is allowed (${why}) and leaks nothing` : 'is refused'}`, async () => {
          const sample = SAMPLES[op];
          assert.ok(sample, `no sample for ${op}`);
          const r = await c.ask({ op, clientMsgId: `x-${op}-${Math.random().toString(36).slice(2)}`, ...sample(b.target()), ...b.extra });
          const text = JSON.stringify(r);
          for (const s of b.secrets()) assert.ok(!text.includes(s), `${op} answer leaks ${s}: ${text.slice(0, 300)}`);
          if (why) return;
          assert.equal(r.ok, false, `${op} succeeded across "${b.name}": ${text.slice(0, 300)}`);
          const code = typedError(r, r.id);
          assert.ok(DENIALS.has(code), `${op}: refused with ${code} (${r.error.message}), not a denial: is the sample right?`);
        });
      }
    });
  }

  describe('boundary: token expired while its socket is open (G17)', () => {
    const sockets = new Map<string, RawClient>();
    let exp = 0;
    before(async () => {
      // a signer whose clock runs 4 s behind: its 1-second token is past expiry (5 s leeway) 2 s from now
      const secret = node.config.authSecret!;
      const lagging = new TokenSigner(secret, () => Date.now() - 4000);
      const token = lagging.sign({ sub: IDS.bob, ws: ['iso'] }, 1);
      exp = (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { exp: number }).exp;
      await Promise.all(OPS.map(async (op) => sockets.set(op, await RawClient.open(node.url, token))));
      await waitFor(() => Date.now() / 1000 > exp + 5.05, { what: 'the token to expire' }); // the edge's leeway is 5 s
    });
    after(() => { for (const s of sockets.values()) s.close(); });
    for (const op of OPS) {
      test(`${op} is refused: the socket is closed 4001 with a reason`, async () => {
        const c = sockets.get(op)!;
        const r = await c.ask({ op, clientMsgId: `exp-${op}`, ...SAMPLES[op]!({ ws: 'iso', ch: ctx.priv, seq: ctx.privSeq, user: IDS.bob, word: 'plans' }) });
        assert.equal(r.type, 'closed', `${op} with an expired token: ${JSON.stringify(r).slice(0, 200)}`);
        assert.equal(r.code, 4001);
        assert.ok(r.reason);
      });
    }
  });

  describe('boundary: forged, tampered, expired and wrong-kind tokens at the upgrade (G19)', () => {
    const upgrade = (token: string) => new Promise<{ status: number; code?: string }>((resolve) => {
      const ws = new WebSocket(`${node.url.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(token)}`);
      ws.on('open', () => { ws.terminate(); resolve({ status: 101 }); });
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body) as { code: string }).code }));
      });
      ws.on('error', () => resolve({ status: -1 }));
    });
    const cases: Array<[string, () => string, number, string]> = [
      ['forged (signed with another secret)', () => new TokenSigner('another-secret-0123456789').sign({ sub: IDS.ada, ws: ['iso'] }), 401, 'AUTH_BAD_SIGNATURE'],
      ['tampered (claims changed, signature kept)', () => {
        const [, sig] = tokens.bob!.split('.');
        const claims = { ...JSON.parse(Buffer.from(tokens.bob!.split('.')[0]!, 'base64url').toString()), sub: IDS.ada, ws: ['*'] };
        return `${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
      }, 401, 'AUTH_BAD_SIGNATURE'],
      ['expired', () => new TokenSigner(node.config.authSecret!, () => Date.now() - 3600_000).sign({ sub: IDS.ada, ws: ['iso'] }, 60), 401, 'AUTH_EXPIRED'],
      ['operator token on the chat socket', () => node.signer.sign({ sub: 'ops', ws: ['*'], kind: 'operator' }), 401, 'AUTH_FORBIDDEN'],
      ['no token', () => '', 401, 'AUTH_MISSING'],
      ['malformed', () => 'not-a-token', 401, 'AUTH_MALFORMED'],
    ];
    for (const [name, token, status, code] of cases) {
      test(`${name}: the upgrade is refused ${status} ${code}, so no op can be sent`, async () => {
        const r = await upgrade(token());
        assert.equal(r.status, status);
        assert.equal(r.code, code);
      });
    }
  });

  describe('HTTP routes', () => {
    /** Every fixed route a chat or operator caller can reach, how to call it, and who may ('public' ones with the reason). */
    const HTTP_ROUTES: Record<string, { method: string; body?: unknown; auth: 'operator' | 'user' | 'public'; why?: string }> = {
      '/healthz': { method: 'GET', auth: 'public', why: 'liveness: answers a constant' },
      '/readyz': { method: 'GET', auth: 'public', why: 'readiness: names failing checks, no tenant data' },
      '/metrics': { method: 'GET', auth: 'public', why: 'Prometheus scrape: counters without tenant labels (scrape network only in deployments)' },
      '/': { method: 'GET', auth: 'public', why: 'the demo page' },
      '/index.html': { method: 'GET', auth: 'public', why: 'the demo page' },
      '/chorus-client.js': { method: 'GET', auth: 'public', why: 'the browser SDK' },
      '/api/dev/signin': { method: 'POST', body: { user: 'x' }, auth: 'public', why: 'embedded profile only: off in the cluster profile (checked below)' },
      '/api/push/vapid': { method: 'GET', auth: 'public', why: 'the VAPID public key is public by design' },
      '/api/connect': { method: 'POST', auth: 'user' },
      '/api/push/settings': { method: 'PUT', body: { ws: 'iso-other', targets: [] }, auth: 'user' },
      '/api/files': { method: 'POST', auth: 'user' }, // ?ws=&ch= is added per cell
      '/ws': { method: 'GET', auth: 'user' },
      '/admin/files/tiering': { method: 'GET', auth: 'operator' },
      '/admin/files/replication': { method: 'GET', auth: 'operator' },
    };
    /** Prefixes the scan finds that are not routes themselves (their routes are listed above or come from ADMIN_OPS). */
    const PREFIXES = new Set(['/admin/', '/api/push/', '/api/files/', '/files/', '/admin/files/']);

    test('every route literal under cluster/ has an entry here', () => {
      const found = new Set<string>();
      const walk = (dir: string) => {
        for (const e of readdirSync(dir)) {
          const p = join(dir, e);
          if (statSync(p).isDirectory()) walk(p);
          else if (p.endsWith('.ts') && !p.includes('inspector')) {
            for (const m of readFileSync(p, 'utf8').matchAll(/(?:===|startsWith\()\s*'(\/(?:api|admin|files|healthz|readyz|metrics|ws)[^'\s]*)'/g)) found.add(m[1]!);
          }
        }
      };
      walk('cluster');
      const missing = [...found].filter((r) => !HTTP_ROUTES[r] && !PREFIXES.has(r));
      assert.deepEqual(missing, [], `HTTP routes without an isolation entry (add them to HTTP_ROUTES): ${missing.join(', ')}`);
    });

    const forged = () => new TokenSigner('another-secret-0123456789').sign({ sub: IDS.ada, ws: ['*'], kind: 'operator' });
    const expired = () => new TokenSigner(node.config.authSecret!, () => Date.now() - 3600_000).sign({ sub: IDS.ada, ws: ['*'], kind: 'operator' }, 60);
    const call = async (path: string, method: string, token: string | undefined, body?: unknown) => {
      // a file upload needs a typed body and its checksum, so the refusal is about the caller, not the request
      const upload = path.startsWith('/api/files?');
      const r = await fetch(`${node.url}${path}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          'content-type': upload ? 'text/plain' : 'application/json',
          ...(upload ? { 'x-chorus-sha256': createHash('sha256').update('hello').digest('hex') } : {}),
        },
        ...(upload ? { body: 'hello' } : body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await r.text();
      return { status: r.status, text, code: /^\{/.test(text) ? (JSON.parse(text) as { code?: string }).code : undefined };
    };
    /** The guarded routes: the fixed ones and every admin operation of ADMIN_OPS (loaded when the admin module exists). */
    const guarded = async () => {
      const routes = Object.entries(HTTP_ROUTES).filter(([p, r]) => r.auth !== 'public' && p !== '/ws').map(([path, r]) => ({ path, ...r }));
      const adminModule = '../../cluster/admin/admin-ops.ts';
      const admin = (await import(adminModule).catch(() => undefined)) as { ADMIN_OPS?: Record<string, { mutates?: boolean }> } | undefined;
      for (const [op, spec] of Object.entries(admin?.ADMIN_OPS ?? { actors: {}, placement: {}, scale: {}, streams: {}, drain: { mutates: true } })) {
        routes.push({ path: `/admin/${op}`, method: spec.mutates ? 'POST' : 'GET', auth: 'operator' as const });
      }
      return routes;
    };

    for (const [path, spec] of Object.entries(HTTP_ROUTES)) {
      if (spec.auth !== 'public') continue;
      test(`${spec.method} ${path} is public (${spec.why}) and leaks nothing`, async () => {
        const r = await call(path, spec.method, undefined, spec.body);
        for (const s of everySecret()) assert.ok(!r.text.includes(s), `${path} leaks ${s}`);
      });
    }

    test('every guarded route (fixed routes and every admin operation) refuses no token, forged, expired and wrong-kind tokens; each cell reported (G19)', async () => {
      const failures: string[] = [];
      let cells = 0;
      for (const route of await guarded()) {
        const path = route.path === '/api/files' ? `/api/files?ws=iso&ch=${ctx.priv}&name=x.txt` : route.path;
        const who: Array<[string, string | undefined, number, string]> = [
          ['no token', undefined, 401, 'AUTH_MISSING'],
          ['a forged token', forged(), 401, 'AUTH_BAD_SIGNATURE'],
          ['an expired token', expired(), 401, 'AUTH_EXPIRED'],
          route.auth === 'operator'
            ? ['a chat user token', tokens.ada, 403, 'AUTH_FORBIDDEN']
            : ['an operator token', node.signer.sign({ sub: 'ops', ws: ['*'], kind: 'operator' }), 403, 'AUTH_FORBIDDEN'],
        ];
        if (route.path === '/api/push/settings') who.push(['a user token for another workspace', tokens.ada, 403, 'AUTH_FORBIDDEN']);
        if (route.path === '/api/files') who.push(['a member of the workspace who is not in the private channel', tokens.carl, 403, 'CHAT_NOT_MEMBER|CHAT_FORBIDDEN']);
        for (const [name, token, status, codes] of who) {
          cells++;
          const r = await call(path, route.method, token, route.body);
          const ok = r.status === status && codes.split('|').includes(r.code ?? '');
          console.log(`# ${ok ? 'refused' : 'FAILED '} ${route.method} ${route.path} with ${name}: ${r.status} ${r.code ?? r.text.slice(0, 60)}`);
          if (!ok) failures.push(`${route.method} ${route.path} with ${name}: expected ${status} ${codes}, got ${r.status} ${r.text.slice(0, 120)}`);
        }
      }
      console.log(`# HTTP cells: ${cells}, failed ${failures.length}`);
      assert.deepEqual(failures, []);
    });

    test('the dev sign-in is off in the cluster profile, and a disabled one answers 404 HTTP_NOT_FOUND', async () => {
      assert.equal(makeConfig({ profile: 'cluster', nodeId: 'n1', natsUrls: ['nats://127.0.0.1:4222'], authSecret: 'x'.repeat(16) }).devSignIn, false);
      const http = new HttpServer({});
      // the dev sign-in route touches neither the node nor the edge when it is off
      mountChatHttp(http, { node: {} as never, edge: {} as never, signer: node.signer, devSignIn: false, publicUrl: () => '', region: 'local' });
      const port = await http.listen(0, '127.0.0.1');
      try {
        const r = await fetch(`http://127.0.0.1:${port}/api/dev/signin`, { method: 'POST', body: JSON.stringify({ user: 'x' }) });
        assert.equal(r.status, 404);
        assert.equal(((await r.json()) as { code: string }).code, 'HTTP_NOT_FOUND');
      } finally {
        await http.close();
      }
    });
  });

  test('events: no intruder socket received a protected text, also after new posts to every protected channel; a removed member gets no workspace events (G18)', async () => {
    const bob = await RawClient.open(node.url, tokens.bob!);
    const sub = await bob.ask({ op: 'subscribe', ws: 'iso', ch: ctx.priv });
    assert.equal(sub.ok, true);
    // presence, channel creation and messages happen while the intruders' sockets are open
    await owner.ask({ op: 'setAway', ws: 'iso', away: true, clientMsgId: 'late-away' });
    await owner.ask({ op: 'createChannel', ws: 'iso', name: `${SECRET.late}room`, kind: 'public', clientMsgId: 'late-ch' });
    for (const ch of [ctx.priv, ctx.dm, ctx.pub]) assert.equal((await owner.ask({ op: 'post', ws: 'iso', ch, text: `${SECRET.late}${ch}`, clientMsgId: `late-${ch}` })).ok, true);
    await bob.until(() => bob.frames.some((f: Frame) => JSON.stringify(f).includes(`${SECRET.late}${ctx.priv}`)) || undefined, 10_000, 'bob gets the late post');
    // the owner's own echo of the last post: everything before it has been published to every socket
    await owner.until(() => owner.answers.length > 0 || undefined);
    const removed = intruders.find((_, i) => BOUNDARIES[i]?.name.startsWith('removed'))!;
    for (const [i, c] of intruders.entries()) {
      const all = JSON.stringify(c.frames);
      for (const s of BOUNDARIES[i]!.secrets()) assert.ok(!all.includes(s), `${BOUNDARIES[i]!.name}: received ${s}`);
    }
    // a removed member gets no workspace events (presence, new channels) on a socket opened with its old token
    assert.ok(!removed.frames.some((f) => f.type === 'event'), `the removed member received events: ${JSON.stringify(removed.frames.filter((f) => f.type === 'event')).slice(0, 300)}`);
    bob.close();
  });
});
