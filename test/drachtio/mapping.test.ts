// The adapter's mapping, with drachtio-srf's own SipMessage/Request classes (they build without a server).
import { describe, expect, it } from 'vitest';
import { loadSrf, type DrachtioRequest } from '../../src/sip/drachtio/types.js';
import {
  dialogIdOf, flowOf, inDialogRequestCall, parseHostports, parseSipText, responseCall, splitTopLevel,
  statelessRequestCall, tagOf, toSipRequest, toSipResponse,
} from '../../src/sip/drachtio/mapping.js';
import type { DialogRequestSpec } from '../../src/sip/port.js';

const Srf = loadSrf();

const SUBSCRIBE = [
  'SUBSCRIBE sip:201@example.test SIP/2.0',
  'Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKa1, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKa0',
  'Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKzz',
  'Max-Forwards: 70',
  'f: "Zoë, the watcher" <sip:100@example.test>;tag=abc123',
  't: <sip:201@example.test>',
  'i: call-1@10.0.0.5',
  'CSeq: 7 SUBSCRIBE',
  'm: <sip:100@10.0.0.5:5062;transport=udp>',
  'Record-Route: <sip:p2.example.test;lr>, <sip:p1.example.test;lr>',
  'o: dialog',
  'u: dialog, presence',
  'Subject: a folded',
  '  header value',
  'Expires: 3600',
  'c: text/plain',
  'l: 6',
  '',
  'Zoë!XY',
].join('\r\n');

function drachtioRequest(raw: string, meta: Record<string, unknown> = {}): DrachtioRequest {
  const msg = new Srf.SipMessage(raw);
  return new Srf.SipRequest(msg, {
    source: 'network', address: '192.0.2.7', port: '40123', protocol: 'udp', time: '12:00:00',
    transactionId: 'txn-1', dialogId: '', ...meta,
  });
}

describe('drachtio request → SipRequest', () => {
  it('maps method, URI, every header (compact forms o/u too) and the body by bytes', () => {
    const req = toSipRequest(drachtioRequest(SUBSCRIBE));
    expect(req).not.toBeNull();
    expect(req!.method).toBe('SUBSCRIBE');
    expect(req!.uri).toBe('sip:201@example.test');
    expect(req!.version).toBe('SIP/2.0');
    expect(req!.headers.get('via')).toEqual([
      'SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKa1', 'SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKa0', 'SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKzz',
    ]);
    expect(req!.headers.get('from')).toEqual(['"Zoë, the watcher" <sip:100@example.test>;tag=abc123']);
    expect(req!.headers.get('to')).toEqual(['<sip:201@example.test>']);
    expect(req!.headers.get('call-id')).toEqual(['call-1@10.0.0.5']);
    expect(req!.headers.get('contact')).toEqual(['<sip:100@10.0.0.5:5062;transport=udp>']);
    expect(req!.headers.get('record-route')).toEqual(['<sip:p2.example.test;lr>', '<sip:p1.example.test;lr>']);
    expect(req!.headers.get('event')).toEqual(['dialog']);
    expect(req!.headers.get('allow-events')).toEqual(['dialog, presence']);
    expect(req!.headers.get('subject')).toEqual(['a folded header value']);
    // Content-Length 6 is bytes: "Zoë!X" is 6 bytes; drachtio-srf cuts 6 characters and would keep the "Y".
    expect(drachtioRequest(SUBSCRIBE).body).toBe('Zoë!XY');
    expect(req!.body.toString('utf8')).toBe('Zoë!X');
    expect(req!.body.length).toBe(6);
  });

  it('takes exactly Content-Length bytes and no more', () => {
    const raw = SUBSCRIBE.replace('l: 6', 'l: 3');
    const req = toSipRequest(drachtioRequest(raw))!;
    expect(req.body).toEqual(Buffer.from('Zo\xc3', 'latin1'));
  });

  it('builds the flow from drachtio metadata, with receivedOn as the local address when present', () => {
    const listening = parseHostports('udp/203.0.113.1:5060,tcp/203.0.113.1:5061');
    const f1 = flowOf(drachtioRequest(SUBSCRIBE), listening);
    expect(f1).toEqual({ id: 'drachtio:udp:192.0.2.7:40123', transport: 'udp', localAddress: '203.0.113.1', localPort: 5060, remoteAddress: '192.0.2.7', remotePort: 40123 });
    const f2 = flowOf(drachtioRequest(SUBSCRIBE, { protocol: 'tls', receivedOn: '10.1.1.1:5061' }), listening);
    expect(f2.transport).toBe('tcp');
    expect([f2.localAddress, f2.localPort]).toEqual(['10.1.1.1', 5061]);
    expect(flowOf(drachtioRequest(SUBSCRIBE, { protocol: 'wss' }), listening).transport).toBe('ws');
  });

  it('falls back to the joined header object when there is no raw text', () => {
    const fake = { method: 'publish', uri: 'sip:a@b', headers: { via: 'SIP/2.0/UDP a;branch=1,SIP/2.0/UDP b;branch=2', event: 'dialog' }, body: 'x', msg: { headers: {} } } as unknown as DrachtioRequest;
    const req = toSipRequest(fake)!;
    expect(req.method).toBe('PUBLISH');
    expect(req.headers.get('via')).toEqual(['SIP/2.0/UDP a;branch=1', 'SIP/2.0/UDP b;branch=2']);
    expect(req.body.toString()).toBe('x');
  });

  it('rejects text that is not SIP', () => {
    expect(toSipRequest({ raw: 'not a request line\r\nVia: x\r\n\r\n', msg: { headers: {} } } as unknown as DrachtioRequest)).toBeNull();
    expect(toSipRequest({ raw: 'SUBSCRIBE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n', msg: { headers: {} } } as unknown as DrachtioRequest)).toBeNull();
    expect(parseSipText('')).toBeNull();
  });
});

describe('helpers', () => {
  it('splits on top-level commas only', () => {
    expect(splitTopLevel('"a, b" <sip:x@y;p=1,2>, <sip:z@w>')).toEqual(['"a, b" <sip:x@y;p=1,2>', '<sip:z@w>']);
  });
  it('reads tags after the URI, not inside it', () => {
    expect(tagOf('<sip:a@b;tag=inside>;tag=outside')).toBe('outside');
    expect(tagOf('<sip:a@b;tag=inside>')).toBeUndefined();
    expect(tagOf('sip:a@b;tag=x1')).toBe('x1');
    expect(tagOf(undefined)).toBeUndefined();
  });
  it('parses drachtio hostports, IPv6 included, and skips what it cannot read', () => {
    expect(parseHostports('udp/10.0.0.1:5060,tcp/10.0.0.1:5060,wss/[2001:db8::1]:8443,junk,tls/1.2.3.4:5061')).toEqual([
      { transport: 'udp', address: '10.0.0.1', port: 5060 },
      { transport: 'tcp', address: '10.0.0.1', port: 5060 },
      { transport: 'ws', address: '[2001:db8::1]', port: 8443 },
      { transport: 'tcp', address: '1.2.3.4', port: 5061 },
    ]);
    expect(parseHostports(undefined)).toEqual([]);
  });
});

describe('ResponseSpec → res.send', () => {
  const request = toSipRequest(drachtioRequest(SUBSCRIBE))!;

  it('sends the status as given (200, not 202), our To-tag, and the core headers in order', () => {
    const call = responseCall({
      status: 200, toTag: 'ourtag1',
      headers: [['Expires', '600'], ['Contact', '<sip:10.0.0.1:5060>'], ['Allow-Events', 'dialog'], ['Allow-Events', 'presence'], ['Via', 'ignored'], ['CSeq', '1 X']],
    }, request);
    expect(call.status).toBe(200);
    expect(call.reason).toBeUndefined();
    expect(call.opts.headers).toEqual({ Expires: '600', Contact: '<sip:10.0.0.1:5060>', 'Allow-Events': 'dialog\r\nAllow-Events: presence', To: '<sip:201@example.test>;tag=ourtag1' });
    expect(Object.keys(call.opts.headers!)).toEqual(['Expires', 'Contact', 'Allow-Events', 'To']);
    expect(call.opts.body).toBeUndefined();
  });

  it('leaves the To alone when the request already carries a tag (in-dialog)', () => {
    const inDialog = toSipRequest(drachtioRequest(SUBSCRIBE.replace('t: <sip:201@example.test>', 't: <sip:201@example.test>;tag=known')))!;
    const call = responseCall({ status: 481, reason: 'Subscription Does Not Exist', toTag: 'x' }, inDialog);
    expect(call.opts.headers).toEqual({});
    expect(call.reason).toBe('Subscription Does Not Exist');
  });

  it('drachtio-srf Response#send puts the tag on the To it copied from the request', () => {
    // A real Response with a stub agent: what would go to drachtio-server.
    const sent: Array<{ to: string; headers: Record<string, string> | undefined; status: number }> = [];
    const req = drachtioRequest(SUBSCRIBE);
    const Response = (Srf as unknown as { SipResponse: new (agent: unknown) => any }).SipResponse;
    const res = new Response({ sendResponse: (r: any, opts: any) => sent.push({ to: r.msg.headers.to, headers: opts.headers, status: r.msg.status }) });
    res.req = req;
    const call = responseCall({ status: 200, toTag: 'ourtag1', headers: [['Expires', '600']] }, toSipRequest(req)!);
    res.send(call.status, call.reason, call.opts);
    expect(sent).toEqual([{ to: '<sip:201@example.test>;tag=ourtag1', headers: { Expires: '600' }, status: 200 }]);
  });

  it('passes a body as a UTF-8 string', () => {
    const call = responseCall({ status: 200, body: Buffer.from('Zoë', 'utf8') }, request);
    expect(call.opts.body).toBe('Zoë');
  });
});

describe('DialogRequestSpec → srf.request', () => {
  const spec: DialogRequestSpec = {
    method: 'NOTIFY',
    requestUri: 'sip:100@10.0.0.5:5062;transport=udp',
    callId: 'call-1@10.0.0.5',
    from: '<sip:201@example.test>;tag=ourtag1',
    to: '"Zoë, the watcher" <sip:100@example.test>;tag=abc123',
    cseq: 42,
    routeSet: [],
    transport: 'udp',
    headers: [['Event', 'dialog'], ['Subscription-State', 'active;expires=599'], ['Content-Type', 'application/dialog-info+xml'], ['Contact', '<sip:203.0.113.1:5060>']],
    body: '<dialog-info/>',
  };

  it('in dialog: drachtio dialog id from Call-ID and the subscriber tag, our headers, the remote target as URI', () => {
    expect(dialogIdOf(spec)).toBe('call-1@10.0.0.5;from-tag=abc123');
    expect(inDialogRequestCall(spec)).toEqual({
      uri: 'sip:100@10.0.0.5:5062;transport=udp',
      opts: {
        method: 'NOTIFY',
        stackDialogId: 'call-1@10.0.0.5;from-tag=abc123',
        headers: { Event: 'dialog', 'Subscription-State': 'active;expires=599', 'Content-Type': 'application/dialog-info+xml', Contact: '<sip:203.0.113.1:5060>' },
        body: '<dialog-info/>',
      },
    });
    expect(inDialogRequestCall({ ...spec, to: '<sip:100@example.test>' })).toBeNull();
  });

  it('stateless: explicit From, To, Call-ID, CSeq, no Route header, first route hop as proxy', () => {
    const call = statelessRequestCall({ ...spec, routeSet: ['<sip:p1.example.test;lr>', '<sip:p2.example.test;lr>'], headers: [...spec.headers, ['Route', '<sip:x;lr>']] });
    expect(call.uri).toBe(spec.requestUri);
    expect(call.opts).toEqual({
      method: 'NOTIFY',
      headers: {
        From: spec.from, To: spec.to, 'Call-ID': 'call-1@10.0.0.5', CSeq: '42 NOTIFY',
        Event: 'dialog', 'Subscription-State': 'active;expires=599', 'Content-Type': 'application/dialog-info+xml', Contact: '<sip:203.0.113.1:5060>',
      },
      body: '<dialog-info/>',
      proxy: 'sip:p1.example.test;lr',
    });
  });

  it('stateless over UDP behind NAT: proxy to the source address; none when the Contact is that address', () => {
    expect(statelessRequestCall({ ...spec, flowRemote: { address: '198.51.100.9', port: 31000 } }).opts.proxy).toBe('sip:198.51.100.9:31000');
    expect(statelessRequestCall({ ...spec, flowRemote: { address: '10.0.0.5', port: 5062 } }).opts.proxy).toBeUndefined();
    expect(statelessRequestCall({ ...spec, transport: 'tcp', flowRemote: { address: '198.51.100.9', port: 31000 } }).opts.proxy).toBeUndefined();
    expect(statelessRequestCall({ ...spec, flowRemote: { address: '2001:db8::9', port: 5060 } }).opts.proxy).toBe('sip:[2001:db8::9]:5060');
  });

  it('reads a response drachtio-srf hands back', () => {
    const raw = 'SIP/2.0 481 Call/Transaction Does Not Exist\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 42 NOTIFY\r\nContent-Length: 0\r\n\r\n';
    const msg = new Srf.SipMessage(raw);
    const r = toSipResponse({ status: 481, reason: 'Call/Transaction Does Not Exist', msg, get: (n: string) => msg.get(n) });
    expect([r.status, r.reason, r.headers.get('cseq')]).toEqual([481, 'Call/Transaction Does Not Exist', ['42 NOTIFY']]);
  });
});
