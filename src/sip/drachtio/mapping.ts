// Pure mapping between drachtio-srf objects and the engine port: a drachtio request in → SipRequest + Flow out;
// a ResponseSpec in → the arguments of res.send out; a DialogRequestSpec in → the arguments of srf.request out.
// No sockets and no timers here, so every rule is unit-tested (test/drachtio/mapping.test.ts).
import type { HeaderMap, SipRequest, SipResponse, Transport } from '../stack/message.js';
import type { DialogRequestSpec, Flow, ListeningAddress, ResponseSpec } from '../port.js';
import type { DrachtioIncomingResponse, DrachtioRequest, DrachtioRequestOptions, DrachtioSendOptions } from './types.js';

// RFC 3261 §7.3.3 and RFC 6665 §8.4 (o, u); drachtio-srf's parser maps neither `o` nor `u`, so we parse ourselves.
const COMPACT: Record<string, string> = {
  a: 'accept-contact', b: 'referred-by', c: 'content-type', d: 'request-disposition', e: 'content-encoding',
  f: 'from', i: 'call-id', j: 'reject-contact', k: 'supported', l: 'content-length', m: 'contact', n: 'identity-info',
  o: 'event', r: 'refer-to', s: 'subject', t: 'to', u: 'allow-events', v: 'via', x: 'session-expires', y: 'identity',
};

// The headers that message.ts splits per value (RFC 3261 §7.3.1: only these are comma lists we index into).
const MULTI = new Set(['via', 'contact', 'route', 'record-route']);

/** Split a header value on commas outside quotes and <...> (RFC 3261 §7.3.1). */
export function splitTopLevel(value: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '<') depth++;
    else if (c === '>') depth = Math.max(0, depth - 1);
    else if (c === ',' && depth === 0) {
      const v = value.slice(start, i).trim();
      if (v) out.push(v);
      start = i + 1;
    }
  }
  const last = value.slice(start).trim();
  if (last) out.push(last);
  return out;
}

function addHeader(headers: HeaderMap, rawName: string, value: string): void {
  const lower = rawName.trim().toLowerCase();
  const name = COMPACT[lower] ?? lower;
  const values = MULTI.has(name) ? splitTopLevel(value) : [value.trim()];
  const list = headers.get(name);
  if (list) list.push(...values);
  else headers.set(name, values);
}

export interface ParsedSip {
  startLine: string;
  headers: HeaderMap;
  body: Buffer;
}

/** Parse the SIP text drachtio-server delivered: header lines (with folding), then exactly Content-Length bytes
 *  of body. drachtio-srf cuts the body by characters; a UTF-8 body needs bytes. */
export function parseSipText(text: string): ParsedSip | null {
  const end = text.indexOf('\r\n\r\n');
  const head = end >= 0 ? text.slice(0, end) : text.replace(/\r\n$/, '');
  const rest = end >= 0 ? text.slice(end + 4) : '';
  const lines = head.split('\r\n');
  const startLine = lines.shift();
  if (!startLine) return null;
  const headers: HeaderMap = new Map();
  let name: string | undefined;
  let value = '';
  for (const line of lines) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && name !== undefined) {
      value += ' ' + line.trim(); // RFC 3261 §7.3.1 line folding
      continue;
    }
    if (name !== undefined) addHeader(headers, name, value);
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    name = line.slice(0, colon);
    value = line.slice(colon + 1);
  }
  if (name !== undefined) addHeader(headers, name, value);
  const bytes = Buffer.from(rest, 'utf8');
  const cl = headers.get('content-length')?.[0];
  const len = cl !== undefined && /^\d+$/.test(cl.trim()) ? Math.min(Number(cl.trim()), bytes.length) : bytes.length;
  return { startLine, headers, body: bytes.subarray(0, len) };
}

/** drachtio-server's protocol names → ours. TLS runs over TCP and WSS over WS as far as the port is concerned. */
export function transportOf(protocol: string | undefined): Transport {
  const p = (protocol ?? '').toLowerCase();
  if (p === 'ws' || p === 'wss') return 'ws';
  if (p === 'tcp' || p === 'tls') return 'tcp';
  return 'udp';
}

/** The 'connect' event's hostports, e.g. "udp/10.0.0.1:5060,tcp/10.0.0.1:5060,wss/[2001:db8::1]:8443".
 *  Assumption (drachtio-server SipTransport::getHostport): `proto/host:port`, comma-separated; an external IP
 *  appears as a second entry for the same transport. Entries we cannot read are skipped. */
export function parseHostports(hostports: string | undefined): ListeningAddress[] {
  const out: ListeningAddress[] = [];
  for (const entry of (hostports ?? '').split(',')) {
    const m = /^\s*([a-z]+)\/(\[[^\]]+\]|[^:\s]+):(\d+)\s*$/i.exec(entry);
    if (!m) continue;
    const a: ListeningAddress = { transport: transportOf(m[1]), address: m[2]!, port: Number(m[3]) };
    if (!out.some((o) => o.transport === a.transport && o.address === a.address && o.port === a.port)) out.push(a);
  }
  return out;
}

/** The SipRequest the SIP faces see, the same shape as on the embedded engine. */
export function toSipRequest(req: DrachtioRequest): SipRequest | null {
  const raw = req.raw ?? req.msg?.raw;
  if (raw) {
    const parsed = parseSipText(raw);
    if (!parsed) return null;
    const m = /^(\S+)\s+(\S+)\s+(SIP\/\d+\.\d+)\s*$/.exec(parsed.startLine);
    if (!m) return null;
    return { kind: 'request', method: m[1]!.toUpperCase(), uri: m[2]!, version: m[3]!, headers: parsed.headers, body: parsed.body };
  }
  // No raw text (a hand-built request): rebuild from the joined header object; lines were joined with ','.
  const headers: HeaderMap = new Map();
  for (const [n, v] of Object.entries(req.headers ?? {})) addHeader(headers, n, v);
  return { kind: 'request', method: req.method.toUpperCase(), uri: req.uri, version: 'SIP/2.0', headers, body: Buffer.from(req.body ?? '', 'utf8') };
}

/** The flow a request arrived on. drachtio-server owns the sockets; the id only has to be stable per peer. */
export function flowOf(req: DrachtioRequest, listening: ListeningAddress[]): Flow {
  const transport = transportOf(req.protocol);
  let localAddress = '';
  let localPort = 0;
  const on = req.receivedOn ? /^(.*):(\d+)$/.exec(req.receivedOn) : null;
  if (on) {
    localAddress = on[1]!;
    localPort = Number(on[2]);
  } else {
    const l = listening.find((x) => x.transport === transport) ?? listening[0];
    if (l) ({ address: localAddress, port: localPort } = l);
  }
  const remoteAddress = req.source_address;
  const remotePort = Number(req.source_port) || 0;
  return { id: `drachtio:${transport}:${remoteAddress}:${remotePort}`, transport, localAddress, localPort, remoteAddress, remotePort };
}

/** The tag parameter of a From/To value (after the closing '>' when the URI is bracketed). */
export function tagOf(nameAddr: string | undefined): string | undefined {
  if (!nameAddr) return undefined;
  const gt = nameAddr.lastIndexOf('>');
  const params = gt >= 0 ? nameAddr.slice(gt + 1) : nameAddr.slice(nameAddr.indexOf(';') >= 0 ? nameAddr.indexOf(';') : nameAddr.length);
  const m = /;\s*tag\s*=\s*([^;,\s]+)/i.exec(params);
  return m ? m[1] : undefined;
}

function headerRecord(list: Array<[string, string]> | undefined, into: Record<string, string> = {}): Record<string, string> {
  const lowerSeen = new Map<string, string>();
  for (const k of Object.keys(into)) lowerSeen.set(k.toLowerCase(), k);
  for (const [name, raw] of list ?? []) {
    const value = raw.replace(/[\r\n]+/g, ' '); // a CR/LF inside a value would inject header lines
    const existing = lowerSeen.get(name.toLowerCase());
    // drachtio-srf writes one `name: value` line per key. A repeated header goes out as further lines inside the
    // value: WWW-Authenticate and friends must not be folded into a comma list (RFC 3261 §7.3.1), and
    // drachtio-server splits the header block into lines before it parses them (makeTags → splitLines).
    if (existing !== undefined) into[existing] = `${into[existing]}\r\n${name}: ${value}`;
    else {
      into[name] = value;
      lowerSeen.set(name.toLowerCase(), name);
    }
  }
  return into;
}

export interface ResponseCall {
  status: number;
  reason: string | undefined;
  opts: DrachtioSendOptions;
}

/** res.send(status, reason, opts) for a ResponseSpec.
 *  - 200 is sent as 200: we never call srf.createUAS, which would force 202 (RFC 6665 §8.3.1 deprecates 202).
 *  - The To-tag: drachtio-srf's Response#send takes a `To` in opts.headers, extracts `tag=...` and appends it to the
 *    To it copied from the request; drachtio-server (SipDialogController::doRespondToSipRequest, "we allow the app
 *    to set the local tag") then uses it as the local tag of the leg it creates. So spec.toTag is the tag on the
 *    wire and the core's stored tag stays right. The engine checks the echo and logs if a server ever differs.
 *  - Expires, Contact and the rest are the core's, passed through in order. drachtio-server adds its own Contact to
 *    a 2xx to SUBSCRIBE only when none is given (searchForHeader(siptag_contact_str)).
 *  - Via, From, To, Call-ID, CSeq and Content-Length are drachtio's (copied from the request / computed by sofia).
 *    drachtio-srf writes Content-Length as the body's character count, which is wrong for UTF-8, but
 *    drachtio-server drops an app's Content-Length (an "immutable" header in makeTags) and sofia recomputes it
 *    from the payload; the frame itself is length-prefixed in bytes, so the body arrives whole. */
export function responseCall(spec: ResponseSpec, request: SipRequest): ResponseCall {
  const skip = new Set(['via', 'from', 'to', 'call-id', 'cseq', 'content-length', 'l', 'v', 'f', 't', 'i']);
  const headers = headerRecord((spec.headers ?? []).filter(([n]) => !skip.has(n.toLowerCase())));
  const to = request.headers.get('to')?.[0];
  if (spec.toTag && to && tagOf(to) === undefined) headers.To = `${to};tag=${spec.toTag}`;
  const opts: DrachtioSendOptions = { headers };
  if (spec.body !== undefined && spec.body.length > 0) opts.body = typeof spec.body === 'string' ? spec.body : spec.body.toString('utf8');
  return { status: spec.status, reason: spec.reason, opts };
}

/** The in-dialog form: `sip||<dialogId>` lets drachtio-server fill From/To/Call-ID/CSeq/Route from the leg it
 *  created when we answered the SUBSCRIBE 2xx. Dialog ids are `Call-ID;from-tag=<subscriber's tag>` (drachtio
 *  convention, hard-coded in srf's findDialogByCallIDAndFromTag), so the id is computed from stored state and
 *  works after Lamplighter restarts as long as drachtio-server kept running (its dialogs are not tied to the app
 *  connection for sending: ClientController::sendRequestInsideDialog does not check the owner). */
export function dialogIdOf(spec: Pick<DialogRequestSpec, 'callId' | 'to'>): string | undefined {
  const remoteTag = tagOf(spec.to);
  return remoteTag ? `${spec.callId};from-tag=${remoteTag}` : undefined;
}

export interface RequestCall {
  uri: string;
  opts: DrachtioRequestOptions;
}

export function inDialogRequestCall(spec: DialogRequestSpec): RequestCall | null {
  const stackDialogId = dialogIdOf(spec);
  if (!stackDialogId) return null;
  const opts: DrachtioRequestOptions = { method: spec.method, stackDialogId, headers: headerRecord(spec.headers) };
  if (spec.body !== undefined && spec.body.length > 0) opts.body = typeof spec.body === 'string' ? spec.body : spec.body.toString('utf8');
  return { uri: spec.requestUri, opts };
}

/** The URI inside a Route value: `<sip:p1.example.com;lr>` → `sip:p1.example.com;lr`. */
function routeUri(route: string): string {
  const m = /<([^>]*)>/.exec(route);
  return (m ? m[1]! : route).trim();
}

function hostPortOf(uri: string): { host: string; port?: number } | null {
  const m = /^sips?:(?:[^@]*@)?(\[[^\]]+\]|[^:;?>]+)(?::(\d+))?/i.exec(uri);
  return m ? { host: m[1]!.toLowerCase(), port: m[2] ? Number(m[2]) : undefined } : null;
}

/** The stateless form, for a dialog drachtio-server does not hold (it restarted). Assumptions, each from
 *  drachtio-server's doSendRequestOutsideDialog and sofia-sip nta.c, to be confirmed against a real server:
 *  - From (with our tag), To (with the subscriber's tag) and Call-ID are used as given: nta_leg_tcreate takes
 *    them, and nta_leg_tag() keeps a From tag that is already there.
 *  - CSeq is NOT ours on the wire: nta_msg_request_complete() writes ++leg_seq of a fresh leg, seeded from the
 *    clock ((now >> 1) & 0x7ffffff). It still grows across NOTIFYs more than 2 s apart; we send ours anyway.
 *  - Route is an "immutable" header in drachtio-server (makeTags drops it), so the route set cannot be sent as
 *    headers: we pass the first hop as `proxy` (the outbound-proxy token); hops after the first are lost.
 *  - With no route set and a UDP subscriber behind NAT (Contact host:port differs from where the SUBSCRIBE came
 *    from), `proxy` is that source address, like rport. For TCP/WS drachtio reuses the SUBSCRIBE's connection
 *    itself (findTportForSubscription, keyed by the Contact's user@host). */
export function statelessRequestCall(spec: DialogRequestSpec): RequestCall {
  const headers: Record<string, string> = {
    From: spec.from,
    To: spec.to,
    'Call-ID': spec.callId,
    CSeq: `${spec.cseq} ${spec.method}`,
  };
  headerRecord(spec.headers.filter(([n]) => !['route', 'from', 'to', 'call-id', 'cseq', 'via', 'content-length'].includes(n.toLowerCase())), headers);
  const opts: DrachtioRequestOptions = { method: spec.method, headers };
  if (spec.body !== undefined && spec.body.length > 0) opts.body = typeof spec.body === 'string' ? spec.body : spec.body.toString('utf8');
  const firstRoute = spec.routeSet[0];
  if (firstRoute) opts.proxy = routeUri(firstRoute);
  else if (spec.transport === 'udp' && spec.flowRemote) {
    const target = hostPortOf(spec.requestUri);
    const { address, port } = spec.flowRemote;
    if (!target || target.host !== address.toLowerCase() || (target.port ?? 5060) !== port) {
      const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
      opts.proxy = `sip:${host}:${port}`;
    }
  }
  return { uri: spec.requestUri, opts };
}

/** A response drachtio-srf handed us, as a SipResponse. */
export function toSipResponse(res: DrachtioIncomingResponse): SipResponse {
  const raw = res.msg?.raw;
  const parsed = raw ? parseSipText(raw) : null;
  if (parsed) {
    const m = /^(SIP\/\d+\.\d+)\s+(\d{3})\s*(.*)$/.exec(parsed.startLine);
    if (m) return { kind: 'response', version: m[1]!, status: Number(m[2]), reason: m[3]!, headers: parsed.headers, body: parsed.body };
  }
  const headers: HeaderMap = new Map();
  for (const [n, v] of Object.entries(res.msg?.headers ?? {})) addHeader(headers, n, v);
  return { kind: 'response', version: 'SIP/2.0', status: res.status, reason: res.reason ?? '', headers, body: Buffer.from(res.msg?.body ?? '', 'utf8') };
}
