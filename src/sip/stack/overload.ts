// Overload control for UDP (RFC 5390 §3, §5): a UDP client that hears nothing for T1 (500 ms) sends its request
// again, and again, so a server that lets its receive queue grow past T1 spends its time on copies and on requests
// whose senders have given up, and its goodput falls far below what it can do (a 6000/s SUBSCRIBE load on a
// server that handles 3400/s completed a third of its calls, with 100 000 retransmissions). The queue is the
// socket's receive buffer, which Node does not let us see; so each UDP transport sends itself a small probe every
// PROBE_INTERVAL_MS and reads how long it waited behind everything received before it. While that delay stays
// above sip.limits.maxQueueDelayMs, requests that would start new work are answered 503 with Retry-After at once
// (RFC 3261 §21.5.4), which costs a parse and a send instead of a transaction, a commit and a NOTIFY.

/** How often each UDP socket measures its own queue delay. */
export const PROBE_INTERVAL_MS = 50;

/**
 * The shed / accept decision from the probes' delays. It starts shedding after LATE_PROBES probes in a row waited
 * longer than the limit (one event-loop stall makes one late probe; an overload makes them all late), and stops at
 * the first probe that waited less than half of it, so it does not flap around the limit.
 */
export class QueueDelayGate {
  static readonly LATE_PROBES = 2;
  private late = 0;
  private on = false;
  /** The last probe's wait, ms. */
  lastDelayMs = 0;

  /** limitMs 0 turns the gate off (it never sheds). */
  constructor(private readonly limitMs: number) {}

  observe(delayMs: number): void {
    this.lastDelayMs = delayMs;
    if (this.limitMs <= 0) return;
    if (delayMs > this.limitMs) {
      if (++this.late >= QueueDelayGate.LATE_PROBES) this.on = true;
      return;
    }
    this.late = 0;
    if (delayMs < this.limitMs / 2) this.on = false;
  }

  get shedding(): boolean {
    return this.on;
  }
}
