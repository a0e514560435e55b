// Non-INVITE client transactions (RFC 3261 §17.1.2), used for the NOTIFYs we send. Over UDP the request is
// retransmitted on Timer E (T1, doubling up to T2 in Trying, every T2 in Proceeding); Timer F (64*T1) ends the
// wait with a local 408 on every transport; Completed absorbs retransmitted responses for Timer K (T4 on UDP, 0 on
// TCP/WS). Responses are matched on the top Via branch and the CSeq method (§17.1.3).
import type { RequestOutcome } from '../port.js';
import type { SipResponse } from './message.js';
import { nextTimerE, timerF, timerK, type SipTimers, type TimerHandle } from './timers.js';

export type ClientTxState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/** §17.1.3: branch of the top Via + CSeq method. */
export function clientTransactionKey(branch: string, method: string): string {
  return `${branch}\u0000${method}`;
}

export interface ClientTxOptions {
  key: string;
  request: Buffer;
  reliable: boolean;
  timers: SipTimers;
  /**
   * Write the request; false or a rejected promise means the transport failed (§17.1.4). On the first
   * transmission `report` is given too: a transport that learns the result later (UDP's send callback) returns
   * undefined and calls it instead, without a promise per request.
   */
  send(data: Buffer, report?: (ok: boolean) => void): boolean | Promise<boolean> | undefined;
  onRetransmit?(): void;
  onTerminated(tx: NonInviteClientTransaction): void;
}

export class NonInviteClientTransaction {
  state: ClientTxState = 'trying';
  readonly key: string;
  readonly outcome: Promise<RequestOutcome>;
  private resolveOutcome!: (o: RequestOutcome) => void;
  private timerE: TimerHandle | undefined;
  private timerF: TimerHandle | undefined;
  private timerK: TimerHandle | undefined;
  private intervalE: number;

  constructor(private readonly opts: ClientTxOptions) {
    this.key = opts.key;
    this.intervalE = opts.timers.T1;
    this.outcome = new Promise((resolve) => { this.resolveOutcome = resolve; });
  }

  /** Send the request for the first time and start Timers E (UDP only) and F. */
  start(): void {
    const { scheduler } = this.opts.timers;
    this.timerF = scheduler.setTimeout(() => this.onTimerF(), timerF(this.opts.timers));
    if (!this.opts.reliable) this.timerE = scheduler.setTimeout(() => this.onTimerE(), this.intervalE);
    this.transmit(true);
  }

  // A failed retransmission over UDP is not fatal: the next one or Timer F decides (§17.1.4 is about the
  // transport reporting failure for the request as such, which we take from the first send).
  private readonly onFirstSent = (ok: boolean): void => {
    if (!ok) this.transportError();
  };

  private transmit(first: boolean): void {
    let r: boolean | Promise<boolean> | undefined;
    try {
      r = first ? this.opts.send(this.opts.request, this.onFirstSent) : this.opts.send(this.opts.request);
    } catch {
      r = false;
    }
    if (r === undefined || !first) return;
    if (typeof r === 'boolean') this.onFirstSent(r);
    else r.then(this.onFirstSent, () => this.onFirstSent(false));
  }

  private onTimerE(): void {
    this.timerE = undefined;
    if (this.state !== 'trying' && this.state !== 'proceeding') return;
    this.opts.onRetransmit?.();
    this.transmit(false);
    this.intervalE = nextTimerE(this.opts.timers, this.intervalE, this.state === 'proceeding');
    this.timerE = this.opts.timers.scheduler.setTimeout(() => this.onTimerE(), this.intervalE);
  }

  private onTimerF(): void {
    this.timerF = undefined;
    if (this.state !== 'trying' && this.state !== 'proceeding') return;
    this.finish({ status: 408, reason: 'Request Timeout', local: 'timeout' });
    this.terminate();
  }

  /** A response matched this transaction. */
  receiveResponse(res: SipResponse): void {
    if (this.state === 'completed' || this.state === 'terminated') return; // retransmitted response: absorbed
    if (res.status < 200) {
      if (this.state === 'trying') {
        this.state = 'proceeding';
        // §17.1.2.2: in Proceeding, Timer E fires every T2.
        if (!this.opts.reliable && this.timerE !== undefined) {
          this.opts.timers.scheduler.clearTimeout(this.timerE);
          this.intervalE = this.opts.timers.T2;
          this.timerE = this.opts.timers.scheduler.setTimeout(() => this.onTimerE(), this.intervalE);
        }
      }
      return;
    }
    this.finish({ status: res.status, reason: res.reason, response: res });
    this.state = 'completed';
    const k = timerK(this.opts.timers, this.opts.reliable);
    if (k === 0) {
      this.terminate();
      return;
    }
    this.timerK = this.opts.timers.scheduler.setTimeout(() => this.terminate(), k);
    this.timerK.unref?.();
  }

  /** The transport could not deliver the request (§17.1.4), or the connection it was sent on closed. */
  transportError(): void {
    if (this.state !== 'trying' && this.state !== 'proceeding') return;
    this.finish({ status: 503, reason: 'Service Unavailable', local: 'transport-error' });
    this.terminate();
  }

  /**
   * Give up now (engine stop): we close the transport ourselves, so the outcome is a local transport error, not a
   * timeout that would count against the watcher.
   */
  abort(): void {
    if (this.state === 'trying' || this.state === 'proceeding') this.finish({ status: 503, reason: 'Service Unavailable', local: 'transport-error' });
    this.terminate();
  }

  get inFlight(): boolean {
    return this.state === 'trying' || this.state === 'proceeding';
  }

  private finish(o: RequestOutcome): void {
    this.clearRetransmitTimers();
    this.resolveOutcome(o);
  }

  private clearRetransmitTimers(): void {
    const s = this.opts.timers.scheduler;
    if (this.timerE !== undefined) s.clearTimeout(this.timerE);
    if (this.timerF !== undefined) s.clearTimeout(this.timerF);
    this.timerE = undefined;
    this.timerF = undefined;
  }

  terminate(): void {
    if (this.state === 'terminated') return;
    this.state = 'terminated';
    this.clearRetransmitTimers();
    if (this.timerK !== undefined) this.opts.timers.scheduler.clearTimeout(this.timerK);
    this.timerK = undefined;
    this.opts.onTerminated(this);
  }
}

export class ClientTransactionTable {
  private readonly byKey = new Map<string, NonInviteClientTransaction>();

  create(opts: Omit<ClientTxOptions, 'onTerminated'>): NonInviteClientTransaction {
    const tx = new NonInviteClientTransaction({
      ...opts,
      onTerminated: (t) => { if (this.byKey.get(t.key) === t) this.byKey.delete(t.key); },
    });
    this.byKey.set(opts.key, tx);
    return tx;
  }

  get(key: string): NonInviteClientTransaction | undefined {
    return this.byKey.get(key);
  }

  inFlight(): NonInviteClientTransaction[] {
    return [...this.byKey.values()].filter((t) => t.inFlight);
  }

  /** Client transactions held (in flight, or completed and waiting out Timer K). */
  get size(): number {
    return this.byKey.size;
  }

  abortAll(): void {
    for (const tx of [...this.byKey.values()]) tx.abort();
  }
}
