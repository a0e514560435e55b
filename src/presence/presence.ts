// The presence domain: subscriptions and their life cycle (RFC 6665), publications and their composition
// (RFC 3903), manual states, and the PresenceService the admin API uses. No SIP wire format lives here: the SIP
// face calls these methods and listens to the hub's changes to send NOTIFYs.
import { randomBytes } from 'node:crypto';
import type { Db, GroupCommit } from '../store/db.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { SubscriptionStore } from '../store/subscriptions.js';
import { PublicationStore } from '../store/publications.js';
import {
  EVENT_PACKAGES, type EventPackageName, type ManualDialogState, type PresenceService, type PresentityStateView,
  type ResetResult, type SubscriptionView,
} from './service.js';
import type { EventPackage } from './packages/types.js';
import { SubscriptionRegistry, type Subscription } from './subscriptions.js';
import { PublicationRegistry, type Publication } from './publications.js';
import { Hub, type CurrentState, type PackageSet, type StateChange } from './hub.js';

export type { Subscription, Publication, StateChange, CurrentState };

export interface PresenceOptions {
  db: Db;
  commit: GroupCommit;
  logger: Logger;
  metrics: Metrics;
  nodeId: string;
  now?: () => number;
  packages: PackageSet;
  /** How long answers to NOTIFYs (shown by the API) may wait before they are written; see SubscriptionStore. */
  replyLogIntervalMs?: number;
}

export interface RestoreResult {
  subscriptions: number;
  publications: number;
  /** Subscriptions that ran out while the node was down: they still need their terminated NOTIFY. */
  expiredSubscriptions: Subscription[];
  /** Publications dropped because they ran out while the node was down. */
  expiredPublications: number;
}

/** Presentity key: user part lower-cased (extensions like `*3101` kept as they are), domain lower-cased. */
export function presentityKey(user: string, domain: string): string {
  return `${user.toLowerCase()}@${domain.toLowerCase()}`;
}

export function isEventPackage(name: string): name is EventPackageName {
  return (EVENT_PACKAGES as readonly string[]).includes(name);
}

/** Bytes per crypto.randomBytes call behind randomToken: one system call per ~200 tokens, not one per token. */
const RANDOM_POOL_BYTES = 4096;
let randomPool = Buffer.alloc(0);
let randomPoolAt = 0;

/**
 * Entity-tags, ids and tags: 128 random bits by default (RFC 3903 §6 step 8 wants them unguessable). Each token is
 * a fresh slice of one pooled CSPRNG buffer; no byte is handed out twice.
 */
export function randomToken(bytes = 16): string {
  if (randomPoolAt + bytes > randomPool.length) {
    randomPool = randomBytes(Math.max(RANDOM_POOL_BYTES, bytes));
    randomPoolAt = 0;
  }
  const hex = randomPool.toString('hex', randomPoolAt, randomPoolAt + bytes);
  randomPoolAt += bytes;
  return hex;
}

export class Presence implements PresenceService {
  readonly nodeId: string;
  readonly now: () => number;
  readonly packages: PackageSet;
  readonly hub: Hub;
  private readonly subs = new SubscriptionRegistry();
  private readonly pubs = new PublicationRegistry();
  /** Manual dialog states by presentity (Kazoo `action: set`), kept until a reset. */
  private readonly manual = new Map<string, ManualDialogState>();
  private readonly subStore: SubscriptionStore;
  private readonly pubStore: PublicationStore;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private restored = false;

  constructor(opts: PresenceOptions) {
    this.nodeId = opts.nodeId;
    this.now = opts.now ?? Date.now;
    this.packages = opts.packages;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.subStore = new SubscriptionStore(opts.db, opts.commit, { replyLogIntervalMs: opts.replyLogIntervalMs });
    this.pubStore = new PublicationStore(opts.db, opts.commit);
    this.hub = new Hub(this.packages, {
      // A Publication is a PublicationInput: the packages get the records themselves (they never mutate them), in a
      // copy of the array, instead of one new object per live publication on every recomposition.
      publications: (presentity, event) => this.pubs.of(presentity, event).slice(),
      // The manual state is a lamp state: dialog and presence bodies both reflect it; MWI never does.
      manual: (presentity, event) => (event === 'message-summary' ? null : this.manual.get(presentity) ?? null),
    });
  }

  packageFor(name: string): EventPackage | undefined {
    const n = name.toLowerCase();
    return isEventPackage(n) ? this.packages[n] : undefined;
  }

  onChange(listener: (c: StateChange) => void): void {
    this.hub.onChange(listener);
  }

  state(presentity: string, event: EventPackageName): CurrentState {
    return this.hub.state(presentity, event);
  }

  // ---- start-up ----------------------------------------------------------------------------------------------

  /**
   * Load everything this database holds. Publications that ran out while down are dropped (their part of the state
   * goes away); subscriptions that ran out are returned so the SIP face can send their terminated NOTIFY first.
   */
  restore(): RestoreResult {
    if (this.restored) throw new Error('presence state is already restored');
    this.restored = true;
    const now = this.now();
    for (const m of this.pubStore.loadManual()) {
      if (m.event === 'dialog') this.manual.set(m.presentity, m.state as ManualDialogState);
    }
    const expiredPubs: Publication[] = [];
    const touched = new Set<string>();
    for (const p of this.pubStore.loadAll()) {
      if (p.expiresAt <= now) {
        expiredPubs.push(p);
        touched.add(`${p.event}\n${p.presentity}`);
      }
      // Expired ones too, for a moment: the state watchers last saw is composed from them (see below).
      this.pubs.add(p);
    }
    if (expiredPubs.length > 0) void this.pubStore.remove(expiredPubs).catch((err) => this.writeFailed(err));
    const expired: Subscription[] = [];
    let loaded = 0;
    const gauge = new Map<string, number>();
    for (const s of this.subStore.loadAll()) {
      this.subs.add(s);
      const g = `${s.event}\n${s.transport}`;
      gauge.set(g, (gauge.get(g) ?? 0) + 1);
      loaded++;
      if (s.expiresAt <= now) expired.push(s);
    }
    for (const [g, n] of gauge) {
      const [event, transport] = g.split('\n') as [string, string];
      this.metrics.subscriptions.inc({ event, transport }, n);
    }
    // Compose what watchers saw before the restart, silently (expired publications still in): that state is the
    // `previous` the next composition needs, so a call that ended while down is reported terminated under its own
    // dialog id rather than dropped (RFC 4235 §4.3).
    const composed = new Set<string>();
    for (const p of this.pubs.all()) {
      const k = `${p.event}\n${p.presentity}`;
      if (composed.has(k)) continue;
      composed.add(k);
      this.hub.recompute(p.presentity, p.event, 'restore', true);
    }
    for (const presentity of this.manual.keys()) {
      this.hub.recompute(presentity, 'dialog', 'restore', true);
      this.hub.recompute(presentity, 'presence', 'restore', true);
    }
    for (const p of expiredPubs) this.pubs.remove(p);
    for (const p of this.pubs.all()) this.metrics.publications.inc({ event: p.event });
    // A publication that ran out while down changed the state its watchers saw: tell them (RFC 3903 §6 step 7).
    for (const k of touched) {
      const [event, presentity] = k.split('\n') as [EventPackageName, string];
      this.hub.recompute(presentity, event, 'expire');
    }
    return { subscriptions: loaded, publications: this.pubs.size, expiredSubscriptions: expired, expiredPublications: expiredPubs.length };
  }

  // ---- subscriptions -----------------------------------------------------------------------------------------

  getSubscription(id: string): Subscription | undefined {
    return this.subs.get(id);
  }

  findDialog(callId: string, localTag: string, remoteTag: string): Subscription | undefined {
    return this.subs.findByDialog(callId, localTag, remoteTag);
  }

  /** Subscriptions whose dialog has this Call-ID (usually none or one): merged-request checks without a scan. */
  withCallId(callId: string): readonly Subscription[] {
    return this.subs.withCallId(callId);
  }

  watchers(presentity: string, event: EventPackageName): Subscription[] {
    return this.subs.watchers(presentity, event);
  }

  watcherCount(watcherUri: string): number {
    return this.subs.watcherCount(watcherUri);
  }

  presentityCount(presentity: string): number {
    return this.subs.presentityCount(presentity);
  }

  allSubscriptions(): IterableIterator<Subscription> {
    return this.subs.all();
  }

  get subscriptionCount(): number {
    return this.subs.size;
  }

  /** Resolves once the subscription is committed: only then may its 200 OK leave (issue 2, Storage). */
  addSubscription(s: Subscription): Promise<void> {
    this.subs.add(s);
    this.metrics.subscriptions.inc({ event: s.event, transport: s.transport });
    this.logger.info({ subscription: s.id, event: s.event, presentity: s.presentity, watcher: s.watcherUri,
      transport: s.transport, expires: s.expires, userAgent: s.userAgent ?? undefined }, 'subscription created');
    // The initial NOTIFY follows at once (RFC 6665 §4.2.1.2) with the next CSeq and version: the INSERT writes them.
    return this.subStore.insert(s, { localCseq: s.localCseq + 1, notifyVersion: s.notifyVersion + 1 });
  }

  /** The caller has set the new expiry, remote CSeq and target on `s`. */
  refreshSubscription(s: Subscription, previousTransport = s.transport): Promise<void> {
    if (previousTransport !== s.transport) {
      this.metrics.subscriptions.dec({ event: s.event, transport: previousTransport });
      this.metrics.subscriptions.inc({ event: s.event, transport: s.transport });
    }
    this.logger.info({ subscription: s.id, event: s.event, presentity: s.presentity, expires: s.expires }, 'subscription refreshed');
    return this.subStore.refresh(s);
  }

  removeSubscription(s: Subscription, reason: string): Promise<void> {
    if (!this.subs.remove(s)) return Promise.resolve();
    this.metrics.subscriptions.dec({ event: s.event, transport: s.transport });
    this.logger.info({ subscription: s.id, event: s.event, presentity: s.presentity, watcher: s.watcherUri, reason }, 'subscription ended');
    return this.subStore.remove(s);
  }

  /** The caller has advanced localCseq and notifyVersion; commit them before the NOTIFY leaves. */
  recordNotify(s: Subscription): Promise<void> {
    // A subscription already removed (final NOTIFY) has no row to update; that is fine. The initial NOTIFY's
    // numbers rode in the INSERT: the store then writes nothing and returns that write's promise.
    return this.subStore.notifySent(s);
  }

  /**
   * A NOTIFY was answered (or failed): the CSeq, answer and body shown by the API all describe that one NOTIFY,
   * even while a newer one is in flight.
   */
  recordNotifyReply(s: Subscription, cseq: number, status: number, body: Buffer): void {
    s.lastNotifyCseq = cseq;
    s.lastNotifyReply = status;
    if (this.subs.get(s.id) !== s) return;
    this.subStore.noteReply(s, cseq, status, body);
  }

  /** Write what is still only in memory (answers to NOTIFYs) into the next transaction; call before the last flush. */
  flush(): void {
    this.subStore.flushReplies().catch((err) => this.writeFailed(err));
  }

  expiredSubscriptions(now = this.now()): Subscription[] {
    const out: Subscription[] = [];
    for (const s of this.subs.all()) if (s.expiresAt <= now) out.push(s);
    return out;
  }

  // ---- publications (RFC 3903 §6) ----------------------------------------------------------------------------

  /** A live publication by entity-tag, for this presentity and event; expired or foreign tags do not match. */
  findPublication(etag: string, presentity: string, event: EventPackageName): Publication | undefined {
    const p = this.pubs.get(etag);
    if (!p || p.presentity !== presentity || p.event !== event || p.expiresAt <= this.now()) return undefined;
    return p;
  }

  publicationCount(presentity: string, event: EventPackageName): number {
    return this.pubs.of(presentity, event).length;
  }

  async publish(input: { presentity: string; event: EventPackageName; contentType: string; body: Buffer; expires: number }): Promise<Publication> {
    const now = this.now();
    const p: Publication = {
      etag: randomToken(), presentity: input.presentity, event: input.event, expiresAt: now + input.expires * 1000,
      contentType: input.contentType, body: input.body, createdAt: now, updatedAt: now,
    };
    this.pubs.add(p);
    this.metrics.publications.inc({ event: p.event });
    try {
      await this.pubStore.insert(p);
    } catch (err) {
      // Not on disk, so not acknowledged: it must not stay in memory either.
      if (this.pubs.remove(p)) this.metrics.publications.dec({ event: p.event });
      throw err;
    }
    this.logger.info({ presentity: p.presentity, event: p.event, etag: p.etag, expires: input.expires }, 'publication accepted');
    this.hub.recompute(p.presentity, p.event, 'publish');
    return p;
  }

  /** Refresh (no body) or modify (body): a new entity-tag every time (RFC 3903 §6 step 8). */
  async updatePublication(p: Publication, expires: number, body?: { contentType: string; body: Buffer }): Promise<Publication> {
    const now = this.now();
    this.pubs.rekey(p, randomToken());
    p.expiresAt = now + expires * 1000;
    if (body) {
      p.contentType = body.contentType;
      p.body = body.body;
      p.updatedAt = now;
    }
    await this.pubStore.replace(p);
    this.logger.info({ presentity: p.presentity, event: p.event, etag: p.etag, expires, kind: body ? 'modify' : 'refresh' }, 'publication accepted');
    if (body) this.hub.recompute(p.presentity, p.event, 'publish');
    return p;
  }

  async removePublication(p: Publication, reason: 'removed' | 'expired'): Promise<void> {
    if (!this.pubs.remove(p)) return;
    this.metrics.publications.dec({ event: p.event });
    await this.pubStore.remove([p]);
    this.logger.info({ presentity: p.presentity, event: p.event, etag: p.etag, reason }, 'publication removed');
    this.hub.recompute(p.presentity, p.event, reason === 'expired' ? 'expire' : 'publish');
  }

  /** Drop publications that ran out; each affected presentity is recomposed once and its watchers notified. */
  sweepPublications(now = this.now()): number {
    const expired = this.pubs.expired(now);
    if (expired.length === 0) return 0;
    const touched = new Map<string, { presentity: string; event: EventPackageName }>();
    for (const p of expired) {
      this.pubs.remove(p);
      this.metrics.publications.dec({ event: p.event });
      touched.set(`${p.event}\n${p.presentity}`, { presentity: p.presentity, event: p.event });
      this.logger.info({ presentity: p.presentity, event: p.event, etag: p.etag, reason: 'expired' }, 'publication removed');
    }
    this.pubStore.remove(expired).catch((err) => this.writeFailed(err));
    for (const t of touched.values()) this.hub.recompute(t.presentity, t.event, 'expire');
    return expired.length;
  }

  // ---- PresenceService (admin API) ---------------------------------------------------------------------------

  listSubscriptions(domain: string, filter: { event?: EventPackageName; user?: string } = {}): SubscriptionView[] {
    const d = domain.toLowerCase();
    const user = filter.user?.toLowerCase();
    const out: SubscriptionView[] = [];
    for (const s of this.subs.all()) {
      if (s.domain !== d) continue;
      if (filter.event && s.event !== filter.event) continue;
      if (user !== undefined && s.presentity !== `${user}@${d}`) continue;
      out.push(this.view(s));
    }
    return out;
  }

  currentState(presentity: string): PresentityStateView[] {
    const key = normalizePresentity(presentity);
    return EVENT_PACKAGES.map((event) => {
      const st = this.hub.state(key, event);
      return {
        event, state: st.composed.summary, source: st.composed.source,
        body: st.rendered.forVersion(0).toString('utf8'), contentType: st.rendered.contentType,
      };
    });
  }

  async reset(presentity: string): Promise<ResetResult> {
    const key = normalizePresentity(presentity);
    const snapshot: SubscriptionView[] = [];
    for (const event of EVENT_PACKAGES) for (const s of this.subs.watchers(key, event)) snapshot.push(this.view(s));
    const gone: Publication[] = [];
    for (const event of ['dialog', 'presence'] as const) gone.push(...this.pubs.of(key, event));
    for (const p of gone) {
      this.pubs.remove(p);
      this.metrics.publications.dec({ event: p.event });
    }
    this.manual.delete(key);
    await Promise.all([this.pubStore.remove(gone), this.pubStore.clearManual(key)]);
    this.logger.info({ presentity: key, publications: gone.length, watchers: snapshot.length }, 'presentity reset');
    // Every watcher of all three packages gets the new full state (Kazoo presence-reset: a refresh, not a termination).
    for (const event of EVENT_PACKAGES) this.hub.recompute(key, event, 'reset');
    return { notified: snapshot.length, snapshot };
  }

  async setManualState(presentity: string, state: ManualDialogState): Promise<{ notified: number }> {
    const key = normalizePresentity(presentity);
    this.manual.set(key, state);
    await this.pubStore.setManual({ presentity: key, event: 'dialog', state, updatedAt: this.now() });
    this.logger.info({ presentity: key, state }, 'manual state set');
    let notified = 0;
    for (const event of ['dialog', 'presence'] as const) {
      notified += this.subs.watchers(key, event).length;
      this.hub.recompute(key, event, 'manual');
    }
    return { notified };
  }

  private view(s: Subscription): SubscriptionView {
    const body = s.lastNotifyReply === 0 ? 'undefined' : this.subStore.lastNotifyBody(s) ?? 'undefined';
    return {
      id: s.id, callId: s.callId, event: s.event, presentity: s.presentity, watcher: s.watcherUri,
      expires: s.expires, expiresAt: s.expiresAt, updatedAt: s.updatedAt, transport: s.transport,
      contact: s.remoteTarget, userAgent: s.userAgent ?? undefined, nodeId: s.nodeId, version: s.notifyVersion,
      lastNotify: { body, reply: s.lastNotifyReply, sequence: s.lastNotifyCseq },
    };
  }

  private writeFailed(err: unknown): void {
    this.logger.error({ err: (err as Error).message }, 'presence write failed');
  }
}


/** `201@Example.COM` and `sip:201@example.com` both name presentity `201@example.com`. */
export function normalizePresentity(p: string): string {
  const s = p.replace(/^sips?:/i, '');
  const at = s.lastIndexOf('@');
  if (at < 0) return s.toLowerCase();
  return presentityKey(s.slice(0, at), s.slice(at + 1));
}
