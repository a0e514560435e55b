// The message parser: framing of a datagram, header names, lists, folding, limits, validation, error phrases.
import { describe, expect, it } from 'vitest';
import { COMPACT_FORMS, canAnswer, parseMessage, type ParseResult } from '../../src/sip/stack/parser.js';
import type { SipMessage, SipRequest } from '../../src/sip/stack/message.js';

const CRLF = (s: string): string => s.replace(/\r?\n/g, '\r\n');

/** A valid SUBSCRIBE; `extra` header lines are inserted before Content-Length, `drop` removes lines by prefix. */
function subscribe(opts: { extra?: string[]; drop?: string[]; body?: string | Buffer; cl?: string | null; start?: string } = {}): Buffer {
  const lines = [
    opts.start ?? 'SUBSCRIBE sip:201@example.com SIP/2.0',
    'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport',
    'From: "Alice" <sip:100@example.com>;tag=a1',
    'To: <sip:201@example.com>',
    'Call-ID: c1@10.0.0.1',
    'CSeq: 7 SUBSCRIBE',
    'Contact: <sip:100@10.0.0.1:5060>',
    'Max-Forwards: 70',
    'Event: dialog',
    'Expires: 3600',
  ].filter((l) => !(opts.drop ?? []).some((d) => l.toLowerCase().startsWith(d.toLowerCase())));
  lines.push(...(opts.extra ?? []));
  const body = typeof opts.body === 'string' ? Buffer.from(opts.body, 'utf8') : (opts.body ?? Buffer.alloc(0));
  if (opts.cl !== null) lines.push(`Content-Length: ${opts.cl ?? body.length}`);
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), body]);
}

function ok(r: ParseResult): SipMessage {
  if (!r.ok) throw new Error(`expected a message, got: ${r.error}`);
  return r.message;
}

function req(r: ParseResult): SipRequest {
  const m = ok(r);
  if (m.kind !== 'request') throw new Error('expected a request');
  return m;
}

function err(r: ParseResult): { error: string; status: number; request?: SipRequest } {
  if (r.ok) throw new Error('expected an error');
  return r;
}

describe('parseMessage: start line', () => {
  it('parses a request line', () => {
    const m = req(parseMessage(subscribe()));
    expect([m.method, m.uri, m.version]).toEqual(['SUBSCRIBE', 'sip:201@example.com', 'SIP/2.0']);
  });

  it('parses a status line with a multi-word reason, and an empty one', () => {
    const base = 'Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n';
    const a = ok(parseMessage(Buffer.from('SIP/2.0 481 Call/Transaction Does Not Exist\r\n' + base)));
    expect(a.kind === 'response' && [a.status, a.reason]).toEqual([481, 'Call/Transaction Does Not Exist']);
    const b = ok(parseMessage(Buffer.from('SIP/2.0 200 \r\n' + base)));
    expect(b.kind === 'response' && b.reason).toBe('');
    const c = ok(parseMessage(Buffer.from('SIP/2.0 200\r\n' + base)));
    expect(c.kind === 'response' && c.status).toBe(200);
  });

  it.each([
    ['SIP/2.0 99 Low', 'Bad Status Code'],
    ['SIP/2.0 700 High', 'Bad Status Code'],
    ['SIP/2.0 2x0 OK', 'Bad Status Code'],
    ['SIP/2.0 1000 OK', 'Bad Status Code'],
    ['SIP/2.0 1e2 OK', 'Bad Status Code'],
    ['SIP/2.0 +20 OK', 'Bad Status Code'],
    ['SIP/3.0 200 OK', 'Version Not Supported'],
  ])('refuses the status line %j', (line, reason) => {
    const r = err(parseMessage(Buffer.from(`${line}\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@h>\r\nTo: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 NOTIFY\r\n\r\n`)));
    expect(r.error).toBe(reason);
    expect(r.request).toBeUndefined();
  });

  it.each([
    ['SUBSCRIBE sip:201@example.com SIP/3.0', 'Version Not Supported', 505],
    ['SUBSCRIBE sip:201@example.com HTTP/1.1', 'Bad Request-Line', 400],
    ['SUBSCRIBE sip:201@example.com', 'Bad Request-Line', 400],
    ['SUBSCRIBE  sip:201@example.com SIP/2.0', 'Bad Request-Line', 400],
    ['SUBSCRIBE sip:201@example.com SIP/2.0 ', 'Bad Request-Line', 400],
    ['SUBSCRIBE <sip:201@example.com> SIP/2.0', 'Bad Request-URI', 400],
    ['SUBSCRIBE 201@example.com SIP/2.0', 'Bad Request-URI', 400],
    ['SUBSCRIBE sip:201@example.com?Route=x SIP/2.0', 'Bad Request-URI', 400],
    ['SUB(SCRIBE sip:201@example.com SIP/2.0', 'Bad Method', 400],
  ])('refuses the request line %j with %j and keeps the request for the answer', (start, reason, status) => {
    const r = err(parseMessage(subscribe({ start })));
    expect(r.error).toBe(reason);
    expect(r.status).toBe(status);
    expect(r.request).toBeDefined();
    expect(canAnswer(r.request!)).toBe(true);
  });

  it('accepts the version in any case and normalises it', () => {
    expect(req(parseMessage(subscribe({ start: 'SUBSCRIBE sip:201@example.com sip/2.0' }))).version).toBe('SIP/2.0');
  });

  it('ignores CRLFs before the start line (RFC 3261 §7.5)', () => {
    const m = req(parseMessage(Buffer.concat([Buffer.from('\r\n\r\n'), subscribe()])));
    expect(m.method).toBe('SUBSCRIBE');
  });

  it('refuses empty input and garbage with a reason, never a throw', () => {
    for (const b of ['', '\r\n\r\n', 'hello', '\x00\x01\x02', 'SIP/2.0', ' \r\n\r\n']) {
      const r = parseMessage(Buffer.from(b, 'latin1'));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.length).toBeGreaterThan(0);
    }
  });
});

describe('parseMessage: header names and values', () => {
  it('lower-cases names and maps every compact form', () => {
    const letters = Object.keys(COMPACT_FORMS);
    expect(letters.sort().join('')).toBe('abcdefijklmorstuvxy');
    // a message written only in compact forms where one exists
    const msg = CRLF(`PUBLISH sip:201@example.com SIP/2.0
v: SIP/2.0/UDP h;branch=z9hG4bK1
f: <sip:201@example.com>;tag=x
T: <sip:201@example.com>
i: cid
CSeq: 1 PUBLISH
o: dialog
u: dialog, presence
k: eventlist
s: subject
e: gzip
c: application/dialog-info+xml
m: <sip:201@h>
r: <sip:refer@h>
b: <sip:by@h>
x: 1800
y: sig
a: *;audio
j: *;video
d: proxy
l: 0

`);
    const m = ok(parseMessage(Buffer.from(msg)));
    for (const [letter, full] of Object.entries(COMPACT_FORMS)) {
      expect(m.headers.has(full), `${letter} -> ${full}`).toBe(true);
      expect(m.headers.has(letter)).toBe(false);
    }
    expect(m.headers.get('event')).toEqual(['dialog']);
    expect(m.headers.get('allow-events')).toEqual(['dialog, presence']);
  });

  it('treats names case-insensitively and allows LWS before the colon', () => {
    const m = ok(parseMessage(subscribe({ extra: ['sUbScRiPtIoN-sTaTe  : active', 'X-Custom-Thing:\tvalue  '] })));
    expect(m.headers.get('subscription-state')).toEqual(['active']);
    expect(m.headers.get('x-custom-thing')).toEqual(['value']);
  });

  it('recognises known names in any mix of case, and only exact non-letters', () => {
    const values: Record<string, string> = {
      via: 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc', from: '<sip:100@example.com>;tag=a1', to: '<sip:201@example.com>',
      'call-id': 'c1@10.0.0.1', cseq: '7 SUBSCRIBE', contact: '<sip:100@10.0.0.1>', 'max-forwards': '70', expires: '60',
      event: 'dialog', accept: 'application/dialog-info+xml', 'allow-events': 'dialog', 'subscription-state': 'active',
      'sip-etag': 'e1', 'sip-if-match': 'e1', 'www-authenticate': 'Digest realm="r"', 'content-type': 'text/plain', 'user-agent': 'UA',
    };
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (const [name, value] of Object.entries(values)) {
      for (let k = 0; k < 8; k++) {
        const spelled = [...name].map((ch) => (rnd() < 0.5 ? ch.toUpperCase() : ch)).join('');
        const m = ok(parseMessage(subscribe({ drop: [name + ':'], extra: [`${spelled}: ${value}`] })));
        expect(m.headers.get(name), spelled).toEqual([value]);
      }
    }
    // a CR inside a name is not a '-' (0x0d | 0x20 === 0x2d), and '_' is not '-'
    expect(err(parseMessage(subscribe({ extra: ['Call\rID: x'] }))).error).toBe('Malformed Header Name');
    expect(ok(parseMessage(subscribe({ extra: ['Call_ID: x'] }))).headers.get('call_id')).toEqual(['x']);
  });

  it('joins folded lines with one SP (RFC 3261 §7.3.1)', () => {
    const m = ok(parseMessage(subscribe({ extra: ['Subject: first', ' second', '\t third', 'Allow-Events:', '  dialog'] })));
    expect(m.headers.get('subject')).toEqual(['first second third']);
    expect(m.headers.get('allow-events')).toEqual(['dialog']);
  });

  it('splits Via, Contact, Route and Record-Route on top-level commas only', () => {
    const m = ok(parseMessage(subscribe({
      drop: ['Via', 'Contact'],
      extra: [
        'Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b;branch=z9hG4bK2',
        'Via: SIP/2.0/UDP c;branch=z9hG4bK3',
        'Contact: "Doe, John" <sip:j@h;x=a,b>;q=0.5, <sip:k@h>',
        'Route: <sip:p1@h;lr>,<sip:p2@h;lr>',
        'Record-Route: <sip:r1@h;lr>, <sip:r2@h;lr>',
        'Accept: application/dialog-info+xml, application/xpidf+xml',
        'Allow: SUBSCRIBE, NOTIFY',
      ],
    })));
    expect(m.headers.get('via')).toEqual(['SIP/2.0/UDP a;branch=z9hG4bK1', 'SIP/2.0/TCP b;branch=z9hG4bK2', 'SIP/2.0/UDP c;branch=z9hG4bK3']);
    expect(m.headers.get('contact')).toEqual(['"Doe, John" <sip:j@h;x=a,b>;q=0.5', '<sip:k@h>']);
    expect(m.headers.get('route')).toEqual(['<sip:p1@h;lr>', '<sip:p2@h;lr>']);
    expect(m.headers.get('record-route')).toEqual(['<sip:r1@h;lr>', '<sip:r2@h;lr>']);
    // other headers: one element per line
    expect(m.headers.get('accept')).toEqual(['application/dialog-info+xml, application/xpidf+xml']);
    expect(m.headers.get('allow')).toEqual(['SUBSCRIBE, NOTIFY']);
  });

  it('keeps repeated non-list headers one per line, in order', () => {
    const m = ok(parseMessage(subscribe({ extra: ['Supported: a', 'Supported: b'] })));
    expect(m.headers.get('supported')).toEqual(['a', 'b']);
  });

  it('decodes header values as UTF-8', () => {
    const m = ok(parseMessage(subscribe({ drop: ['From'], extra: ['From: "Zoë Ærø" <sip:100@example.com>;tag=z'] })));
    expect(m.headers.get('from')).toEqual(['"Zoë Ærø" <sip:100@example.com>;tag=z']);
  });

  it('leaves no stray CR in a value (CR CR LF line end, CR before a bare-LF blank line)', () => {
    const a = ok(parseMessage(Buffer.from(subscribe({ extra: ['Subject: hi'] }).toString().replace('Subject: hi\r\n', 'Subject: hi\r\r\n'))));
    expect(a.headers.get('subject')).toEqual(['hi']);
    const b = ok(parseMessage(Buffer.from(subscribe({ cl: null }).toString().replace(/\r\n\r\n$/, '\r\r\n\nbody'))));
    expect(b.headers.get('expires')).toEqual(['3600']);
    expect(b.body.toString()).toBe('body');
  });

  it('refuses a CR alone inside a header line, so it can never be echoed (RFC 3261 §7.3.1)', () => {
    for (const extra of [['Subject: a\rX-Injected: 1'], ['Subject: a', ' b\rX-Injected: 1']]) {
      const r = err(parseMessage(subscribe({ extra })));
      expect(r.error).toBe('Malformed Header Line');
      expect(canAnswer(r.request!)).toBe(true);
    }
  });

  it('accepts bare LF line ends', () => {
    const m = req(parseMessage(Buffer.from(subscribe().toString().replace(/\r\n/g, '\n'))));
    expect(m.headers.get('call-id')).toEqual(['c1@10.0.0.1']);
  });

  it.each([
    ['a line without a colon', 'Garbage line', 'Malformed Header Line'],
    ['a name that is not a token', 'Bad Name: x', 'Malformed Header Name'],
    ['a line starting with a colon', ': x', 'Malformed Header Line'],
  ])('refuses %s but keeps the rest for the 400', (_what, line, reason) => {
    const r = err(parseMessage(subscribe({ extra: [line] })));
    expect(r.error).toBe(reason);
    expect(canAnswer(r.request!)).toBe(true);
    expect(r.request!.headers.get('event')).toEqual(['dialog']);
  });

  it('refuses a continuation line before any header', () => {
    const b = Buffer.from('SUBSCRIBE sip:a@h SIP/2.0\r\n folded\r\nVia: SIP/2.0/UDP h\r\n\r\n');
    expect(err(parseMessage(b)).error).toBe('Bad Header Folding');
  });
});

describe('parseMessage: mandatory headers and their values', () => {
  it.each([
    ['Via', 'Missing Via'],
    ['From', 'Missing From'],
    ['To', 'Missing To'],
    ['Call-ID', 'Missing Call-ID'],
    ['CSeq', 'Missing CSeq'],
  ])('a request without %s is refused with %j', (name, reason) => {
    const r = err(parseMessage(subscribe({ drop: [name + ':'] })));
    expect(r.error).toBe(reason);
    expect(r.status).toBe(400);
    expect(canAnswer(r.request!)).toBe(false);
  });

  it('an empty Call-ID counts as missing', () => {
    expect(err(parseMessage(subscribe({ drop: ['Call-ID'], extra: ['Call-ID:'] }))).error).toBe('Missing Call-ID');
  });

  it.each([
    ['CSeq: x SUBSCRIBE', 'Bad CSeq'],
    ['CSeq: 1', 'Bad CSeq'],
    ['CSeq: -1 SUBSCRIBE', 'Bad CSeq'],
    ['CSeq: 4294967296 SUBSCRIBE', 'Bad CSeq'],
    ['CSeq: 1 SUB SCRIBE', 'Bad CSeq'],
    ['CSeq: 1 NOTIFY', 'CSeq Method Mismatch'],
    ['CSeq: 1 subscribe', 'CSeq Method Mismatch'],
  ])('%s -> %s', (line, reason) => {
    const r = err(parseMessage(subscribe({ drop: ['CSeq'], extra: [line] })));
    expect(r.error).toBe(reason);
    expect(r.request).toBeDefined();
  });

  it('accepts the largest CSeq number (2^32-1) and leading zeros', () => {
    expect(ok(parseMessage(subscribe({ drop: ['CSeq'], extra: ['CSeq: 4294967295 SUBSCRIBE'] }))).headers.get('cseq')).toEqual(['4294967295 SUBSCRIBE']);
    expect(ok(parseMessage(subscribe({ drop: ['CSeq'], extra: ['CSeq: 0007   SUBSCRIBE'] }))).kind).toBe('request');
  });

  it.each([
    ['Via: SIP/2.0/UDP', 'Bad Via'],
    ['Via: SIP/2.0 h', 'Bad Via'],
    ['Via: SIP/2.0/UDP h:99999', 'Bad Via'],
    ['Via: SIP/2.0/UDP h;branch="x', 'Bad Via'],
  ])('%s -> %s', (line, reason) => {
    expect(err(parseMessage(subscribe({ drop: ['Via'], extra: [line] }))).error).toBe(reason);
  });

  it('checks every Via value, not only the top one', () => {
    const r = err(parseMessage(subscribe({ extra: ['Via: SIP/2.0/UDP ok;branch=z9hG4bK2, garbage'] })));
    expect(r.error).toBe('Bad Via');
    expect(canAnswer(r.request!)).toBe(true); // the top Via is fine, so a 400 can go back
  });

  it.each([
    ['From', 'From: "unterminated <sip:a@h>', 'Bad From'],
    ['From', 'From: Bell, Alexander <sip:a@h>;tag=1', 'Bad From'],
    ['To', 'To: < sip:b@h >', 'Bad To'],
    ['To', 'To: not a uri', 'Bad To'],
    ['Contact', 'Contact: sip:x@h?Route=y', 'Bad Contact'],
    ['Contact', 'Contact: <sip:x@h', 'Bad Contact'],
  ])('%s value %j -> %s', (name, line, reason) => {
    expect(err(parseMessage(subscribe({ drop: [name + ':'], extra: [line] }))).error).toBe(reason);
  });

  it('accepts Contact: * and addr-spec forms', () => {
    expect(ok(parseMessage(subscribe({ drop: ['Contact'], extra: ['Contact: *'] }))).headers.get('contact')).toEqual(['*']);
    expect(ok(parseMessage(subscribe({ drop: ['To'], extra: ['To: sip:201@example.com;tag=9'] }))).kind).toBe('request');
  });

  it('refuses different values of a single-value header, tolerates an exact repeat', () => {
    expect(err(parseMessage(subscribe({ extra: ['Call-ID: other'] }))).error).toBe('Duplicate Call-ID');
    expect(err(parseMessage(subscribe({ extra: ['CSeq: 8 SUBSCRIBE'] }))).error).toBe('Duplicate CSeq');
    expect(err(parseMessage(subscribe({ extra: ['To: <sip:x@h>'] }))).error).toBe('Duplicate To');
    expect(ok(parseMessage(subscribe({ extra: ['Call-ID: c1@10.0.0.1'] }))).kind).toBe('request');
  });

  it('checks Max-Forwards is 0-255', () => {
    expect(err(parseMessage(subscribe({ drop: ['Max-Forwards'], extra: ['Max-Forwards: 256'] }))).error).toBe('Bad Max-Forwards');
    expect(err(parseMessage(subscribe({ drop: ['Max-Forwards'], extra: ['Max-Forwards: ten'] }))).error).toBe('Bad Max-Forwards');
    expect(ok(parseMessage(subscribe({ drop: ['Max-Forwards'], extra: ['Max-Forwards: 0'] }))).kind).toBe('request');
    expect(ok(parseMessage(subscribe({ drop: ['Max-Forwards'] }))).kind).toBe('request');
  });

  it('responses need the same five headers; a bad response has no request to answer', () => {
    const r = err(parseMessage(Buffer.from('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@h>\r\nTo: <sip:b@h>\r\nCSeq: 1 NOTIFY\r\n\r\n')));
    expect(r.error).toBe('Missing Call-ID');
    expect(r.request).toBeUndefined();
  });

  it('a response CSeq method is not compared with anything', () => {
    const m = ok(parseMessage(Buffer.from('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@h>\r\nTo: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n')));
    expect(m.kind).toBe('response');
  });
});

describe('parseMessage: body by Content-Length bytes', () => {
  it('takes exactly Content-Length bytes of a UTF-8 body (not characters)', () => {
    const body = Buffer.from('<note>Zoë ☎</note>', 'utf8');
    expect(body.length).toBeGreaterThan('<note>Zoë ☎</note>'.length);
    const m = ok(parseMessage(subscribe({ body })));
    expect(m.body.equals(body)).toBe(true);
    expect(m.body.toString('utf8')).toBe('<note>Zoë ☎</note>');
  });

  it('discards datagram bytes past Content-Length (RFC 3261 §18.3)', () => {
    const b = Buffer.concat([subscribe({ body: 'abcd' }), Buffer.from('TRAILING JUNK')]);
    expect(ok(parseMessage(b)).body.toString()).toBe('abcd');
  });

  it('refuses a Content-Length larger than what arrived', () => {
    const r = err(parseMessage(subscribe({ body: 'abcd', cl: '5' })));
    expect(r.error).toBe('Content-Length Too Large');
    expect(canAnswer(r.request!)).toBe(true);
  });

  it.each(['five', '-1', '1.5', '', '99999999999', '0x10'])('refuses Content-Length %j', (cl) => {
    expect(err(parseMessage(subscribe({ body: 'abcd', cl }))).error).toBe('Bad Content-Length');
  });

  it('takes the rest of the datagram when Content-Length is missing', () => {
    expect(ok(parseMessage(subscribe({ body: 'rest of it', cl: null }))).body.toString()).toBe('rest of it');
  });

  it('compact l and Content-Length: 0 give an empty body', () => {
    const m = ok(parseMessage(subscribe({ drop: ['Content-Length'], cl: null, extra: ['l: 0'] })));
    expect(m.body.length).toBe(0);
  });

  it('keeps CRLFCRLF and NUL bytes inside a body', () => {
    const body = Buffer.from([0x41, 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x42]);
    expect(ok(parseMessage(subscribe({ body }))).body.equals(body)).toBe(true);
  });

  it('refuses a message without the blank line, keeping the request', () => {
    const b = Buffer.from(subscribe().toString().replace(/\r\n\r\n$/, '\r\n'));
    const r = err(parseMessage(b));
    expect(r.error).toBe('Incomplete Message');
    expect(canAnswer(r.request!)).toBe(true);
  });
});

describe('parseMessage: limits', () => {
  it('refuses a message over maxMessageSize with 513 and keeps the request', () => {
    const body = 'x'.repeat(2000);
    const r = err(parseMessage(subscribe({ body }), { maxMessageSize: 1024, maxHeaders: 100 }));
    expect(r.error).toBe('Message Too Large');
    expect(r.status).toBe(513);
    expect(canAnswer(r.request!)).toBe(true);
    expect(ok(parseMessage(subscribe({ body }), { maxMessageSize: 4096, maxHeaders: 100 })).body.length).toBe(2000);
  });

  it('the default limit is 64 KiB', () => {
    const near = 'x'.repeat(65536 - subscribe({ cl: '65000' }).length);
    expect(ok(parseMessage(subscribe({ body: near }))).body.length).toBe(near.length);
    expect(err(parseMessage(subscribe({ body: near + 'x' }))).status).toBe(513);
  });

  it('a huge header section without a blank line is bounded by the limit', () => {
    const b = Buffer.concat([subscribe({ cl: null }).subarray(0, 100), Buffer.alloc(1_000_000, 0x61)]);
    const t0 = performance.now();
    const r = err(parseMessage(b));
    expect(r.status).toBe(513);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('refuses more header lines than maxHeaders', () => {
    const extra = Array.from({ length: 20 }, (_, i) => `X-H${i}: ${i}`);
    const limits = { maxMessageSize: 65536, maxHeaders: 25 };
    const r = err(parseMessage(subscribe({ extra }), limits));
    expect(r.error).toBe('Too Many Headers');
    expect(ok(parseMessage(subscribe({ extra: extra.slice(0, 10) }), limits)).kind).toBe('request');
  });
});

describe('canAnswer', () => {
  it('needs Via (parseable), From, To, Call-ID and CSeq', () => {
    const full = req(parseMessage(subscribe()));
    expect(canAnswer(full)).toBe(true);
    for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) {
      const h = new Map(full.headers);
      h.delete(name);
      expect(canAnswer({ ...full, headers: h }), name).toBe(false);
    }
    const badVia = new Map(full.headers);
    badVia.set('via', ['nonsense']);
    expect(canAnswer({ ...full, headers: badVia })).toBe(false);
    const noBranch = new Map(full.headers);
    noBranch.set('via', ['SIP/2.0/UDP 10.0.0.1']);
    expect(canAnswer({ ...full, headers: noBranch })).toBe(true);
  });
});
