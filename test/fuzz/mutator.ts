// A seeded, deterministic mutator over real SIP messages for the socket fuzz tests (issue 4, "Hostile input").
// The in-process parser fuzz (test/stack/fuzz.test.ts) checks the parser's own promises; this one builds whole
// messages a phone, a PBX or a browser would send, addressed to the test's own loopback sockets, and breaks them
// in the ways scanners and broken stacks do, so the running server can be fed them over real sockets.

export type Rand = () => number;

/** mulberry32: small, fast, good enough for fuzzing, and the same sequence for the same seed everywhere. */
export function mulberry32(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
export const int = (r: Rand, n: number): number => Math.floor(r() * n);

/** Where the test peer is, so every address in a seed is one of the test's own loopback sockets. */
export interface PeerAddr {
  host: string;
  port: number;
  transport: 'UDP' | 'TCP' | 'WS';
}

/** An established subscription dialog, for in-dialog SUBSCRIBE seeds (RFC 6665 §4.1.2.2). */
export interface DialogRef {
  callId: string;
  fromTag: string;
  toTag: string;
  user: string;
  watcher: string;
}

export interface SeedContext {
  peer: PeerAddr;
  domain: string;
  /** Unique per case: Call-ID, branch and tags are derived from it so cases are separate transactions. */
  id: string;
  /** A small number per case to spread presentities (bounded fan-out of PUBLISH → NOTIFY). */
  n: number;
  dialog?: DialogRef;
  /** Credentials to add (auth-on run): a ready Authorization header value. */
  authorization?: string;
  /** CSeq to use for in-dialog requests (strictly increasing per dialog, RFC 3261 §12.2.2). */
  cseq: number;
}

const CRLF = (s: string): string => s.replace(/\r?\n/g, '\r\n');

function withLength(headAndBlank: string, body: string): string {
  const head = CRLF(headAndBlank).replace('{len}', String(Buffer.byteLength(body, 'utf8')));
  return head + body;
}

function dialogInfo(entity: string, id: string, state: string): string {
  return CRLF(`<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="7" state="full" entity="${entity}">
  <dialog id="${id}" call-id="${id}" local-tag="a1" remote-tag="b2" direction="recipient"><state>${state}</state>
    <remote><identity display="Zoë &amp; Co">sip:100@example.test</identity></remote></dialog>
</dialog-info>
`);
}

function pidf(entity: string, basic: string): string {
  return CRLF(`<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}">
  <tuple id="t1"><status><basic>${basic}</basic></status><note>on the phone</note></tuple>
</presence>
`);
}

export type SeedName = 'yealink-subscribe' | 'in-dialog-subscribe' | 'publish-dialog' | 'notify-200' | 'options'
  | 'compact-subscribe' | 'ws-subscribe' | 'publish-pidf' | 'mwi-subscribe' | 'unsubscribe' | 'publish-refresh';

export const SEED_NAMES: readonly SeedName[] = ['yealink-subscribe', 'in-dialog-subscribe', 'publish-dialog', 'notify-200', 'options',
  'compact-subscribe', 'ws-subscribe', 'publish-pidf', 'mwi-subscribe', 'unsubscribe', 'publish-refresh'];

/** One real message of the given kind, valid as it stands (Content-Length right, addresses the test's own). */
export function seedMessage(name: SeedName, c: SeedContext): string {
  const { host, port, transport } = c.peer;
  const hp = `${host}:${port}`;
  const d = c.domain;
  const target = `2${c.n % 40}`;
  const watcher = `1${c.n % 7}`;
  const tp = transport === 'UDP' ? '' : `;transport=${transport.toLowerCase()}`;
  const auth = c.authorization ? `Authorization: ${c.authorization}\n` : '';
  switch (name) {
    case 'yealink-subscribe':
      return withLength(`SUBSCRIBE sip:${target}@${d} SIP/2.0
Via: SIP/2.0/${transport} ${hp};branch=z9hG4bK${c.id};rport
From: "Reception ${watcher}" <sip:${watcher}@${d}>;tag=f${c.id}
To: <sip:${target}@${d}>
Call-ID: ${c.id}@${host}
CSeq: 1 SUBSCRIBE
Contact: <sip:${watcher}@${hp}${tp}>
Accept: application/dialog-info+xml
Max-Forwards: 70
User-Agent: Yealink SIP-T46S 66.86.0.15
Expires: 1800
Event: dialog
Allow-Events: talk,hold,conference,refer,check-sync
${auth}Content-Length: {len}

`, '');
    case 'in-dialog-subscribe': {
      const g = c.dialog ?? { callId: `${c.id}@${host}`, fromTag: `f${c.id}`, toTag: `t${c.id}`, user: target, watcher };
      return withLength(`SUBSCRIBE sip:${g.user}@${d} SIP/2.0
Via: SIP/2.0/${transport} ${hp};branch=z9hG4bK${c.id};rport
From: <sip:${g.watcher}@${d}>;tag=${g.fromTag}
To: <sip:${g.user}@${d}>;tag=${g.toTag}
Call-ID: ${g.callId}
CSeq: ${c.cseq} SUBSCRIBE
Contact: <sip:${g.watcher}@${hp}${tp}>
Accept: application/dialog-info+xml
Max-Forwards: 70
Expires: 1800
Event: dialog
${auth}Content-Length: {len}

`, '');
    }
    case 'publish-dialog': {
      const body = dialogInfo(`sip:${target}@${d}`, `call-${c.id}`, pick(mulberry32(c.n), ['early', 'confirmed', 'terminated']));
      return withLength(`PUBLISH sip:${target}@${d} SIP/2.0
Via: SIP/2.0/${transport} ${hp};branch=z9hG4bK${c.id};rport
Max-Forwards: 70
From: <sip:pbx@${d}>;tag=f${c.id}
To: <sip:${target}@${d}>
Call-ID: ${c.id}@pbx
CSeq: 1 PUBLISH
Event: dialog
Expires: 600
Content-Type: application/dialog-info+xml
${auth}Content-Length: {len}

`, body);
    }
    case 'notify-200':
      // A response matching no client transaction: dropped (RFC 3261 §18.1.2), but it goes through the parser.
      return withLength(`SIP/2.0 200 OK
Via: SIP/2.0/${transport} ${hp};branch=z9hG4bK${c.id};received=${host}
From: <sip:${target}@${d}>;tag=t${c.id}
To: "Reception" <sip:${watcher}@${d}>;tag=f${c.id}
Call-ID: ${c.id}@${host}
CSeq: 12 NOTIFY
Content-Length: {len}

`, '');
    case 'options':
      return withLength(`OPTIONS sip:${d} SIP/2.0
Via: SIP/2.0/${transport} ${hp};branch=z9hG4bK${c.id}
Max-Forwards: 70
To: <sip:${d}>
From: "svmap" <sip:100@${host}>;tag=f${c.id}
Call-ID: ${c.id}
CSeq: 1 OPTIONS
Contact: <sip:100@${hp}>
Accept: application/sdp
Content-Length: {len}

`, '');
    case 'compact-subscribe':
      return withLength(`SUBSCRIBE sip:${target}@${d} SIP/2.0
v: SIP/2.0/${transport} ${hp};branch=z9hG4bK${c.id};rport
f: <sip:${watcher}@${d}>;tag=f${c.id}
t: <sip:${target}@${d}>
i: ${c.id}@${host}
CSeq: 1 SUBSCRIBE
m: <sip:${watcher}@${hp}${tp}>;expires=600
o: presence
k: eventlist
Accept: application/pidf+xml
Max-Forwards: 70
Expires: 600
${auth}l: {len}

`, '');
    case 'ws-subscribe':
      // SIP.js over WebSocket: an unresolvable .invalid sent-by and Contact host (RFC 7118 §5).
      return withLength(`SUBSCRIBE sip:${target}@${d} SIP/2.0
Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK${c.id}
To: <sip:${target}@${d}>
From: "Browser" <sip:${watcher}@${d}>;tag=f${c.id}
Call-ID: ${c.id}
CSeq: 4711 SUBSCRIBE
Max-Forwards: 70
Event: dialog
Accept: application/dialog-info+xml
Expires: 600
Contact: <sip:k5j3h2@df7jal23ls0d.invalid;transport=ws>;+sip.ice
Allow: ACK,CANCEL,INVITE,MESSAGE,BYE,OPTIONS,INFO,NOTIFY,REFER
Supported: outbound
User-Agent: SIP.js/0.21.2
${auth}Content-Length: {len}

`, '');
    case 'publish-pidf': {
      const body = pidf(`sip:${target}@${d}`, c.n % 2 ? 'open' : 'closed');
      return withLength(`PUBLISH sip:${target}@${d} SIP/2.0
Via: SIP/2.0/${transport} ${hp};branch=z9hG4bK${c.id};rport
Max-Forwards: 70
From: <sip:${target}@${d}>;tag=f${c.id}
To: <sip:${target}@${d}>
Call-ID: ${c.id}@pbx
CSeq: 1 PUBLISH
Event: presence
Expires: 600
Content-Type: application/pidf+xml
${auth}Content-Length: {len}

`, body);
    }
    case 'mwi-subscribe':
      return withLength(`SUBSCRIBE sip:${watcher}@${d} SIP/2.0
Via: SIP/2.0/${transport} ${hp};branch=z9hG4bK${c.id};rport
From: <sip:${watcher}@${d}>;tag=f${c.id}
To: <sip:${watcher}@${d}>
Call-ID: ${c.id}@${host}
CSeq: 1 SUBSCRIBE
Contact: "Desk" <sip:${watcher}@${hp}${tp}>
Event: message-summary
Accept: application/simple-message-summary
Expires: 900
${auth}Content-Length: {len}

`, '');
    case 'publish-refresh':
      // A refresh of a publication by entity-tag, no body (RFC 3903 §4.1); the tag is mostly unknown: 412.
      return withLength(`PUBLISH sip:${target}@${d} SIP/2.0
Via: SIP/2.0/${transport} ${hp};branch=z9hG4bK${c.id};rport
Max-Forwards: 70
From: <sip:pbx@${d}>;tag=f${c.id}
To: <sip:${target}@${d}>
Call-ID: ${c.id}@pbx
CSeq: 2 PUBLISH
Event: dialog
Expires: ${pick(mulberry32(c.n), ['0', '60', '3600', '59'])}
SIP-If-Match: ${pick(mulberry32(c.n + 1), ['dx200xyz', 'a'.repeat(64), '', '"quoted"', 'x;y=z'])}
${auth}Content-Length: {len}

`, '');
    case 'unsubscribe':
      // A fetch (Expires: 0 outside a dialog, RFC 6665 §4.4.3): 200 and one terminated NOTIFY, nothing stored.
      return withLength(`SUBSCRIBE sip:${target}@${d} SIP/2.0
Via: SIP/2.0/${transport} ${hp};branch=z9hG4bK${c.id};rport
From: <sip:${watcher}@${d}>;tag=f${c.id}
To: <sip:${target}@${d}>
Call-ID: ${c.id}@${host}
CSeq: 1 SUBSCRIBE
Contact: <sip:${watcher}@${hp}${tp}>
Event: dialog
Expires: 0
${auth}Content-Length: {len}

`, '');
  }
}

const INTERESTING = ['\r\n', '\r\n\r\n', '\n', '\r', ' ', '\t', ':', ';', ',', '"', '\\', '<', '>', '=', '@', '?', '%', '%00', '\x00',
  '\xff', 'é', ';tag=', ';branch=', ';received=', ';rport', ';expires=-1', 'SIP/2.0', 'Content-Length: ', 'l: ', 'v: SIP/2.0/UDP h', ' \r\n ',
  '[::1]', '[', ']', 'sip:', 'sips:', 'tel:', '*', ';lr', '&', '<![CDATA[', ']]>', '&#0;', '&#x110000;'];

/** Invalid UTF-8: lone continuation, truncated sequences, overlong forms, surrogates, bytes never legal. */
const BAD_UTF8: readonly number[][] = [[0x80], [0xc3], [0xc3, 0x28], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xc0, 0xaf], [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xfe], [0xff], [0xf8, 0x88, 0x80, 0x80, 0x80]];

/** Quotes, escapes and brackets nested and unbalanced, in display names and URIs (RFC 3261 §25.1 quoted-string). */
function nestedGarbage(r: Rand): string {
  const depth = pick(r, [2, 5, 50, 500, 5000]);
  switch (int(r, 8)) {
    case 0: return '"'.repeat(depth);
    case 1: return '<'.repeat(depth) + 'sip:x@y' + '>'.repeat(int(r, depth + 1));
    case 2: return '"\\"'.repeat(depth) + '"';
    case 3: return '"a\\' + '\\'.repeat(int(r, 4)) + '"b"';
    case 4: return '('.repeat(depth) + ')'.repeat(int(r, depth + 1));
    case 5: return '["<' + '\\"'.repeat(depth) + '>"]';
    case 6: return '<sip:' + '<sip:'.repeat(depth) + 'a@b' + '>'.repeat(depth);
    default: return '"' + '<'.repeat(depth) + '"' + '>'.repeat(depth);
  }
}

export function randomNumberText(r: Rand): string {
  return pick(r, ['0', '1', '-1', '-999', '9999', '65536', '65537', '4294967295', '4294967296', '99999999999999999999', 'five', '',
    ' 3', '3 ', '0x10', '1e3', '1.5', '00000000000000000001', '+5', String(int(r, 2000)), String(int(r, 100))]);
}

function splitHead(text: string): { lines: string[]; rest: string } {
  const end = text.indexOf('\r\n\r\n');
  const head = end === -1 ? text : text.slice(0, end);
  return { lines: head.split('\r\n'), rest: end === -1 ? '' : text.slice(end) };
}

/** The names of the mutations, for the failure report. */
export const MUTATIONS = ['flip', 'truncate', 'insert', 'delete', 'dup-header', 'drop-header', 'huge-value', 'content-length', 'crlf',
  'nul', 'bad-utf8', 'many-headers', 'nested', 'swap-lines', 'start-line', 'params', 'case', 'leading-crlf'] as const;
export type MutationName = typeof MUTATIONS[number];

/** One mutation of buf; returns the bytes and the mutation's name. */
export function mutateOnce(r: Rand, buf: Buffer): { buf: Buffer; op: MutationName } {
  const n = buf.length;
  const op = pick(r, MUTATIONS);
  const lineOp = (f: (lines: string[], rest: string) => { lines: string[]; rest: string } | string): Buffer => {
    const { lines, rest } = splitHead(buf.toString('latin1'));
    const out = f(lines, rest);
    return Buffer.from(typeof out === 'string' ? out : out.lines.join('\r\n') + out.rest, 'latin1');
  };
  const headerIndex = (lines: string[]) => 1 + int(r, Math.max(1, lines.length - 1));
  switch (op) {
    case 'flip': {
      const out = Buffer.from(buf);
      for (let k = 1 + int(r, 4); k > 0 && n > 0; k--) out[int(r, n)] = int(r, 256);
      return { buf: out, op };
    }
    case 'truncate':
      return { buf: buf.subarray(0, int(r, n + 1)), op };
    case 'insert': {
      const at = int(r, n + 1);
      const ins = r() < 0.7 ? Buffer.from(pick(r, INTERESTING), 'latin1') : Buffer.from(Array.from({ length: 1 + int(r, 8) }, () => int(r, 256)));
      return { buf: Buffer.concat([buf.subarray(0, at), ins, buf.subarray(at)]), op };
    }
    case 'delete': {
      const a = int(r, n + 1);
      return { buf: Buffer.concat([buf.subarray(0, a), buf.subarray(Math.min(n, a + 1 + int(r, 40)))]), op };
    }
    case 'dup-header':
      return { buf: lineOp((lines, rest) => {
        const i = headerIndex(lines);
        const times = pick(r, [1, 1, 2, 10, 200]);
        lines.splice(i, 0, ...Array.from({ length: times }, () => lines[i] ?? lines[0]!));
        return { lines, rest };
      }), op };
    case 'drop-header':
      return { buf: lineOp((lines, rest) => { lines.splice(headerIndex(lines), 1); return { lines, rest }; }), op };
    case 'huge-value':
      return { buf: lineOp((lines, rest) => {
        const size = pick(r, [300, 4000, 20_000, 70_000]);
        const ch = pick(r, ['x', 'a;', '%41', ',', ' ', '"']);
        if (r() < 0.5) lines[headerIndex(lines)] += ch.repeat(Math.ceil(size / ch.length));
        else lines.splice(headerIndex(lines), 0, `${pick(r, ['X-Huge', 'Subject', 'User-Agent', 'Via', 'Contact', 'Route', 'Record-Route', 'Accept'])}: ${ch.repeat(Math.ceil(size / ch.length))}`);
        return { lines, rest };
      }), op };
    case 'content-length':
      return { buf: lineOp((lines, rest) => {
        const k = lines.findIndex((l) => /^(content-length|l)\s*:/i.test(l));
        if (k > 0 && r() < 0.8) lines[k] = lines[k]!.replace(/:.*$/, ': ' + randomNumberText(r));
        else lines.splice(headerIndex(lines), 0, 'Content-Length: ' + randomNumberText(r));
        return { lines, rest };
      }), op };
    case 'crlf': {
      const text = buf.toString('latin1');
      switch (int(r, 6)) {
        case 0: return { buf: Buffer.from(text.replace(/\r\n/g, '\n'), 'latin1'), op }; // bare LF everywhere
        case 1: return { buf: Buffer.from(text.replace(/\r\n/g, '\r'), 'latin1'), op }; // bare CR everywhere
        case 2: { // one line ending broken
          const ends = [...text.matchAll(/\r\n/g)].map((m) => m.index!);
          if (ends.length === 0) return { buf, op };
          const at = pick(r, ends);
          return { buf: Buffer.from(text.slice(0, at) + pick(r, ['\r', '\n', '\n\r', '\r\r\n', '\r\n\r\n', '\r\n \r\n']) + text.slice(at + 2), 'latin1'), op };
        }
        case 3: return { buf: Buffer.from(text.replace('\r\n\r\n', ''), 'latin1'), op }; // no blank line at all
        case 4: return { buf: lineOp((lines, rest) => { // folding in the middle of a value (RFC 3261 §7.3.1)
          const i = headerIndex(lines);
          const l = lines[i] ?? '';
          const sp = l.indexOf(' ');
          if (sp > 0) lines[i] = l.slice(0, sp) + pick(r, ['\r\n ', '\r\n\t', '\r\n  \r\n ', '\n ']) + l.slice(sp + 1);
          return { lines, rest };
        }), op };
        default: return { buf: Buffer.concat([buf, Buffer.from(pick(r, ['\r\n', '\r\n\r\n', 'garbage after', '\x00\x00']), 'latin1')]), op };
      }
    }
    case 'nul': {
      const out = Buffer.from(buf);
      for (let k = 1 + int(r, 3); k > 0 && n > 0; k--) out[int(r, n)] = 0;
      return { buf: out, op };
    }
    case 'bad-utf8': {
      // Mostly into a display name, a user part or the body, where UTF-8 is allowed and must then be valid.
      const text = buf.toString('latin1');
      const spots = [text.indexOf('"') + 1, text.indexOf('sip:') + 4, text.indexOf('<?xml') + 40, int(r, n + 1)].filter((x) => x > 0 && x <= n);
      const at = pick(r, spots.length ? spots : [0]);
      return { buf: Buffer.concat([buf.subarray(0, at), Buffer.from(pick(r, BAD_UTF8)), buf.subarray(at)]), op };
    }
    case 'many-headers':
      return { buf: lineOp((lines, rest) => {
        const count = pick(r, [60, 99, 100, 101, 500, 3000]);
        // Branches get a per-case suffix: a Via above ours must not make two cases one transaction (RFC 3261 §17.2.3).
        const salt = int(r, 1 << 30).toString(36);
        const kind = pick(r, ['X-H-{k}: {k}', 'Route: <sip:10.{k}.0.1;lr>', `Via: SIP/2.0/UDP 10.0.0.{k};branch=z9hG4bK${salt}x{k}`, 'Supported: x{k}', 'P-{k}:']);
        lines.splice(headerIndex(lines), 0, ...Array.from({ length: count }, (_, k) => kind.replaceAll('{k}', String(k % 250))));
        return { lines, rest };
      }), op };
    case 'nested':
      return { buf: lineOp((lines, rest) => {
        const k = lines.findIndex((l) => /^(from|to|contact|f|t|m|route|record-route)\s*:/i.test(l));
        const i = k > 0 && r() < 0.8 ? k : headerIndex(lines);
        const l = lines[i] ?? '';
        const c = l.indexOf(':');
        const g = nestedGarbage(r);
        lines[i] = c > 0 ? (r() < 0.5 ? `${l.slice(0, c + 1)} ${g} ${l.slice(c + 1)}` : `${l.slice(0, c + 1)} ${g}`) : l + g;
        return { lines, rest };
      }), op };
    case 'swap-lines':
      return { buf: lineOp((lines, rest) => {
        const i = int(r, lines.length);
        const j = int(r, lines.length);
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        return { lines, rest };
      }), op };
    case 'start-line':
      return { buf: lineOp((lines, rest) => {
        const parts = (lines[0] ?? '').split(' ');
        switch (int(r, 7)) {
          case 0: parts[0] = pick(r, ['subscribe', 'SUBSCRIBE ', 'INVITE', 'NOTIFY', 'ACK', 'REGISTER', 'PUBLISH', 'MESSAGE', 'OPTIONS', 'NEWMETHOD', 'SUB\x00SCRIBE', '', 'SIP/2.0']); break;
          case 1: parts[parts.length - 1] = pick(r, ['SIP/2.1', 'SIP/1.0', 'sip/2.0', 'SIP/2.0 ', 'SIP/2', 'HTTP/1.1', '']); break;
          case 2: if (parts.length > 1) parts[1] = pick(r, ['sip:', 'sip:@', 'sip:user@', '<sip:a@b>', 'sips:x@[::1', 'tel:+123', 'sip:a@b:99999', 'sip:a@b;;;', 'sip:%zz@b', 'sip:a@b?x=y&z', '*', 'sip:' + 'a'.repeat(5000) + '@b', 'sip:a b@c']); break;
          case 3: return { lines: [lines[0]!.replace(' ', '  '), ...lines.slice(1)], rest };
          case 4: return { lines: [' ' + lines[0]!, ...lines.slice(1)], rest };
          case 5: if (parts[0] === 'SIP/2.0' && parts.length > 1) parts[1] = pick(r, ['099', '700', '1000', '20', 'abc', '-200', '999']); break;
          default: return { lines: lines.slice(1), rest }; // no start line
        }
        lines[0] = parts.join(' ');
        return { lines, rest };
      }), op };
    case 'params':
      return { buf: lineOp((lines, rest) => {
        const k = lines.findIndex((l) => /^(via|v|from|f|to|t|contact|m|event|o|cseq|expires)\s*:/i.test(l));
        const i = k > 0 && r() < 0.8 ? k : headerIndex(lines);
        lines[i] = (lines[i] ?? '') + pick(r, [';tag=', ';tag=a;tag=b', ';;;', ';=', ';branch=', ';branch=z9hG4bK;branch=x', ';rport=99999', ';received=', ';received=8.8.8.8',
          ';maddr=10.9.8.7', ';expires=99999999999', ';id=', ';id=a;id=b', ',', ', ,', ',<sip:x@y>', ' , "', ';lr;lr;lr', ';ttl=300', `;${'p'.repeat(3000)}=1`, ';a="unterminated']);
        return { lines, rest };
      }), op };
    case 'case':
      return { buf: lineOp((lines, rest) => {
        const i = int(r, lines.length);
        lines[i] = (lines[i] ?? '').replace(/[a-z]/gi, (ch) => (r() < 0.5 ? ch.toUpperCase() : ch.toLowerCase()));
        return { lines, rest };
      }), op };
    case 'leading-crlf':
      return { buf: Buffer.concat([Buffer.from(pick(r, ['\r\n', '\r\n\r\n', '\n', ' ', '\x00']).repeat(1 + int(r, 5)), 'latin1'), buf]), op };
  }
}

/** 1-3 mutations; sometimes none, so valid messages are in the mix too. */
export function mutate(r: Rand, buf: Buffer): { buf: Buffer; ops: MutationName[] } {
  if (r() < 0.08) return { buf, ops: [] };
  const ops: MutationName[] = [];
  let b = buf;
  for (let k = 1 + (r() < 0.3 ? int(r, 3) : 0); k > 0; k--) {
    const m = mutateOnce(r, b);
    b = m.buf;
    ops.push(m.op);
  }
  return { buf: b, ops };
}

/** A printable form of bytes for a failure report: JSON-escaped, cut to `max` characters. */
export function show(buf: Buffer, max = 600): string {
  const s = JSON.stringify(buf.toString('latin1'));
  return s.length > max ? `${s.slice(0, max)}… (${buf.length} bytes)` : s;
}
