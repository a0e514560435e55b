// SUBSCRIBE, the notifier side of RFC 6665 §4.2.1: a new subscription creates a dialog (the 200 carries our
// To-tag, Contact, the Record-Route set, Expires), a SUBSCRIBE inside it refreshes or ends it, and every accepted
// SUBSCRIBE is followed at once by a NOTIFY with the full current state (§4.2.1.2, §4.2.1.4).
import type { ServerTransaction } from './port.js';
import type { SipIdentity } from './auth/types.js';
import { header, headerAll } from './stack/message.js';
import { parseCSeq, parseEvent, parseNameAddr, parseUri } from './stack/headers.js';
import { presentityKey, randomToken, type Subscription } from '../presence/index.js';
import type { EventPackage } from '../presence/packages/types.js';
import { hasControlChar } from '../text.js';
import {
  ALLOW_EVENTS, acceptsBody, contactHeader, grantExpires, isCallId, overloaded, type FaceContext,
  flowBound, ownString, servedTarget,
} from './face-common.js';

export async function handleSubscribe(ctx: FaceContext, tx: ServerTransaction): Promise<void> {
  const req = tx.request;
  const eventValue = header(req, 'event');
  const ev = eventValue === undefined ? null : parseEvent(eventValue);
  const pkg = ev ? ctx.presence.packageFor(ev.name) : undefined;
  // RFC 6665 §4.2.1.1: an unknown or missing package gets 489 with the ones we have.
  if (!ev || !pkg) {
    tx.respond({ status: 489, reason: 'Bad Event', headers: [['Allow-Events', ALLOW_EVENTS]] });
    return;
  }
  const fromValue = header(req, 'from');
  const toValue = header(req, 'to');
  const callId = header(req, 'call-id');
  const cseq = parseCSeq(header(req, 'cseq') ?? '');
  const from = fromValue ? parseNameAddr(fromValue) : null;
  const to = toValue ? parseNameAddr(toValue) : null;
  // RFC 3261 §25.1: a Call-ID is word ["@" word], no whitespace or controls, and no control but HTAB is qdtext or
  // token in From/To; all three are stored and sent in every NOTIFY.
  if (!from || !to || !callId || !cseq || !fromValue || !toValue || /[\x00-\x20\x7f]/.test(callId)
    || hasControlChar(fromValue) || hasControlChar(toValue)) {
    tx.respond({ status: 400, reason: 'Malformed From, To, Call-ID or CSeq' });
    return;
  }
  // Accept and User-Agent are stored with the subscription (and shown by the API): no control but HTAB belongs in
  // them either (RFC 3261 §25.1 TEXT-UTF8 and token exclude C0 and DEL; socket-fuzz finding).
  if (anyControl(req.headers.get('accept')) || anyControl(req.headers.get('user-agent'))) {
    tx.respond({ status: 400, reason: 'Malformed Accept or User-Agent' });
    return;
  }
  // Stored with the dialog and echoed in every NOTIFY: it must be a Call-ID, not arbitrary bytes.
  if (!isCallId(callId)) {
    tx.respond({ status: 400, reason: 'Malformed Call-ID' });
    return;
  }
  const fromTag = from.params.tag;
  if (typeof fromTag !== 'string' || fromTag === '') {
    tx.respond({ status: 400, reason: 'Missing From tag' });
    return;
  }
  const toTag = to.params.tag;
  if (typeof toTag === 'string' && toTag !== '') {
    await inDialog(ctx, tx, { pkg, eventId: ev.id ?? null, callId, localTag: toTag, remoteTag: fromTag, cseq: cseq.seq });
    return;
  }
  await newSubscription(ctx, tx, {
    pkg, eventId: ev.id ?? null, callId, fromTag, fromValue, toValue, watcherUri: from.uri, cseq: cseq.seq,
  });
}

/** RFC 6665 §4.1.2.2, §4.1.2.3: refresh or unsubscribe inside an existing subscription dialog. */
async function inDialog(ctx: FaceContext, tx: ServerTransaction, d: {
  pkg: EventPackage; eventId: string | null; callId: string; localTag: string; remoteTag: string; cseq: number;
}): Promise<void> {
  const { presence } = ctx;
  const req = tx.request;
  const sub = presence.findDialog(d.callId, d.localTag, d.remoteTag);
  if (!sub || ctx.notifier.terminating(sub)) {
    tx.respond({ status: 481, reason: 'Subscription Does Not Exist' });
    return;
  }
  if (sub.event !== d.pkg.name) {
    tx.respond({ status: 489, reason: 'Bad Event', headers: [['Allow-Events', ALLOW_EVENTS]] });
    return;
  }
  // RFC 6665 §4.5.2: dialog reuse (a second `id` in one dialog) is deprecated; we do not create such usages.
  if ((sub.eventId ?? null) !== d.eventId) {
    tx.respond({ status: 403, reason: 'Dialog Reuse Not Supported' });
    return;
  }
  // RFC 3261 §12.2.2: a CSeq lower than the last one is out of order.
  if (d.cseq < sub.remoteCseq) {
    tx.respond({ status: 500, reason: 'CSeq Out Of Order' });
    return;
  }
  const dialogIdentity = sub.identity === null ? undefined : (JSON.parse(sub.identity) as SipIdentity);
  const decision = await ctx.auth.check(tx, { domain: sub.domain, dialogIdentity });
  if (!decision.ok) return;
  if (presence.getSubscription(sub.id) !== sub || ctx.notifier.terminating(sub)) {
    tx.respond({ status: 481, reason: 'Subscription Does Not Exist' });
    return;
  }
  if (!acceptsBody(req, d.pkg.contentType)) {
    tx.respond({ status: 406, reason: 'Not Acceptable', headers: [['Accept', d.pkg.contentType]] });
    return;
  }
  const expires = grantExpires(tx, ctx.config.sip.subscription);
  if (expires === null) return;
  sub.remoteCseq = d.cseq;
  if (expires === 0) {
    // Unsubscribe: 200, then one final NOTIFY with the current state, then the subscription is gone.
    tx.respond({
      status: 200, reason: 'OK',
      headers: [['Expires', '0'], ['Contact', contactHeader(ctx.engine, tx.flow.transport)], ['Allow-Events', ALLOW_EVENTS]],
    });
    ctx.notifier.notify(sub, { final: 'timeout' });
    return;
  }
  const now = presence.now();
  const previousTransport = sub.transport;
  sub.expires = expires;
  sub.expiresAt = now + expires * 1000;
  sub.updatedAt = now;
  // SUBSCRIBE is a target refresh request (RFC 6665 §4.1.2.2 with RFC 3261 §12.2.2); the flow may be new too.
  const contact = firstContact(req);
  if (contact) sub.remoteTarget = ownString(contact);
  sub.transport = tx.flow.transport;
  sub.flowId = flowString(tx.flow.id);
  sub.sourceAddress = flowString(tx.flow.remoteAddress);
  sub.sourcePort = tx.flow.remotePort;
  try {
    await presence.refreshSubscription(sub, previousTransport);
  } catch (err) {
    ctx.logger.error({ subscription: sub.id, err: (err as Error).message }, 'subscription refresh not stored');
    tx.respond({ status: 500, reason: 'Storage Failure' });
    return;
  }
  tx.respond({
    status: 200, reason: 'OK',
    headers: [['Expires', String(expires)], ['Contact', contactHeader(ctx.engine, tx.flow.transport)], ['Allow-Events', ALLOW_EVENTS]],
  });
  ctx.notifier.notify(sub);
}

async function newSubscription(ctx: FaceContext, tx: ServerTransaction, d: {
  pkg: EventPackage; eventId: string | null; callId: string; fromTag: string; fromValue: string; toValue: string;
  watcherUri: string; cseq: number;
}): Promise<void> {
  const { presence, config } = ctx;
  const req = tx.request;
  const target = servedTarget(ctx, tx);
  if (!target) return;
  const { domain } = target;
  const presentity = presentityKey(safeDecode(target.user), domain);
  // RFC 3261 §8.2.2.2 merged requests: the same SUBSCRIBE (Call-ID, From tag, CSeq) that reached us over another
  // path (another branch) must not make a second dialog.
  for (const old of presence.withCallId(d.callId)) {
    if (old.presentity === presentity && old.event === d.pkg.name && old.remoteTag === d.fromTag && old.remoteCseq === d.cseq) {
      tx.respond({ status: 482, reason: 'Loop Detected' });
      return;
    }
  }
  // The watchers of one presentity share one string for it.
  const watching = presence.watchers(presentity, d.pkg.name);
  const samePresentity = watching.length > 0 ? watching[0]!.presentity : undefined;
  const decision = await ctx.auth.check(tx, { domain });
  if (!decision.ok) return;
  // RFC 6665 §4.2.1.1 / RFC 3261 §21.4.7: we can only send the package's one body type.
  if (!acceptsBody(req, d.pkg.contentType)) {
    tx.respond({ status: 406, reason: 'Not Acceptable', headers: [['Accept', d.pkg.contentType]] });
    return;
  }
  const expires = grantExpires(tx, config.sip.subscription);
  if (expires === null) return;
  const remoteTarget = firstContact(req);
  if (!remoteTarget) {
    // RFC 3261 §12.1.1: the dialog needs the subscriber's Contact as its remote target.
    tx.respond({ status: 400, reason: 'Missing Contact' });
    return;
  }
  // RFC 3261 §12.1.1, §20.30: each Record-Route value is a name-addr with a SIP URI; it becomes the route set of
  // every NOTIFY, so a malformed one is refused rather than stored.
  const recordRoute = headerAll(req, 'record-route');
  for (const rr of recordRoute) {
    const na = rr.includes('<') ? parseNameAddr(rr) : null;
    const scheme = na ? parseUri(na.uri)?.scheme : undefined;
    if (scheme !== 'sip' && scheme !== 'sips') {
      tx.respond({ status: 400, reason: 'Malformed Record-Route' });
      return;
    }
  }
  const limits = config.sip.limits;
  if (expires > 0) {
    if (presence.subscriptionCount >= limits.totalSubscriptions) return overloaded(ctx, tx, 'totalSubscriptions', 503);
    if (presence.presentityCount(presentity) >= limits.watchersPerPresentity) return overloaded(ctx, tx, 'watchersPerPresentity', 503);
    if (presence.watcherCount(d.watcherUri) >= limits.subscriptionsPerWatcher) return overloaded(ctx, tx, 'subscriptionsPerWatcher', 403);
  }
  const now = presence.now();
  const localTag = randomToken(8);
  // Every string kept for the subscription's life is a flat copy of its own (ownString), not a parser slice that
  // would keep the SUBSCRIBE's whole head alive, nor a slice or concatenation wrapping one (32 bytes more each);
  // values shared by many subscriptions are shared strings (RSS at 100k subscriptions).
  const userAgent = header(req, 'user-agent');
  const rawAccept = req.headers.get('accept');
  const sub: Subscription = {
    seq: undefined, // given by the store on insert: declared here so the record never changes shape
    id: randomToken(12), event: d.pkg.name, eventId: d.eventId === null ? null : ownString(d.eventId),
    presentity: samePresentity ?? ownString(presentity), domain: intern(domain), watcherUri: ownString(d.watcherUri),
    callId: ownString(d.callId), localTag, remoteTag: ownString(d.fromTag),
    localUri: ownString(`${d.toValue};tag=${localTag}`), remoteUri: ownString(d.fromValue), remoteTarget: ownString(remoteTarget),
    // RFC 3261 §12.1.1: a UAS takes the Record-Route URIs in order as its route set.
    routeSet: recordRoute.length === 0 ? NO_ROUTE : recordRoute.map(ownString),
    localCseq: 0, remoteCseq: d.cseq, notifyVersion: -1,
    accept: rawAccept === undefined ? null : intern(rawAccept.length === 1 ? rawAccept[0]! : rawAccept.join(', ')),
    transport: tx.flow.transport, flowId: flowString(tx.flow.id), sourceAddress: flowString(tx.flow.remoteAddress),
    sourcePort: tx.flow.remotePort, identity: intern(JSON.stringify(decision.identity)), expires,
    expiresAt: now + expires * 1000, nodeId: presence.nodeId, createdAt: now, updatedAt: now, lastNotifyCseq: 0,
    lastNotifyReply: 0, userAgent: userAgent === undefined ? null : intern(userAgent),
  };
  const headers: Array<[string, string]> = [['Expires', String(expires)], ['Contact', contactHeader(ctx.engine, tx.flow.transport)]];
  for (const rr of recordRoute) headers.push(['Record-Route', rr]);
  headers.push(ALLOW_EVENTS_HEADER);
  if (expires === 0) {
    // RFC 6665 §4.4.3: a fetch. 200, one NOTIFY with the state and `terminated`, nothing stored.
    tx.respond({ status: 200, reason: 'OK', toTag: localTag, headers });
    ctx.notifier.notify(sub, { final: 'timeout', transient: true });
    return;
  }
  try {
    // Committed before the 200 leaves: an acknowledged subscription survives kill -9.
    await presence.addSubscription(sub);
  } catch (err) {
    ctx.logger.error({ err: (err as Error).message }, 'subscription not stored');
    void presence.removeSubscription(sub, 'storage-failure').catch(() => undefined);
    tx.respond({ status: 500, reason: 'Storage Failure' });
    return;
  }
  tx.respond({ status: 200, reason: 'OK', toTag: localTag, headers });
  ctx.notifier.notify(sub);
  // The same watcher re-subscribing over WebSocket (or TCP with an unreachable Contact) replaces its subscriptions whose flow is gone (issue 2: kept
  // "until they expire or re-subscribe"); other tabs with live flows keep theirs.
  if (flowBound(sub)) {
    for (const old of presence.watchers(presentity, sub.event)) {
      if (old !== sub && old.watcherUri === sub.watcherUri && flowBound(old) && unreachable(ctx, old)) {
        void presence.removeSubscription(old, 'replaced').catch(() => undefined);
      }
    }
  }
}

/** A flow-bound subscription nobody can reach: a NOTIFY found its flow gone, or the engine says it is closed. */
function unreachable(ctx: FaceContext, sub: Subscription): boolean {
  if (ctx.notifier.isUnreachable(sub)) return true;
  return sub.flowId !== null && ctx.engine.isFlowOpen !== undefined && !ctx.engine.isFlowOpen(sub.flowId);
}

/** Distinct values interned (User-Agent, Accept, domain): phones of one model share one string, not one each. */
const INTERN_MAX = 4096;
const interned = new Map<string, string>();
function intern(v: string): string {
  const hit = interned.get(v);
  if (hit !== undefined) return hit;
  const own = ownString(v);
  if (interned.size < INTERN_MAX) interned.set(own, own);
  return own;
}

/**
 * Flow ids and source addresses: every subscription over one flow (a PBX's or a phone's socket) shares one string.
 * Flows come and go, so the table starts over when it holds FLOW_STRINGS_KEPT of them.
 */
const FLOW_STRINGS_KEPT = 2048;
const flowStrings = new Map<string, string>();
function flowString<T extends string | null>(v: T): T {
  if (v === null) return v;
  const hit = flowStrings.get(v);
  if (hit !== undefined) return hit as T;
  if (flowStrings.size >= FLOW_STRINGS_KEPT) flowStrings.clear();
  const own = ownString(v);
  flowStrings.set(own, own);
  return own as T;
}

const NO_ROUTE: string[] = [];
/** The same pair in every 2xx (the engine only reads response headers). */
const ALLOW_EVENTS_HEADER: [string, string] = ['Allow-Events', ALLOW_EVENTS];

function firstContact(req: ServerTransaction['request']): string | null {
  const v = header(req, 'contact');
  if (v === undefined) return null;
  const na = parseNameAddr(v);
  return na && na.uri !== '*' ? na.uri : null;
}

function anyControl(values: readonly string[] | undefined): boolean {
  if (values !== undefined) for (const v of values) if (hasControlChar(v)) return true;
  return false;
}

function safeDecode(user: string): string {
  if (!user.includes('%')) return user;
  try {
    return decodeURIComponent(user);
  } catch {
    return user;
  }
}
