// Shared fixture of the chat actor tests: a seeded 3-node TestCluster with
// the chat actors and a RecordingNotifier, a client that routes commands like
// the edge does (protocol.routeOf), and a recorder of everything published.
import assert from 'node:assert/strict';
import { chatActorTypes, routeOf, RecordingNotifier, type CommandOp, type EdgeOp } from '../../actors/index.ts';
import { codec } from '../../runtime/index.ts';
import { TestCluster, type TestClusterOptions } from '../harness/index.ts';

/** A published value with its subject. */
export interface Published {
  subject: string;
  value: any;
}

/** The cluster, a client and the recorders. */
export interface ChatFixture {
  cluster: TestCluster;
  notifier: RecordingNotifier;
  published: Published[];
  /** Sends a command through `via` (default n1) to the actor routeOf picks; drives virtual time until it settles. */
  send<T = any>(cmd: { op: CommandOp | EdgeOp; by: string; ws: string; [k: string]: unknown }, via?: string): Promise<T>;
  /** Sends and expects a rejection with `code`. */
  fails(cmd: { op: CommandOp | EdgeOp; by: string; ws: string; [k: string]: unknown }, code: string, via?: string): Promise<void>;
  /** Published values on subjects starting with `prefix`, optionally of one `type`. */
  on(prefix: string, type?: string): any[];
  stop(): Promise<void>;
}

let ids = 0;
/** A fresh clientMsgId. */
export function cmid(): string {
  return `m${++ids}`;
}

/** Starts the fixture. */
export async function chatCluster(opts: Partial<TestClusterOptions> & { sessionTtlMs?: number } = {}): Promise<ChatFixture> {
  const notifier = new RecordingNotifier();
  const types = chatActorTypes({ notifier, ...(opts.sessionTtlMs ? { sessionTtlMs: opts.sessionTtlMs } : {}) });
  // seed 42 unless CHORUS_SEED says otherwise (to replay or to sweep seeds)
  const seed = process.env.CHORUS_SEED ? Number(process.env.CHORUS_SEED) : 42;
  const cluster = await TestCluster.start({ nodes: 3, seed, ...opts, types });
  const published: Published[] = [];
  const obs = cluster.network.transport('observer');
  obs.subscribe('chorus.>', (data, subject) => published.push({ subject, value: codec.decode(data) }));
  const send = <T>(cmd: { op: CommandOp | EdgeOp; by: string; ws: string; [k: string]: unknown }, via?: string): Promise<T> => {
    const { type, key } = routeOf(cmd.op, cmd as { by: string; ws: string });
    return cluster.run(cluster.ref(type, key, via).ask<T>(cmd));
  };
  return {
    cluster, notifier, published, send,
    async fails(cmd, code, via) {
      await assert.rejects(send(cmd, via), (e: any) => {
        assert.equal(e.code, code, `${cmd.op} by ${cmd.by}: expected ${code}, got ${e.code}: ${e.message}`);
        return true;
      });
    },
    on(prefix, type) {
      return published.filter((p) => p.subject.startsWith(prefix) && (type === undefined || p.value.type === type)).map((p) => p.value);
    },
    stop: () => cluster.stop(),
  };
}

/**
 * A workspace `ws` owned by `owner`, with `members` joined as members and
 * `guests` as guests (through invite codes).
 */
export async function workspace(f: ChatFixture, ws: string, owner: string, members: string[] = [], guests: string[] = []): Promise<void> {
  await f.send({ op: 'createWorkspace', by: owner, ws, name: `Workspace ${ws}`, clientMsgId: cmid() });
  for (const [role, users] of [['member', members], ['guest', guests]] as const) {
    for (const u of users) {
      const inv = await f.send({ op: 'createInvite', by: owner, ws, role, clientMsgId: cmid() });
      await f.send({ op: 'joinWorkspace', by: u, ws, code: inv.code, clientMsgId: cmid() });
    }
  }
}
