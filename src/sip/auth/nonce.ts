// Stateless digest nonces (RFC 7616 §3.3, RFC 3261 §22.4): the nonce carries its own issue time and an HMAC-SHA256
// tag over it under a server secret kept in the database, so any node sharing the database can verify a nonce
// without remembering it. Only the nonce-count (RFC 7616 §3.4: nc must grow per nonce) needs state, and that state
// is a bounded map that fails safe: a nonce whose count was forgotten is answered stale, never accepted twice.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../../store/db.js';

/** Default cap on nonces whose highest nonce-count is remembered (each entry is a few dozen bytes). */
export const DEFAULT_TRACKED_NONCES = 50_000;

const SECRET_NAME = 'digest-nonce';
const SECRET_BYTES = 32;
const TS_BYTES = 8;
const RANDOM_BYTES = 8;
const TAG_BYTES = 16;
const NONCE_BYTES = TS_BYTES + RANDOM_BYTES + TAG_BYTES;
/** Tolerated clock difference between nodes sharing a database, for nonces stamped a little in the future. */
const CLOCK_SKEW_MS = 5_000;

/** The server secret for nonces, created on first start and kept in the database (never logged). */
export function loadNonceSecret(db: Db, random: (n: number) => Buffer = randomBytes): Buffer {
  db.prepare('INSERT OR IGNORE INTO server_secrets (name, value, created_at) VALUES (?, ?, ?)')
    .run(SECRET_NAME, random(SECRET_BYTES), Date.now());
  const row = db.prepare('SELECT value FROM server_secrets WHERE name = ?').get(SECRET_NAME) as { value: Buffer };
  return row.value;
}

export type NonceCheck =
  | { status: 'valid'; issuedAt: number }
  | { status: 'stale'; issuedAt: number }
  | { status: 'invalid' };

export interface NonceOptions {
  /** Lifetime in seconds (config.sip.nonceTtl); older nonces are answered with stale=true. */
  ttlSeconds: number;
  now?: () => number;
  random?: (n: number) => Buffer;
  maxTracked?: number;
}

export class NonceService {
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly random: (n: number) => Buffer;
  private readonly maxTracked: number;
  /** nonce -> highest nonce-count accepted, in first-use order (oldest first). */
  private readonly counts = new Map<string, { nc: number; issuedAt: number }>();
  /** Nonces issued at or before this time and no longer tracked are treated as stale (their counts were evicted). */
  private evictedThrough = -Infinity;

  constructor(private readonly secret: Buffer, opts: NonceOptions) {
    this.ttlMs = opts.ttlSeconds * 1000;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? randomBytes;
    this.maxTracked = opts.maxTracked ?? DEFAULT_TRACKED_NONCES;
  }

  private tag(head: Buffer): Buffer {
    return createHmac('sha256', this.secret).update(head).digest().subarray(0, TAG_BYTES);
  }

  issue(): string {
    const head = Buffer.alloc(TS_BYTES + RANDOM_BYTES);
    head.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(this.now()))), 0);
    this.random(RANDOM_BYTES).copy(head, TS_BYTES);
    return Buffer.concat([head, this.tag(head)]).toString('base64url');
  }

  /** Whether the nonce is ours (HMAC) and still fresh. */
  check(nonce: string): NonceCheck {
    if (nonce.length !== Math.ceil((NONCE_BYTES * 4) / 3) || !/^[A-Za-z0-9_-]+$/.test(nonce)) return { status: 'invalid' };
    const raw = Buffer.from(nonce, 'base64url');
    if (raw.length !== NONCE_BYTES) return { status: 'invalid' };
    const head = raw.subarray(0, TS_BYTES + RANDOM_BYTES);
    if (!timingSafeEqual(raw.subarray(TS_BYTES + RANDOM_BYTES), this.tag(head))) return { status: 'invalid' };
    const issuedAt = Number(raw.readBigUInt64BE(0));
    const now = this.now();
    if (issuedAt > now + CLOCK_SKEW_MS) return { status: 'invalid' };
    if (now - issuedAt > this.ttlMs) return { status: 'stale', issuedAt };
    if (issuedAt <= this.evictedThrough && !this.counts.has(nonce)) return { status: 'stale', issuedAt };
    return { status: 'valid', issuedAt };
  }

  /**
   * Record nonce-count `nc` for a nonce whose digest response has been verified. False when nc is not greater than
   * the highest already accepted for that nonce: a replay (RFC 7616 §3.4, §5.12). Only call it after verifying the
   * response, so forged requests cannot push the count up and lock the real client out.
   */
  acceptCount(nonce: string, issuedAt: number, nc: number): boolean {
    const seen = this.counts.get(nonce);
    if (seen) {
      if (nc <= seen.nc) return false;
      seen.nc = nc;
      return true;
    }
    if (issuedAt <= this.evictedThrough) return false;
    this.prune();
    this.counts.set(nonce, { nc, issuedAt });
    return true;
  }

  get tracked(): number {
    return this.counts.size;
  }

  /** Drop expired entries (they are refused as stale anyway), then evict the oldest past the cap. */
  private prune(): void {
    const now = this.now();
    for (const [nonce, e] of this.counts) {
      if (now - e.issuedAt > this.ttlMs) this.counts.delete(nonce);
      else break;
    }
    while (this.counts.size >= this.maxTracked) {
      const first = this.counts.entries().next().value as [string, { issuedAt: number }];
      this.counts.delete(first[0]);
      this.evictedThrough = Math.max(this.evictedThrough, first[1].issuedAt);
    }
  }
}
