// API credentials: account API keys (Kazoo's 64-hex `api_key`) and the auth tokens that PUT /v2/api_auth and
// PUT /v2/user_auth hand out. Both are 256 random bits, shown to their owner once, and stored only as SHA-256
// hashes (a leaked database gives no usable key or token). The row is found by its hash and the hash is compared
// again in constant time, so neither lookup timing nor comparison leaks a prefix.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from './db.js';

export type TokenMethod = 'api_key' | 'user_auth';

export interface TokenInfo {
  accountId: string;
  ownerId: string | null;
  method: TokenMethod;
  /** Unix ms. */
  createdAt: number;
  /** Unix ms. */
  expiresAt: number;
}

export interface TokenStoreOptions {
  /** Token lifetime in seconds (config.api.tokenTtl). */
  ttlSeconds: number;
  now?: () => number;
  random?: (bytes: number) => Buffer;
}

const hashOf = (secret: string) => createHash('sha256').update(secret, 'utf8').digest('hex');

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** 256 random bits as 64 lower-case hex characters (Kazoo's api_key length). */
const SECRET_BYTES = 32;
const SECRET_PATTERN = /^[0-9a-f]{64}$/;

export class TokenStore {
  private readonly now: () => number;
  private readonly random: (bytes: number) => Buffer;
  private readonly s;

  constructor(db: Db, private readonly opts: TokenStoreOptions) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? randomBytes;
    this.s = {
      insertKey: db.prepare('INSERT INTO api_keys (key_hash, account_id, created_at) VALUES (?, ?, ?)'),
      deleteKeys: db.prepare('DELETE FROM api_keys WHERE account_id = ?'),
      keyByHash: db.prepare<[string], { key_hash: string; account_id: string }>('SELECT key_hash, account_id FROM api_keys WHERE key_hash = ?'),
      insertToken: db.prepare('INSERT INTO auth_tokens (token_hash, account_id, owner_id, method, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)'),
      tokenByHash: db.prepare<[string], { token_hash: string; account_id: string; owner_id: string | null; method: TokenMethod; created_at: number; expires_at: number }>(
        'SELECT * FROM auth_tokens WHERE token_hash = ?'),
      deleteToken: db.prepare('DELETE FROM auth_tokens WHERE token_hash = ?'),
      purge: db.prepare('DELETE FROM auth_tokens WHERE expires_at <= ?'),
    };
  }

  private secret(): string {
    return this.random(SECRET_BYTES).toString('hex');
  }

  /** A new API key for the account; with `replace`, every older key of the account stops working. */
  issueApiKey(accountId: string, opts: { replace?: boolean } = {}): string {
    const key = this.secret();
    if (opts.replace) this.s.deleteKeys.run(accountId);
    this.s.insertKey.run(hashOf(key), accountId, this.now());
    return key;
  }

  accountForApiKey(key: string): string | undefined {
    if (!SECRET_PATTERN.test(key)) return undefined;
    const h = hashOf(key);
    const row = this.s.keyByHash.get(h);
    return row && sameHash(row.key_hash, h) ? row.account_id : undefined;
  }

  issueToken(accountId: string, ownerId: string | null, method: TokenMethod): { token: string; info: TokenInfo } {
    const now = this.now();
    this.s.purge.run(now);
    const token = this.secret();
    const info: TokenInfo = { accountId, ownerId, method, createdAt: now, expiresAt: now + this.opts.ttlSeconds * 1000 };
    this.s.insertToken.run(hashOf(token), accountId, ownerId, method, info.createdAt, info.expiresAt);
    return { token, info };
  }

  /** The token's grant, or undefined when it is unknown, malformed or expired. */
  verifyToken(token: string): TokenInfo | undefined {
    if (!SECRET_PATTERN.test(token)) return undefined;
    const h = hashOf(token);
    const row = this.s.tokenByHash.get(h);
    if (!row || !sameHash(row.token_hash, h)) return undefined;
    if (row.expires_at <= this.now()) return undefined;
    return { accountId: row.account_id, ownerId: row.owner_id, method: row.method, createdAt: row.created_at, expiresAt: row.expires_at };
  }

  revokeToken(token: string): boolean {
    if (!SECRET_PATTERN.test(token)) return false;
    return this.s.deleteToken.run(hashOf(token)).changes > 0;
  }
}
