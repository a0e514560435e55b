// OPTIONS (RFC 3261 §11.2): what we can do. Phones use Allow-Events to see that BLF is served (RFC 6665 §4.4.4).
import type { ServerTransaction } from './port.js';
import { EVENT_PACKAGES } from '../presence/service.js';
import { ALLOW, ALLOW_EVENTS, type FaceContext } from './face-common.js';

export function handleOptions(ctx: FaceContext, tx: ServerTransaction): void {
  const accept = new Set<string>();
  for (const name of EVENT_PACKAGES) for (const t of ctx.presence.packages[name].acceptsPublish) accept.add(t);
  tx.respond({
    status: 200, reason: 'OK',
    headers: [['Allow', ALLOW], ['Allow-Events', ALLOW_EVENTS], ['Accept', [...accept].join(', ')]],
  });
}
