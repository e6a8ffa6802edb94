import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ChorusError } from '../../runtime/index.ts';

/** What a token says about its bearer. */
export interface TokenClaims {
  /** User id. */
  readonly sub: string;
  /** Workspaces the user may use (the actors still check membership). */
  readonly ws: readonly string[];
  /** 'user' for chat clients, 'operator' for the inspector and admin endpoints. */
  readonly kind: 'user' | 'operator';
  /** Issued at, seconds since the epoch. */
  readonly iat: number;
  /** Expires at, seconds since the epoch. */
  readonly exp: number;
  /** Unique token id (revocation). */
  readonly jti: string;
}

/** Auth error codes. */
export const AUTH_ERRORS = Object.freeze({
  AUTH_MISSING: 'AUTH_MISSING',
  AUTH_MALFORMED: 'AUTH_MALFORMED',
  AUTH_BAD_SIGNATURE: 'AUTH_BAD_SIGNATURE',
  AUTH_EXPIRED: 'AUTH_EXPIRED',
  AUTH_REVOKED: 'AUTH_REVOKED',
  AUTH_FORBIDDEN: 'AUTH_FORBIDDEN',
});

/** Auth failures; the reason is in the code. */
export class AuthError extends ChorusError {
  constructor(code: keyof typeof AUTH_ERRORS, message: string) {
    super(code, message);
  }
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * Signed tokens: `base64url(JSON claims) "." base64url(HMAC-SHA256)`. Small,
 * dependency-free and enough for a shared secret between nodes; expiry is
 * checked with a little leeway for clock skew; revoked token ids are refused.
 */
export class TokenSigner {
  private readonly key: Buffer;
  private readonly revoked = new Map<string, number>();
  /** @param secret at least 16 characters; every node of a cluster uses the same. @param now clock in ms. */
  constructor(secret: string, private readonly now: () => number = Date.now, private readonly leewaySec = 5) {
    if (secret.length < 16) throw new TypeError('token secret must be at least 16 characters');
    this.key = Buffer.from(secret, 'utf8');
  }

  /** Issues a token valid for `ttlSec` (default 12 h). */
  sign(claims: { sub: string; ws: readonly string[]; kind?: 'user' | 'operator' }, ttlSec = 12 * 3600): string {
    const iat = Math.floor(this.now() / 1000);
    const body: TokenClaims = { sub: claims.sub, ws: [...claims.ws], kind: claims.kind ?? 'user', iat, exp: iat + ttlSec, jti: randomBytes(9).toString('base64url') };
    const payload = b64(JSON.stringify(body));
    return `${payload}.${this.mac(payload)}`;
  }

  /** Verifies a token and returns its claims, or throws AuthError saying why. */
  verify(token: string | undefined | null): TokenClaims {
    if (!token) throw new AuthError('AUTH_MISSING', 'no token');
    if (token.length > 4096) throw new AuthError('AUTH_MALFORMED', 'token too long');
    const dot = token.indexOf('.');
    if (dot <= 0 || dot !== token.lastIndexOf('.')) throw new AuthError('AUTH_MALFORMED', 'token is not payload.signature');
    const payload = token.slice(0, dot);
    // compare the canonical text, not decoded bytes: base64url's last character
    // has spare bits, and a tampered one must not decode to the same MAC
    const given = Buffer.from(token.slice(dot + 1), 'utf8');
    const want = Buffer.from(this.mac(payload), 'utf8');
    if (given.length !== want.length || !timingSafeEqual(given, want)) throw new AuthError('AUTH_BAD_SIGNATURE', 'token signature does not match');
    let c: TokenClaims;
    try {
      c = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
    } catch {
      throw new AuthError('AUTH_MALFORMED', 'token payload is not JSON');
    }
    if (typeof c.sub !== 'string' || !Array.isArray(c.ws) || typeof c.exp !== 'number' || (c.kind !== 'user' && c.kind !== 'operator')) {
      throw new AuthError('AUTH_MALFORMED', 'token claims are incomplete');
    }
    if (c.exp + this.leewaySec < this.now() / 1000) throw new AuthError('AUTH_EXPIRED', `token expired at ${new Date(c.exp * 1000).toISOString()}`);
    if (this.revoked.has(c.jti)) throw new AuthError('AUTH_REVOKED', 'token was revoked');
    return c;
  }

  /** The moment (ms since the epoch) after which `verify` refuses these claims as expired. */
  expiresAtMs(claims: Pick<TokenClaims, 'exp'>): number {
    return (claims.exp + this.leewaySec) * 1000;
  }

  /** Refuses a token id from now on (until its expiry). */
  revoke(claims: Pick<TokenClaims, 'jti' | 'exp'>): void {
    this.revoked.set(claims.jti, claims.exp);
    const nowSec = this.now() / 1000;
    for (const [j, exp] of this.revoked) if (exp + this.leewaySec < nowSec) this.revoked.delete(j);
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}

/** The bearer token of an HTTP request: `Authorization: Bearer ...`, else the `token` query parameter (browsers cannot set WebSocket headers). */
export function bearerOf(headers: Record<string, string | string[] | undefined>, url: URL): string | undefined {
  const h = headers.authorization;
  const v = Array.isArray(h) ? h[0] : h;
  if (v?.startsWith('Bearer ')) return v.slice(7).trim();
  return url.searchParams.get('token') ?? undefined;
}
