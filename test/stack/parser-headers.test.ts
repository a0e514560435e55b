// Structured header values (headers.ts) and the serializer and reason phrases that go with them.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  formatUri,
  formatVia,
  isValidNameAddr,
  isValidUri,
  isValidVia,
  parseAuthHeader,
  parseCSeq,
  parseEvent,
  parseNameAddr,
  parseParams,
  parseSubscriptionState,
  parseUri,
  parseVia,
  quote,
  detachString,
  splitTopLevelCommas,
  tagOf,
  unquote,
} from '../../src/sip/stack/headers.js';
import { parseMessage } from '../../src/sip/stack/parser.js';
import { canonicalHeaderName, serializeRequest, serializeResponse } from '../../src/sip/stack/serializer.js';
import { reasonPhrase } from '../../src/sip/stack/reasons.js';
import type { SipRequest, SipResponse } from '../../src/sip/stack/message.js';

describe('parseUri / formatUri', () => {
  it('takes a SIP URI apart', () => {
    expect(parseUri('sip:alice:secret@atlanta.com:5061;transport=TCP;lr?subject=project%20x&priority=urgent')).toEqual({
      scheme: 'sip',
      user: 'alice',
      password: 'secret',
      host: 'atlanta.com',
      port: 5061,
      params: { transport: 'TCP', lr: null },
      headers: { subject: 'project%20x', priority: 'urgent' },
    });
  });

  it('handles IPv6 references, sips, no user, upper-case scheme', () => {
    expect(parseUri('sips:[2001:db8::1]:5061')).toMatchObject({ scheme: 'sips', host: '[2001:db8::1]', port: 5061 });
    expect(parseUri('SIP:pbx.example.com')).toMatchObject({ scheme: 'sip', host: 'pbx.example.com' });
    expect(parseUri('sip:*3101@pbx.example.com')).toMatchObject({ user: '*3101' });
  });

  it('keeps a ; or ? in the user part (RFC 4475 §3.1.1.9)', () => {
    expect(parseUri('sip:user;par=u%40example.net@example.com')).toMatchObject({ user: 'user;par=u%40example.net', host: 'example.com', params: {} });
    expect(parseUri('sip:a?b@example.com;x=1')).toMatchObject({ user: 'a?b', host: 'example.com', params: { x: '1' }, headers: {} });
  });

  it('other schemes: opaque part as host, params parsed', () => {
    expect(parseUri('tel:+15551234;phone-context=example.com')).toMatchObject({ scheme: 'tel', host: '+15551234', params: { 'phone-context': 'example.com' } });
    expect(parseUri('urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6')).toMatchObject({ scheme: 'urn', host: 'uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6' });
  });

  it.each(['', 'sip', ':x', 'sip:', 'sip:@h', 'sip:a b@h', 'sip:h:99999', 'sip:h:', 'sip:<h>', 'sip:h;a="x', '1sip:h', 'sip:[::1', 'sip:h?x', 'sip:ho$t'])(
    'refuses %j',
    (u) => {
      expect(parseUri(u)).toBeNull();
      expect(isValidUri(u)).toBe(false);
    },
  );

  it('formats back what it parsed', () => {
    for (const u of ['sip:alice@atlanta.com', 'sip:alice:pw@h:5060;transport=tcp;lr', 'sips:[::1]:5061;maddr=x?a=b&c=d', 'sip:h']) {
      expect(formatUri(parseUri(u)!)).toBe(u);
    }
  });
});

describe('parseNameAddr', () => {
  it('name-addr with quoted display name and escapes', () => {
    expect(parseNameAddr('"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8')).toEqual({
      display: 'J Rosenberg \\"',
      uri: 'sip:jdrosen@example.com',
      params: { tag: '98asjd8' },
    });
  });

  it('token display names, no display, addr-spec, wildcard', () => {
    expect(parseNameAddr('Bob Smith <sip:b@h>')).toEqual({ display: 'Bob Smith', uri: 'sip:b@h', params: {} });
    expect(parseNameAddr('caller<sip:caller@example.com>;tag=323')).toEqual({ display: 'caller', uri: 'sip:caller@example.com', params: { tag: '323' } });
    expect(parseNameAddr('<sip:b@h;transport=tcp>;expires=60')).toEqual({ uri: 'sip:b@h;transport=tcp', params: { expires: '60' } });
    expect(parseNameAddr('sip:b@h;tag=1;+sip.instance="<urn:uuid:1>"')).toEqual({ uri: 'sip:b@h', params: { tag: '1', '+sip.instance': '"<urn:uuid:1>"' } });
    expect(parseNameAddr('*')).toEqual({ uri: '*', params: {} });
  });

  it.each(['', '   ', '"open <sip:a@h>', '<sip:a@h', 'Bell, Alexander <sip:a@h>', '< sip:a@h >', 'sip:a@h?x=y', 'sip:a@h x', '<sip:a@h> junk', 'nouri'])(
    'refuses %j (and isValidNameAddr agrees)',
    (v) => {
      expect(parseNameAddr(v)).toBeNull();
      expect(isValidNameAddr(v)).toBe(false);
    },
  );

  it('tagOf reads the tag cheaply', () => {
    expect(tagOf('<sip:a@h>;tag=abc')).toBe('abc');
    expect(tagOf('<sip:a@h>')).toBeUndefined();
    expect(tagOf('"Tagger" <sip:tag@h>')).toBeUndefined();
  });
});

describe('parseVia / formatVia', () => {
  it('parses sent-protocol, sent-by and params with LWS around them', () => {
    expect(parseVia('SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw')).toEqual({
      protocol: 'SIP/2.0', transport: 'UDP', host: '192.0.2.2', params: { branch: '390skdjuw' }, branch: '390skdjuw',
    });
    expect(parseVia('SIP/2.0/ws df7jal23ls0d.invalid;rport;branch=z9hG4bKnashds7')).toMatchObject({ transport: 'WS', host: 'df7jal23ls0d.invalid', params: { rport: null } });
    expect(parseVia('SIP/2.0/TCP [2001:db8::9]:5070 ; received = 10.0.0.1')).toMatchObject({ host: '[2001:db8::9]', port: 5070, params: { received: '10.0.0.1' } });
    expect(parseVia('SIP/2.0/UDP h : 5060')).toMatchObject({ host: 'h', port: 5060 });
  });

  it.each(['', 'SIP/2.0', 'SIP/2.0/UDP', 'SIP/2.0/UDP ;branch=x', 'SIP 2.0 UDP h', 'SIP/2.0/UDP h:0x1', 'SIP/2.0/U(DP h'])('refuses %j', (v) => {
    expect(parseVia(v)).toBeNull();
    expect(isValidVia(v)).toBe(false);
  });

  it('formats a Via that parses to the same thing', () => {
    const v = parseVia('SIP/2.0/UDP 10.0.0.1:5060;rport=5062;received=1.2.3.4;branch=z9hG4bKx')!;
    expect(formatVia(v)).toBe('SIP/2.0/UDP 10.0.0.1:5060;rport=5062;received=1.2.3.4;branch=z9hG4bKx');
    expect(parseVia(formatVia(v))).toEqual(v);
  });
});

describe('small values', () => {
  it('parseCSeq', () => {
    expect(parseCSeq('0009\t INVITE')).toEqual({ seq: 9, method: 'INVITE' });
    expect(parseCSeq('4294967295 NOTIFY')).toEqual({ seq: 4294967295, method: 'NOTIFY' });
    for (const v of ['', '1', 'INVITE', '1INVITE', '4294967296 X', '36893488147419103232 REGISTER', '-1 X', '1 A B']) expect(parseCSeq(v), v).toBeNull();
  });

  it('parseParams', () => {
    expect(parseParams(';a=b;C;d="x;y" ; e = f')).toEqual({ a: 'b', c: null, d: '"x;y"', e: 'f' });
    expect(parseParams('')).toEqual({});
    expect(parseParams('a=1;a=2')).toEqual({ a: '2' });
  });

  it('parseEvent', () => {
    expect(parseEvent('dialog')).toEqual({ name: 'dialog', params: {} });
    expect(parseEvent('presence;id=7;x')).toEqual({ name: 'presence', id: '7', params: { id: '7', x: null } });
    expect(parseEvent('message-summary ;  id = a')).toMatchObject({ name: 'message-summary', id: 'a' });
    expect(parseEvent('')).toBeNull();
    expect(parseEvent('two words')).toBeNull();
  });

  it('parseSubscriptionState', () => {
    expect(parseSubscriptionState('active;expires=1795')).toEqual({ state: 'active', expires: 1795, params: { expires: '1795' } });
    expect(parseSubscriptionState('terminated;reason=Timeout;retry-after=30')).toMatchObject({ state: 'terminated', reason: 'timeout', retryAfter: 30 });
    expect(parseSubscriptionState('active;expires=soon')).toBeNull();
  });

  it('parseAuthHeader', () => {
    expect(parseAuthHeader('Digest username="100", realm="pbx.example.com", nonce="a,b", uri="sip:201@pbx.example.com", response="abc", qop=auth, nc=00000001, cnonce="x"')).toEqual({
      scheme: 'Digest',
      params: { username: '100', realm: 'pbx.example.com', nonce: 'a,b', uri: 'sip:201@pbx.example.com', response: 'abc', qop: 'auth', nc: '00000001', cnonce: 'x' },
    });
    expect(parseAuthHeader('NoOneKnowsThisScheme opaque-data=here')).toEqual({ scheme: 'NoOneKnowsThisScheme', params: { 'opaque-data': 'here' } });
    expect(parseAuthHeader('Digest realm="unterminated')).toBeNull();
    expect(parseAuthHeader('Digest novalue')).toBeNull();
  });

  it('splitTopLevelCommas honours quotes and <...>', () => {
    expect(splitTopLevelCommas('"a, b" <sip:x@h;p=1,2>, <sip:y@h> ,, c')).toEqual(['"a, b" <sip:x@h;p=1,2>', '<sip:y@h>', 'c']);
    expect(splitTopLevelCommas('  ')).toEqual([]);
    expect(splitTopLevelCommas('"esc \\", still" , next')).toEqual(['"esc \\", still"', 'next']);
  });

  it('detachString gives an equal string', () => {
    for (const v of ['', 'short', 'a-much-longer-call-id@10.0.0.1', 'Zoë ☎ long enough to be sliced']) expect(detachString(v)).toBe(v);
  });

  it('quote/unquote round trip', () => {
    fc.assert(fc.property(fc.string(), (s) => unquote(quote(s)) === s));
  });
});

describe('validators agree with the parsers', () => {
  // Random strings over the characters that matter to the grammar, so the interesting branches are hit often.
  const alphabet = fc.constantFrom(...'sip:@;=<>"\\, \t?&[]:.-_aZ09*'.split(''), 'sip:', 'SIP/2.0/UDP ', 'tag=', ';lr', '"x"');
  const text = fc.array(alphabet, { maxLength: 30 }).map((a) => a.join(''));
  it('isValidUri(s) === (parseUri(s) !== null)', () => {
    fc.assert(fc.property(text, (s) => isValidUri(s) === (parseUri(s) !== null)), { numRuns: 20_000 });
  });
  it('isValidNameAddr(s) === (parseNameAddr(s) !== null)', () => {
    fc.assert(fc.property(text, (s) => isValidNameAddr(s) === (parseNameAddr(s) !== null)), { numRuns: 20_000 });
  });
  it('isValidVia(s) === (parseVia(s) !== null)', () => {
    fc.assert(fc.property(text, (s) => isValidVia(s) === (parseVia(s) !== null)), { numRuns: 20_000 });
  });
});

describe('serializer', () => {
  const request: SipRequest = {
    kind: 'request',
    method: 'NOTIFY',
    uri: 'sip:100@10.0.0.23:5062',
    version: 'SIP/2.0',
    headers: new Map([
      ['via', ['SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1', 'SIP/2.0/UDP 10.0.0.6;branch=z9hG4bK2']],
      ['from', ['<sip:201@example.com>;tag=x']],
      ['to', ['<sip:100@example.com>;tag=y']],
      ['call-id', ['c1']],
      ['cseq', ['3 NOTIFY']],
      ['event', ['dialog']],
      ['subscription-state', ['active;expires=60']],
      ['content-type', ['application/dialog-info+xml']],
      ['content-length', ['9999']],
      ['x-weird-header', ['v']],
    ]),
    body: Buffer.from('<x>Zoë</x>', 'utf8'),
  };

  it('writes canonical names, one line per list value, Content-Length from the body bytes, last', () => {
    const text = serializeRequest(request).toString('utf8');
    expect(text).toBe(
      'NOTIFY sip:100@10.0.0.23:5062 SIP/2.0\r\n' +
        'Via: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP 10.0.0.6;branch=z9hG4bK2\r\n' +
        'From: <sip:201@example.com>;tag=x\r\nTo: <sip:100@example.com>;tag=y\r\nCall-ID: c1\r\nCSeq: 3 NOTIFY\r\n' +
        'Event: dialog\r\nSubscription-State: active;expires=60\r\nContent-Type: application/dialog-info+xml\r\n' +
        'X-Weird-Header: v\r\nContent-Length: 11\r\n\r\n<x>Zoë</x>',
    );
  });

  it('drops a given Content-Length in any spelling and writes the real one once', () => {
    const r: SipRequest = { ...request, headers: new Map([...request.headers, ['Content-Length', ['1']], ['L', ['2']]]) };
    const text = serializeRequest(r).toString();
    expect(text.match(/content-length|\r\nl:/gi)).toEqual(['Content-Length']);
    expect(text).toContain('Content-Length: 11\r\n\r\n');
  });

  it('canonical spellings', () => {
    const names: Record<string, string> = {
      via: 'Via', 'call-id': 'Call-ID', cseq: 'CSeq', 'www-authenticate': 'WWW-Authenticate', 'sip-etag': 'SIP-ETag',
      'sip-if-match': 'SIP-If-Match', 'allow-events': 'Allow-Events', 'min-expires': 'Min-Expires', 'record-route': 'Record-Route',
      'retry-after': 'Retry-After', 'subscription-state': 'Subscription-State', 'content-type': 'Content-Type', contact: 'Contact',
    };
    for (const [lower, canon] of Object.entries(names)) expect(canonicalHeaderName(lower)).toBe(canon);
  });

  it('a response round-trips through the parser', () => {
    const res: SipResponse = {
      kind: 'response', status: 489, reason: 'Bad Event', version: 'SIP/2.0',
      headers: new Map([
        ['via', ['SIP/2.0/UDP h;branch=z9hG4bK1;received=1.2.3.4']], ['from', ['<sip:a@h>;tag=1']], ['to', ['<sip:b@h>;tag=2']],
        ['call-id', ['x']], ['cseq', ['1 SUBSCRIBE']], ['allow-events', ['dialog, presence, message-summary']],
      ]),
      body: Buffer.alloc(0),
    };
    const back = parseMessage(serializeResponse(res));
    if (!back.ok) throw new Error(back.error);
    expect(back.message.kind === 'response' && [back.message.status, back.message.reason]).toEqual([489, 'Bad Event']);
    expect(back.message.headers.get('allow-events')).toEqual(['dialog, presence, message-summary']);
    expect(back.message.headers.get('content-length')).toEqual(['0']);
  });

  it('never lets a value inject a header line', () => {
    const evil: SipResponse = {
      kind: 'response', status: 200, reason: 'OK\r\nX-Injected: 1', version: 'SIP/2.0',
      headers: new Map([['via', ['SIP/2.0/UDP h']], ['from', ['"a\r\nX-Evil: 1" <sip:a@h>']], ['to', ['<sip:b@h>']], ['call-id', ['x']], ['cseq', ['1 OPTIONS']]]),
      body: Buffer.alloc(0),
    };
    const text = serializeResponse(evil).toString();
    expect(text).not.toMatch(/\r\nX-(Injected|Evil)/);
    const back = parseMessage(Buffer.from(text));
    expect(back.ok && back.message.headers.has('x-evil')).toBe(false);
  });
});

describe('reasonPhrase', () => {
  it('knows the codes a presence server answers with', () => {
    expect(reasonPhrase(200)).toBe('OK');
    expect(reasonPhrase(412)).toBe('Conditional Request Failed');
    expect(reasonPhrase(423)).toBe('Interval Too Brief');
    expect(reasonPhrase(481)).toBe('Call/Transaction Does Not Exist');
    expect(reasonPhrase(489)).toBe('Bad Event');
    expect(reasonPhrase(505)).toBe('Version Not Supported');
    expect(reasonPhrase(513)).toBe('Message Too Large');
  });
  it('falls back to the class phrase', () => {
    expect(reasonPhrase(499)).toBe('Bad Request');
    expect(reasonPhrase(299)).toBe('OK');
  });
});

describe('names from the wire cannot reach prototypes', () => {
  it('a parameter named __proto__ or constructor is a plain entry', () => {
    const na = parseNameAddr('<sip:a@h>;__proto__;constructor=x;tag=1')!;
    expect(Object.getPrototypeOf(na.params)).toBeNull();
    expect(na.params.constructor).toBe('x');
    expect(na.params['__proto__']).toBeNull();
    expect(na.params.tag).toBe('1');
    expect(parseParams(';x').toString).toBeUndefined(); // nothing inherited
    expect(parseParams(';valueOf').valueof).toBeNull(); // names are lower-cased
    expect(parseUri('sip:a@h')!.params.hasOwnProperty).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
