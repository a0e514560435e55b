// RFC 3261 §17.1.1.1 / Table 4 timer values and the clock they run on. Everything that waits in the engine goes
// through a TimerSource, so tests can inject short T1 values or drive the clock with vi.useFakeTimers().

export interface TimerHandle {
  unref?(): unknown;
}

/** A clock and a timer queue. The default calls the globals at call time, so vitest fake timers apply. */
export interface Scheduler {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  now(): number;
}

export interface SipTimerValues {
  /** RTT estimate, 500 ms (§17.1.1.1). */
  T1: number;
  /** Maximum retransmit interval for non-INVITE requests, 4 s. */
  T2: number;
  /** Maximum duration a message remains in the network, 5 s. */
  T4: number;
}

export interface SipTimers extends SipTimerValues {
  scheduler: Scheduler;
}

export const DEFAULT_TIMER_VALUES: Readonly<SipTimerValues> = Object.freeze({ T1: 500, T2: 4000, T4: 5000 });

export const globalScheduler: Scheduler = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
  now: () => Date.now(),
};

export function createTimers(over: Partial<SipTimers> = {}): SipTimers {
  const t: SipTimers = {
    T1: over.T1 ?? DEFAULT_TIMER_VALUES.T1,
    T2: over.T2 ?? DEFAULT_TIMER_VALUES.T2,
    T4: over.T4 ?? DEFAULT_TIMER_VALUES.T4,
    scheduler: over.scheduler ?? globalScheduler,
  };
  for (const k of ['T1', 'T2', 'T4'] as const) {
    if (!Number.isFinite(t[k]) || t[k] <= 0) throw new RangeError(`SIP timer ${k} must be a positive number of ms`);
  }
  return t;
}

/** Timer F / Timer J: 64*T1 (§17.1.2.2, §17.2.2). */
export function timerF(t: SipTimerValues): number {
  return 64 * t.T1;
}

export function timerJ(t: SipTimerValues, reliable: boolean): number {
  return reliable ? 0 : 64 * t.T1;
}

/** Timer K: T4 on unreliable transports, 0 on reliable ones (§17.1.2.2). */
export function timerK(t: SipTimerValues, reliable: boolean): number {
  return reliable ? 0 : t.T4;
}

/** Timer E after `interval`: doubles up to T2 in Trying; in Proceeding it is T2 (§17.1.2.2). */
export function nextTimerE(t: SipTimerValues, interval: number, proceeding: boolean): number {
  return proceeding ? t.T2 : Math.min(2 * interval, t.T2);
}

/**
 * Deadlines that all lie the same delay after they start (Timers F, J and K, the first Timer E, the guard on an
 * unanswered request), on one scheduler timer instead of one each. Items are kept in start order, which is
 * deadline order for a fixed delay, so only the head needs a timer. At thousands of transactions a second this
 * replaces a timer object, a closure and a clearTimeout per transaction by one Map entry.
 */
export class ExpiryQueue<T> {
  private readonly items = new Map<T, number>();
  private handle: TimerHandle | undefined;
  /** The deadline the armed timer stands for: once it fires that moment has come, even on a clock that lags. */
  private armedFor = 0;

  constructor(
    private readonly scheduler: Scheduler,
    readonly delayMs: number,
    private readonly onExpire: (item: T) => void,
    /** Whether a waiting deadline keeps the process alive (Timer F does; Timers J and K do not). */
    private readonly keepAlive = true,
  ) {}

  /** Start (or restart) the item's delay now. */
  add(item: T): void {
    const at = this.scheduler.now() + this.delayMs;
    this.items.delete(item);
    this.items.set(item, at);
    // The head may be older than this item (an add from inside onExpire, while earlier items still wait).
    if (this.handle === undefined) this.arm(this.items.values().next().value!, at - this.delayMs);
  }

  /** Forget the item; the timer goes when nothing is left, so an idle engine holds none. */
  delete(item: T): void {
    if (!this.items.delete(item) || this.items.size > 0 || this.handle === undefined) return;
    this.scheduler.clearTimeout(this.handle);
    this.handle = undefined;
  }

  has(item: T): boolean {
    return this.items.has(item);
  }

  get size(): number {
    return this.items.size;
  }

  /** The item that expires first, if any. */
  first(): T | undefined {
    const r = this.items.keys().next();
    return r.done === true ? undefined : r.value;
  }

  clear(): void {
    this.items.clear();
    if (this.handle !== undefined) this.scheduler.clearTimeout(this.handle);
    this.handle = undefined;
  }

  private arm(at: number, now: number): void {
    this.armedFor = at;
    const h = this.scheduler.setTimeout(this.fire, Math.max(0, at - now));
    if (!this.keepAlive) h.unref?.();
    this.handle = h;
  }

  private readonly fire = (): void => {
    this.handle = undefined;
    const now = Math.max(this.scheduler.now(), this.armedFor);
    for (const [item, at] of this.items) {
      if (at > now) break;
      this.items.delete(item);
      this.onExpire(item);
    }
    // onExpire may have added items (and so armed the timer) or removed them.
    if (this.handle !== undefined) return;
    const next = this.items.values().next();
    if (next.done !== true) this.arm(next.value, now);
  };
}
