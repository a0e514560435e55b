// The hub: the composed state of each presentity per event package, rendered once per change and shared by every
// watcher (RFC 4235 §4.1: only `version` differs per subscription), and the change events the SIP face listens to.
// The domain never sends anything itself; it says "this presentity's state changed" and the notifier fans out.
import type { EventPackageName, ManualDialogState } from './service.js';
import type { ComposedState, EventPackage, PublicationInput, RenderedBody } from './packages/types.js';

export type ChangeCause = 'publish' | 'expire' | 'manual' | 'reset' | 'restore';

export interface StateChange {
  presentity: string;
  event: EventPackageName;
  cause: ChangeCause;
  /** performance.now() when the change happened (fan-out latency is measured from here). */
  startedAt: number;
}

export interface CurrentState {
  composed: ComposedState;
  rendered: RenderedBody;
}

export interface HubInputs {
  /** Live publications, oldest first; only read. The registry's own records may be returned as they are. */
  publications(presentity: string, event: EventPackageName): readonly PublicationInput[];
  manual(presentity: string, event: EventPackageName): ManualDialogState | null;
}

export type PackageSet = Record<EventPackageName, EventPackage>;

/**
 * Most idle states kept per event package. The idle body of a presentity nothing is known about is the same on
 * every ask, and every new watcher's first NOTIFY asks for it: it is kept while the presentity stays idle, up to
 * this many presentities (then the cache starts over; a miss costs one composition and one render).
 */
export const IDLE_STATES_KEPT = 10_000;

type ByPresentity = Record<EventPackageName, Map<string, CurrentState>>;
const perEvent = (): ByPresentity => ({ dialog: new Map(), presence: new Map(), 'message-summary': new Map() });

export class Hub {
  /** Presentities whose state was ever composed from something, per event package and presentity. */
  private readonly states = perEvent();
  /** Presentities never composed from anything: their idle state, rendered once (bounded, see IDLE_STATES_KEPT). */
  private readonly idleStates = perEvent();
  private readonly listeners: Array<(c: StateChange) => void> = [];

  constructor(private readonly packages: PackageSet, private readonly inputs: HubInputs) {}

  /**
   * The AOR the bodies name (RFC 4235 §4.1 `entity`, RFC 3863 §4.1.1 `entity`): a URI, so the user part (kept
   * %-decoded in the presentity key for matching) is %-escaped again where RFC 3261 §25.1 requires it.
   */
  static entity(presentity: string): string {
    const at = presentity.lastIndexOf('@');
    if (at < 0) return `sip:${escapeUser(presentity)}`;
    return `sip:${escapeUser(presentity.slice(0, at))}${presentity.slice(at)}`;
  }

  state(presentity: string, event: EventPackageName): CurrentState {
    const cached = this.states[event].get(presentity);
    if (cached) return cached;
    // Not composed since it came to exist: idle, unless a publication or manual state is on its way in (added,
    // not yet recomputed), which is then composed as before, uncached.
    const idle = this.idleStates[event];
    const hit = idle.get(presentity);
    const empty = this.inputs.publications(presentity, event).length === 0 && this.inputs.manual(presentity, event) === null;
    if (hit && empty) return hit;
    const fresh = this.compose(presentity, event, undefined);
    if (empty) {
      if (idle.size >= IDLE_STATES_KEPT) idle.clear();
      idle.set(presentity, fresh);
    }
    return fresh;
  }

  /** Recompose after a change, cache the new state and render, and tell the listeners (unless `silent`). */
  recompute(presentity: string, event: EventPackageName, cause: ChangeCause, silent = false): CurrentState {
    const started = performance.now();
    const states = this.states[event];
    // An admin reset has no real call behind it: start from idle, so no call-id or tags of the last call survive
    // (a phone would build a Replaces INVITE from them; sip-requirements.md §2.1 "design consequences").
    const previous = cause === 'reset' ? undefined : states.get(presentity)?.composed;
    const next = this.compose(presentity, event, previous);
    states.set(presentity, next);
    this.idleStates[event].delete(presentity);
    if (!silent) {
      const change: StateChange = { presentity, event, cause, startedAt: started };
      for (const l of this.listeners) l(change);
    }
    return next;
  }

  onChange(listener: (c: StateChange) => void): void {
    this.listeners.push(listener);
  }

  private compose(presentity: string, event: EventPackageName, previous: ComposedState | undefined): CurrentState {
    const pkg = this.packages[event];
    const pubs = this.inputs.publications(presentity, event);
    const manual = this.inputs.manual(presentity, event);
    const composed = pubs.length === 0 && manual === null && previous === undefined
      ? pkg.idle()
      : pkg.compose(pubs, manual, previous);
    return new LazyState(composed, pkg, presentity);
  }
}

/**
 * The body is rendered on first use, not on every change: a presentity with no watchers (or a burst of PUBLISHes
 * between two NOTIFYs) costs a composition only. Once rendered, it is shared by every watcher of that state.
 */
class LazyState implements CurrentState {
  private body: RenderedBody | undefined;
  constructor(readonly composed: ComposedState, private readonly pkg: EventPackage, private readonly presentity: string) {}
  get rendered(): RenderedBody {
    return (this.body ??= this.pkg.render(this.composed, Hub.entity(this.presentity)));
  }
}

// RFC 3261 §25.1: user = 1*( unreserved / escaped / user-unreserved ); unreserved = alphanum / mark.
const USER_SAFE = /^[A-Za-z0-9\-_.!~*'()&=+$,;?/]*$/;

function escapeUser(user: string): string {
  if (USER_SAFE.test(user)) return user;
  let out = '';
  for (const ch of user) {
    if (USER_SAFE.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
