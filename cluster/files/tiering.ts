import {
  noopMetrics, silentLogger, type FileCatalog, type FileRecord, type FileStats, type FileStore, type Logger, type Metrics, type StorageClass,
} from '../../runtime/index.ts';

/** When files move (the seed's rule): older than `minAgeDays`, fewer than `coldBelowReads` reads -> cold, fewer than `warmBelowReads` -> warm. */
export interface TieringPolicy {
  /** Default 90. */
  readonly minAgeDays: number;
  /** Default 5. */
  readonly coldBelowReads: number;
  /** Default 20. */
  readonly warmBelowReads: number;
  /** Default GLACIER_IR (instant retrieval: links keep working). */
  readonly coldClass: StorageClass;
  /** Default STANDARD_IA. */
  readonly warmClass: StorageClass;
}

/** The seed's policy. */
export const DEFAULT_TIERING_POLICY: TieringPolicy = Object.freeze({ minAgeDays: 90, coldBelowReads: 5, warmBelowReads: 20, coldClass: 'GLACIER_IR', warmClass: 'STANDARD_IA' });

/** USD per GB-month by class: AWS S3 us-east-1 list prices (settings override them). */
export const DEFAULT_STORAGE_PRICES: Readonly<Record<StorageClass, number>> = Object.freeze({ STANDARD: 0.023, STANDARD_IA: 0.0125, GLACIER_IR: 0.004, GLACIER: 0.0036 });

const RANK: Record<StorageClass, number> = { STANDARD: 0, STANDARD_IA: 1, GLACIER_IR: 2, GLACIER: 3 };
const GB = 1024 ** 3;
const DAY = 86_400_000;

/** One planned move. */
export interface TieringMove {
  readonly id: string;
  readonly key: string;
  readonly ws: string;
  readonly ch: string;
  readonly size: number;
  readonly ageDays: number;
  readonly readCount: number;
  readonly from: StorageClass;
  readonly to: StorageClass;
  /** USD per month saved by this move. */
  readonly monthlySaving: number;
}

/** What the tiering job would do (dry run) or did (apply). */
export interface TieringPlan {
  /** The instant the plan was made for (ms). */
  readonly now: number;
  readonly policy: TieringPolicy;
  readonly prices: Readonly<Record<StorageClass, number>>;
  /** Files older than the policy's age that were looked at. */
  readonly scanned: number;
  readonly moves: readonly TieringMove[];
  readonly bytesMoved: number;
  /** USD per month of the moved files, before and after. */
  readonly monthlyCostBefore: number;
  readonly monthlyCostAfter: number;
  /** Estimated USD saved per month (storage only: retrieval fees and minimum storage durations are not counted). */
  readonly monthlySaving: number;
  /** Moves, bytes and saving per target class. */
  readonly byTarget: Readonly<Partial<Record<StorageClass, { files: number; bytes: number; monthlySaving: number }>>>;
}

/** Monthly storage cost in USD of `bytes` in `cls`. */
export function monthlyCost(bytes: number, cls: StorageClass, prices: Readonly<Record<StorageClass, number>> = DEFAULT_STORAGE_PRICES): number {
  return (bytes / GB) * prices[cls];
}

/**
 * Plans tiering over file records (pure: no I/O, `now` injected). A file
 * moves only to a colder class than it is in, never back.
 */
export function planTiering(files: Iterable<FileRecord>, opts: { now: number; policy?: Partial<TieringPolicy>; prices?: Partial<Record<StorageClass, number>> }): TieringPlan {
  const policy = { ...DEFAULT_TIERING_POLICY, ...opts.policy };
  const prices = { ...DEFAULT_STORAGE_PRICES, ...opts.prices };
  const cutoff = opts.now - policy.minAgeDays * DAY;
  const moves: TieringMove[] = [];
  let scanned = 0;
  for (const f of files) {
    if (f.created >= cutoff) continue;
    scanned++;
    const to = f.readCount < policy.coldBelowReads ? policy.coldClass : f.readCount < policy.warmBelowReads ? policy.warmClass : undefined;
    if (!to || RANK[to] <= RANK[f.storageClass]) continue;
    moves.push({
      id: f.id, key: f.key, ws: f.ws, ch: f.ch, size: f.size, ageDays: Math.floor((opts.now - f.created) / DAY), readCount: f.readCount,
      from: f.storageClass, to, monthlySaving: monthlyCost(f.size, f.storageClass, prices) - monthlyCost(f.size, to, prices),
    });
  }
  const byTarget: Partial<Record<StorageClass, { files: number; bytes: number; monthlySaving: number }>> = {};
  let before = 0;
  let after = 0;
  let bytes = 0;
  for (const m of moves) {
    const t = (byTarget[m.to] ??= { files: 0, bytes: 0, monthlySaving: 0 });
    t.files++;
    t.bytes += m.size;
    t.monthlySaving += m.monthlySaving;
    before += monthlyCost(m.size, m.from, prices);
    after += monthlyCost(m.size, m.to, prices);
    bytes += m.size;
  }
  return { now: opts.now, policy, prices, scanned, moves, bytesMoved: bytes, monthlyCostBefore: before, monthlyCostAfter: after, monthlySaving: before - after, byTarget };
}

/** Plans tiering over every file in the catalog (pages of 10,000 records). */
export async function planTieringFromCatalog(catalog: FileCatalog, opts: { now: number; policy?: Partial<TieringPolicy>; prices?: Partial<Record<StorageClass, number>> }): Promise<TieringPlan> {
  const minAgeDays = opts.policy?.minAgeDays ?? DEFAULT_TIERING_POLICY.minAgeDays;
  const all: FileRecord[] = [];
  let afterId = '';
  for (;;) {
    const page = await catalog.createdBefore(opts.now - minAgeDays * DAY, { afterId, limit: 10_000 });
    all.push(...page);
    if (page.length < 10_000) break;
    afterId = page[page.length - 1]!.id;
  }
  return planTiering(all, opts);
}

/** Result of applying a plan. */
export interface TieringResult {
  readonly moved: number;
  readonly failed: Array<{ id: string; error: string }>;
}

/**
 * Applies a plan: the store moves the object (S3: CopyObject with the new
 * StorageClass), then the catalog records the new class. A failure of one
 * file is reported and the rest go on; running the job again retries it.
 */
export async function applyTiering(plan: TieringPlan, store: FileStore, catalog: FileCatalog, o: { logger?: Logger; metrics?: Metrics } = {}): Promise<TieringResult> {
  const logger = o.logger ?? silentLogger;
  const moved = (o.metrics ?? noopMetrics).counter('file_tiering_moves_total', 'Files moved to a colder storage class by the tiering job', ['to', 'result']);
  const failed: Array<{ id: string; error: string }> = [];
  let n = 0;
  for (const m of plan.moves) {
    try {
      await store.setStorageClass(m.key, m.to);
      await catalog.setStorageClass(m.id, m.to);
      moved.inc({ to: m.to, result: 'ok' });
      n++;
    } catch (err) {
      moved.inc({ to: m.to, result: 'error' });
      failed.push({ id: m.id, error: (err as Error).message });
      logger.warn({ err: (err as Error).message, id: m.id, to: m.to }, 'tiering move failed');
    }
  }
  return { moved: n, failed };
}

/** Storage totals and their monthly cost, for the inspector's `costs`. */
export function storageCosts(stats: FileStats, prices: Partial<Record<StorageClass, number>> = {}): { files: number; bytes: number; monthlyCost: number; byClass: Array<{ storageClass: StorageClass; files: number; bytes: number; monthlyCost: number }> } {
  const p = { ...DEFAULT_STORAGE_PRICES, ...prices };
  const byClass = Object.entries(stats.byClass).map(([cls, v]) => ({ storageClass: cls as StorageClass, files: v!.files, bytes: v!.bytes, monthlyCost: monthlyCost(v!.bytes, cls as StorageClass, p) }));
  return { files: stats.files, bytes: stats.bytes, monthlyCost: byClass.reduce((a, b) => a + b.monthlyCost, 0), byClass };
}

const usd = (n: number) => `$${n.toFixed(n < 1 ? 4 : 2)}`;
const size = (b: number) => (b >= GB ? `${(b / GB).toFixed(2)} GB` : b >= 1024 ** 2 ? `${(b / 1024 ** 2).toFixed(1)} MB` : `${b} B`);

/** The plan as text (what `npm run tiering` prints). */
export function formatPlan(plan: TieringPlan, opts: { applied?: TieringResult; maxLines?: number } = {}): string {
  const p = plan.policy;
  const lines = [
    `tiering ${opts.applied ? 'applied' : 'plan (dry run)'} at ${new Date(plan.now).toISOString()}: files older than ${p.minAgeDays} days, < ${p.coldBelowReads} reads -> ${p.coldClass}, < ${p.warmBelowReads} reads -> ${p.warmClass}`,
    `scanned ${plan.scanned} old files; ${plan.moves.length} to move (${size(plan.bytesMoved)})`,
  ];
  for (const [cls, t] of Object.entries(plan.byTarget)) lines.push(`  -> ${cls}: ${t!.files} files, ${size(t!.bytes)}, saves ${usd(t!.monthlySaving)}/month`);
  lines.push(`monthly cost of these files: ${usd(plan.monthlyCostBefore)} -> ${usd(plan.monthlyCostAfter)}; estimated saving ${usd(plan.monthlySaving)}/month (storage only)`);
  const max = opts.maxLines ?? 20;
  for (const m of plan.moves.slice(0, max)) lines.push(`  ${m.id} ${m.ws}/${m.ch} ${size(m.size)} ${m.ageDays}d ${m.readCount} reads: ${m.from} -> ${m.to}`);
  if (plan.moves.length > max) lines.push(`  ... and ${plan.moves.length - max} more`);
  if (opts.applied) lines.push(`moved ${opts.applied.moved}, failed ${opts.applied.failed.length}${opts.applied.failed.map((f) => `\n  ${f.id}: ${f.error}`).join('')}`);
  return lines.join('\n');
}
