// OPTIONS (RFC 3261 §11.2): what we can do. Phones use Allow-Events to see that BLF is served (RFC 6665 §4.4.4).
import type { ServerTransaction } from './port.js';
import { EVENT_PACKAGES } from '../presence/service.js';
import { ALLOW, ALLOW_EVENTS, type FaceContext } from './face-common.js';

/**
 * The answer's headers, built once per package set: phones send OPTIONS as a keep-alive (often every 30 s each),
 * and the packages never change while the server runs.
 */
const answers = new WeakMap<FaceContext['presence']['packages'], Array<[string, string]>>();

export function handleOptions(ctx: FaceContext, tx: ServerTransaction): void {
  const packages = ctx.presence.packages;
  let headers = answers.get(packages);
  if (headers === undefined) {
    const accept = new Set<string>();
    for (const name of EVENT_PACKAGES) for (const t of packages[name].acceptsPublish) accept.add(t);
    headers = [['Allow', ALLOW], ['Allow-Events', ALLOW_EVENTS], ['Accept', [...accept].join(', ')]];
    answers.set(packages, headers);
  }
  tx.respond({ status: 200, reason: 'OK', headers });
}
