import { describe, expect, it } from 'vitest';
import { AuthThrottle } from '../../src/sip/auth/throttle.js';

describe('brute-force back-off', () => {
  it('blocks after N failures for the window, then recovers', () => {
    let now = 0;
    const t = new AuthThrottle({ failuresBeforeBlock: 3, blockMs: 60_000, now: () => now });
    expect(t.recordFailure('192.0.2.1')).toBe(false);
    expect(t.recordFailure('192.0.2.1')).toBe(false);
    expect(t.isBlocked('192.0.2.1')).toBe(false);
    expect(t.recordFailure('192.0.2.1')).toBe(true);
    expect(t.isBlocked('192.0.2.1')).toBe(true);
    expect(t.isBlocked('192.0.2.2')).toBe(false);
    now += 59_999;
    expect(t.isBlocked('192.0.2.1')).toBe(true);
    now += 1;
    expect(t.isBlocked('192.0.2.1')).toBe(false);
    // The count starts afresh after a block.
    expect(t.recordFailure('192.0.2.1')).toBe(false);
  });

  it('forgets failures spread wider than one window', () => {
    let now = 0;
    const t = new AuthThrottle({ failuresBeforeBlock: 3, blockMs: 10_000, now: () => now });
    t.recordFailure('a');
    t.recordFailure('a');
    now += 10_000;
    expect(t.recordFailure('a')).toBe(false);
    expect(t.isBlocked('a')).toBe(false);
  });

  it('stays bounded under a scan of many sources, and keeps its blocks', () => {
    let now = 0;
    const t = new AuthThrottle({ failuresBeforeBlock: 2, blockMs: 60_000, now: () => now, maxTracked: 1000, maxBlocked: 100 });
    t.recordFailure('attacker');
    t.recordFailure('attacker');
    for (let i = 0; i < 50_000; i++) t.recordFailure(`10.0.${i >> 8}.${i & 255}`);
    expect(t.trackedSources).toBeLessThanOrEqual(1000);
    expect(t.isBlocked('attacker')).toBe(true);
    for (let i = 0; i < 1000; i++) { t.recordFailure(`b${i}`); t.recordFailure(`b${i}`); }
    expect(t.blockedSources).toBeLessThanOrEqual(100);
  });
});
