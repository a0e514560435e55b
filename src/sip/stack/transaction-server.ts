// Non-INVITE server transactions (RFC 3261 §17.2.2) and their matching (§17.2.3). The engine hands a request to
// the TU only when it starts a new transaction; retransmissions are absorbed in Trying and answered with the last
// response in Proceeding and Completed. Completed lasts Timer J (64*T1 on UDP, 0 on TCP/WS) and then the
// transaction is forgotten.
import type { SipRequest } from './message.js';
import { header } from './message.js';
import { parseVia, tagOf } from './headers.js';
import { timerJ, type SipTimers, type TimerHandle } from './timers.js';

export type ServerTxState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/** RFC 3261 §8.1.1.7: branches of RFC 3261 elements start with this magic cookie. */
export const MAGIC_COOKIE = 'z9hG4bK';

/**
 * The transaction key of a request (§17.2.3): top Via branch + sent-by + method (ACK matches the INVITE it
 * acknowledges). For an RFC 2543 branch (no magic cookie) the fallback uses Request-URI, From tag, To tag, Call-ID,
 * CSeq and the whole top Via. Undefined when there is no usable top Via.
 *
 * `flowId` narrows the match to the flow the request came on. A client transaction is bound to one transport
 * and destination (§17.1), so its retransmissions arrive on the same flow; a copy of the branch and sent-by on
 * another flow (a confused client, or someone replaying a neighbour's Via) is a new request, not a retransmission
 * to be swallowed or answered over the first client's flow.
 */
export function serverTransactionKey(req: SipRequest, flowId = ''): string | undefined {
  const top = header(req, 'via');
  if (top === undefined) return undefined;
  const via = parseVia(top);
  if (via === null) return undefined;
  const method = req.method === 'ACK' ? 'INVITE' : req.method;
  const branch = via.branch;
  if (branch !== undefined && branch.startsWith(MAGIC_COOKIE) && branch.length > MAGIC_COOKIE.length) {
    const sentBy = `${via.host.toLowerCase()}:${via.port ?? ''}`;
    return `3261\u0000${branch}\u0000${sentBy}\u0000${method}\u0000${flowId}`;
  }
  const from = header(req, 'from');
  const to = header(req, 'to');
  return [
    '2543', req.uri, from === undefined ? '' : tagOf(from) ?? '', to === undefined ? '' : tagOf(to) ?? '',
    header(req, 'call-id') ?? '', header(req, 'cseq') ?? '', top, flowId,
  ].join('\u0000');
}

export interface ServerTxOptions {
  key: string;
  /** Reliable transports (TCP, WS) have Timer J = 0. */
  reliable: boolean;
  timers: SipTimers;
  /** Write a serialized response to the flow the request came on. */
  send(data: Buffer): void;
  onTerminated(tx: NonInviteServerTransaction): void;
  /** Entered Completed with a Timer J to wait out, holding `bytes` of last response. */
  onCompleted?(tx: NonInviteServerTransaction, bytes: number): void;
}

/** What a completed transaction costs beyond its response bytes (objects, key, timer), for the byte budget. */
export const COMPLETED_TX_OVERHEAD_BYTES = 512;

export class NonInviteServerTransaction {
  state: ServerTxState = 'trying';
  private lastResponse: Buffer | undefined;
  private timer: TimerHandle | undefined;
  readonly key: string;

  // The request itself is not kept: in Completed (32 s on UDP) only the last response is needed, and at
  // thousands of requests a second what a transaction holds is what the server holds.
  constructor(private readonly opts: ServerTxOptions) {
    this.key = opts.key;
  }

  /** A retransmission of the request arrived (§17.2.2). True when a response was sent again. */
  receiveRetransmission(): boolean {
    if ((this.state === 'proceeding' || this.state === 'completed') && this.lastResponse) {
      this.opts.send(this.lastResponse);
      return true;
    }
    // Trying: the TU has not answered yet; the request is absorbed without a word.
    return false;
  }

  /** The TU sends a response. Provisional: Proceeding; final: Completed for Timer J, then Terminated. */
  sendResponse(data: Buffer, status: number): void {
    if (this.state === 'completed' || this.state === 'terminated') return;
    this.lastResponse = data;
    this.opts.send(data);
    if (status < 200) {
      this.state = 'proceeding';
      return;
    }
    this.state = 'completed';
    const j = timerJ(this.opts.timers, this.opts.reliable);
    if (j === 0) {
      this.terminate();
      return;
    }
    this.timer = this.opts.timers.scheduler.setTimeout(() => this.terminate(), j);
    this.timer.unref?.();
    this.opts.onCompleted?.(this, data.length + COMPLETED_TX_OVERHEAD_BYTES);
  }

  terminate(): void {
    if (this.state === 'terminated') return;
    this.state = 'terminated';
    if (this.timer !== undefined) this.opts.timers.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
    this.lastResponse = undefined;
    this.opts.onTerminated(this);
  }
}

/**
 * The server transactions by key. Completed UDP transactions (kept for Timer J only to answer late copies of the
 * request) share a byte budget: past it the oldest are forgotten first. Those are the least likely to see another
 * copy (a client stops retransmitting once our answer arrives), and forgetting one costs at worst a repeated
 * request reaching the TU. Without the bound, one source sending large requests pins their answers for 32 s each.
 */
export class ServerTransactionTable {
  private readonly byKey = new Map<string, NonInviteServerTransaction>();
  /** Completed transactions in the order they completed (= the order Timer J ends them), with their bytes. */
  private readonly completed = new Map<NonInviteServerTransaction, number>();
  private completedBytes = 0;

  constructor(private readonly completedBudgetBytes = Number.POSITIVE_INFINITY) {}

  get(key: string): NonInviteServerTransaction | undefined {
    return this.byKey.get(key);
  }

  create(opts: Omit<ServerTxOptions, 'onTerminated'> & { onTerminated?: (tx: NonInviteServerTransaction) => void }): NonInviteServerTransaction {
    const tx = new NonInviteServerTransaction({
      ...opts,
      onTerminated: (t) => {
        if (this.byKey.get(t.key) === t) this.byKey.delete(t.key);
        const b = this.completed.get(t);
        if (b !== undefined) {
          this.completed.delete(t);
          this.completedBytes -= b;
        }
        opts.onTerminated?.(t);
      },
      onCompleted: (t, bytes) => {
        this.completed.set(t, bytes);
        this.completedBytes += bytes;
        while (this.completedBytes > this.completedBudgetBytes && this.completed.size > 0) {
          this.completed.keys().next().value!.terminate();
        }
      },
    });
    this.byKey.set(opts.key, tx);
    return tx;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Bytes held by completed transactions (counted against the budget). */
  get completedSize(): number {
    return this.completedBytes;
  }

  clear(): void {
    for (const tx of [...this.byKey.values()]) tx.terminate();
    this.byKey.clear();
  }
}
