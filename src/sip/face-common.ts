// Small pieces shared by the SIP faces of presence (subscribe.ts, publish.ts, notify.ts, options.ts).
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { SipEngine, ServerTransaction } from './port.js';
import type { SipAuthenticator } from './auth/types.js';
import type { Presence } from '../presence/index.js';
import { EVENT_PACKAGES } from '../presence/service.js';
import { header, type SipRequest } from './stack/message.js';
import { detachString, parseUInt, parseUri } from './stack/headers.js';
import type { Notifier } from './notify.js';

export interface FaceContext {
  engine: SipEngine;
  presence: Presence;
  auth: SipAuthenticator;
  config: Config;
  logger: Logger;
  metrics: Metrics;
  notifier: Notifier;
}

/** Methods we handle (RFC 3261 §20.5 Allow). ACK is absorbed without an answer. */
export const ALLOWED_METHODS = ['SUBSCRIBE', 'PUBLISH', 'OPTIONS'] as const;
export const ALLOW = ALLOWED_METHODS.join(', ');
/** RFC 6665 §7.2.2 Allow-Events: the packages this notifier serves. */
export const ALLOW_EVENTS = EVENT_PACKAGES.join(', ');
/** Seconds a client should wait after a 503 for a full table (RFC 3261 §21.5.4, §20.33). */
export const RETRY_AFTER_SECONDS = 30;

export interface ExpiryPolicy { minExpires: number; maxExpires: number; defaultExpires: number }

/**
 * The granted duration: the default when Expires is absent, never longer than maxExpires (RFC 6665 §4.2.1.1 lets
 * the notifier shorten, never lengthen), 423 + Min-Expires when non-zero and too brief (RFC 3261 §21.4.17).
 * Returns null when it has answered the request.
 */
export function grantExpires(tx: ServerTransaction, policy: ExpiryPolicy): number | null {
  const raw = header(tx.request, 'expires');
  // The default obeys the maximum too: an operator may lower maxExpires below the shipped default.
  if (raw === undefined) return Math.min(policy.defaultExpires, policy.maxExpires);
  const n = parseUInt(raw);
  if (n === null) {
    tx.respond({ status: 400, reason: 'Malformed Expires' });
    return null;
  }
  if (n === 0) return 0;
  if (n < policy.minExpires) {
    tx.respond({ status: 423, reason: 'Interval Too Brief', headers: [['Min-Expires', String(policy.minExpires)]] });
    return null;
  }
  return Math.min(n, policy.maxExpires);
}

/** Media ranges of the Accept headers, lower-cased, without parameters; null when no Accept header is present. */
export function acceptedTypes(req: SipRequest): string[] | null {
  const values = req.headers.get('accept');
  if (values === undefined) return null;
  const out: string[] = [];
  for (const v of values) {
    for (const part of v.split(',')) {
      const t = part.split(';')[0]!.trim().toLowerCase();
      if (t) out.push(t);
    }
  }
  return out;
}

/**
 * Whether the request's Accept headers admit this media type (RFC 3261 §20.1); no Accept header, or an empty one,
 * admits the package's type (RFC 6665 §4.2.1.1). The common case, one value naming exactly the type, builds nothing.
 */
export function acceptsBody(req: SipRequest, type: string): boolean {
  const values = req.headers.get('accept');
  if (values === undefined || (values.length === 1 && values[0] === type)) return true;
  const ranges = acceptedTypes(req)!;
  return ranges.length === 0 || acceptsType(ranges, type);
}

/** Whether a media type is acceptable under these ranges (RFC 3261 §20.1: `type/*` and `*\/*` ranges). */
export function acceptsType(ranges: string[], type: string): boolean {
  const t = type.toLowerCase();
  const major = t.split('/')[0];
  return ranges.some((r) => r === t || r === '*/*' || r === `${major}/*`);
}

// RFC 3261 §25.1: callid = word [ "@" word ]; word = 1*(alphanum / - . ! % * _ + ` ' ~ ( ) < > : \ DQUOTE / [ ] ? { }).
const CALL_ID = /^[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+)?$/;

/** Whether a Call-ID is one we may store and send back in every NOTIFY of the dialog. */
export function isCallId(v: string): boolean {
  return v.length <= 256 && CALL_ID.test(v);
}

/** A reason phrase safe for the status line: printable, single line, bounded. */
export function reasonPhrase(prefix: string, detail: string): string {
  const clean = detail.replace(/[^\x20-\x7e]/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 120);
  return clean ? `${prefix}: ${clean}` : prefix;
}

export function overloaded(ctx: FaceContext, tx: ServerTransaction, limit: string, status: 503 | 403): void {
  ctx.metrics.overload.inc({ limit });
  ctx.logger.warn({ limit, method: tx.request.method, source: tx.flow.remoteAddress }, 'limit reached; request refused');
  if (status === 503) {
    tx.respond({ status: 503, reason: 'Service Unavailable', headers: [['Retry-After', String(RETRY_AFTER_SECONDS)]] });
  } else {
    tx.respond({ status: 403, reason: 'Too Many Subscriptions' });
  }
}

type ContactTransport = Parameters<SipEngine['contactUri']>[0];
/** The last Contact built per transport: every 2xx and NOTIFY carries one, and it only changes with the listener. */
const contactMemo = new Map<ContactTransport, { uri: string; header: string }>();

export function contactHeader(engine: SipEngine, transport: ContactTransport): string {
  const uri = engine.contactUri(transport);
  const memo = contactMemo.get(transport);
  if (memo !== undefined && memo.uri === uri) return memo.header;
  const header = uri.startsWith('<') ? uri : `<${uri}>`;
  contactMemo.set(transport, { uri, header });
  return header;
}

/**
 * A subscription reachable only over the flow it came on: WebSocket (RFC 7118 §5), or TCP whose Contact host is
 * `.invalid` (SIP.js and other clients that cannot accept connections). When that flow is gone, nobody can reach the
 * watcher until it subscribes again.
 */
export function flowBound(sub: { transport: string; remoteTarget: string }): boolean {
  if (sub.transport === 'ws') return true;
  return sub.transport === 'tcp' && /\.invalid(?:[:;>?]|$)/i.test(sub.remoteTarget);
}

/**
 * The presentity's user part and domain from the Request-URI, or null after answering 404: a URI without a user
 * part names no presentity, and a domain we do not serve has none (with auth on, only account realms are served).
 */
export function servedTarget(ctx: FaceContext, tx: ServerTransaction): { user: string; domain: string } | null {
  const target = parseUri(tx.request.uri);
  const domain = target?.host.toLowerCase();
  if (!target?.user || !domain || !ctx.auth.servesDomain(domain)) {
    tx.respond({ status: 404, reason: 'Not Found' });
    return null;
  }
  return { user: target.user, domain };
}

/** Scratch space for ownString: one copy in and one out, no Buffer allocated per string. */
const OWN_SCRATCH = Buffer.allocUnsafe(4096);

/**
 * A flat copy of `s` that shares nothing with the text it was cut from: what a record kept for a subscription's
 * life should hold. A parser slice keeps the whole message head alive; detachString's copy is a slice of a fresh
 * string (32 bytes of slice header more per value). Strings V8 copies anyway (under 13 characters) are returned
 * as they are; a string that does not survive UTF-8 (a lone surrogate) falls back to detachString.
 */
export function ownString(s: string): string {
  if (s.length < 13) return s;
  const n = OWN_SCRATCH.write(s, 0, 'utf8');
  if (n > OWN_SCRATCH.length - 4) return detachString(s); // may not all have fit
  const copy = OWN_SCRATCH.toString('utf8', 0, n);
  return copy === s ? copy : detachString(s);
}
