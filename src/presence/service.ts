// What the admin API (and the CLI) may ask of presence. Implemented in src/presence; consumed by src/api.
// Presentities are keyed `user@domain`, user part lower-cased (see normalizeUser in src/presence).

export type EventPackageName = 'dialog' | 'presence' | 'message-summary';
export const EVENT_PACKAGES: readonly EventPackageName[] = ['dialog', 'presence', 'message-summary'];

/** A manual lamp state set by an admin (Kazoo's `action: set`). */
export type ManualDialogState = 'early' | 'confirmed' | 'terminated';

export interface SubscriptionView {
  id: string;
  callId: string;
  event: EventPackageName;
  /** `user@domain` */
  presentity: string;
  /** The watcher's From URI. */
  watcher: string;
  /** Granted duration in seconds. */
  expires: number;
  /** Unix ms when it runs out. */
  expiresAt: number;
  /** Unix ms when created (or last refreshed). */
  updatedAt: number;
  transport: 'udp' | 'tcp' | 'ws';
  contact: string;
  userAgent?: string;
  nodeId: string;
  /** dialog-info version of the last NOTIFY sent (-1 before the first). */
  version: number;
  /** Last NOTIFY: body ("undefined" before the first answer), response code and CSeq (0, 0 before it). */
  lastNotify: { body: string; reply: number; sequence: number };
}

export interface PresentityStateView {
  event: EventPackageName;
  /** Short state: dialog early|confirmed|terminated, presence open|closed, MWI yes|no. */
  state: string;
  /** Where it came from. */
  source: 'publication' | 'manual' | 'none';
  /** The full body a watcher would get now. */
  body: string;
  contentType: string;
}

export interface ResetResult {
  /** Subscriptions (of every event) that were sent a NOTIFY. */
  notified: number;
  /** The subscriptions as they were just before the reset (Kazoo's report). */
  snapshot: SubscriptionView[];
}

export interface PresenceService {
  /** Live subscriptions whose presentity is in `domain`; optionally one event or one user part. */
  listSubscriptions(domain: string, filter?: { event?: EventPackageName; user?: string }): SubscriptionView[];
  /** The current composed state of one presentity, per event. */
  currentState(presentity: string): PresentityStateView[];
  /** Clear publications and manual state, NOTIFY every watcher (dialog/presence idle, MWI current). Resolves once queued. */
  reset(presentity: string): Promise<ResetResult>;
  /** Set a manual dialog state that survives restarts until reset. Resolves once the NOTIFYs are queued. */
  setManualState(presentity: string, state: ManualDialogState): Promise<{ notified: number }>;
}
