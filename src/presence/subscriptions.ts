// The subscriptions this node holds (RFC 6665 §4.2.1), in memory with the indexes the notifier needs: by dialog
// (in-dialog SUBSCRIBE, RFC 3261 §12.2.2), by presentity and event (fan-out of a state change), and counters for
// the limits. The records themselves are the compact persistent shape; nothing per-NOTIFY is kept here.
//
// Memory and CPU per subscription matter (100 000 of them on one node, a SUBSCRIBE asks four of these indexes):
// no index key is a string built for it. The dialog index is keyed by the Call-ID the record already holds and
// the tags are compared on the hit; the presentity index holds one small entry per presentity with a Set per
// event package and the count the watchersPerPresentity limit reads, so a SUBSCRIBE's checks are Map lookups of
// strings whose hash V8 has already computed.
import type { SubscriptionRecord } from '../store/subscriptions.js';
import type { EventPackageName } from './service.js';

export type Subscription = SubscriptionRecord;

/** Kept for callers that want one string for a dialog id (RFC 3261 §12: Call-ID, local tag, remote tag). */
export function dialogKey(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}\n${localTag}\n${remoteTag}`;
}

export function targetKey(presentity: string, event: EventPackageName): string {
  return `${event}\n${presentity}`;
}

/** One presentity's watchers: a Set per event package (created on first use) and their number in all. */
interface Watched {
  dialog: Set<Subscription> | undefined;
  presence: Set<Subscription> | undefined;
  'message-summary': Set<Subscription> | undefined;
  count: number;
  /** The Set's members as an array, built on first ask after a change (fan-out reads it once per state change). */
  snapshot: Record<EventPackageName, Subscription[] | undefined> | undefined;
}

const NONE: readonly Subscription[] = Object.freeze([]);

export class SubscriptionRegistry {
  private readonly byId = new Map<string, Subscription>();
  /** By Call-ID: the one subscription with it, or (rarely: forked or reused Call-IDs) all of them. */
  private readonly byCallId = new Map<string, Subscription | Subscription[]>();
  private readonly byPresentity = new Map<string, Watched>();
  private readonly perWatcher = new Map<string, number>();

  get size(): number {
    return this.byId.size;
  }

  add(s: Subscription): void {
    this.byId.set(s.id, s);
    const same = this.byCallId.get(s.callId);
    if (same === undefined) this.byCallId.set(s.callId, s);
    else if (Array.isArray(same)) same.push(s);
    else this.byCallId.set(s.callId, [same, s]);
    let w = this.byPresentity.get(s.presentity);
    if (w === undefined) {
      w = { dialog: undefined, presence: undefined, 'message-summary': undefined, count: 0, snapshot: undefined };
      this.byPresentity.set(s.presentity, w);
    }
    (w[s.event] ??= new Set()).add(s);
    w.count++;
    if (w.snapshot !== undefined) w.snapshot[s.event] = undefined;
    this.perWatcher.set(s.watcherUri, (this.perWatcher.get(s.watcherUri) ?? 0) + 1);
  }

  remove(s: Subscription): boolean {
    if (this.byId.get(s.id) !== s) return false;
    this.byId.delete(s.id);
    const same = this.byCallId.get(s.callId);
    if (same === s) {
      this.byCallId.delete(s.callId);
    } else if (Array.isArray(same)) {
      const i = same.indexOf(s);
      if (i >= 0) same.splice(i, 1);
      if (same.length === 1) this.byCallId.set(s.callId, same[0]!);
    }
    const w = this.byPresentity.get(s.presentity);
    const set = w?.[s.event];
    if (w !== undefined && set !== undefined && set.delete(s)) {
      if (set.size === 0) w[s.event] = undefined;
      if (w.snapshot !== undefined) w.snapshot[s.event] = undefined;
      if (--w.count === 0) this.byPresentity.delete(s.presentity);
    }
    const n = (this.perWatcher.get(s.watcherUri) ?? 0) - 1;
    if (n <= 0) this.perWatcher.delete(s.watcherUri);
    else this.perWatcher.set(s.watcherUri, n);
    return true;
  }

  get(id: string): Subscription | undefined {
    return this.byId.get(id);
  }

  findByDialog(callId: string, localTag: string, remoteTag: string): Subscription | undefined {
    const same = this.byCallId.get(callId);
    if (same === undefined) return undefined;
    if (!Array.isArray(same)) return same.localTag === localTag && same.remoteTag === remoteTag ? same : undefined;
    for (const s of same) if (s.localTag === localTag && s.remoteTag === remoteTag) return s;
    return undefined;
  }

  /**
   * The subscriptions to one presentity and event. The array is shared until the next add or remove of that
   * target (a fan-out reads it once per state change): callers must not change it. Removing subscriptions while
   * iterating it is fine, a change makes a new one.
   */
  watchers(presentity: string, event: EventPackageName): Subscription[] {
    const w = this.byPresentity.get(presentity);
    const set = w?.[event];
    if (w === undefined || set === undefined) return NONE as Subscription[];
    const snap = (w.snapshot ??= { dialog: undefined, presence: undefined, 'message-summary': undefined });
    return (snap[event] ??= [...set]);
  }

  /** Whether some subscription to this presentity and event matches, without building an array. */
  someWatcher(presentity: string, event: EventPackageName, match: (s: Subscription) => boolean): boolean {
    const set = this.byPresentity.get(presentity)?.[event];
    if (set !== undefined) for (const s of set) if (match(s)) return true;
    return false;
  }

  /** Subscriptions with this Call-ID (RFC 3261 §8.2.2.2 merged requests share it), without building an array. */
  withCallId(callId: string): readonly Subscription[] {
    const same = this.byCallId.get(callId);
    return same === undefined ? NONE : Array.isArray(same) ? same : [same];
  }

  watcherCount(watcherUri: string): number {
    return this.perWatcher.get(watcherUri) ?? 0;
  }

  presentityCount(presentity: string): number {
    return this.byPresentity.get(presentity)?.count ?? 0;
  }

  all(): IterableIterator<Subscription> {
    return this.byId.values();
  }
}
