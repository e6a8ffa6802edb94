import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { FileChecksumMismatchError, FileTooLargeError, FileTruncatedError } from './errors.ts';

/** Limits and expectations of one upload. */
export interface UploadGuardOptions {
  /** Fails with FileTooLargeError as soon as more bytes than this pass. */
  readonly maxBytes: number;
  /** The declared length (Content-Length); fewer bytes at the end is FileTruncatedError. */
  readonly expectedBytes?: number | undefined;
  /** Lower-case hex sha256 the client declared; a mismatch at the end is FileChecksumMismatchError. */
  readonly sha256?: string | undefined;
}

/**
 * A pass-through stream that counts and hashes the bytes of an upload on the
 * way to the store. It fails the stream (so the store's all-or-nothing `put`
 * stores nothing) when the size limit is crossed, and at the end when fewer
 * bytes than declared arrived or the sha256 differs: the check happens before
 * the store commits, never after.
 */
export class UploadGuard extends Transform {
  private readonly hash = createHash('sha256');
  /** Bytes seen so far. */
  bytes = 0;
  /** The hex digest, once the stream ended cleanly. */
  digest: string | undefined;

  constructor(private readonly o: UploadGuardOptions) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.o.maxBytes) return cb(new FileTooLargeError(this.o.maxBytes));
    if (this.o.expectedBytes !== undefined && this.bytes > this.o.expectedBytes) return cb(new FileTruncatedError(this.o.expectedBytes, this.bytes));
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.o.expectedBytes !== undefined && this.bytes !== this.o.expectedBytes) return cb(new FileTruncatedError(this.o.expectedBytes, this.bytes));
    const digest = this.hash.digest('hex');
    if (this.o.sha256 !== undefined && digest !== this.o.sha256) return cb(new FileChecksumMismatchError(this.o.sha256, digest));
    this.digest = digest;
    cb();
  }
}
