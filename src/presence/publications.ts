// Publications held by the event state compositor (RFC 3903 §6): by entity-tag (conditional PUBLISH, §6 step 3)
// and by presentity and event (composition, oldest first).
import type { PublicationRecord } from '../store/publications.js';
import type { EventPackageName } from './service.js';

export type Publication = PublicationRecord;

const NONE: readonly Publication[] = Object.freeze([]);

export class PublicationRegistry {
  private readonly byEtag = new Map<string, Publication>();
  /** Per event package, by presentity: no key string is built per lookup. */
  private readonly byTarget: Record<EventPackageName, Map<string, Publication[]>> = {
    dialog: new Map(), presence: new Map(), 'message-summary': new Map(),
  };

  get size(): number {
    return this.byEtag.size;
  }

  add(p: Publication): void {
    this.byEtag.set(p.etag, p);
    const byPresentity = this.byTarget[p.event];
    const list = byPresentity.get(p.presentity);
    if (list) list.push(p);
    else byPresentity.set(p.presentity, [p]);
  }

  /** A refresh or modify re-keys the publication under its new entity-tag; its place in the order stays. */
  rekey(p: Publication, newEtag: string): void {
    this.byEtag.delete(p.etag);
    p.etag = newEtag;
    this.byEtag.set(newEtag, p);
  }

  remove(p: Publication): boolean {
    if (this.byEtag.get(p.etag) !== p) return false;
    this.byEtag.delete(p.etag);
    const byPresentity = this.byTarget[p.event];
    const list = byPresentity.get(p.presentity);
    if (list) {
      const i = list.indexOf(p);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) byPresentity.delete(p.presentity);
    }
    return true;
  }

  get(etag: string): Publication | undefined {
    return this.byEtag.get(etag);
  }

  /** Live publications of one presentity and event, oldest first. */
  of(presentity: string, event: EventPackageName): readonly Publication[] {
    return this.byTarget[event].get(presentity) ?? NONE;
  }

  all(): IterableIterator<Publication> {
    return this.byEtag.values();
  }

  /** Publications whose expiry has passed (RFC 3903 §6 step 7: the soft state runs out). */
  expired(now: number): Publication[] {
    const out: Publication[] = [];
    for (const p of this.byEtag.values()) if (p.expiresAt <= now) out.push(p);
    return out;
  }
}
