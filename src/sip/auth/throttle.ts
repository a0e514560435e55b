// Brute-force back-off per source IP. After `failuresBeforeBlock` failed digest authentications within one window,
// the source is blocked for `blockMs`: the authenticator answers 403 at once, without touching the directory, so a
// password guesser learns nothing and costs us next to nothing. Both maps are capped, so a scan from many spoofed
// UDP sources can only evict old entries, never grow memory without bound.

/** Default cap on sources whose failures are being counted. */
export const DEFAULT_TRACKED_SOURCES = 100_000;
/** Default cap on sources blocked at the same time (kept apart so counting churn cannot evict a block). */
export const DEFAULT_BLOCKED_SOURCES = 20_000;

export interface ThrottleOptions {
  failuresBeforeBlock: number;
  blockMs: number;
  now?: () => number;
  maxTracked?: number;
  maxBlocked?: number;
}

export class AuthThrottle {
  private readonly now: () => number;
  private readonly maxTracked: number;
  private readonly maxBlocked: number;
  /** source -> failures in the current window; Map order is least recently failed first. */
  private readonly failures = new Map<string, { count: number; windowStart: number }>();
  /** source -> unix ms when the block ends. */
  private readonly blocked = new Map<string, number>();

  constructor(private readonly opts: ThrottleOptions) {
    this.now = opts.now ?? Date.now;
    this.maxTracked = opts.maxTracked ?? DEFAULT_TRACKED_SOURCES;
    this.maxBlocked = opts.maxBlocked ?? DEFAULT_BLOCKED_SOURCES;
  }

  isBlocked(source: string): boolean {
    const until = this.blocked.get(source);
    if (until === undefined) return false;
    if (this.now() < until) return true;
    this.blocked.delete(source);
    return false;
  }

  /** Count one failure. Returns true when this failure starts a block (the caller logs it, once per window). */
  recordFailure(source: string): boolean {
    const now = this.now();
    let entry = this.failures.get(source);
    if (entry && now - entry.windowStart >= this.opts.blockMs) entry = undefined;
    if (entry) this.failures.delete(source);
    else entry = { count: 0, windowStart: now };
    entry.count++;
    if (entry.count >= this.opts.failuresBeforeBlock) {
      this.failures.delete(source);
      this.block(source, now);
      return true;
    }
    while (this.failures.size >= this.maxTracked) this.failures.delete(this.failures.keys().next().value as string);
    this.failures.set(source, entry);
    return false;
  }

  private block(source: string, now: number): void {
    this.blocked.delete(source);
    if (this.blocked.size >= this.maxBlocked) {
      // Expired blocks go first; only then the one that ends soonest (the oldest insertion).
      for (const [s, until] of this.blocked) if (until <= now) this.blocked.delete(s);
      while (this.blocked.size >= this.maxBlocked) this.blocked.delete(this.blocked.keys().next().value as string);
    }
    this.blocked.set(source, now + this.opts.blockMs);
  }

  get trackedSources(): number {
    return this.failures.size;
  }

  get blockedSources(): number {
    return this.blocked.size;
  }
}
