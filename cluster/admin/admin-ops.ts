/**
 * The admin operations of a node, in one table, behind two front doors: HTTP
 * (`/admin/<op>`, admin-http.ts) for an embedded node or one node of a
 * cluster, and NATS request/reply (`chorus.admin.<op>`, admin-nats.ts) for a
 * cluster. Both hand the operator token to `AdminService.handle`, which
 * verifies it before anything else: a chat user's token gets AUTH_FORBIDDEN,
 * whatever the operation, the door or the node.
 */
import { ChorusError, type PlacementTable } from '../../runtime/index.ts';
import type { ChorusNode } from '../chorus-node.ts';
import type { LogStreamInfo } from '../container.ts';
import { AuthError, type TokenClaims } from '../edge/auth.ts';
import type { PlacementChange } from '../placement-supervisor.ts';
import type { MemberInfo } from '../membership.ts';
import { rightSizing, storageSection, type CostsView, type StorageCostProvider } from './costs.ts';

/** Admin error codes (besides the AUTH_* codes of the token check). */
export const ADMIN_ERRORS = Object.freeze({
  ADMIN_UNKNOWN_OP: 'ADMIN_UNKNOWN_OP',
  ADMIN_WRONG_SCOPE: 'ADMIN_WRONG_SCOPE',
  ADMIN_BAD_REQUEST: 'ADMIN_BAD_REQUEST',
  ADMIN_UNSUPPORTED: 'ADMIN_UNSUPPORTED',
});

/** A refused admin request; the reason is in the code. */
export class AdminError extends ChorusError {
  constructor(code: keyof typeof ADMIN_ERRORS, message: string) {
    super(code, message);
  }
}

/** What the operations read and act on: one node and the parts the composition root adds. */
export interface AdminDeps {
  readonly node: ChorusNode;
  /** Open WebSocket connections on this node. */
  connections(): number;
  /** The durable log's streams and consumers (`streams`); none: an empty list. */
  describeLog?(): Promise<LogStreamInfo[]>;
  /** The scale advisor's last explanation (`scale`); none: null. */
  scale?(): unknown;
  /** Starts draining this node (`drain`); called after the answer is sent. */
  drain?(): void;
  /** The storage-tier section of `costs`; none: "not configured". */
  storage?: StorageCostProvider;
}

/** Arguments of an operation (HTTP query parameters, or `args` of a NATS request). */
export type AdminArgs = Readonly<Record<string, string>>;

/** What an operation returns: the answer, its HTTP status, and what to do once it was sent. */
export interface AdminOutcome {
  readonly result: unknown;
  /** HTTP status of the answer. Default 200. */
  readonly status?: number;
  /** Runs after the answer went out (a drain stops the node that answers). */
  readonly after?: () => void;
}

/** One admin operation. */
export interface AdminOp {
  /** 'cluster': any node can answer (NATS queue group); 'node': about the node that answers, so it must be addressed. */
  readonly scope: 'cluster' | 'node';
  /** Changes something (HTTP POST); reads are GET. */
  readonly mutates?: boolean;
  /** One line for usage texts. */
  readonly summary: string;
  run(deps: AdminDeps, args: AdminArgs): Promise<AdminOutcome> | AdminOutcome;
}

/** `actors`: the live activations of the node that answers; `pending`: those created but still waiting for the previous owner to release them. */
export interface ActorsView { node: string; epoch: number; fenced: boolean; actors: string[]; pending: string[] }

/** `placement`: the table this node follows, the leader, the members it hears, and the leader's change history. */
export interface PlacementView {
  node: string;
  leader?: string | undefined;
  table: PlacementTable;
  members: Array<MemberInfo & { lastSeen: number }>;
  /** Kept by the leader that made the changes: ask the leader for the full list. */
  history: readonly PlacementChange[];
  connections: number;
}

/** `streams`: the durable log's streams and consumers. */
export interface StreamsView { node: string; streams: LogStreamInfo[] }

/** `scale`: the scale advisor's last explanation (only the leader decides). */
export interface ScaleView { node: string; leader?: string | undefined; isLeader: boolean; explanation: unknown }

/** `drain`: accepted; the node hands its actors off, then exits. */
export interface DrainView { draining: string; actors: number }

/** The operations, by name. Both front doors serve exactly these. */
export const ADMIN_OPS: Readonly<Record<string, AdminOp>> = Object.freeze({
  actors: {
    scope: 'node', summary: 'live activations on this node',
    // a node that just woke from a pause fences before it answers, rather than list actors it would refuse to run
    run: ({ node }): AdminOutcome => ({ result: { node: node.nodeId, epoch: node.actors.table.epoch, fenced: !node.actors.checkLease(), actors: node.actors.activeKeys(), pending: node.actors.pendingKeys() } satisfies ActorsView }),
  },
  placement: {
    scope: 'cluster', summary: 'placement table, leader, members, history',
    run: (d): AdminOutcome => ({
      result: {
        node: d.node.nodeId, leader: d.node.supervisor.leaderId, table: d.node.actors.table,
        members: d.node.supervisor.liveMembers(), history: d.node.supervisor.history(), connections: d.connections(),
      } satisfies PlacementView,
    }),
  },
  streams: {
    scope: 'cluster', summary: 'durable log streams and consumers, with lag',
    run: async (d): Promise<AdminOutcome> => ({ result: { node: d.node.nodeId, streams: d.describeLog ? await d.describeLog() : [] } satisfies StreamsView }),
  },
  scale: {
    scope: 'cluster', summary: "the scale advisor's last decision (the leader's is current)",
    run: (d): AdminOutcome => ({ result: { node: d.node.nodeId, leader: d.node.supervisor.leaderId, isLeader: d.node.supervisor.isLeader, explanation: d.scale?.() ?? null } satisfies ScaleView }),
  },
  costs: {
    scope: 'cluster', summary: 'right-sizing and storage-tier recommendations',
    run: async (d): Promise<AdminOutcome> => ({
      result: { node: d.node.nodeId, recommendations: rightSizing(d.node.supervisor.liveMembers()), storage: await storageSection(d.storage) } satisfies CostsView,
    }),
  },
  drain: {
    scope: 'node', mutates: true, summary: 'hand every actor off, then exit',
    run: (d): AdminOutcome => {
      const drain = d.drain;
      if (!drain) throw new AdminError('ADMIN_UNSUPPORTED', `node ${d.node.nodeId} cannot be drained from here`);
      return { status: 202, result: { draining: d.node.nodeId, actors: d.node.actors.activeCount() } satisfies DrainView, after: drain };
    },
  },
} satisfies Record<string, AdminOp>);

/** One admin request as a front door sees it. */
export interface AdminRequest {
  readonly op: string;
  /** The bearer's token, unverified. */
  readonly token: string | undefined;
  readonly args?: AdminArgs;
  /** 'cluster' when the request may land on any node (the NATS queue group): node-scoped operations refuse it. */
  readonly via: 'cluster' | 'node';
  /** HTTP: the method, GET for reads and POST for changes; it must match the operation. Undefined (NATS): not checked. */
  readonly verb?: string;
}

/**
 * Runs admin requests against one node: verifies the operator token, finds
 * the operation, checks its scope, runs it. The one place both front doors
 * go through, so they answer the same and refuse the same.
 */
export class AdminService {
  /** @param ops the operation table; default ADMIN_OPS. */
  constructor(
    readonly deps: AdminDeps,
    private readonly signer: { verify(token: string | undefined | null): TokenClaims },
    readonly ops: Readonly<Record<string, AdminOp>> = ADMIN_OPS,
  ) {}

  /** The id of the node this service answers for. */
  get nodeId(): string {
    return this.deps.node.nodeId;
  }

  /** Verifies, dispatches, runs. Throws AuthError or AdminError (or the operation's own ChorusError). */
  async handle(req: AdminRequest): Promise<AdminOutcome> {
    // the token first: without operator credentials nothing else is revealed, not even which operations exist
    const claims = this.signer.verify(req.token);
    if (claims.kind !== 'operator') throw new AuthError('AUTH_FORBIDDEN', 'operator credentials required');
    const op = Object.hasOwn(this.ops, req.op) ? this.ops[req.op] : undefined;
    if (!op || (req.verb !== undefined && req.verb !== (op.mutates ? 'POST' : 'GET'))) {
      throw new AdminError('ADMIN_UNKNOWN_OP', `no admin operation ${req.verb ? `${req.verb} ` : ''}${req.op}; known: ${Object.keys(this.ops).join(', ')} (over HTTP reads are GET, changes POST)`);
    }
    if (op.scope === 'node' && req.via === 'cluster') {
      throw new AdminError('ADMIN_WRONG_SCOPE', `${req.op} is about one node: address that node (<prefix>.admin.node.<id>.${req.op} over NATS)`);
    }
    return op.run(this.deps, req.args ?? {});
  }
}
