// Parsers of structured header values. The message parser keeps every header value as a string; callers parse
// the few values they need with these functions (lazy parsing keeps the hot path cheap). Every parser returns
// null (never throws) on a value it cannot make sense of, so a caller can answer 400.
//
// Choices:
// - Parameter names are lower-cased (they compare case-insensitively, RFC 3261 §7.3.1, §19.1.4); values are kept
//   exactly as written, quotes included, so formatting is lossless. Use unquote() for the text of a quoted value.
//   A parameter without "=" maps to null.
// - IPv6 references keep their brackets in `host` ("[2001:db8::1]"), so host:port formats back unambiguously.

export type Params = Record<string, string | null>;

export interface SipUri {
  scheme: string;
  user?: string;
  password?: string;
  host: string;
  port?: number;
  params: Params;
  headers: Record<string, string>;
}

export interface NameAddr {
  /** Display name, unquoted and unescaped. */
  display?: string;
  /** The URI inside <...>, or the addr-spec; "*" for the Contact wildcard (RFC 3261 §10.2.2). */
  uri: string;
  /** Header parameters (tag, expires, q, +sip.instance...). */
  params: Params;
}

export interface Via {
  /** "SIP/2.0" */
  protocol: string;
  /** Upper-case transport: UDP, TCP, TLS, SCTP, WS, WSS. */
  transport: string;
  host: string;
  port?: number;
  params: Params;
  branch?: string;
}

export interface EventValue {
  name: string;
  id?: string;
  params: Params;
}

/**
 * Objects keyed by names from the wire have no prototype, so a parameter called "__proto__" or "constructor" is
 * just a parameter (no prototype games, no inherited values for absent names).
 */
function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

const C_SP = 0x20;
const C_HTAB = 0x09;
const C_QUOTE = 0x22;
const C_BSLASH = 0x5c;

function isWs(c: number): boolean {
  return c === C_SP || c === C_HTAB || c === 0x0d || c === 0x0a;
}

// token chars, RFC 3261 §25.1: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"
const TOKEN = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1;
for (const ch of "-.!%*_+`'~") TOKEN[ch.charCodeAt(0)] = 1;

/**
 * A copy of s that does not keep the message it came from alive. Header values are slices of the decoded header
 * section, and V8 keeps a slice's whole parent string (the header section, ~0.7 KiB for a phone's SUBSCRIBE) for
 * as long as the slice lives. Values stored for the life of a subscription (Call-ID, tags, URIs, route set) should
 * go through this: measured, 800 bytes retained per stored value become under 100.
 */
export function detachString(s: string): string {
  return s.length < 13 ? s : (' ' + s).slice(1); // V8 copies strings under 13 chars anyway
}

/** True when s is a non-empty RFC 3261 token. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TOKEN[c] !== 1) return false;
  }
  return true;
}

function isTokenRange(s: string, a: number, b: number): boolean {
  if (b <= a) return false;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TOKEN[c] !== 1) return false;
  }
  return true;
}

/** The text of a quoted-string with its backslash escapes undone; other values unchanged. */
export function unquote(v: string): string {
  if (v.length < 2 || v.charCodeAt(0) !== C_QUOTE || v.charCodeAt(v.length - 1) !== C_QUOTE) return v;
  const inner = v.slice(1, -1);
  return inner.indexOf('\\') === -1 ? inner : inner.replace(/\\(.)/gs, '$1');
}

/** A quoted-string for s (RFC 3261 §25.1 quoted-pair for " and \). */
export function quote(s: string): string {
  return '"' + s.replace(/["\\]/g, '\\$&') + '"';
}

/** Index of the closing quote of the quoted-string opening at i, or -1. */
function endOfQuoted(s: string, i: number, n = s.length): number {
  for (let j = i + 1; j < n; j++) {
    const c = s.charCodeAt(j);
    if (c === C_BSLASH) j++;
    else if (c === C_QUOTE) return j;
  }
  return -1;
}

/**
 * Split a header value on commas that are not inside a quoted-string or <...> (RFC 3261 §7.3.1). Empty elements
 * are dropped and each element is trimmed.
 */
export function splitTopLevelCommas(v: string): string[] {
  if (v.indexOf(',') === -1) {
    const t = v.trim();
    return t.length === 0 ? [] : [t];
  }
  const out: string[] = [];
  let start = 0;
  let inAngle = false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === C_QUOTE) {
      const e = endOfQuoted(v, i);
      if (e === -1) break; // unbalanced quote: the rest is one element
      i = e;
    } else if (c === 0x3c /* < */) inAngle = true;
    else if (c === 0x3e /* > */) inAngle = false;
    else if (c === 0x2c /* , */ && !inAngle) {
      const t = v.slice(start, i).trim();
      if (t.length > 0) out.push(t);
      start = i + 1;
    }
  }
  const t = v.slice(start).trim();
  if (t.length > 0) out.push(t);
  return out;
}

/**
 * Parameters in the form `;a=b;c;d="x;y"` (the leading ';' is optional). Whitespace around ';' and '=' is
 * allowed (SEMI and EQUAL include SWS, RFC 3261 §25.1). Names are lower-cased; a later duplicate wins.
 * Returns {} for an empty string. Malformed pieces (an empty name) are skipped.
 */
export function parseParams(s: string): Params {
  const out: Params = dict();
  parseParamsInto(s, 0, out);
  return out;
}

/**
 * Parse params from s[i..] into out (or only check them when out is null); returns false when a quoted value is
 * unterminated, a name is not a token or junk follows a value.
 */
function parseParamsInto(s: string, i: number, out: Params | null, n = s.length, only?: string): boolean {
  let ok = true;
  while (i < n) {
    // skip separators and whitespace
    let c = s.charCodeAt(i);
    while (i < n && (c === 0x3b || isWs(c))) c = s.charCodeAt(++i);
    if (i >= n) break;
    const nameStart = i;
    while (i < n) {
      c = s.charCodeAt(i);
      if (c === 0x3b || c === 0x3d || isWs(c)) break;
      i++;
    }
    const nameEnd = i;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    let value: string | null = null;
    if (i < n && s.charCodeAt(i) === 0x3d /* = */) {
      i++;
      while (i < n && isWs(s.charCodeAt(i))) i++;
      if (i < n && s.charCodeAt(i) === C_QUOTE) {
        const e = endOfQuoted(s, i, n);
        if (e === -1) {
          if (out !== null) value = s.slice(i, n);
          i = n;
          ok = false;
        } else {
          if (out !== null) value = s.slice(i, e + 1);
          i = e + 1;
        }
      } else {
        const vs = i;
        while (i < n && s.charCodeAt(i) !== 0x3b && !isWs(s.charCodeAt(i))) i++;
        if (out !== null) value = s.slice(vs, i);
      }
      while (i < n && isWs(s.charCodeAt(i))) i++;
    }
    if (i < n && s.charCodeAt(i) !== 0x3b) {
      // junk after a parameter (e.g. "a=b c"): not a parameter list
      ok = false;
      while (i < n && s.charCodeAt(i) !== 0x3b) i++;
    }
    if (!isTokenRange(s, nameStart, nameEnd)) {
      ok = false;
      continue;
    }
    if (out === null) continue;
    if (only === undefined) out[s.slice(nameStart, nameEnd).toLowerCase()] = value;
    else if (equalsLowerRange(s, nameStart, nameEnd, only)) out[only] = value;
  }
  return ok;
}

/** s[a..b) equals the lower-case ASCII `lower`, ignoring case. */
function equalsLowerRange(s: string, a: number, b: number, lower: string): boolean {
  if (b - a !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const c = s.charCodeAt(a + i);
    if (c !== lower.charCodeAt(i) && (c < 0x41 || c > 0x5a || (c | 0x20) !== lower.charCodeAt(i))) return false;
  }
  return true;
}

function formatParams(p: Params): string {
  let s = '';
  for (const k in p) {
    const v = p[k];
    s += v === null || v === undefined ? ';' + k : ';' + k + '=' + v;
  }
  return s;
}

function parsePort(s: string): number | undefined | null {
  if (s.length === 0 || s.length > 5) return null;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return null;
    n = n * 10 + c;
  }
  return n > 65535 ? null : n;
}

/**
 * hostname / IPv4address / IPv6reference (RFC 3261 §25.1), checked by characters only. '_' is accepted too:
 * it is not in the grammar, but container and Windows host names carry it and refusing them helps nobody.
 */
function isHost(h: string): boolean {
  if (h.length === 0) return false;
  if (h.charCodeAt(0) === 0x5b /* [ */) {
    if (h.charCodeAt(h.length - 1) !== 0x5d) return false;
    for (let i = 1; i < h.length - 1; i++) {
      const c = h.charCodeAt(i);
      const hex = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
      if (!hex && c !== 0x3a && c !== 0x2e) return false;
    }
    return h.length > 2;
  }
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i);
    const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (!alnum && c !== 0x2d && c !== 0x2e && c !== 0x5f) return false;
  }
  return true;
}

/** isHost + optional ":port" on s[a..b), without slicing. */
function isHostPortRange(s: string, a: number, b: number): boolean {
  if (b <= a) return false;
  let hostEnd: number;
  if (s.charCodeAt(a) === 0x5b) {
    const e = s.indexOf(']', a);
    if (e === -1 || e >= b || e === a + 1) return false;
    for (let i = a + 1; i < e; i++) {
      const c = s.charCodeAt(i);
      const hex = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
      if (!hex && c !== 0x3a && c !== 0x2e) return false;
    }
    hostEnd = e + 1;
    if (hostEnd < b && s.charCodeAt(hostEnd) !== 0x3a) return false;
  } else {
    hostEnd = a;
    while (hostEnd < b && s.charCodeAt(hostEnd) !== 0x3a) {
      const c = s.charCodeAt(hostEnd);
      const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
      if (!alnum && c !== 0x2d && c !== 0x2e && c !== 0x5f) return false;
      hostEnd++;
    }
    if (hostEnd === a) return false;
  }
  if (hostEnd === b) return true;
  // ":" port, 1-5 digits, <= 65535
  const ps = hostEnd + 1;
  if (b - ps < 1 || b - ps > 5) return false;
  let port = 0;
  for (let i = ps; i < b; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return false;
    port = port * 10 + d;
  }
  return port <= 65535;
}

/** Split "host[:port]" (IPv6 in brackets); null when malformed. */
function parseHostPort(s: string): { host: string; port?: number } | null {
  let host: string;
  let portStr: string | undefined;
  if (s.charCodeAt(0) === 0x5b) {
    const e = s.indexOf(']');
    if (e === -1) return null;
    host = s.slice(0, e + 1);
    const rest = s.slice(e + 1);
    if (rest.length > 0) {
      if (rest.charCodeAt(0) !== 0x3a) return null;
      portStr = rest.slice(1);
    }
  } else {
    const colon = s.indexOf(':');
    if (colon === -1) host = s;
    else {
      host = s.slice(0, colon);
      portStr = s.slice(colon + 1);
    }
  }
  if (!isHost(host)) return null;
  if (portStr === undefined) return { host };
  const port = parsePort(portStr);
  if (port === null || port === undefined) return null;
  return { host, port };
}

// Characters that never appear unescaped in a SIP URI (RFC 3261 §25.1): whitespace, controls, <>"{}|\^`
function hasForbiddenUriChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x3c || c === 0x3e || c === C_QUOTE) return true;
  }
  return false;
}

/**
 * Parse a URI. sip: and sips: URIs are taken apart (RFC 3261 §19.1.1); for any other scheme (tel:, urn:, ...)
 * the part before ';' or '?' is returned as `host`, with the parameters parsed, so callers can still compare it.
 * Returns null when there is no scheme, when the URI contains whitespace or <>", or the host/port is malformed.
 */
export function parseUri(s: string): SipUri | null {
  const colon = s.indexOf(':');
  if (colon <= 0 || hasForbiddenUriChar(s)) return null;
  const scheme = s.slice(0, colon).toLowerCase();
  const c0 = scheme.charCodeAt(0);
  if (!(c0 >= 0x61 && c0 <= 0x7a)) return null;
  for (let i = 1; i < scheme.length; i++) {
    const c = scheme.charCodeAt(i);
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e)) return null;
  }
  let rest = s.slice(colon + 1);
  const headers: Record<string, string> = dict();
  // In a sip/sips URI the user part may contain '?' (RFC 3261 §25.1 user-unreserved), so headers start at the
  // first '?' after the '@'.
  const isSip = scheme === 'sip' || scheme === 'sips';
  const at0 = isSip ? rest.indexOf('@') : -1;
  const q = rest.indexOf('?', at0 === -1 ? 0 : at0);
  if (q !== -1) {
    for (const pair of rest.slice(q + 1).split('&')) {
      if (pair.length === 0) continue;
      const eq = pair.indexOf('=');
      if (eq <= 0) return null;
      headers[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    rest = rest.slice(0, q);
  }
  if (!isSip) {
    const semi = rest.indexOf(';');
    const host = semi === -1 ? rest : rest.slice(0, semi);
    if (host.length === 0) return null;
    const params: Params = dict();
    if (semi !== -1 && !parseParamsInto(rest, semi, params)) return null;
    return { scheme, host, params, headers };
  }
  // The user part may itself contain ';' (RFC 4475 §3.1.1.10 "semiuri"), so look for '@' first.
  let user: string | undefined;
  let password: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const pc = userinfo.indexOf(':');
    if (pc === -1) user = userinfo;
    else {
      user = userinfo.slice(0, pc);
      password = userinfo.slice(pc + 1);
    }
    if (user.length === 0) return null;
  }
  const semi = rest.indexOf(';');
  const hostport = semi === -1 ? rest : rest.slice(0, semi);
  const hp = parseHostPort(hostport);
  if (hp === null) return null;
  const params: Params = dict();
  if (semi !== -1 && !parseParamsInto(rest, semi, params)) return null;
  const uri: SipUri = { scheme, host: hp.host, params, headers };
  if (user !== undefined) uri.user = user;
  if (password !== undefined) uri.password = password;
  if (hp.port !== undefined) uri.port = hp.port;
  return uri;
}

/**
 * The same verdict as parseUri(s) !== null, without building the result (the parser checks every From/To/Contact
 * this way; callers that need the parts call parseUri).
 */
export function isValidUri(s: string): boolean {
  return isValidUriRange(s, 0, s.length);
}

/** isValidUri on s[a..b), without slicing: one pass finds the separators (the parser checks every From/To/Contact). */
function isValidUriRange(s: string, a: number, b: number): boolean {
  let colon = -1;
  let pc = -1; // first ':' after the scheme's
  let at = -1; // first '@' after the scheme
  let qAny = -1; // first '?' after the scheme
  let qAt = -1; // first '?' after the '@'
  let semiAny = -1;
  let semiAt = -1;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    // never unescaped in a URI (RFC 3261 §25.1): whitespace, controls, <>"
    if (c <= 0x20 || c === 0x7f || c === 0x3c || c === 0x3e || c === C_QUOTE) return false;
    if (c === 0x3a) {
      if (colon === -1) colon = i;
      else if (pc === -1) pc = i;
    } else if (colon === -1) continue;
    else if (c === 0x40) {
      if (at === -1) at = i;
    } else if (c === 0x3f) {
      if (qAny === -1) qAny = i;
      if (at !== -1 && qAt === -1) qAt = i;
    } else if (c === 0x3b) {
      if (semiAny === -1) semiAny = i;
      if (at !== -1 && semiAt === -1) semiAt = i;
    }
  }
  if (colon <= a) return false;
  const c0 = s.charCodeAt(a) | 0x20;
  if (!(c0 >= 0x61 && c0 <= 0x7a)) return false;
  for (let i = a + 1; i < colon; i++) {
    const c = s.charCodeAt(i);
    const l = c | 0x20;
    if (!((l >= 0x61 && l <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e)) return false;
  }
  const sl = colon - a;
  const isSip =
    (sl === 3 || sl === 4) &&
    (s.charCodeAt(a) | 0x20) === 0x73 && (s.charCodeAt(a + 1) | 0x20) === 0x69 && (s.charCodeAt(a + 2) | 0x20) === 0x70 &&
    (sl === 3 || (s.charCodeAt(a + 3) | 0x20) === 0x73);
  if (!isSip) at = -1;
  // In a sip/sips URI the user part may hold '?' and ';', so headers and parameters start after the '@'.
  const q = at === -1 ? qAny : qAt;
  let end = b;
  if (q !== -1) {
    // hname "=" hvalue *( "&" ... ); empty pieces tolerated as in parseUri
    let ps = q + 1;
    while (ps <= b) {
      let pe = s.indexOf('&', ps);
      if (pe === -1 || pe > b) pe = b;
      if (pe > ps) {
        const eq = s.indexOf('=', ps);
        if (eq === -1 || eq >= pe || eq === ps) return false;
      }
      ps = pe + 1;
    }
    end = q;
  }
  let semi = at === -1 ? semiAny : semiAt;
  if (semi >= end) semi = -1;
  if (!isSip) {
    if ((semi === -1 ? end : semi) === colon + 1) return false;
    return semi === -1 || parseParamsInto(s, semi, null, end);
  }
  let hs = colon + 1;
  if (at !== -1 && at < end) {
    // user part must be non-empty (user ends at the first ':' of userinfo)
    const userEnd = pc !== -1 && pc < at ? pc : at;
    if (userEnd === colon + 1) return false;
    hs = at + 1;
  }
  if (!isHostPortRange(s, hs, semi === -1 ? end : semi)) return false;
  return semi === -1 || parseParamsInto(s, semi, null, end);
}

export function formatUri(u: SipUri): string {
  let s = u.scheme + ':';
  if (u.user !== undefined) {
    s += u.user;
    if (u.password !== undefined) s += ':' + u.password;
    s += '@';
  }
  s += u.host;
  if (u.port !== undefined) s += ':' + u.port;
  s += formatParams(u.params);
  let first = true;
  for (const k in u.headers) {
    s += (first ? '?' : '&') + k + '=' + u.headers[k];
    first = false;
  }
  return s;
}

/**
 * Parse a From/To/Contact/Route value: name-addr (`"Bob" <sip:b@h>;tag=1`, `Bob <sip:b@h>`) or addr-spec
 * (`sip:b@h;tag=1`, where everything after the first ';' is a header parameter, RFC 3261 §20.10). The Contact
 * wildcard "*" gives { uri: "*" }. Returns null when the URI is not a URI or the brackets/quotes do not balance.
 */
export function parseNameAddr(v: string): NameAddr | null {
  const out: NameAddr = { uri: '', params: dict() };
  return nameAddr(v, out) ? out : null;
}

/** The same verdict as parseNameAddr(v) !== null, without building the result. */
export function isValidNameAddr(v: string): boolean {
  return nameAddr(v, null);
}

/** Display name as *(token LWS): every word a token (RFC 3261 §25.1; RFC 4475 §3.1.2.15 "baddn"). */
function isTokenWords(v: string, a: number, b: number): boolean {
  let i = a;
  while (i < b) {
    while (i < b && (v.charCodeAt(i) === C_SP || v.charCodeAt(i) === C_HTAB)) i++;
    const ws = i;
    while (i < b && v.charCodeAt(i) !== C_SP && v.charCodeAt(i) !== C_HTAB) i++;
    if (i > ws && !isTokenRange(v, ws, i)) return false;
  }
  return true;
}

function nameAddr(v: string, out: NameAddr | null): boolean {
  let i = 0;
  const n = v.length;
  while (i < n && isWs(v.charCodeAt(i))) i++;
  if (i >= n) return false;
  let uriStart: number;
  let uriEnd: number;
  let after: number;
  const lt = v.indexOf('<', i);
  const c = v.charCodeAt(i);
  if (c === C_QUOTE) {
    const e = endOfQuoted(v, i);
    if (e === -1) return false;
    if (out !== null) out.display = unquote(v.slice(i, e + 1));
    i = e + 1;
    while (i < n && isWs(v.charCodeAt(i))) i++;
    if (v.charCodeAt(i) !== 0x3c) return false;
  } else if (lt !== -1) {
    // display-name as tokens/LWS, or nothing. A ';' before '<' means an addr-spec with a '<' in a parameter.
    const semi = v.indexOf(';', i);
    if (semi === -1 || semi > lt) {
      if (!isTokenWords(v, i, lt)) return false;
      if (out !== null) {
        const d = v.slice(i, lt).replace(/^[ \t]+|[ \t]+$/g, '');
        if (d.length > 0) out.display = d;
      }
      i = lt;
    }
  }
  if (v.charCodeAt(i) === 0x3c) {
    const gt = v.indexOf('>', i);
    if (gt === -1) return false;
    uriStart = i + 1;
    uriEnd = gt;
    after = gt + 1;
  } else if (v.charCodeAt(i) === 0x2a /* * */) {
    uriStart = i;
    uriEnd = i + 1;
    after = i + 1;
  } else {
    let e = i;
    while (e < n && v.charCodeAt(e) !== 0x3b && !isWs(v.charCodeAt(e))) e++;
    uriStart = i;
    uriEnd = e;
    after = e;
    // An addr-spec holding ',', '?' or ';' must be in <> (RFC 3261 §20.10; RFC 4475 §3.1.2.13 "regbadct").
    for (let k = i; k < e; k++) {
      const ch = v.charCodeAt(k);
      if (ch === 0x3f || ch === 0x2c) return false;
    }
  }
  const isStar = uriEnd - uriStart === 1 && v.charCodeAt(uriStart) === 0x2a;
  if (!isStar && !isValidUriRange(v, uriStart, uriEnd)) return false;
  while (after < n && isWs(v.charCodeAt(after))) after++;
  if (after < n) {
    if (v.charCodeAt(after) !== 0x3b) return false;
    if (!parseParamsInto(v, after, out === null ? null : out.params)) return false;
  }
  if (out !== null) out.uri = v.slice(uriStart, uriEnd);
  return true;
}

/** The tag parameter of a From/To value, or undefined (cheap: no full parse unless ";tag" appears). */
export function tagOf(v: string): string | undefined {
  if (v.toLowerCase().indexOf('tag') === -1) return undefined;
  const na = parseNameAddr(v);
  const t = na?.params.tag;
  return t === null || t === undefined ? undefined : t;
}

/**
 * Parse one Via value: `SIP / 2.0 / UDP host[:port] *(;param)` with LWS allowed around '/' and the parameters
 * (RFC 3261 §20.42, §25.1; RFC 4475 §3.1.1.1 has such a Via). Returns null when malformed.
 */
export function parseVia(v: string): Via | null {
  const out: Via = { protocol: '', transport: '', host: '', params: dict() };
  return via(v, out) ? out : null;
}

/** The same verdict as parseVia(v) !== null, without building the result. */
export function isValidVia(v: string): boolean {
  return via(v, null);
}

function via(v: string, out: Via | null): boolean {
  const n = v.length;
  let i = 0;
  const starts = [0, 0, 0];
  const ends = [0, 0, 0];
  // sent-protocol: three tokens separated by SLASH (SWS "/" SWS)
  for (let k = 0; k < 3; k++) {
    while (i < n && isWs(v.charCodeAt(i))) i++;
    const s = i;
    while (i < n) {
      const c = v.charCodeAt(i);
      if (c === 0x2f || isWs(c) || c === 0x3b) break;
      i++;
    }
    if (!isTokenRange(v, s, i)) return false;
    starts[k] = s;
    ends[k] = i;
    while (i < n && isWs(v.charCodeAt(i))) i++;
    if (k < 2) {
      if (v.charCodeAt(i) !== 0x2f) return false;
      i++;
    }
  }
  // sent-by: host [ COLON port ], LWS allowed around the colon
  const hs = i;
  while (i < n && v.charCodeAt(i) !== 0x3b) i++;
  let a = hs;
  let b = i;
  while (a < b && isWs(v.charCodeAt(a))) a++;
  while (b > a && isWs(v.charCodeAt(b - 1))) b--;
  let sentBy = v;
  let inner = false;
  for (let k = a; k < b && !inner; k++) inner = isWs(v.charCodeAt(k));
  if (inner) {
    sentBy = v.slice(a, b).replace(/[ \t\r\n]+/g, '');
    a = 0;
    b = sentBy.length;
  }
  if (!isHostPortRange(sentBy, a, b)) return false;
  if (i < n && !parseParamsInto(v, i, out === null ? null : out.params)) return false;
  if (out === null) return true;
  const hp = parseHostPort(sentBy.slice(a, b))!;
  out.protocol = v.slice(starts[0], ends[0]).toUpperCase() + '/' + v.slice(starts[1], ends[1]);
  out.transport = v.slice(starts[2], ends[2]).toUpperCase();
  out.host = hp.host;
  if (hp.port !== undefined) out.port = hp.port;
  const br = out.params.branch;
  if (br !== undefined && br !== null) out.branch = br;
  return true;
}

/**
 * parseVia(v)?.branch for a Via that isValidVia accepts, without building the rest: what matching a response to
 * its client transaction needs (RFC 3261 §17.1.3). The sent-protocol and sent-by hold no ';', so the parameters
 * start at the first one.
 */
export function viaBranch(v: string): string | undefined {
  const semi = v.indexOf(';');
  if (semi === -1) return undefined;
  const out: Params = dict();
  parseParamsInto(v, semi, out, v.length, 'branch');
  const br = out.branch;
  return br === null || br === undefined ? undefined : br;
}

export function formatVia(v: Via): string {
  const params: Params = { ...v.params };
  if (v.branch !== undefined) params.branch = v.branch;
  return v.protocol + '/' + v.transport + ' ' + v.host + (v.port !== undefined ? ':' + v.port : '') + formatParams(params);
}

/** CSeq: `1*DIGIT LWS Method` (RFC 3261 §20.16); the number must fit 32 bits unsigned. */
export function parseCSeq(v: string): { seq: number; method: string } | null {
  const n = v.length;
  let i = 0;
  while (i < n && isWs(v.charCodeAt(i))) i++;
  const ds = i;
  let seq = 0;
  while (i < n) {
    const d = v.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) break;
    seq = seq * 10 + d;
    i++;
  }
  if (i === ds || i - ds > 10 || seq > 0xffffffff) return null;
  const ws = i;
  while (i < n && isWs(v.charCodeAt(i))) i++;
  if (i === ws) return null;
  let e = n;
  while (e > i && isWs(v.charCodeAt(e - 1))) e--;
  const method = v.slice(i, e);
  if (!isToken(method)) return null;
  return { seq, method };
}

/** Event: `event-type *(;event-param)` (RFC 6665 §8.2.1); `id` is pulled out of the params. */
export function parseEvent(v: string): EventValue | null {
  const semi = v.indexOf(';');
  const name = (semi === -1 ? v : v.slice(0, semi)).trim();
  if (!isToken(name)) return null;
  const params: Params = dict();
  if (semi !== -1 && !parseParamsInto(v, semi, params)) return null;
  const out: EventValue = { name, params };
  const id = params.id;
  if (id !== undefined && id !== null) out.id = id;
  return out;
}

/** A non-negative decimal (delta-seconds, Content-Length, Max-Forwards); null when not all digits or too long. */
export function parseUInt(v: string, maxDigits = 10): number | null {
  const s = v.trim();
  if (s.length === 0 || s.length > maxDigits) return null;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return null;
    n = n * 10 + d;
  }
  return n;
}

/** Subscription-State: `substate-value *(;subexp-params)` (RFC 6665 §8.2.3). */
export function parseSubscriptionState(
  v: string,
): { state: string; expires?: number; reason?: string; retryAfter?: number; params: Params } | null {
  const ev = parseEvent(v);
  if (ev === null) return null;
  const out: { state: string; expires?: number; reason?: string; retryAfter?: number; params: Params } = {
    state: ev.name.toLowerCase(),
    params: ev.params,
  };
  const e = ev.params.expires;
  if (e !== undefined && e !== null) {
    const n = parseUInt(e);
    if (n === null) return null;
    out.expires = n;
  }
  const r = ev.params.reason;
  if (r !== undefined && r !== null) out.reason = r.toLowerCase();
  const ra = ev.params['retry-after'];
  if (ra !== undefined && ra !== null) {
    const n = parseUInt(ra);
    if (n === null) return null;
    out.retryAfter = n;
  }
  return out;
}

/**
 * Authorization / WWW-Authenticate / Proxy-Authorization: `scheme auth-param *(COMMA auth-param)`
 * (RFC 3261 §25.1, RFC 7616 §3.3). Names are lower-cased, values unquoted.
 */
export function parseAuthHeader(v: string): { scheme: string; params: Record<string, string> } | null {
  const s = v.trim();
  let i = 0;
  while (i < s.length && !isWs(s.charCodeAt(i))) i++;
  const scheme = s.slice(0, i);
  if (!isToken(scheme)) return null;
  const params: Record<string, string> = dict();
  for (const piece of splitTopLevelCommas(s.slice(i))) {
    const eq = piece.indexOf('=');
    if (eq <= 0) return null;
    const name = piece.slice(0, eq).trim().toLowerCase();
    const raw = piece.slice(eq + 1).trim();
    if (!isToken(name)) return null;
    if (raw.charCodeAt(0) === C_QUOTE && endOfQuoted(raw, 0) !== raw.length - 1) return null;
    params[name] = unquote(raw);
  }
  return { scheme, params };
}
