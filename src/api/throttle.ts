// Online guessing of API keys or user_auth credentials: after `maxFailures` failed logins from one source address,
// that source gets 429 too_many_requests (Kazoo's system error) with Retry-After until the window passes, without
// touching the store. The table is bounded; when full, the oldest entry is dropped.
import { isIPv6 } from 'node:net';
import { ApiError } from './envelope.js';

export const MAX_TRACKED_SOURCES = 10_000;

/** IPv4 (also v4-mapped) counts per address; IPv6 per /64, the block one host is usually given to rotate in. */
export function sourceKey(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1];
  if (!isIPv6(ip)) return ip;
  const [head, tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return `${groups.slice(0, 4).map((g) => parseInt(g || '0', 16).toString(16)).join(':')}::/64`;
}

interface Entry { failures: number; windowStart: number; blockedUntil: number }

export class LoginThrottle {
  private readonly sources = new Map<string, Entry>();
  constructor(private readonly opts: { maxFailures: number; blockSeconds: number; now: () => number }) {}

  /** Throws 429 while the source is blocked. */
  check(ip: string): void {
    const e = this.sources.get(sourceKey(ip));
    const now = this.opts.now();
    if (e && e.blockedUntil > now) {
      const retry = Math.ceil((e.blockedUntil - now) / 1000);
      const err = new ApiError(429, 'too_many_requests', { message: 'too many requests' });
      (err as ApiError & { retryAfter?: number }).retryAfter = retry;
      throw err;
    }
  }

  failed(ip: string): void {
    const source = sourceKey(ip);
    const now = this.opts.now();
    const windowMs = this.opts.blockSeconds * 1000;
    let e = this.sources.get(source);
    if (!e || now - e.windowStart > windowMs) {
      e = { failures: 0, windowStart: now, blockedUntil: 0 };
      if (this.sources.size >= MAX_TRACKED_SOURCES) this.sources.delete(this.sources.keys().next().value as string);
    }
    this.sources.delete(source);
    this.sources.set(source, e);
    e.failures++;
    if (e.failures >= this.opts.maxFailures) {
      e.blockedUntil = now + windowMs;
      e.failures = 0;
      e.windowStart = now;
    }
  }

  succeeded(ip: string): void {
    this.sources.delete(sourceKey(ip));
  }
}
