// Overload control for UDP (RFC 5390 §3, §5): a UDP client that hears nothing for T1 (500 ms) sends its request
// again, and again, so a server that lets its receive queue grow past T1 spends its time on copies and on requests
// whose senders have given up, and its goodput falls far below what it can do (a 6000/s SUBSCRIBE load on a
// server that handles 3400/s completed a third of its calls, with 100 000 retransmissions). The queue is the
// socket's receive buffer, which Node does not let us see; so each UDP transport sends itself a small probe every
// PROBE_INTERVAL_MS and reads how long it waited behind everything received before it. Once that delay is above
// sip.limits.maxQueueDelayMs and growing, requests that would start new work are answered 503 with Retry-After at
// once (RFC 3261 §21.5.4), which costs a parse and a send instead of a transaction, a commit and a NOTIFY.

/** How often each UDP socket measures its own queue delay. */
export const PROBE_INTERVAL_MS = 50;

/**
 * The shed / accept decision from the probes' delays. It starts shedding when two probes in a row waited longer
 * than the limit and the second waited longer than the first: the queue is growing, arrivals outrun the server.
 * A queue that is long but draining (what one stall, a GC or a checkpoint, leaves behind at a high but bearable
 * load: in the bench, PUBLISH at 5000/s on 0.77 cores gave probes of 127 ms) is served, not shed, since it will be
 * answered before T1. Shedding stops at the first probe that waited less than half the limit, so the gate does not
 * flap around it.
 */
export class QueueDelayGate {
  private previous = 0;
  private on = false;
  /** The last probe's wait, ms. */
  lastDelayMs = 0;

  /** limitMs 0 turns the gate off (it never sheds). */
  constructor(private readonly limitMs: number) {}

  observe(delayMs: number): void {
    const previous = this.previous;
    this.previous = delayMs;
    this.lastDelayMs = delayMs;
    if (this.limitMs <= 0) return;
    if (delayMs > this.limitMs && previous > this.limitMs && delayMs > previous) this.on = true;
    else if (delayMs < this.limitMs / 2) this.on = false;
  }

  get shedding(): boolean {
    return this.on;
  }
}
