// Online guessing of API keys or user_auth credentials: after `maxFailures` failed logins from one source address,
// that source gets 429 too_many_requests (Kazoo's system error) with Retry-After until the window passes, without
// touching the store. The table is bounded; when full, the oldest entry is dropped.
import { ApiError } from './envelope.js';

export const MAX_TRACKED_SOURCES = 10_000;

interface Entry { failures: number; windowStart: number; blockedUntil: number }

export class LoginThrottle {
  private readonly sources = new Map<string, Entry>();
  constructor(private readonly opts: { maxFailures: number; blockSeconds: number; now: () => number }) {}

  /** Throws 429 while the source is blocked. */
  check(source: string): void {
    const e = this.sources.get(source);
    const now = this.opts.now();
    if (e && e.blockedUntil > now) {
      const retry = Math.ceil((e.blockedUntil - now) / 1000);
      const err = new ApiError(429, 'too_many_requests', { message: 'too many requests' });
      (err as ApiError & { retryAfter?: number }).retryAfter = retry;
      throw err;
    }
  }

  failed(source: string): void {
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

  succeeded(source: string): void {
    this.sources.delete(source);
  }
}
