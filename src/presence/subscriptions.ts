// The subscriptions this node holds (RFC 6665 §4.2.1), in memory with the indexes the notifier needs: by dialog
// (in-dialog SUBSCRIBE, RFC 3261 §12.2.2), by presentity and event (fan-out of a state change), and counters for
// the limits. The records themselves are the compact persistent shape; nothing per-NOTIFY is kept here.
import type { SubscriptionRecord } from '../store/subscriptions.js';
import type { EventPackageName } from './service.js';

export type Subscription = SubscriptionRecord;

export function dialogKey(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}\n${localTag}\n${remoteTag}`;
}

export function targetKey(presentity: string, event: EventPackageName): string {
  return `${event}\n${presentity}`;
}

export class SubscriptionRegistry {
  private readonly byId = new Map<string, Subscription>();
  private readonly byDialog = new Map<string, Subscription>();
  private readonly byTarget = new Map<string, Set<Subscription>>();
  private readonly perWatcher = new Map<string, number>();
  private readonly perPresentity = new Map<string, number>();

  get size(): number {
    return this.byId.size;
  }

  add(s: Subscription): void {
    this.byId.set(s.id, s);
    this.byDialog.set(dialogKey(s.callId, s.localTag, s.remoteTag), s);
    const k = targetKey(s.presentity, s.event);
    let set = this.byTarget.get(k);
    if (!set) this.byTarget.set(k, (set = new Set()));
    set.add(s);
    this.perWatcher.set(s.watcherUri, (this.perWatcher.get(s.watcherUri) ?? 0) + 1);
    this.perPresentity.set(s.presentity, (this.perPresentity.get(s.presentity) ?? 0) + 1);
  }

  remove(s: Subscription): boolean {
    if (this.byId.get(s.id) !== s) return false;
    this.byId.delete(s.id);
    this.byDialog.delete(dialogKey(s.callId, s.localTag, s.remoteTag));
    const k = targetKey(s.presentity, s.event);
    const set = this.byTarget.get(k);
    if (set) {
      set.delete(s);
      if (set.size === 0) this.byTarget.delete(k);
    }
    decrement(this.perWatcher, s.watcherUri);
    decrement(this.perPresentity, s.presentity);
    return true;
  }

  get(id: string): Subscription | undefined {
    return this.byId.get(id);
  }

  findByDialog(callId: string, localTag: string, remoteTag: string): Subscription | undefined {
    return this.byDialog.get(dialogKey(callId, localTag, remoteTag));
  }

  watchers(presentity: string, event: EventPackageName): Subscription[] {
    const set = this.byTarget.get(targetKey(presentity, event));
    return set ? [...set] : [];
  }

  watcherCount(watcherUri: string): number {
    return this.perWatcher.get(watcherUri) ?? 0;
  }

  presentityCount(presentity: string): number {
    return this.perPresentity.get(presentity) ?? 0;
  }

  all(): IterableIterator<Subscription> {
    return this.byId.values();
  }
}

function decrement(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 0) - 1;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}
