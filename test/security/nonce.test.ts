import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { NonceService, loadNonceSecret } from '../../src/sip/auth/nonce.js';
import { openDatabase } from '../../src/store/db.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('stateless nonces', () => {
  const secret = randomBytes(32);

  it('verifies its own nonces and refuses forged or altered ones', () => {
    let now = 1_700_000_000_000;
    const n = new NonceService(secret, { ttlSeconds: 300, now: () => now });
    const nonce = n.issue();
    expect(n.check(nonce).status).toBe('valid');
    // Another server secret, or one flipped character, is not ours.
    expect(new NonceService(randomBytes(32), { ttlSeconds: 300, now: () => now }).check(nonce).status).toBe('invalid');
    const flipped = (nonce[5] === 'A' ? 'B' : 'A');
    expect(n.check(nonce.slice(0, 5) + flipped + nonce.slice(6)).status).toBe('invalid');
    expect(n.check('').status).toBe('invalid');
    expect(n.check('x'.repeat(5000)).status).toBe('invalid');
    expect(n.issue()).not.toBe(nonce);
  });

  it('goes stale after the TTL', () => {
    let now = 1_700_000_000_000;
    const n = new NonceService(secret, { ttlSeconds: 300, now: () => now });
    const nonce = n.issue();
    now += 300_000;
    expect(n.check(nonce).status).toBe('valid');
    now += 1;
    expect(n.check(nonce).status).toBe('stale');
  });

  it('refuses a nonce-count that does not grow', () => {
    const now = 1_700_000_000_000;
    const n = new NonceService(secret, { ttlSeconds: 300, now: () => now });
    const nonce = n.issue();
    expect(n.acceptCount(nonce, now, 1)).toBe(true);
    expect(n.acceptCount(nonce, now, 1)).toBe(false);
    expect(n.acceptCount(nonce, now, 3)).toBe(true);
    expect(n.acceptCount(nonce, now, 2)).toBe(false);
    expect(n.acceptCount(nonce, now, 4)).toBe(true);
  });

  it('stays bounded, and a nonce whose count was evicted is stale, never replayable', () => {
    let now = 1_700_000_000_000;
    const n = new NonceService(secret, { ttlSeconds: 300, now: () => now, maxTracked: 100 });
    const first = n.issue();
    expect(n.check(first).status).toBe('valid');
    expect(n.acceptCount(first, now, 1)).toBe(true);
    for (let i = 0; i < 500; i++) {
      now += 1;
      const x = n.issue();
      n.acceptCount(x, now, 1);
    }
    expect(n.tracked).toBeLessThanOrEqual(100);
    expect(n.check(first).status).toBe('stale');
    expect(n.acceptCount(first, 1_700_000_000_000, 1)).toBe(false);
  });

  it('keeps one secret per database, created on first start', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lamplighter-nonce-'));
    const file = join(dir, 'test.sqlite');
    try {
      const db = openDatabase(file);
      const a = loadNonceSecret(db);
      db.close();
      const db2 = openDatabase(file);
      const b = loadNonceSecret(db2);
      db2.close();
      expect(a.length).toBe(32);
      expect(b.equals(a)).toBe(true);
      const other = openDatabase(':memory:');
      expect(loadNonceSecret(other).equals(a)).toBe(false);
      other.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
