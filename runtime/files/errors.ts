import { ChorusError } from '../errors.ts';

/**
 * Errors of file uploads and downloads. Each has a stable `code` (listed in
 * docs/errors.md) and the HTTP status the edge answers with (`status`).
 */
export class FileError extends ChorusError {
  constructor(code: string, readonly status: number, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}

/** The upload is larger than the limit (declared or counted while streaming). */
export class FileTooLargeError extends FileError {
  constructor(readonly maxBytes: number) {
    super('FILE_TOO_LARGE', 413, `file is larger than the limit of ${maxBytes} bytes`, { maxBytes });
  }
}
/** The content type is not on the allowed list. */
export class FileTypeNotAllowedError extends FileError {
  constructor(readonly contentType: string) {
    super('FILE_TYPE_NOT_ALLOWED', 415, `content type ${JSON.stringify(contentType)} is not allowed`, { contentType });
  }
}
/** The bytes received do not hash to the sha256 the client declared. */
export class FileChecksumMismatchError extends FileError {
  constructor(readonly expected: string, readonly actual: string) {
    super('FILE_CHECKSUM_MISMATCH', 422, `sha256 of the received bytes is ${actual}, the client declared ${expected}`, { expected, actual });
  }
}
/** The upload ended early: fewer bytes than declared, or the connection was cut. */
export class FileTruncatedError extends FileError {
  constructor(readonly expectedBytes: number | null, readonly receivedBytes: number) {
    super('FILE_TRUNCATED', 400, `upload ended after ${receivedBytes} bytes${expectedBytes !== null ? ` of ${expectedBytes}` : ''}`, { expectedBytes, receivedBytes });
  }
}
/** No such file (or the caller may not know it exists). */
export class FileNotFoundError extends FileError {
  constructor(readonly key: string) {
    super('FILE_NOT_FOUND', 404, `no file ${key}`, { key });
  }
}
/** The upload request lacks something it needs (sha256, ws, ch, name). */
export class FileBadRequestError extends FileError {
  constructor(reason: string) {
    super('FILE_BAD_REQUEST', 400, reason);
  }
}
/** A signed download URL whose expiry has passed. */
export class FileUrlExpiredError extends FileError {
  constructor(readonly expiredAt: number) {
    super('FILE_URL_EXPIRED', 403, `this download link expired at ${new Date(expiredAt * 1000).toISOString()}; ask for a new one`, { expiredAt });
  }
}
/** A signed download URL whose signature does not match (tampered or from another secret). */
export class FileBadSignatureError extends FileError {
  constructor() {
    super('FILE_BAD_SIGNATURE', 403, 'the download link signature is invalid');
  }
}
