import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, configFromEnv } from '../../cluster/config.ts';
import { tieringSettings } from '../../cluster/files/index.ts';

test('files settings from the environment: S3 primary, MinIO secondary, limits, prices', () => {
  const c = configFromEnv({
    CHORUS_S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com', CHORUS_S3_REGION: 'eu-west-1', CHORUS_S3_BUCKET: 'chorus-files',
    CHORUS_S3_ACCESS_KEY_ID: 'AK', CHORUS_S3_SECRET_ACCESS_KEY: 'SK', CHORUS_S3_FORCE_PATH_STYLE: 'false',
    CHORUS_S3_SECONDARY_ENDPOINT: 'http://minio.local:9000', CHORUS_S3_SECONDARY_BUCKET: 'chorus-dr',
    CHORUS_S3_SECONDARY_ACCESS_KEY_ID: 'mk', CHORUS_S3_SECONDARY_SECRET_ACCESS_KEY: 'ms',
    CHORUS_FILES_MAX_BYTES: '1048576', CHORUS_FILES_ALLOWED_TYPES: 'image/*, application/pdf', CHORUS_FILES_URL_TTL_SEC: '60',
    CHORUS_FILES_CDN_BASE_URL: 'https://cdn.example.com', CHORUS_FILES_PRICE_STANDARD: '0.025', CHORUS_FILES_COLD_CLASS: 'GLACIER',
  });
  assert.equal(c.s3Bucket, 'chorus-files');
  assert.equal(c.s3ForcePathStyle, false);
  assert.equal(c.s3SecondaryBucket, 'chorus-dr');
  assert.equal(c.filesMaxBytes, 1048576);
  assert.deepEqual(c.filesAllowedTypes, ['image/*', 'application/pdf']);
  assert.equal(c.filesUrlTtlSec, 60);
  assert.deepEqual(tieringSettings(c), { prices: { STANDARD: 0.025, STANDARD_IA: 0.0125, GLACIER_IR: 0.004 }, policy: { coldClass: 'GLACIER' } });
  // defaults
  const d = configFromEnv({});
  assert.equal(d.filesMaxBytes, 1024 ** 3);
  assert.equal(d.s3Bucket, undefined);
  assert.equal(d.filesColdClass, 'GLACIER_IR');
});

test('invalid files settings are listed, every one', () => {
  try {
    configFromEnv({ CHORUS_S3_SECONDARY_BUCKET: 'dr-bucket', CHORUS_S3_ACCESS_KEY_ID: 'only-one', CHORUS_FILES_ALLOWED_TYPES: 'text/html,<script>' });
    assert.fail('expected a ConfigError');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const all = err.problems.join('\n');
    assert.match(all, /filesAllowedTypes/);
  }
  try {
    configFromEnv({ CHORUS_S3_SECONDARY_BUCKET: 'dr-bucket', CHORUS_S3_ACCESS_KEY_ID: 'only-one' });
    assert.fail('expected a ConfigError');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.problems.length, 3, err.problems.join('\n'));
    assert.match(err.problems.join('\n'), /needs a primary/);
    assert.match(err.problems.join('\n'), /CHORUS_S3_SECONDARY_ENDPOINT/);
    assert.match(err.problems.join('\n'), /both CHORUS_S3_ACCESS_KEY_ID and CHORUS_S3_SECRET_ACCESS_KEY/);
  }
});
