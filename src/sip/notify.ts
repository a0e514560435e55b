// Sending NOTIFY (RFC 6665 §4.2.2) inside a stored subscription dialog, with the failure policy. Rules kept here:
// - at most one NOTIFY in flight per subscription; a change meanwhile sends one more afterwards, with the newest
//   full state (no lamp is left showing an old state);
// - CSeq and body version advance and are COMMITTED before the NOTIFY leaves (RFC 3261 §12.2.1.1), so a restart
//   never reuses a number;
// - a 481 (or another answer that ends the dialog usage, RFC 5057) removes the subscription at once; timeouts and
//   408 remove it after a number of consecutive failures; a WebSocket flow that is gone keeps it until it expires
//   or is re-subscribed (RFC 7118 §5: the client cannot be reached any other way).
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { SipEngine, RequestOutcome, DialogRequestSpec } from './port.js';
import type { Presence, Subscription } from '../presence/index.js';
import { contactHeader, flowBound } from './face-common.js';

/** Answers to a NOTIFY that end the subscription's dialog usage at once (RFC 6665 §4.2.2; RFC 5057 usages). */
const USAGE_ENDED = new Set([404, 405, 410, 416, 430, 480, 481, 482, 483, 484, 485, 489, 501, 604]);

interface Runtime {
  inFlight: boolean;
  /** State changed while a NOTIFY was in flight (or rate-limited): send again afterwards. */
  again: boolean;
  /** When set, the next NOTIFY is the final one with `terminated;reason=<final>`. */
  final?: string;
  /** Not stored anywhere (a fetch, RFC 6665 §4.4.3): no row, no registry entry. */
  transient: boolean;
  failures: number;
  lastSentAt: number;
  timer?: NodeJS.Timeout;
  trackers: FanoutTracker[];
}

/** Measures one state change until its last NOTIFY is handed to the engine (metrics.fanoutSeconds). */
export class FanoutTracker {
  private pending = 1;
  constructor(private readonly startedAt: number, private readonly metrics: Metrics) {}
  add(): void { this.pending++; }
  done(): void {
    if (--this.pending === 0) this.metrics.fanoutSeconds.observe((performance.now() - this.startedAt) / 1000);
  }
}

export interface NotifyOptions {
  final?: string;
  transient?: boolean;
  tracker?: FanoutTracker;
}

/** A NOTIFY built and waiting for its CSeq and version to be committed. */
interface Outgoing {
  sub: Subscription;
  rt: Runtime;
  spec: DialogRequestSpec;
  body: Buffer;
  trackers: FanoutTracker[];
}

const RESOLVED: Promise<void> = Promise.resolve();

export class Notifier {
  private readonly runtime = new Map<string, Runtime>();
  /** NOTIFYs grouped by the write that makes their numbers durable. */
  private readonly waiting = new Map<Promise<void>, Outgoing[]>();
  /** WebSocket subscriptions whose flow is known to be gone (a no-flow outcome, or restored after a restart). */
  private readonly unreachable = new Set<string>();
  private stopped = false;

  constructor(private readonly o: { engine: SipEngine; presence: Presence; config: Config; logger: Logger; metrics: Metrics }) {}

  /** Queue a NOTIFY with the current full state (or the final one). Returns at once; sending is asynchronous. */
  notify(sub: Subscription, opts: NotifyOptions = {}): void {
    if (this.stopped) return;
    let rt = this.runtime.get(sub.id);
    if (!rt) {
      rt = { inFlight: false, again: false, transient: opts.transient ?? false, failures: 0, lastSentAt: 0, trackers: [] };
      this.runtime.set(sub.id, rt);
    }
    if (opts.final) rt.final ??= opts.final;
    if (rt.inFlight || rt.timer) {
      rt.again = true;
      return;
    }
    const minInterval = this.o.config.sip.notify.minIntervalMs;
    const wait = rt.final ? 0 : rt.lastSentAt + minInterval - performance.now();
    if (minInterval > 0 && rt.lastSentAt > 0 && wait > 0) {
      // RFC 4235 §3.10 / RFC 6665 §4.2.2: a burst of changes is merged into one NOTIFY with the newest state.
      rt.again = true;
      rt.timer = setTimeout(() => {
        rt!.timer = undefined;
        rt!.again = false;
        this.send(sub, rt!);
      }, wait);
      rt.timer.unref?.();
      return;
    }
    if (opts.tracker) {
      opts.tracker.add();
      rt.trackers.push(opts.tracker);
    }
    this.send(sub, rt);
  }

  /** A WebSocket subscription nobody can reach any more: replaced when its watcher subscribes again. */
  markUnreachable(sub: Subscription): void {
    if (flowBound(sub)) this.unreachable.add(sub.id);
  }

  isUnreachable(sub: Subscription): boolean {
    if (this.o.presence.getSubscription(sub.id) !== sub) this.unreachable.delete(sub.id);
    return this.unreachable.has(sub.id);
  }

  /** Whether a final NOTIFY is already queued or sent for this subscription. */
  terminating(sub: Subscription): boolean {
    return this.runtime.get(sub.id)?.final !== undefined;
  }

  stop(): void {
    this.stopped = true;
    for (const rt of this.runtime.values()) if (rt.timer) clearTimeout(rt.timer);
  }

  private live(sub: Subscription, rt: Runtime): boolean {
    return rt.transient || this.o.presence.getSubscription(sub.id) === sub;
  }

  private send(sub: Subscription, rt: Runtime): void {
    const trackers = rt.trackers;
    if (trackers.length > 0) rt.trackers = [];
    if (!this.live(sub, rt) || this.stopped) {
      for (const t of trackers) t.done();
      this.runtime.delete(sub.id);
      return;
    }
    rt.inFlight = true;
    rt.again = false;
    const { presence, engine } = this.o;
    const final = rt.final;
    const state = presence.state(sub.presentity, sub.event);
    sub.localCseq += 1;
    sub.notifyVersion += 1;
    const body = state.rendered.forVersion(sub.notifyVersion);
    const subscriptionState = final
      ? `terminated;reason=${final}`
      : `active;expires=${Math.max(0, Math.ceil((sub.expiresAt - presence.now()) / 1000))}`;
    const spec: DialogRequestSpec = {
      method: 'NOTIFY',
      requestUri: sub.remoteTarget,
      callId: sub.callId,
      from: sub.localUri,
      to: sub.remoteUri,
      cseq: sub.localCseq,
      routeSet: sub.routeSet,
      transport: sub.transport,
      headers: [
        ['Event', sub.eventId ? `${sub.event};id=${sub.eventId}` : sub.event],
        ['Subscription-State', subscriptionState],
        ['Contact', contactHeader(engine, sub.transport)],
        ['Content-Type', state.rendered.contentType],
      ],
      body,
    };
    if (sub.flowId) spec.flowId = sub.flowId;
    if (sub.sourceAddress && sub.sourcePort) spec.flowRemote = { address: sub.sourceAddress, port: sub.sourcePort };
    const persisted = rt.transient ? RESOLVED : presence.recordNotify(sub);
    // The final NOTIFY ends the subscription: gone from memory and disk as it leaves (RFC 6665 §4.2.2).
    if (final && !rt.transient) {
      presence.removeSubscription(sub, final === 'timeout' ? 'timeout' : final).catch(() => undefined);
    }
    // Every NOTIFY whose numbers are committed by the same write leaves in one pass once that write is durable:
    // one promise reaction for a whole fan-out instead of a chain per watcher.
    let group = this.waiting.get(persisted);
    if (group === undefined) {
      const g: Outgoing[] = [];
      group = g;
      this.waiting.set(persisted, g);
      persisted.then(
        () => { this.waiting.delete(persisted); this.dispatch(g); },
        (err: unknown) => { this.waiting.delete(persisted); this.notCommitted(g, err); },
      );
    }
    group.push({ sub, rt, spec, body, trackers });
  }

  /**
   * Hand NOTIFYs whose CSeq and version are on disk to the engine, `sip.notify.sendBatch` at a time: between two
   * batches the event loop reads the socket, so the 200s of the first NOTIFYs are matched before their Timer E
   * (500 ms, RFC 3261 §17.1.2.2) would retransmit them, and other requests are not held up by a large fan-out.
   */
  private dispatch(group: Outgoing[], from = 0): void {
    const { engine } = this.o;
    const end = Math.min(group.length, from + this.o.config.sip.notify.sendBatch);
    if (end < group.length) setImmediate(() => this.dispatch(group, end));
    for (let i = from; i < end; i++) {
      const o = group[i]!;
      if (this.stopped) {
        // Shutting down: nothing is sent, and that says nothing about the watcher, so no policy.
        o.rt.inFlight = false;
        for (const t of o.trackers) t.done();
        continue;
      }
      o.rt.lastSentAt = performance.now();
      // The engine adds Max-Forwards (RFC 3261 §8.1.1.6) and counts metrics.notifySent.
      const pending = engine.sendRequest(o.spec);
      for (const t of o.trackers) t.done();
      pending.then(
        (outcome) => {
          // Shutting down: the engine fails what is in flight; that says nothing about the watcher, so no policy.
          if (this.stopped) {
            o.rt.inFlight = false;
            return;
          }
          this.settled(o.sub, o.rt, outcome, o.spec.cseq, o.body);
        },
        (err: unknown) => this.notSent([o], err),
      );
    }
  }

  /** The numbers could not be committed: nothing was sent. */
  private notCommitted(group: Outgoing[], err: unknown): void {
    for (const o of group) for (const t of o.trackers) t.done();
    this.notSent(group, err);
  }

  private notSent(group: Outgoing[], err: unknown): void {
    for (const o of group) {
      o.rt.inFlight = false;
      if (this.stopped) continue;
      // It says nothing about the watcher, so no failure policy; the next change tries again.
      this.o.logger.error({ subscription: o.sub.id, err: (err as Error).message }, 'NOTIFY not sent');
      this.o.metrics.notifyFailed.inc({ cause: 'internal' });
    }
  }

  private settled(sub: Subscription, rt: Runtime, outcome: RequestOutcome, cseq: number, body: Buffer): void {
    rt.inFlight = false;
    const { presence, logger, metrics, config } = this.o;
    const status = outcome.status;
    if (!rt.transient) presence.recordNotifyReply(sub, cseq, status, body);
    const live = this.live(sub, rt);
    if (status >= 200 && status < 300) {
      rt.failures = 0;
      this.unreachable.delete(sub.id);
    } else if (outcome.local === 'no-flow') {
      // Only a WebSocket (or a vanished flow) ends here: nothing else can reach the client, so keep the
      // subscription until it expires or the client re-subscribes (issue 2, Storage).
      metrics.notifyFailed.inc({ cause: 'no-flow' });
      this.markUnreachable(sub);
      logger.warn({ subscription: sub.id, presentity: sub.presentity, transport: sub.transport }, 'NOTIFY failed: flow gone; subscription kept');
    } else if (USAGE_ENDED.has(status) && !outcome.local) {
      metrics.notifyFailed.inc({ cause: status === 481 ? '481' : 'rejected' });
      logger.warn({ subscription: sub.id, presentity: sub.presentity, status }, 'NOTIFY failed: subscription removed');
      if (live && !rt.transient) void presence.removeSubscription(sub, `notify-${status}`);
    } else {
      const cause = outcome.local === 'timeout' || status === 408 ? 'timeout' : outcome.local === 'transport-error' ? 'transport-error' : 'error';
      metrics.notifyFailed.inc({ cause });
      rt.failures++;
      const max = sub.transport === 'udp' ? config.sip.notify.maxFailuresUdp : config.sip.notify.maxFailuresReliable;
      const drop = rt.failures >= max;
      logger.warn({ subscription: sub.id, presentity: sub.presentity, status, cause, failures: rt.failures, max }, drop
        ? 'NOTIFY failed: subscription removed' : 'NOTIFY failed');
      if (drop && live && !rt.transient) void presence.removeSubscription(sub, cause);
    }
    if (rt.again && this.live(sub, rt) && !this.stopped) {
      rt.again = false;
      this.notify(sub);
      return;
    }
    if (!this.live(sub, rt) || rt.final !== undefined || (rt.failures === 0 && this.o.config.sip.notify.minIntervalMs === 0)) {
      this.runtime.delete(sub.id);
    }
  }
}
