// Non-INVITE client transactions (RFC 3261 §17.1.2), used for the NOTIFYs we send. Over UDP the request is
// retransmitted on Timer E (T1, doubling up to T2 in Trying, every T2 in Proceeding); Timer F (64*T1) ends the
// wait with a local 408 on every transport; Completed absorbs retransmitted responses for Timer K (T4 on UDP, 0 on
// TCP/WS). Responses are matched on the top Via branch and the CSeq method (§17.1.3).
//
// Timer F, Timer K and the first Timer E have a fixed delay, so the table runs each on one ExpiryQueue rather than
// a timer per transaction: a NOTIFY fan-out starts thousands of transactions in one turn. Only the later Timer E
// intervals (a watcher that did not answer within T1) get timers of their own.
import type { RequestOutcome } from '../port.js';
import type { SipResponse } from './message.js';
import { ExpiryQueue, nextTimerE, timerF, timerK, type SipTimers, type TimerHandle } from './timers.js';

export type ClientTxState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/** §17.1.3: branch of the top Via + CSeq method. */
export function clientTransactionKey(branch: string, method: string): string {
  // join makes one flat string: a concatenation would be kept as a tree of pieces for as long as the key (Timer K).
  return [branch, method].join('\u0000');
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
  /** The transaction has its outcome (an answer, Timer F, a transport error or abort): it is no longer in flight. */
  onFinished?(tx: NonInviteClientTransaction): void;
  onTerminated(tx: NonInviteClientTransaction): void;
}

/** The fixed-delay timers of the transactions that share one SipTimers. */
class ClientTimerQueues {
  readonly e: ExpiryQueue<NonInviteClientTransaction>;
  readonly f: ExpiryQueue<NonInviteClientTransaction>;
  readonly k: ExpiryQueue<NonInviteClientTransaction>;
  constructor(t: SipTimers) {
    this.e = new ExpiryQueue(t.scheduler, t.T1, (tx) => tx.onTimerE());
    this.f = new ExpiryQueue(t.scheduler, timerF(t), (tx) => tx.onTimerF());
    this.k = new ExpiryQueue(t.scheduler, timerK(t, false), (tx) => tx.terminate(), false);
  }
  clear(): void {
    this.e.clear();
    this.f.clear();
    this.k.clear();
  }
}

const queuesByTimers = new WeakMap<SipTimers, ClientTimerQueues>();

function queuesFor(t: SipTimers): ClientTimerQueues {
  let q = queuesByTimers.get(t);
  if (q === undefined) queuesByTimers.set(t, (q = new ClientTimerQueues(t)));
  return q;
}

export class NonInviteClientTransaction {
  state: ClientTxState = 'trying';
  readonly key: string;
  /** Until Completed: Timer K (5 s on UDP) does not need the answer, and at a fan-out's rate it is kilobytes each. */
  private promise: Promise<RequestOutcome> | undefined;
  private finalStatus = 0;
  private resolveOutcome: ((o: RequestOutcome) => void) | undefined;
  /** What is needed while the request may be sent again; dropped once the transaction has its answer. */
  private opts: ClientTxOptions | undefined;
  private readonly reliable: boolean;
  private readonly timers: SipTimers;
  private readonly queues: ClientTimerQueues;
  private readonly onTerminated: (tx: NonInviteClientTransaction) => void;
  private readonly onFinished: ((tx: NonInviteClientTransaction) => void) | undefined;
  private flying = true;
  /** Timer E after the first interval (only a request left unanswered for T1 has one). */
  private timerE: TimerHandle | undefined;
  private intervalE: number;

  constructor(opts: ClientTxOptions) {
    this.opts = opts;
    this.key = opts.key;
    this.reliable = opts.reliable;
    this.timers = opts.timers;
    this.queues = queuesFor(opts.timers);
    this.onTerminated = opts.onTerminated;
    this.onFinished = opts.onFinished;
    this.intervalE = opts.timers.T1;
    this.promise = new Promise((resolve) => { this.resolveOutcome = resolve; });
  }

  /**
   * The final outcome. Take it when the transaction starts: once Completed the transaction lets go of it (and of
   * the response in it), and later reads get only the status.
   */
  get outcome(): Promise<RequestOutcome> {
    return this.promise ?? Promise.resolve({ status: this.finalStatus, reason: '' });
  }

  /** Send the request for the first time and start Timers E (UDP only) and F. */
  start(): void {
    this.queues.f.add(this);
    if (!this.reliable) this.queues.e.add(this);
    this.transmit(true);
  }

  // A failed retransmission over UDP is not fatal: the next one or Timer F decides (§17.1.4 is about the
  // transport reporting failure for the request as such, which we take from the first send). The callback is made
  // for the first send only, so the transaction does not keep one for its whole life.
  private transmit(first: boolean): void {
    const o = this.opts;
    if (o === undefined) return;
    let r: boolean | Promise<boolean> | undefined;
    const onFirstSent = first ? (ok: boolean): void => { if (!ok) this.transportError(); } : undefined;
    try {
      r = onFirstSent !== undefined ? o.send(o.request, onFirstSent) : o.send(o.request);
    } catch {
      r = false;
    }
    if (r === undefined || onFirstSent === undefined) return;
    if (typeof r === 'boolean') onFirstSent(r);
    else r.then(onFirstSent, () => onFirstSent(false));
  }

  /** Timer E fired (from the queue for the first interval, from its own timer after that). */
  onTimerE(): void {
    this.timerE = undefined;
    if (this.state !== 'trying' && this.state !== 'proceeding') return;
    this.opts?.onRetransmit?.();
    this.transmit(false);
    this.intervalE = nextTimerE(this.timers, this.intervalE, this.state === 'proceeding');
    this.timerE = this.timers.scheduler.setTimeout(() => this.onTimerE(), this.intervalE);
  }

  onTimerF(): void {
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
        if (!this.reliable) {
          this.clearTimerE();
          this.intervalE = this.timers.T2;
          this.timerE = this.timers.scheduler.setTimeout(() => this.onTimerE(), this.intervalE);
        }
      }
      return;
    }
    this.finish({ status: res.status, reason: res.reason, response: res });
    this.state = 'completed';
    this.finalStatus = res.status;
    this.promise = undefined;
    if (timerK(this.timers, this.reliable) === 0) {
      this.terminate();
      return;
    }
    this.queues.k.add(this);
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
    this.leaveFlight();
    // Completed only absorbs copies of the answer (Timer K, 5 s on UDP): the request bytes and the way to send
    // them are no longer needed, and at a fan-out's rate they are most of what the transaction holds.
    this.opts = undefined;
    const resolve = this.resolveOutcome;
    // The resolving function holds the promise, and so the outcome: let go of both (see `outcome`).
    this.resolveOutcome = undefined;
    resolve?.(o);
  }

  /** Tell the table, once, that this transaction no longer waits for an answer. */
  private leaveFlight(): void {
    if (this.flying) {
      this.flying = false;
      this.onFinished?.(this);
    }
  }

  private clearTimerE(): void {
    this.queues.e.delete(this);
    if (this.timerE !== undefined) this.timers.scheduler.clearTimeout(this.timerE);
    this.timerE = undefined;
  }

  private clearRetransmitTimers(): void {
    this.clearTimerE();
    this.queues.f.delete(this);
  }

  terminate(): void {
    if (this.state === 'terminated') return;
    this.leaveFlight();
    this.state = 'terminated';
    this.clearRetransmitTimers();
    this.queues.k.delete(this);
    this.opts = undefined;
    this.onTerminated(this);
  }
}

export class ClientTransactionTable {
  private readonly byKey = new Map<string, NonInviteClientTransaction>();
  private waiting = 0;
  private readonly onTerminated = (t: NonInviteClientTransaction): void => {
    if (this.byKey.get(t.key) === t) this.byKey.delete(t.key);
  };
  private readonly onFinished = (): void => {
    this.waiting--;
  };

  create(opts: Omit<ClientTxOptions, 'onTerminated'>): NonInviteClientTransaction {
    const tx = new NonInviteClientTransaction({
      key: opts.key, request: opts.request, reliable: opts.reliable, timers: opts.timers, send: opts.send,
      onRetransmit: opts.onRetransmit, onFinished: this.onFinished, onTerminated: this.onTerminated,
    });
    this.byKey.set(opts.key, tx);
    this.waiting++;
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

  /**
   * Client transactions still waiting for their answer (Trying or Proceeding): the queue that grows when watchers
   * stop answering or we fall behind. Completed ones are not counted: they hold a few hundred bytes for Timer K
   * (5 s on UDP), so their number follows the NOTIFY rate, not a backlog.
   */
  get inFlightCount(): number {
    return this.waiting;
  }

  abortAll(): void {
    for (const tx of [...this.byKey.values()]) tx.abort();
  }
}
