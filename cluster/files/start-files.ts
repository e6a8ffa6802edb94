import { join } from 'node:path';
import pg from 'pg';
import { LocalFileStore } from '../../adapters/local/index.ts';
import { pgPoolClient, SqlFileCatalog, type SqlClient } from '../../adapters/postgres/index.ts';
import type { FileCatalog } from '../../runtime/files/file-catalog.ts';
import type { TieredCache } from '../query/tiered-cache.ts';
import { CachedFileCatalog } from './cached-file-catalog.ts';
import { MinioFileStore, S3FileStore } from '../../adapters/s3/index.ts';
import type { FileStore, Logger, Metrics, StorageClass } from '../../runtime/index.ts';
import type { StorageCostReport } from '../admin/costs.ts';
import type { ChorusConfig } from '../config.ts';
import { FileService } from './file-service.ts';
import { ReplicatedFileStore } from './replicated-file-store.ts';
import { applyTiering, formatPlan, planTieringFromCatalog, storageCosts, type TieringPlan, type TieringPolicy, type TieringResult } from './tiering.ts';

/** The files part of a node: store, catalog, service, tiering. */
export interface Files {
  readonly service: FileService;
  readonly store: FileStore;
  /** Set in the embedded profile: the node serves `/files/...` links itself. */
  readonly local: LocalFileStore | undefined;
  /** Set when a secondary provider is configured (backlog, catch-up). */
  readonly replicated: ReplicatedFileStore | undefined;
  /** Where the files live, for humans (`s3://bucket`, `./data/files`). */
  readonly location: string;
  /** The tiering plan at `now` (dry run). */
  plan(now?: number): Promise<TieringPlan>;
  /** Plans and applies. */
  applyTiering(now?: number): Promise<{ plan: TieringPlan; result: TieringResult; text: string }>;
  /** The storage section of the inspector's `costs` (totals, tiering recommendations with monthly savings). */
  costReport(now?: number): Promise<StorageCostReport>;
  close(): Promise<void>;
}

/** Prices and policy from the config. */
export function tieringSettings(config: ChorusConfig): { prices: Partial<Record<StorageClass, number>>; policy: Partial<TieringPolicy> } {
  return {
    prices: { STANDARD: config.filesPriceStandard, STANDARD_IA: config.filesPriceStandardIa, GLACIER_IR: config.filesPriceGlacierIr },
    policy: { coldClass: config.filesColdClass },
  };
}

/**
 * Builds the files part from the config. Store: S3 (S3FileStore) when
 * `s3Bucket` is set, replicated to MinIO (MinioFileStore) when
 * `s3SecondaryBucket` is set; else the local directory `<dataDir>/files`.
 * Catalog: `sql` (the embedded PGlite) or, when absent, a pg pool on `pgUrl`.
 * Returns undefined (files disabled, logged) when there is no SQL store.
 */
export async function startFiles(o: {
  config: ChorusConfig; sql?: SqlClient | undefined; pgUrl?: string | undefined; secret: string; publicUrl: () => string; metrics: Metrics; logger: Logger;
  /** The query side's two-level cache: file metadata is read through it (type `file_metadata`) when given. */
  cache?: TieredCache | undefined;
}): Promise<Files | undefined> {
  const { config, logger } = o;
  let sql = o.sql;
  let ownSql: SqlClient | undefined;
  if (!sql && o.pgUrl) sql = ownSql = pgPoolClient(new pg.Pool({ connectionString: o.pgUrl, max: 4, connectionTimeoutMillis: 2000 }));
  if (!sql) {
    logger.warn({}, 'files disabled: no SQL store for file metadata (set CHORUS_PG_URL)');
    return undefined;
  }
  let store: FileStore;
  let local: LocalFileStore | undefined;
  let replicated: ReplicatedFileStore | undefined;
  let location: string;
  if (config.s3Bucket) {
    const primary = new S3FileStore({
      bucket: config.s3Bucket, region: config.s3Region, forcePathStyle: config.s3ForcePathStyle ?? Boolean(config.s3Endpoint),
      ...(config.s3Endpoint ? { endpoint: config.s3Endpoint } : {}),
      ...(config.s3AccessKeyId && config.s3SecretAccessKey ? { accessKeyId: config.s3AccessKeyId, secretAccessKey: config.s3SecretAccessKey } : {}),
    });
    store = primary;
    location = `s3://${config.s3Bucket}`;
    if (config.s3SecondaryBucket) {
      const secondary = new MinioFileStore({
        bucket: config.s3SecondaryBucket, region: config.s3SecondaryRegion, forcePathStyle: true,
        endpoint: config.s3SecondaryEndpoint!, accessKeyId: config.s3SecondaryAccessKeyId!, secretAccessKey: config.s3SecondarySecretAccessKey!,
      });
      store = replicated = new ReplicatedFileStore(primary, secondary, { metrics: o.metrics, logger });
      location += ` (replicated to minio ${config.s3SecondaryBucket})`;
      void replicated.catchUp().catch((err) => logger.warn({ err: (err as Error).message }, 'file replication catch-up failed'));
    }
  } else {
    if (config.profile === 'cluster') logger.warn({}, 'files are kept on this node\'s disk (no CHORUS_S3_BUCKET): other nodes cannot serve them');
    store = local = new LocalFileStore({ dir: join(config.dataDir, 'files'), secret: o.secret, baseUrl: o.publicUrl });
    await local.sweep();
    location = join(config.dataDir, 'files');
  }
  const sqlCatalog = new SqlFileCatalog(sql);
  const catalog: FileCatalog = o.cache ? new CachedFileCatalog(sqlCatalog, o.cache) : sqlCatalog;
  const service = new FileService(store, catalog, {
    maxBytes: config.filesMaxBytes, urlTtlSec: config.filesUrlTtlSec, cdnBaseUrl: config.filesCdnBaseUrl, metrics: o.metrics, logger,
    ...(config.filesAllowedTypes ? { allowedTypes: config.filesAllowedTypes } : {}),
  });
  const settings = tieringSettings(config);
  const plan = (now = Date.now()) => planTieringFromCatalog(catalog, { now, ...settings });
  return {
    service, store, local, replicated, location, plan,
    async applyTiering(now = Date.now()) {
      const p = await plan(now);
      const result = await applyTiering(p, store, catalog, { logger, metrics: o.metrics });
      return { plan: p, result, text: formatPlan(p, { applied: result }) };
    },
    async costReport(now = Date.now()) {
      const [p, stats] = await Promise.all([plan(now), catalog.stats()]);
      const totals = storageCosts(stats, settings.prices);
      const groups = new Map<string, { from: string; to: string; objects: number; bytes: number; saving: number }>();
      for (const m of p.moves) {
        const g = groups.get(`${m.from}>${m.to}`) ?? { from: m.from, to: m.to, objects: 0, bytes: 0, saving: 0 };
        g.objects++;
        g.bytes += m.size;
        g.saving += m.monthlySaving;
        groups.set(`${m.from}>${m.to}`, g);
      }
      const pol = p.policy;
      return {
        store: location, objects: totals.files, bytes: totals.bytes, currency: 'USD',
        recommendations: [...groups.values()].map((g) => ({
          target: location, currentTier: g.from, recommendedTier: g.to, objects: g.objects, bytes: g.bytes, monthlySavings: g.saving,
          why: g.to === pol.coldClass
            ? `older than ${pol.minAgeDays} days, read fewer than ${pol.coldBelowReads} times`
            : `older than ${pol.minAgeDays} days, read fewer than ${pol.warmBelowReads} times`,
        })),
      };
    },
    async close() {
      await store.close().catch(() => {});
      await ownSql?.close().catch(() => {});
    },
  };
}
