// PUBLISH: we are the event state compositor for every package (RFC 3903 §6). The steps in the RFC's order:
// authenticate, 489 for an unknown package, 412 for an entity-tag we do not hold, Expires (423), then the body
// (400 / 415), and a 200 with a NEW entity-tag and the granted Expires. Committed before the 200 leaves.
import type { ServerTransaction } from './port.js';
import { header } from './stack/message.js';
import { parseEvent } from './stack/headers.js';
import { presentityKey } from '../presence/index.js';
import { ALLOW_EVENTS, grantExpires, overloaded, reasonPhrase, RETRY_AFTER_SECONDS, servedTarget, type FaceContext } from './face-common.js';

function mediaTypeOf(v: string | undefined): string | null {
  if (v === undefined) return null;
  const t = v.split(';')[0]!.trim().toLowerCase();
  return t || null;
}

export async function handlePublish(ctx: FaceContext, tx: ServerTransaction): Promise<void> {
  const { presence, config, metrics } = ctx;
  const req = tx.request;
  const target = servedTarget(ctx, tx);
  if (!target) return;
  const { domain } = target;
  // Step 1: the publisher must be allowed to publish for this domain.
  const decision = await ctx.auth.check(tx, { domain });
  if (!decision.ok) return;
  // Step 2: the package.
  const eventValue = header(req, 'event');
  const ev = eventValue === undefined ? null : parseEvent(eventValue);
  const pkg = ev ? presence.packageFor(ev.name) : undefined;
  if (!pkg) {
    tx.respond({ status: 489, reason: 'Bad Event', headers: [['Allow-Events', ALLOW_EVENTS]] });
    return;
  }
  let user = target.user;
  try { user = decodeURIComponent(user); } catch { /* keep as written */ }
  const presentity = presentityKey(user, domain);
  // Step 3: a conditional request names a live entity-tag of this presentity and package (§11.2.1 SIP-If-Match).
  const ifMatch = header(req, 'sip-if-match')?.trim();
  const pub = ifMatch ? presence.findPublication(ifMatch, presentity, pkg.name) : undefined;
  if (ifMatch !== undefined && !pub) {
    tx.respond({ status: 412, reason: 'Conditional Request Failed' });
    return;
  }
  // Step 4: the duration.
  const expires = grantExpires(tx, config.sip.publication);
  if (expires === null) return;
  const hasBody = req.body.length > 0;
  if (expires === 0) {
    if (!pub) {
      tx.respond({ status: 400, reason: 'Expires 0 Without SIP-If-Match' });
      return;
    }
    // §4.6 removal: the publication's part of the state goes away and the watchers are told.
    const etag = pub.etag;
    await presence.removePublication(pub, 'removed');
    metrics.publishes.inc({ kind: 'remove' });
    tx.respond({ status: 200, reason: 'OK', headers: [['SIP-ETag', etag], ['Expires', '0']] });
    return;
  }
  // Step 5: the body. An initial PUBLISH must carry state; a refresh carries none.
  if (!pub && !hasBody) {
    tx.respond({ status: 400, reason: 'Missing Body In Initial PUBLISH' });
    return;
  }
  let contentType: string | null = null;
  // The publication keeps its own copy of the body (req.body is a view into the whole datagram or stream chunk).
  // Pooled: consecutive PUBLISH bodies fill the pools they pin (measured: own memory per body costs more).
  // The copy is the Buffer validated: the packages memoise their parse by Buffer, so the composition that follows
  // reads the result of this validation instead of parsing the body a second time.
  const body = hasBody ? Buffer.from(req.body) : req.body;
  if (hasBody) {
    contentType = mediaTypeOf(header(req, 'content-type'));
    if (!contentType || !pkg.acceptsPublish.includes(contentType)) {
      tx.respond({ status: 415, reason: 'Unsupported Media Type', headers: [['Accept', pkg.acceptsPublish.join(', ')]] });
      return;
    }
    const invalid = pkg.validate(body, contentType);
    if (invalid !== null) {
      tx.respond({ status: 400, reason: reasonPhrase('Bad Body', invalid) });
      return;
    }
  }
  try {
    let result;
    if (!pub) {
      if (presence.publicationCount(presentity, pkg.name) >= config.sip.limits.publicationsPerAor) {
        overloaded(ctx, tx, 'publicationsPerAor', 503);
        return;
      }
      result = await presence.publish({ presentity, event: pkg.name, contentType: contentType!, body, expires });
      metrics.publishes.inc({ kind: 'initial' });
    } else if (!hasBody) {
      result = await presence.updatePublication(pub, expires);
      metrics.publishes.inc({ kind: 'refresh' });
    } else {
      result = await presence.updatePublication(pub, expires, { contentType: contentType!, body });
      metrics.publishes.inc({ kind: 'modify' });
    }
    // Step 8: a new entity-tag each time; the old one stops matching.
    tx.respond({ status: 200, reason: 'OK', headers: [['SIP-ETag', result.etag], ['Expires', String(expires)]] });
  } catch (err) {
    ctx.logger.error({ presentity, err: (err as Error).message }, 'publication not stored');
    tx.respond({ status: 500, reason: 'Storage Failure', headers: [['Retry-After', String(RETRY_AFTER_SECONDS)]] });
  }
}
