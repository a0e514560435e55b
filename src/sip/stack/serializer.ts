// SIP message serializer (RFC 3261 §7). Header names go out in their canonical capitalisation (names compare
// case-insensitively, §7.3.1, but phones and traces read better this way), each element of a list header on its
// own line (always legal, §7.3.1), and Content-Length is always recomputed from the body BYTES and written last.
// Header values are written as they are except that CR and LF are replaced by SP: a value taken from outside
// (a display name, an API field) can never inject a header line.
import type { HeaderMap, SipRequest, SipResponse } from './message.js';

const CANONICAL: Record<string, string> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'www-authenticate': 'WWW-Authenticate',
  'sip-etag': 'SIP-ETag',
  'sip-if-match': 'SIP-If-Match',
  'mime-version': 'MIME-Version',
  'p-asserted-identity': 'P-Asserted-Identity',
  'p-preferred-identity': 'P-Preferred-Identity',
  'rack': 'RAck',
  'rseq': 'RSeq',
  'content-id': 'Content-ID',
  'identity-info': 'Identity-Info',
};

const nameCache = new Map<string, string>();

/** Canonical spelling of a lower-case header name ("allow-events" -> "Allow-Events", "cseq" -> "CSeq"). */
export function canonicalHeaderName(lower: string): string {
  let n = nameCache.get(lower);
  if (n !== undefined) return n;
  const l = lower.toLowerCase();
  n = CANONICAL[l] ?? l.replace(/(^|-)([a-z])/g, (_m, d: string, ch: string) => d + ch.toUpperCase());
  if (nameCache.size < 1000) nameCache.set(lower, n);
  return n;
}

/** A header value from outside, with CR and LF made SP so it can never start a header line of its own. */
export function safeValue(v: string): string {
  return v.indexOf('\n') === -1 && v.indexOf('\r') === -1 ? v : v.replace(/[\r\n]/g, ' ');
}

/** A Request-URI never contains whitespace (RFC 3261 §25.1); escape it rather than break the Request-Line. */
export function safeUri(u: string): string {
  return u.indexOf(' ') === -1 && u.indexOf('\r') === -1 && u.indexOf('\n') === -1 ? u : u.replace(/[ \r\n]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'));
}

function headerBlock(headers: HeaderMap): string {
  let s = '';
  for (const [name, values] of headers) {
    // Content-Length is always written last, from the body; drop any given one, whatever its spelling.
    if ((name.length === 14 || name.length === 1) && (name.toLowerCase() === 'content-length' || name.toLowerCase() === 'l')) continue;
    const canon = canonicalHeaderName(name);
    for (let i = 0; i < values.length; i++) s += canon + ': ' + safeValue(values[i]!) + '\r\n';
  }
  return s;
}

/** The bytes of a message whose start line and header lines are `head`: Content-Length, the blank line, the body. */
export function finish(head: string, body: Buffer | undefined): Buffer {
  const bodyLen = body === undefined ? 0 : body.length;
  const text = head + 'Content-Length: ' + bodyLen + '\r\n\r\n';
  if (bodyLen === 0) return Buffer.from(text, 'utf8');
  const headLen = Buffer.byteLength(text, 'utf8');
  const out = Buffer.allocUnsafe(headLen + bodyLen);
  out.write(text, 0, 'utf8');
  body!.copy(out, headLen);
  return out;
}

/** Bytes of a request: Request-Line, headers, Content-Length (recomputed), blank line, body. */
export function serializeRequest(req: SipRequest): Buffer {
  const head = safeValue(req.method) + ' ' + safeUri(req.uri) + ' SIP/2.0\r\n' + headerBlock(req.headers);
  return finish(head, req.body);
}

/** Bytes of a response: Status-Line, headers, Content-Length (recomputed), blank line, body. */
export function serializeResponse(res: SipResponse): Buffer {
  const head = 'SIP/2.0 ' + res.status + ' ' + safeValue(res.reason) + '\r\n' + headerBlock(res.headers);
  return finish(head, res.body);
}

/** Either kind. */
export function serializeMessage(msg: SipRequest | SipResponse): Buffer {
  return msg.kind === 'request' ? serializeRequest(msg) : serializeResponse(msg);
}
