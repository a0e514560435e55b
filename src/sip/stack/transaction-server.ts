// Non-INVITE server transactions (RFC 3261 §17.2.2) and their matching (§17.2.3). The engine hands a request to
// the TU only when it starts a new transaction; retransmissions are absorbed in Trying and answered with the last
// response in Proceeding and Completed. Completed lasts Timer J (64*T1 on UDP, 0 on TCP/WS) and then the
// transaction is forgotten.
import type { SipRequest } from './message.js';
import { header } from './message.js';
import { parseVia, tagOf, type Via } from './headers.js';
import { ExpiryQueue, timerJ, type SipTimers } from './timers.js';

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
export function serverTransactionKey(req: SipRequest, flowId = '', topVia?: Via | null): string | undefined {
  const top = header(req, 'via');
  if (top === undefined) return undefined;
  // The engine parses the top Via once for the key and for received/rport (§18.2.1) and passes it in.
  const via = topVia !== undefined ? topVia : parseVia(top);
  if (via === null) return undefined;
  const method = req.method === 'ACK' ? 'INVITE' : req.method;
  const branch = via.branch;
  if (branch !== undefined && branch.startsWith(MAGIC_COOKIE) && branch.length > MAGIC_COOKIE.length) {
    // join, not a template: the key is kept for Timer J (32 s), and a concatenation of slices would keep the
    // request's whole decoded header section alive through them (measured: 810 bytes a key instead of 133).
    return ['3261', branch, via.host.toLowerCase() + ':' + (via.port ?? ''), method, flowId].join('\u0000');
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
  /**
   * Write a serialized response to the flow the request came on. Optional: without it the caller sends what
   * sendResponse() is given and what retransmission() returns, so a transaction waiting out Timer J holds no
   * closure over the flow, only its key and its last response.
   */
  send?(data: Buffer): void;
  onTerminated(tx: NonInviteServerTransaction): void;
}

/** What a completed transaction costs beyond its response bytes (objects, key, queue entries), for the byte budget. */
export const COMPLETED_TX_OVERHEAD_BYTES = 512;

export class NonInviteServerTransaction {
  state: ServerTxState = 'trying';
  private lastResponse: Buffer | undefined;
  readonly key: string;
  /** Bytes counted against the completed budget while in Completed. */
  heldBytes = 0;

  // The request itself is not kept: in Completed (32 s on UDP) only the last response is needed, and at
  // thousands of requests a second what a transaction holds is what the server holds.
  constructor(
    key: string,
    private readonly reliable: boolean,
    readonly timers: SipTimers,
    private readonly table: ServerTransactionTable,
    private readonly send: ((data: Buffer) => void) | undefined,
    private readonly onTerminated: (tx: NonInviteServerTransaction) => void,
  ) {
    this.key = key;
  }

  /**
   * A retransmission of the request arrived (§17.2.2): the response to send again (Proceeding, Completed), or
   * undefined in Trying, where the TU has not answered yet and the copy is absorbed without a word.
   */
  retransmission(): Buffer | undefined {
    return this.state === 'proceeding' || this.state === 'completed' ? this.lastResponse : undefined;
  }

  /** retransmission(), sent through the transaction's own `send`. True when a response was sent again. */
  receiveRetransmission(): boolean {
    const again = this.retransmission();
    if (again === undefined) return false;
    this.send?.(again);
    return true;
  }

  /** The TU sends a response. Provisional: Proceeding; final: Completed for Timer J, then Terminated. */
  sendResponse(data: Buffer, status: number): void {
    if (this.state === 'completed' || this.state === 'terminated') return;
    this.lastResponse = data;
    this.send?.(data);
    if (status < 200) {
      this.state = 'proceeding';
      return;
    }
    this.state = 'completed';
    if (this.reliable) {
      this.terminate(); // Timer J = 0 (§17.2.2)
      return;
    }
    this.table.completedTx(this, data.length + COMPLETED_TX_OVERHEAD_BYTES);
  }

  terminate(): void {
    if (this.state === 'terminated') return;
    this.state = 'terminated';
    this.lastResponse = undefined;
    this.table.terminatedTx(this);
    this.onTerminated(this);
  }
}

const noop = (): void => {};

/**
 * The server transactions by key. Completed UDP transactions (kept for Timer J only to answer late copies of the
 * request) wait on one ExpiryQueue, in the order they completed, which is the order Timer J ends them; they share
 * a byte budget, and past it the oldest are forgotten first. Those are the least likely to see another copy (a
 * client stops retransmitting once our answer arrives), and forgetting one costs at worst a repeated request
 * reaching the TU. Without the bound, one source sending large requests pins their answers for 32 s each.
 */
export class ServerTransactionTable {
  private readonly byKey = new Map<string, NonInviteServerTransaction>();
  /** Timer J of the completed transactions, one queue per SipTimers (the engine has one). */
  private readonly timerJ = new Map<SipTimers, ExpiryQueue<NonInviteServerTransaction>>();
  private lastTimers: SipTimers | undefined;
  private lastJ: ExpiryQueue<NonInviteServerTransaction> | undefined;
  private completedBytes = 0;
  private completedCount = 0;

  constructor(private readonly completedBudgetBytes = Number.POSITIVE_INFINITY) {}

  get(key: string): NonInviteServerTransaction | undefined {
    return this.byKey.get(key);
  }

  create(opts: Omit<ServerTxOptions, 'onTerminated'> & { onTerminated?: (tx: NonInviteServerTransaction) => void }): NonInviteServerTransaction {
    const tx = new NonInviteServerTransaction(opts.key, opts.reliable, opts.timers, this, opts.send, opts.onTerminated ?? noop);
    this.byKey.set(opts.key, tx);
    return tx;
  }

  private queueFor(t: SipTimers): ExpiryQueue<NonInviteServerTransaction> {
    if (t === this.lastTimers) return this.lastJ!;
    let q = this.timerJ.get(t);
    if (q === undefined) {
      q = new ExpiryQueue<NonInviteServerTransaction>(t.scheduler, timerJ(t, false), (tx) => tx.terminate(), false);
      this.timerJ.set(t, q);
    }
    this.lastTimers = t;
    this.lastJ = q;
    return q;
  }

  /** @internal A UDP transaction entered Completed holding `bytes`: start Timer J and apply the budget. */
  completedTx(tx: NonInviteServerTransaction, bytes: number): void {
    this.queueFor(tx.timers).add(tx);
    tx.heldBytes = bytes;
    this.completedBytes += bytes;
    this.completedCount++;
    while (this.completedBytes > this.completedBudgetBytes && this.completedCount > 0) this.oldestCompleted()?.terminate();
  }

  private oldestCompleted(): NonInviteServerTransaction | undefined {
    if (this.timerJ.size === 1) return this.lastJ!.first();
    let best: NonInviteServerTransaction | undefined;
    for (const q of this.timerJ.values()) best ??= q.first();
    return best;
  }

  /** @internal */
  terminatedTx(tx: NonInviteServerTransaction): void {
    if (this.byKey.get(tx.key) === tx) this.byKey.delete(tx.key);
    if (tx.heldBytes > 0) {
      this.queueFor(tx.timers).delete(tx);
      this.completedBytes -= tx.heldBytes;
      this.completedCount--;
      tx.heldBytes = 0;
    }
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
    for (const q of this.timerJ.values()) q.clear();
  }
}
