import { hostname } from 'node:os';
import { z } from 'zod';

/**
 * Node configuration: defaults, then validation that lists every problem,
 * then a frozen object. Only the composition root reads `process.env`, and
 * only through `configFromEnv`.
 */
const schema = z.object({
  /** 'embedded': one process, nothing to install. 'cluster': NATS (and the other services) from the environment. */
  profile: z.enum(['embedded', 'cluster']).default('embedded'),
  nodeId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, - and _ (1-64)'),
  host: z.string().min(1).default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  /** The URL clients use to reach this node's edge (advertised to the cluster). */
  publicUrl: z.string().url().optional(),
  dataDir: z.string().min(1).default('./data'),
  region: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/).default('local'),
  weight: z.coerce.number().positive().max(100).default(1),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** Membership timing (ms). */
  heartbeatMs: z.coerce.number().int().positive().default(250),
  fenceAfterMs: z.coerce.number().int().positive().default(1000),
  failureTimeoutMs: z.coerce.number().int().positive().default(2000),
  leaseMs: z.coerce.number().int().positive().default(1500),
  askTimeoutMs: z.coerce.number().int().positive().default(5000),
  idleTimeoutMs: z.coerce.number().int().positive().default(300_000),
  /** NATS servers (cluster profile). */
  natsUrls: z.array(z.string().min(1)).default([]),
  /** JetStream replicas for streams and KV buckets (3 on a 3-server NATS cluster). */
  natsReplicas: z.coerce.number().int().min(1).max(5).default(1),
  /** HMAC secret for client tokens. In the embedded profile a random one is made per start when unset. */
  authSecret: z.string().min(16).optional(),
  /** Enables the dev sign-in endpoint that issues tokens for demo users (default: on in embedded, off in cluster). */
  devSignIn: z.boolean().optional(),
  /** Operator credential for the admin endpoints and the inspector CLI. */
  adminToken: z.string().min(16).optional(),
  /** Web Push (VAPID) keys and contact; all three enable Web Push notifications. */
  vapidPublicKey: z.string().min(20).optional(),
  vapidPrivateKey: z.string().min(20).optional(),
  vapidSubject: z.string().regex(/^(mailto:|https:)/, 'mailto: or https: URL').optional(),
  /** HMAC secret for webhook notifications; enables the webhook provider. */
  pushWebhookSecret: z.string().min(16).optional(),
  /** Files (docs/files.md): largest upload in bytes (default 1 GiB), allowed MIME types (`type/*` families), download link life, CDN origin. */
  filesMaxBytes: z.coerce.number().int().positive().default(1024 ** 3),
  filesAllowedTypes: z.array(z.string().regex(/^(\*|[a-z0-9.+-]+\/(\*|[a-z0-9.+-]+))$/, 'a MIME type, type/* or *')).optional(),
  filesUrlTtlSec: z.coerce.number().int().min(10).max(7 * 86_400).default(300),
  filesCdnBaseUrl: z.string().url().optional(),
  /** Tiering prices in USD per GB-month (AWS us-east-1 list prices by default). */
  filesPriceStandard: z.coerce.number().nonnegative().default(0.023),
  filesPriceStandardIa: z.coerce.number().nonnegative().default(0.0125),
  filesPriceGlacierIr: z.coerce.number().nonnegative().default(0.004),
  /** The class the tiering job's cold tier uses (GLACIER_IR; GLACIER only for stores without it). */
  filesColdClass: z.enum(['GLACIER_IR', 'GLACIER']).default('GLACIER_IR'),
  /** The primary S3-compatible store (cluster profile; without a bucket files go to `<dataDir>/files`). */
  s3Endpoint: z.string().url().optional(),
  s3Region: z.string().min(1).default('us-east-1'),
  s3Bucket: z.string().min(3).max(63).optional(),
  s3AccessKeyId: z.string().min(1).optional(),
  s3SecretAccessKey: z.string().min(1).optional(),
  s3ForcePathStyle: z.boolean().optional(),
  /** The secondary (on-premises MinIO through the minio client): every upload is copied there in the background. */
  s3SecondaryEndpoint: z.string().url().optional(),
  s3SecondaryRegion: z.string().min(1).default('us-east-1'),
  s3SecondaryBucket: z.string().min(3).max(63).optional(),
  s3SecondaryAccessKeyId: z.string().min(1).optional(),
  s3SecondarySecretAccessKey: z.string().min(1).optional(),
});

/** A validated, frozen node configuration. */
export type ChorusConfig = Readonly<z.infer<typeof schema>>;

/** Thrown when configuration is invalid; `problems` lists every one. */
export class ConfigError extends Error {
  readonly code = 'CHORUS_CONFIG';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Validates raw settings (already mapped to field names) and freezes them. */
export function makeConfig(raw: Record<string, unknown>): ChorusConfig {
  const r = schema.safeParse(raw);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  const c = r.data;
  const problems: string[] = [];
  if (c.profile === 'cluster' && c.natsUrls.length === 0) problems.push('natsUrls: the cluster profile needs CHORUS_NATS_URL');
  if (c.fenceAfterMs + c.heartbeatMs >= c.failureTimeoutMs) problems.push('fenceAfterMs + heartbeatMs must be below failureTimeoutMs (a cut-off node must fence before others take over)');
  if (c.profile === 'cluster' && !c.authSecret) problems.push('authSecret: the cluster profile needs CHORUS_AUTH_SECRET (shared by every node)');
  const vapid = [c.vapidPublicKey, c.vapidPrivateKey, c.vapidSubject].filter(Boolean).length;
  if (vapid !== 0 && vapid !== 3) problems.push('vapid: set all of CHORUS_VAPID_PUBLIC_KEY, CHORUS_VAPID_PRIVATE_KEY and CHORUS_VAPID_SUBJECT, or none');
  if (c.s3SecondaryBucket && !c.s3Bucket) problems.push('s3SecondaryBucket: a secondary file store needs a primary (CHORUS_S3_BUCKET)');
  if (c.s3SecondaryBucket && !(c.s3SecondaryEndpoint && c.s3SecondaryAccessKeyId && c.s3SecondarySecretAccessKey)) {
    problems.push('s3Secondary: set CHORUS_S3_SECONDARY_ENDPOINT, _ACCESS_KEY_ID and _SECRET_ACCESS_KEY with CHORUS_S3_SECONDARY_BUCKET');
  }
  if ((c.s3AccessKeyId === undefined) !== (c.s3SecretAccessKey === undefined)) problems.push('s3: set both CHORUS_S3_ACCESS_KEY_ID and CHORUS_S3_SECRET_ACCESS_KEY, or neither');
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze({ ...c, devSignIn: c.devSignIn ?? c.profile === 'embedded' });
}

/** Maps CHORUS_* environment variables to a validated config. */
export function configFromEnv(env: Record<string, string | undefined> = process.env): ChorusConfig {
  const raw: Record<string, unknown> = {
    profile: env.CHORUS_PROFILE,
    nodeId: env.CHORUS_NODE_ID ?? (env.CHORUS_PROFILE === 'cluster' ? `${hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40)}-${process.pid}` : 'node-1'),
    host: env.CHORUS_HOST,
    port: env.CHORUS_PORT ?? env.PORT,
    publicUrl: env.CHORUS_PUBLIC_URL,
    dataDir: env.CHORUS_DATA_DIR,
    region: env.CHORUS_REGION,
    weight: env.CHORUS_WEIGHT,
    logLevel: env.CHORUS_LOG_LEVEL,
    heartbeatMs: env.CHORUS_HEARTBEAT_MS,
    fenceAfterMs: env.CHORUS_FENCE_AFTER_MS,
    failureTimeoutMs: env.CHORUS_FAILURE_TIMEOUT_MS,
    leaseMs: env.CHORUS_LEASE_MS,
    askTimeoutMs: env.CHORUS_ASK_TIMEOUT_MS,
    idleTimeoutMs: env.CHORUS_IDLE_TIMEOUT_MS,
    natsUrls: env.CHORUS_NATS_URL ? env.CHORUS_NATS_URL.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
    natsReplicas: env.CHORUS_NATS_REPLICAS,
    authSecret: env.CHORUS_AUTH_SECRET,
    devSignIn: env.CHORUS_DEV_SIGNIN === undefined ? undefined : env.CHORUS_DEV_SIGNIN === '1' || env.CHORUS_DEV_SIGNIN === 'true',
    adminToken: env.CHORUS_ADMIN_TOKEN,
    vapidPublicKey: env.CHORUS_VAPID_PUBLIC_KEY,
    vapidPrivateKey: env.CHORUS_VAPID_PRIVATE_KEY,
    vapidSubject: env.CHORUS_VAPID_SUBJECT,
    pushWebhookSecret: env.CHORUS_PUSH_WEBHOOK_SECRET,
    filesMaxBytes: env.CHORUS_FILES_MAX_BYTES,
    filesAllowedTypes: env.CHORUS_FILES_ALLOWED_TYPES ? env.CHORUS_FILES_ALLOWED_TYPES.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
    filesUrlTtlSec: env.CHORUS_FILES_URL_TTL_SEC,
    filesCdnBaseUrl: env.CHORUS_FILES_CDN_BASE_URL,
    filesPriceStandard: env.CHORUS_FILES_PRICE_STANDARD,
    filesPriceStandardIa: env.CHORUS_FILES_PRICE_STANDARD_IA,
    filesPriceGlacierIr: env.CHORUS_FILES_PRICE_GLACIER_IR,
    filesColdClass: env.CHORUS_FILES_COLD_CLASS,
    s3Endpoint: env.CHORUS_S3_ENDPOINT,
    s3Region: env.CHORUS_S3_REGION,
    s3Bucket: env.CHORUS_S3_BUCKET,
    s3AccessKeyId: env.CHORUS_S3_ACCESS_KEY_ID,
    s3SecretAccessKey: env.CHORUS_S3_SECRET_ACCESS_KEY,
    s3ForcePathStyle: env.CHORUS_S3_FORCE_PATH_STYLE === undefined ? undefined : env.CHORUS_S3_FORCE_PATH_STYLE === '1' || env.CHORUS_S3_FORCE_PATH_STYLE === 'true',
    s3SecondaryEndpoint: env.CHORUS_S3_SECONDARY_ENDPOINT,
    s3SecondaryRegion: env.CHORUS_S3_SECONDARY_REGION,
    s3SecondaryBucket: env.CHORUS_S3_SECONDARY_BUCKET,
    s3SecondaryAccessKeyId: env.CHORUS_S3_SECONDARY_ACCESS_KEY_ID,
    s3SecondarySecretAccessKey: env.CHORUS_S3_SECONDARY_SECRET_ACCESS_KEY,
  };
  for (const k of Object.keys(raw)) if (raw[k] === undefined || raw[k] === '') delete raw[k];
  return makeConfig(raw);
}
