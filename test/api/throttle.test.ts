// The API login throttle on its own: per-source counting (IPv6 per /64), the block window, the bounded table.
import { describe, expect, it } from 'vitest';
import { LoginThrottle, MAX_TRACKED_SOURCES, sourceKey } from '../../src/api/throttle.js';
import { ApiError } from '../../src/api/envelope.js';

describe('LoginThrottle', () => {
  it('keys IPv4 per address (v4-mapped too) and IPv6 per /64', () => {
    expect(sourceKey('192.0.2.1')).toBe('192.0.2.1');
    expect(sourceKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(sourceKey('2001:db8:1:2::1')).toBe(sourceKey('2001:0db8:0001:0002:ffff:0:0:9'));
    expect(sourceKey('2001:db8:1:2::1')).not.toBe(sourceKey('2001:db8:1:3::1'));
  });

  it('blocks after maxFailures, also for a rotated IPv6 address in the same /64, and lifts after the window', () => {
    const clock = { now: 0 };
    const t = new LoginThrottle({ maxFailures: 3, blockSeconds: 10, now: () => clock.now });
    for (const ip of ['2001:db8:7:7::1', '2001:db8:7:7::2', '2001:db8:7:7::3']) { t.check(ip); t.failed(ip); }
    expect(() => t.check('2001:db8:7:7:abcd::99')).toThrowError(ApiError);
    expect(() => t.check('2001:db8:7:8::1')).not.toThrow();
    clock.now = 10_001;
    expect(() => t.check('2001:db8:7:7::1')).not.toThrow();
  });

  it('a success clears the count; the table stays bounded', () => {
    const t = new LoginThrottle({ maxFailures: 2, blockSeconds: 10, now: () => 0 });
    t.failed('192.0.2.9'); t.succeeded('192.0.2.9'); t.failed('192.0.2.9');
    expect(() => t.check('192.0.2.9')).not.toThrow();
    for (let i = 0; i < MAX_TRACKED_SOURCES + 10; i++) t.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect((t as unknown as { sources: Map<string, unknown> }).sources.size).toBe(MAX_TRACKED_SOURCES);
  });
});
