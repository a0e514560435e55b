// SIP message parser on Buffers (RFC 3261 §7). One call parses one datagram, one WebSocket message (RFC 7118 §5.1)
// or one message cut out of a TCP stream by the StreamFramer.
//
// Choices (and why):
// - Only the header section is decoded (UTF-8); the body stays bytes, taken as exactly Content-Length BYTES
//   (RFC 3261 §20.14). Bytes past Content-Length in a datagram are discarded (§18.3); a Content-Length larger
//   than what arrived is an error; no Content-Length on a datagram means the rest of it (§18.3, §20.14).
//   The body is copied out, so nothing keeps the input buffer alive after the parse.
// - Header values stay strings; structured values are parsed lazily by the callers with headers.ts. The parser
//   itself checks what every caller relies on: the start line, the mandatory headers, CSeq, Content-Length,
//   Max-Forwards, and that every Via, From, To and Contact parses. Values are slices of the decoded header
//   section: keep one for long (a subscription's Call-ID, tags, URIs) through detachString() from headers.ts.
// - Header names are lower-cased and compact forms mapped to full names (§7.3.3, RFC 6665 §8.4 for o/u).
// - Folded lines (a line starting with SP/HTAB) are joined with one SP (§7.3.1).
// - Via, Contact, Route and Record-Route are split on top-level commas; every other header keeps one value per
//   line (§7.3.1: only list-valued headers may be combined).
// - CRLFs before the start line are ignored (§7.5). A bare LF line end is accepted as well (robustness); a CR
//   alone inside a header line is refused (it is never data, and echoing it could forge a line for some peers).
// - Errors never throw. When the start line is a request, the partially parsed request comes back with the error
//   so the engine can answer 400 (§8.2.2, §21.4.1) when canAnswer() says it can.
import type { HeaderMap, SipMessage, SipRequest, SipResponse } from './message.js';
import { isToken, isValidNameAddr, isValidVia, parseCSeq, splitTopLevelCommas } from './headers.js';

export interface ParseLimits {
  /** Largest message accepted, header section plus body, in bytes. */
  maxMessageSize: number;
  /** Most header lines accepted in one message. */
  maxHeaders: number;
}

export const DEFAULT_LIMITS: ParseLimits = { maxMessageSize: 65536, maxHeaders: 100 };

/**
 * How far a response is checked. 'full' (the default) checks it like a request. 'match' checks what matching it to
 * a client transaction relies on (RFC 3261 §17.1.3, §18.1.2): the Status-Line, the five mandatory headers present
 * and not in conflict, CSeq, the top Via, Content-Length; From, To, Contact and the other Vias are left unparsed.
 * Requests always get the full checks.
 */
export type ResponseChecks = 'full' | 'match';

export type ParseResult =
  | { ok: true; message: SipMessage }
  | {
      ok: false;
      /** Short human reason, usable as the reason phrase of the 400 ("Bad CSeq", "Missing Call-ID"...). */
      error: string;
      /** Status the engine should answer with when it answers: 400, or 505 (bad version), 513 (too large). */
      status: number;
      /** Present when the start line was a request: what could be parsed. */
      request?: SipRequest;
    };

/** Compact forms (RFC 3261 §7.3.3 and the registry of RFC 3261 §27.3 as extended since). */
export const COMPACT_FORMS: Readonly<Record<string, string>> = {
  a: 'accept-contact', // RFC 3841
  b: 'referred-by', // RFC 3892
  c: 'content-type',
  d: 'request-disposition', // RFC 3841
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact', // RFC 3841
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  o: 'event', // RFC 6665 §8.4
  r: 'refer-to', // RFC 3515
  s: 'subject',
  t: 'to',
  u: 'allow-events', // RFC 6665 §8.4
  v: 'via',
  x: 'session-expires', // RFC 4028
  y: 'identity', // RFC 8224
};

/** Headers whose comma-separated values are split into separate elements. */
const MULTI_VALUE = new Set(['via', 'contact', 'route', 'record-route']);

// Lower-case name lookup for the spellings seen on the wire, so the hot path skips toLowerCase and token checks.
const NAME_CACHE = new Map<string, string>();
for (const full of [
  'via', 'from', 'to', 'call-id', 'cseq', 'contact', 'max-forwards', 'expires', 'event', 'accept', 'allow',
  'allow-events', 'supported', 'user-agent', 'content-type', 'content-length', 'subscription-state', 'sip-etag',
  'sip-if-match', 'route', 'record-route', 'authorization', 'www-authenticate', 'proxy-authorization',
  'proxy-authenticate', 'server', 'min-expires', 'retry-after', 'require', 'proxy-require', 'unsupported',
  'date', 'subject', 'organization', 'accept-encoding', 'accept-language', 'content-encoding', 'timestamp',
  'priority', 'p-asserted-identity', 'x-serialnumber', 'warning', 'reason', 'refer-to', 'referred-by',
]) {
  const canonical = full.replace(/(^|-)([a-z])/g, (_m, d: string, ch: string) => d + ch.toUpperCase());
  NAME_CACHE.set(full, full);
  NAME_CACHE.set(canonical, full);
  NAME_CACHE.set(full.toUpperCase(), full);
}
for (const [alias, full] of [['Call-Id', 'call-id'], ['CSeq', 'cseq'], ['Cseq', 'cseq'], ['Call-ID', 'call-id'],
  ['SIP-ETag', 'sip-etag'], ['SIP-If-Match', 'sip-if-match'], ['WWW-Authenticate', 'www-authenticate'],
  ['P-Asserted-Identity', 'p-asserted-identity'], ['X-Serialnumber', 'x-serialnumber']] as const) {
  NAME_CACHE.set(alias, full);
}
for (const k in COMPACT_FORMS) {
  NAME_CACHE.set(k, COMPACT_FORMS[k]!);
  NAME_CACHE.set(k.toUpperCase(), COMPACT_FORMS[k]!);
}

// Known names by (length, first letter): the header loop matches the name in place, case-insensitively, without
// slicing or hashing a new string for the common headers.
const KNOWN_BY_SHAPE = new Map<number, string[]>();
for (const full of new Set(NAME_CACHE.values())) {
  if (full.length < 2) continue;
  const key = full.length * 128 + full.charCodeAt(0);
  const list = KNOWN_BY_SHAPE.get(key);
  if (list === undefined) KNOWN_BY_SHAPE.set(key, [full]);
  else list.push(full);
}

/** The known full name written at s[a..b) in any case, or undefined. Exact for non-letters. */
function knownName(s: string, a: number, b: number): string | undefined {
  const len = b - a;
  if (len === 1) {
    const c = s.charCodeAt(a) | 0x20;
    return c >= 0x61 && c <= 0x7a ? COMPACT_FORMS[String.fromCharCode(c)] : undefined;
  }
  const list = KNOWN_BY_SHAPE.get(len * 128 + (s.charCodeAt(a) | 0x20));
  if (list === undefined) return undefined;
  outer: for (let k = 0; k < list.length; k++) {
    const name = list[k]!;
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(a + i);
      const e = name.charCodeAt(i);
      // a different code is fine only as the upper case of a lower-case letter
      if (c !== e && (e < 0x61 || e > 0x7a || (c | 0x20) !== e)) continue outer;
    }
    return name;
  }
  return undefined;
}

/** Full lower-case name of a header name as written; null when it is not a token. */
export function normalizeHeaderName(raw: string): string | null {
  const hit = NAME_CACHE.get(raw);
  if (hit !== undefined) return hit;
  if (!isToken(raw)) return null;
  const lower = raw.toLowerCase();
  return COMPACT_FORMS[lower] ?? lower;
}

type Fail = Extract<ParseResult, { ok: false }>;

function fail(error: string, status = 400, request?: SipRequest): Fail {
  return request === undefined ? { ok: false, error, status } : { ok: false, error, status, request };
}

const EMPTY = Buffer.alloc(0);
const VERSION = 'SIP/2.0';

function isVersion(s: string): boolean {
  return s === VERSION || s.toUpperCase() === VERSION; // case-insensitive, RFC 3261 §7.1
}

/** Start of the first byte after leading CR/LF (RFC 3261 §7.5). */
function skipLeadingCrlf(buf: Buffer): number {
  let i = 0;
  while (i < buf.length && (buf[i] === 0x0d || buf[i] === 0x0a)) i++;
  return i;
}

/**
 * End of the header section: returns [index of the blank line's start, index of the body start], or null.
 * CRLF CRLF is the rule; LF LF is accepted for robustness.
 */
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const LFLF = Buffer.from('\n\n', 'latin1');

/**
 * End of the header section from `from` on: [start of the blank line, start of the body], or null. A bare-LF
 * blank line ("\n\n", or "\r\n\n") counts only before the first CRLF CRLF: a body may contain "\n\n". The search
 * for it stops at the CRLF CRLF, so a stream buffer holding many messages is not rescanned to its end.
 */
export function findHeaderEnd(buf: Buffer, from: number): [number, number] | null {
  const crlf = buf.indexOf(CRLFCRLF, from);
  const lf = (crlf === -1 ? buf : buf.subarray(0, crlf)).indexOf(LFLF, from);
  if (lf !== -1) return [lf, lf + 2];
  if (crlf !== -1) return [crlf, crlf + 4];
  return null;
}

/** findHeaderEnd for one datagram (bounded by the size limit): the bare-LF search may run past the CRLF CRLF. */
function findHeaderEndInMessage(buf: Buffer, from: number): [number, number] | null {
  const crlf = buf.indexOf(CRLFCRLF, from);
  const lf = buf.indexOf(LFLF, from);
  if (lf !== -1 && (crlf === -1 || lf < crlf)) return [lf, lf + 2];
  if (crlf !== -1) return [crlf, crlf + 4];
  return null;
}

function isMethodToken(s: string): boolean {
  return isToken(s);
}

/** Request-URI: a scheme, then no whitespace and no <>" (RFC 3261 §25.1; RFC 4475 §3.1.2.8/§3.1.2.9). */
function isRequestUri(s: string): boolean {
  const colon = s.indexOf(':');
  if (colon <= 0) return false;
  const c0 = s.charCodeAt(0) | 0x20;
  if (c0 < 0x61 || c0 > 0x7a) return false;
  for (let i = 1; i < colon; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a) || c === 0x2b || c === 0x2d || c === 0x2e;
    if (!ok) return false;
  }
  for (let i = colon + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x3c || c === 0x3e || c === 0x22) return false;
  }
  // A SIP Request-URI carries no headers (RFC 3261 §19.1.1 table; RFC 4475 §3.1.2.11 "escruri"). The user part
  // may contain '?' (RFC 4475 §3.1.1.2), so only look after the '@'.
  if (colon === 3 || colon === 4) {
    const scheme = s.slice(0, colon).toLowerCase();
    if (scheme === 'sip' || scheme === 'sips') {
      const at = s.indexOf('@', colon);
      if (s.indexOf('?', at === -1 ? colon : at) !== -1) return false;
    }
  }
  return true;
}

/** Append a header value, splitting list headers on top-level commas. */
function addHeader(headers: HeaderMap, name: string, value: string): void {
  let list = headers.get(name);
  if (value.indexOf(',') === -1 || !MULTI_VALUE.has(name)) {
    if (list === undefined) headers.set(name, [value]);
    else list.push(value);
    return;
  }
  if (list === undefined) {
    list = [];
    headers.set(name, list);
  }
  for (const v of splitTopLevelCommas(value)) list.push(v);
}

/** Strip SP/HTAB (SIP LWS) and stray CRs at both ends. Not String.prototype.trim: that also eats U+FEFF and other Unicode
 * spaces, which are data in a UTF-8 header value (RFC 4475 §3.1.1.2). */
function trimRange(s: string, a: number, b: number): string {
  // CR counts too: a line ending in CR CR LF, or a bare-LF blank line after CR, must not leave a CR in a value.
  while (a < b && isLwsOrCr(s.charCodeAt(a))) a++;
  while (b > a && isLwsOrCr(s.charCodeAt(b - 1))) b--;
  return s.slice(a, b);
}

function isLwsOrCr(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d;
}

/**
 * Parse one SIP message. Never throws: any failure, including an internal one, comes back as { ok: false }.
 */
export function parseMessage(buf: Buffer, limits: ParseLimits = DEFAULT_LIMITS, responses: ResponseChecks = 'full'): ParseResult {
  try {
    return parseUnsafe(buf, limits, responses);
  } catch {
    return fail('Malformed Message');
  }
}

function parseUnsafe(buf: Buffer, limits: ParseLimits, responses: ResponseChecks): ParseResult {
  const start = skipLeadingCrlf(buf);
  if (start >= buf.length) return fail('Empty Message');
  // Look for the header end only within the size limit, so an oversize message costs bounded work.
  const scanEnd = Math.min(buf.length, limits.maxMessageSize + start);
  const window = scanEnd === buf.length ? buf : buf.subarray(0, scanEnd);
  const end = findHeaderEndInMessage(window, start);
  const tooLarge = buf.length - start > limits.maxMessageSize;
  let headEnd: number;
  let bodyStart: number;
  if (end === null) {
    // No blank line: still read the header lines, so an answerable request can get its 400/513.
    headEnd = scanEnd;
    bodyStart = -1;
  } else {
    headEnd = end[0];
    bodyStart = end[1];
  }
  const head = buf.toString('utf8', start, headEnd);

  // --- start line
  let lineEnd = head.indexOf('\n');
  const firstLine = lineEnd === -1 ? head : head.slice(0, lineEnd);
  const line0 = firstLine.charCodeAt(firstLine.length - 1) === 0x0d ? firstLine.slice(0, -1) : firstLine;
  const sp1 = line0.indexOf(' ');
  if (sp1 <= 0) return fail('Bad Start Line');
  const sp2 = line0.indexOf(' ', sp1 + 1);
  const a = line0.slice(0, sp1);
  const b = sp2 === -1 ? line0.slice(sp1 + 1) : line0.slice(sp1 + 1, sp2);
  const c = sp2 === -1 ? '' : line0.slice(sp2 + 1);
  const headers: HeaderMap = new Map();
  let msg: SipRequest | SipResponse;
  // First error seen; parsing goes on so a request carries as many headers as possible for its 400.
  let error: string | undefined;
  let status = 400;
  if (a.length >= 4 && a.charCodeAt(3) === 0x2f /* SIP/ */ && a.slice(0, 4).toUpperCase() === 'SIP/') {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 §7.2). A missing SP before an empty
    // Reason-Phrase is tolerated (RFC 4475 §3.1.1.13 "noreason" is the valid form with the SP).
    if (!isVersion(a)) return fail('Version Not Supported', 505);
    // Status-Code = 3DIGIT, 100-699 (RFC 3261 §7.2, §21; RFC 4475 §3.1.2.19 "bigcode")
    const d0 = b.charCodeAt(0) - 0x30;
    const d1 = b.charCodeAt(1) - 0x30;
    const d2 = b.charCodeAt(2) - 0x30;
    if (b.length !== 3 || d0 < 1 || d0 > 6 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return fail('Bad Status Code');
    const code = d0 * 100 + d1 * 10 + d2;
    for (let i = 0; i < c.length; i++) {
      const ch = c.charCodeAt(i);
      if (ch < 0x20 && ch !== 0x09) return fail('Bad Reason Phrase');
    }
    msg = { kind: 'response', status: code, reason: c, version: VERSION, headers, body: EMPTY };
  } else {
    // Request-Line = Method SP Request-URI SP SIP-Version (RFC 3261 §7.1); exactly one SP each
    // (RFC 4475 §3.1.2.9 "lwsstart", §3.1.2.10 "trws" are invalid).
    const req: SipRequest = { kind: 'request', method: a, uri: b, version: VERSION, headers, body: EMPTY };
    msg = req;
    if (!isMethodToken(a)) error = 'Bad Method';
    else if (sp2 === -1 || c.indexOf(' ') !== -1 || c.indexOf('\t') !== -1) error = 'Bad Request-Line';
    else if (!isRequestUri(b)) error = 'Bad Request-URI';
    else if (!isVersion(c)) {
      if (c.length >= 4 && c.slice(0, 4).toUpperCase() === 'SIP/') {
        error = 'Version Not Supported';
        status = 505;
      } else error = 'Bad Request-Line';
    }
  }
  if (tooLarge) {
    error = 'Message Too Large';
    status = 513;
  } else if (end === null && error === undefined) {
    error = 'Incomplete Message';
  }

  // --- header lines
  let count = 0;
  let pos = lineEnd === -1 ? head.length : lineEnd + 1;
  let lastName: string | undefined;
  let lastValue = '';
  const hlen = head.length;
  while (pos < hlen) {
    // Work on indexes into the header section: no substring per line, only the name and the value.
    lineEnd = head.indexOf('\n', pos);
    if (lineEnd === -1) lineEnd = hlen;
    const ls = pos;
    let le = lineEnd;
    pos = lineEnd + 1;
    if (le > ls && head.charCodeAt(le - 1) === 0x0d) le--;
    if (le === ls) continue;
    const c0 = head.charCodeAt(ls);
    if (c0 === 0x20 || c0 === 0x09) {
      // folded continuation line (RFC 3261 §7.3.1)
      if (lastName === undefined) {
        error ??= 'Bad Header Folding';
        continue;
      }
      const more = trimRange(head, ls, le);
      if (more.indexOf('\r') !== -1) error ??= 'Malformed Header Line';
      if (more.length > 0) lastValue = lastValue.length === 0 ? more : lastValue + ' ' + more;
      continue;
    }
    if (lastName !== undefined) addHeader(headers, lastName, lastValue);
    lastName = undefined;
    if (++count > limits.maxHeaders) {
      if (error === undefined || status === 400) {
        error = 'Too Many Headers';
        status = 400;
      }
      break;
    }
    const colon = head.indexOf(':', ls);
    if (colon === -1 || colon >= le || colon === ls) {
      error ??= 'Malformed Header Line';
      continue;
    }
    let ne = colon;
    while (ne > ls && (head.charCodeAt(ne - 1) === 0x20 || head.charCodeAt(ne - 1) === 0x09)) ne--;
    const name = knownName(head, ls, ne) ?? normalizeHeaderName(head.slice(ls, ne));
    if (name === null) {
      error ??= 'Malformed Header Name';
      continue;
    }
    lastName = name;
    lastValue = trimRange(head, colon + 1, le);
    // RFC 3261 §7.3.1, §25.1: lines end with CRLF and no value holds a CR. Kept, it was stored (User-Agent, a
    // SUBSCRIBE's Call-ID) and then went out as a space, so NOTIFYs named a dialog the phone never had.
    if (lastValue.indexOf('\r') !== -1) error ??= 'Malformed Header Line';
  }
  if (lastName !== undefined) addHeader(headers, lastName, lastValue);

  // --- mandatory headers (RFC 3261 §8.1.1; responses carry the same five, §8.2.6.2)
  if (error === undefined) error = checkHeaders(msg, responses);

  // --- body
  if (error === undefined) {
    const cl = headers.get('content-length');
    const avail = buf.length - bodyStart;
    let len = avail;
    if (cl !== undefined) {
      const n = parseContentLength(cl[0]!);
      if (n === null) error = 'Bad Content-Length';
      else if (n > avail) error = 'Content-Length Too Large';
      else len = n;
    }
    // A copy, not a view: a small body must not keep a whole datagram or TCP read buffer alive.
    if (error === undefined && len > 0) msg.body = Buffer.from(buf.subarray(bodyStart, bodyStart + len));
  }

  if (error !== undefined) return fail(error, status, msg.kind === 'request' ? msg : undefined);
  return { ok: true, message: msg };
}

/** Content-Length: 1*DIGIT (RFC 3261 §20.14); at most 10 digits, so huge values are refused, not rounded. */
function parseContentLength(v: string): number | null {
  const n = v.length;
  if (n === 0 || n > 10) return null;
  let x = 0;
  for (let i = 0; i < n; i++) {
    const d = v.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return null;
    x = x * 10 + d;
  }
  return x;
}

const MANDATORY: Array<[string, string]> = [
  ['via', 'Missing Via'],
  ['from', 'Missing From'],
  ['to', 'Missing To'],
  ['call-id', 'Missing Call-ID'],
  ['cseq', 'Missing CSeq'],
];

function missing(v: string[] | undefined): boolean {
  return v === undefined || v.length === 0 || v[0]!.length === 0;
}

/** The same value twice is harmless; different values are ambiguous (RFC 4475 §3.3.8 "multi01", §3.3.9 "mcl01"). */
function conflicting(v: string[] | undefined): boolean {
  if (v === undefined || v.length < 2) return false;
  for (let i = 1; i < v.length; i++) if (v[i] !== v[0]) return true;
  return false;
}

function checkHeaders(msg: SipRequest | SipResponse, responses: ResponseChecks): string | undefined {
  const h = msg.headers;
  // one lookup per header (this runs for every message)
  const via = h.get('via');
  const from = h.get('from');
  const to = h.get('to');
  const callId = h.get('call-id');
  const cseqV = h.get('cseq');
  if (missing(via)) return 'Missing Via';
  if (missing(from)) return 'Missing From';
  if (missing(to)) return 'Missing To';
  if (missing(callId)) return 'Missing Call-ID';
  if (missing(cseqV)) return 'Missing CSeq';
  const mf = h.get('max-forwards');
  if (conflicting(from)) return 'Duplicate From';
  if (conflicting(to)) return 'Duplicate To';
  if (conflicting(callId)) return 'Duplicate Call-ID';
  if (conflicting(cseqV)) return 'Duplicate CSeq';
  if (conflicting(h.get('content-length'))) return 'Duplicate Content-Length';
  if (conflicting(mf)) return 'Duplicate Max-Forwards';
  const cseq = parseCSeq(cseqV![0]!);
  if (cseq === null) return 'Bad CSeq';
  if (msg.kind === 'request') {
    // RFC 3261 §8.1.1.5: the CSeq method MUST match the request method (RFC 4475 §3.1.2.17 "mismatch01").
    if (cseq.method !== msg.method) return 'CSeq Method Mismatch';
    // Max-Forwards is 0-255 (RFC 3261 §20.22, RFC 4475 §3.1.2.4 "scalar02").
    if (mf !== undefined) {
      const n = parseContentLength(mf[0]!);
      if (n === null || n > 255) return 'Bad Max-Forwards';
    }
  } else if (responses === 'match') {
    return isValidVia(via![0]!) ? undefined : 'Bad Via';
  }
  // The structured headers every layer relies on are checked here, once, so no caller meets a Via, From, To or
  // Contact it cannot parse (RFC 4475 §3.1.2.1, §3.1.2.6, §3.1.2.13-15).
  for (const v of via!) if (!isValidVia(v)) return 'Bad Via';
  if (!isValidNameAddr(from![0]!)) return 'Bad From';
  if (!isValidNameAddr(to![0]!)) return 'Bad To';
  const contact = h.get('contact');
  if (contact !== undefined) for (const v of contact) if (!isValidNameAddr(v)) return 'Bad Contact';
  return undefined;
}

/**
 * True when a 400 (or 505/513) can be built for this request (RFC 3261 §8.2.6.2 copies Via, From, To, Call-ID
 * and CSeq): all five are present and the top Via parses (its branch may be absent, RFC 2543 peers).
 */
export function canAnswer(req: SipRequest): boolean {
  const h = req.headers;
  for (const [name] of MANDATORY) {
    const v = h.get(name);
    if (v === undefined || v.length === 0 || v[0]!.length === 0) return false;
  }
  return isValidVia(h.get('via')![0]!);
}
