/**
 * The management API's bearer token check: both sides hashed to fixed-length SHA-256 digests,
 * compared with `crypto.timingSafeEqual`, so neither the token's content nor its length shows in
 * the time an answer takes.
 *
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** The outcome of {@link BearerCheck.check}. */
export type AuthOutcome = 'ok' | 'missing' | 'wrong' | 'unset';

/** @internal The bearer check of one server. */
export class BearerCheck {
  private readonly digest: Buffer | undefined;

  /** @param token - the configured token; undefined: no request is authorized (`unset`). */
  constructor(token: string | undefined) {
    this.digest = token === undefined ? undefined : sha256(token);
  }

  /** Checks an `Authorization` header value. */
  check(header: string | undefined): AuthOutcome {
    if (this.digest === undefined) return 'unset';
    if (header === undefined) return 'missing';
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (match === null) return 'missing';
    return timingSafeEqual(sha256(match[1]!), this.digest) ? 'ok' : 'wrong';
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
