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
