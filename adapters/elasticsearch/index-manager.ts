/**
 * The seed's workspace index strategy (SearchIndexManager), with aliases so
 * a workspace moves without downtime:
 *
 * - Every workspace is read and written through its own alias
 *   (`<prefix>-ws-<ws>`). A small workspace's alias points at one of the
 *   shared indices (`<prefix>-shared-<n>`, n = hash(ws) mod `sharedIndices`)
 *   with a `term: {ws}` filter and `routing: ws` (its documents sit on one
 *   shard; its searches ask only that shard).
 * - `promote(ws)` moves a workspace to a dedicated index
 *   (`<prefix>-dedicated-<ws>`: 5 shards, 1 replica, refresh 5 s, the seed's
 *   settings): it holds the workspace's index writes (the projection waits;
 *   searches continue on the shared index), creates the index, reindexes the
 *   workspace's documents into it (routing discarded, so they spread over
 *   the 5 shards), swaps the alias in one atomic `_aliases` call, releases
 *   the writes (they go to the new index) and deletes the copies from the
 *   shared index.
 * - `maintain()`: promotes workspaces at or above `dedicatedThreshold`
 *   documents (a terms aggregation over the shared indices), then the
 *   seed's optimizeIndices: force-merge to one segment every index with
 *   more than `forceMergeDocs` (1,000,000) documents.
 */
import { errors, type Client } from '@elastic/elasticsearch';
import { BackendError } from '../../runtime/errors.ts';
import { MESSAGE_MAPPINGS, POSITIONS_MAPPINGS, indexSettings } from './mappings.ts';
import { IndexNames, type ResolvedEsOptions } from './options.ts';

const isStatus = (err: unknown, status: number) => err instanceof errors.ResponseError && err.meta.statusCode === status;
const isExists = (err: unknown) =>
  err instanceof errors.ResponseError && err.meta.statusCode === 400 && /resource_already_exists/.test(JSON.stringify(err.meta.body ?? ''));

/** Creates indices and aliases, moves workspaces, runs maintenance. */
export class IndexManager {
  readonly names: IndexNames;
  private readonly client: Client;
  private readonly known = new Set<string>();
  private readonly holds = new Map<string, Promise<void>>();
  private baseReady: Promise<void> | undefined;

  constructor(private readonly o: ResolvedEsOptions, private readonly inFlight: () => Promise<void>) {
    this.names = new IndexNames(o);
    this.client = o.client;
  }

  /** Creates the shared indices and the positions index if missing (idempotent). */
  ensureBase(): Promise<void> {
    this.baseReady ??= (async () => {
      const o = this.o;
      for (const index of this.names.allShared()) {
        await this.create(index, indexSettings(o.sharedShards, o.sharedReplicas, o.sharedRefresh), MESSAGE_MAPPINGS);
      }
      await this.create(o.positionsIndex, indexSettings(1, o.sharedReplicas, '1s'), POSITIONS_MAPPINGS);
    })();
    this.baseReady.catch(() => (this.baseReady = undefined));
    return this.baseReady;
  }

  private async create(index: string, settings: Record<string, unknown>, mappings: unknown): Promise<void> {
    try {
      if (await this.client.indices.exists({ index })) return;
      await this.client.indices.create({ index, settings, mappings: mappings as Record<string, never> });
    } catch (err) {
      if (isExists(err)) return; // another node created it first
      throw new BackendError('elasticsearch', `cannot create index ${index}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Resolves while writes of `ws` may go ahead (a promotion holds them). */
  hold(ws: string): Promise<void> | undefined {
    return this.holds.get(ws);
  }

  /** Makes sure the workspace's alias exists (pointing at its shared index) before its first write. */
  async ensureAlias(ws: string): Promise<void> {
    if (this.known.has(ws)) return;
    const alias = this.names.alias(ws);
    if (!(await this.client.indices.existsAlias({ name: alias }))) {
      await this.client.indices.updateAliases({
        actions: [{ add: { index: this.names.shared(ws), alias, filter: { term: { ws } }, routing: ws, is_write_index: true } }],
      });
    }
    this.known.add(ws);
  }

  /** Where the alias of `ws` points now: 'shared', 'dedicated', or null (never written). */
  async placement(ws: string): Promise<'shared' | 'dedicated' | null> {
    try {
      const r = await this.client.indices.getAlias({ name: this.names.alias(ws) });
      return Object.keys(r).includes(this.names.dedicated(ws)) ? 'dedicated' : 'shared';
    } catch (err) {
      if (isStatus(err, 404)) return null;
      throw err;
    }
  }

  /** Moves workspace `ws` from its shared index to a dedicated one (see the file comment). Idempotent. */
  async promote(ws: string): Promise<{ moved: boolean; docs: number }> {
    await this.ensureBase();
    if ((await this.placement(ws)) === 'dedicated') return { moved: false, docs: 0 };
    await this.ensureAlias(ws);
    let release!: () => void;
    this.holds.set(ws, new Promise<void>((r) => (release = r)));
    try {
      await this.inFlight(); // writes that started before the hold finish first
      const shared = this.names.shared(ws);
      const dedicated = this.names.dedicated(ws);
      const alias = this.names.alias(ws);
      await this.create(dedicated, indexSettings(this.o.dedicatedShards, this.o.dedicatedReplicas, this.o.dedicatedRefresh), MESSAGE_MAPPINGS);
      const copy = await this.client.reindex({
        source: { index: shared, query: { term: { ws } } },
        // routing discarded: a dedicated index spreads the workspace over all its shards
        dest: { index: dedicated, routing: 'discard', op_type: 'index' },
        wait_for_completion: true,
        refresh: true,
      });
      if (copy.failures?.length) throw new BackendError('elasticsearch', `reindex of ${ws} failed: ${JSON.stringify(copy.failures.slice(0, 3))}`);
      // one atomic call: readers see either the shared index (filtered) or the dedicated one, never neither
      await this.client.indices.updateAliases({
        actions: [
          { remove: { index: shared, alias } },
          { add: { index: dedicated, alias, is_write_index: true } },
        ],
      });
      this.o.logger.info({ ws, from: shared, to: dedicated, docs: copy.total ?? 0 }, 'workspace moved to a dedicated search index');
      release();
      this.holds.delete(ws);
      await this.client.deleteByQuery({ index: shared, routing: ws, query: { term: { ws } }, conflicts: 'proceed' });
      return { moved: true, docs: Number(copy.total ?? 0) };
    } finally {
      release();
      this.holds.delete(ws);
    }
  }

  /** Workspaces of the shared indices with at least `threshold` documents. */
  async largeWorkspaces(threshold = this.o.dedicatedThreshold): Promise<Array<{ ws: string; docs: number }>> {
    await this.ensureBase();
    const r = await this.client.search({
      index: this.names.allShared().join(','),
      size: 0,
      aggs: { by_ws: { terms: { field: 'ws', size: 10_000, min_doc_count: threshold } } },
    });
    const buckets = (r.aggregations?.by_ws as { buckets?: Array<{ key: string; doc_count: number }> } | undefined)?.buckets ?? [];
    return buckets.filter((b) => b.doc_count >= threshold).map((b) => ({ ws: String(b.key), docs: b.doc_count }));
  }

  /** The seed's optimizeIndices: force-merge to one segment every message index above `forceMergeDocs` documents. */
  async optimizeIndices(): Promise<string[]> {
    const rows = await this.client.cat.indices({ index: this.names.pattern(), format: 'json' }) as unknown as Array<Record<string, string>>;
    const merged: string[] = [];
    for (const row of rows) {
      // _cat answers counts as strings
      if (Number(row['docs.count']) > this.o.forceMergeDocs && row.index) {
        await this.client.indices.forcemerge({ index: row.index, max_num_segments: 1 });
        merged.push(row.index);
      }
    }
    return merged;
  }

  /** Promotes large workspaces, then force-merges large indices. */
  async maintain(): Promise<{ promoted: string[]; merged: string[] }> {
    const promoted: string[] = [];
    for (const { ws } of await this.largeWorkspaces()) {
      const r = await this.promote(ws);
      if (r.moved) promoted.push(ws);
    }
    return { promoted, merged: await this.optimizeIndices() };
  }
}
