// createPresence: the presence domain wired to the event packages. See presence.ts for the domain itself.
import type { Db, GroupCommit } from '../store/db.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { PACKAGES } from './packages/index.js';
import { Presence } from './presence.js';

export { Presence, presentityKey, normalizePresentity, isEventPackage, randomToken } from './presence.js';
export type { Subscription, Publication, StateChange, CurrentState, RestoreResult } from './presence.js';

export function createPresence(opts: { db: Db; commit: GroupCommit; logger: Logger; metrics: Metrics; nodeId: string; now?: () => number; replyLogIntervalMs?: number }): Presence {
  return new Presence({ ...opts, packages: PACKAGES });
}
