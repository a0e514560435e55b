// Bugs the socket fuzz (sip-socket-fuzz.test.ts) and the API fuzz (api-fuzz.test.ts) found, each pinned down as one
// small deterministic case over real sockets so it stays fixed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { LoopPeer, randomTag, subscribe } from '../security/helpers.js';
import { isValidNameAddr } from '../../src/sip/stack/headers.js';
import { exposeGc } from '../../src/memory.js';

let ts: TestServer;
let peer: LoopPeer;

beforeAll(async () => {
  ts = await startTestServer();
  peer = await LoopPeer.open(ts.sip('udp').port);
});
afterAll(async () => {
  peer?.close();
  await ts?.stop();
});

describe('fuzz findings', () => {
  // Found by seed 0x1a3b5eed: a huge-value mutation added "Record-Route: a;a;a;...". The SUBSCRIBE was accepted, the
  // garbage became the dialog's route set (RFC 3261 §12.1.1) in the database, was echoed in the 200 and sent as a
  // Route header in every NOTIFY.
  it('a SUBSCRIBE whose Record-Route is not a name-addr is refused with 400 and stores nothing', async () => {
    for (const rr of ['a;a;a;a', 'xxxxxxxx', '<sip:proxy.example.com;lr', '"unterminated <sip:p@x;lr>']) {
      const callId = `rr-${Math.random().toString(36).slice(2)}`;
      const res = await peer.request(subscribe(peer, { user: '201', domain: 'example.test', watcher: '100', callId, extra: [`Record-Route: ${rr}`] }));
      expect(res.status, `Record-Route: ${rr}`).toBe(400);
      const rows = ts.server.db.prepare('SELECT route_set FROM subscriptions WHERE call_id = ?').all(callId);
      expect(rows).toEqual([]);
    }
    // A well-formed one still makes the route set, in order.
    const callId = 'rr-good';
    const res = await peer.request(subscribe(peer, { user: '201', domain: 'example.test', watcher: '100', callId, extra: ['Record-Route: <sip:p1.example.test;lr>, <sip:p2.example.test;lr>'] }));
    expect(res.status).toBe(200);
    const row = ts.server.db.prepare('SELECT route_set FROM subscriptions WHERE call_id = ?').get(callId) as { route_set: string };
    const routes = JSON.parse(row.route_set) as string[];
    expect(routes).toEqual(['<sip:p1.example.test;lr>', '<sip:p2.example.test;lr>']);
    expect(routes.every(isValidNameAddr)).toBe(true);
  });

  // Found by seed 0x1a3b5eed: NUL bytes and spaces in a Call-ID (RFC 3261 §25.1: callid = word ["@" word], no
  // whitespace, no controls) were stored with the subscription and sent back in every NOTIFY.
  it('a SUBSCRIBE whose Call-ID holds a NUL, a space or a control character is refused with 400 and stores nothing', async () => {
    for (const callId of ['nul\u0000inside@127.0.0.1', '<sip:a@b>  spaced', 'tab\there', 'bell\u0007@x', 'del\u007f']) {
      const res = await peer.request(subscribe(peer, { user: '202', domain: 'example.test', watcher: '100', callId }));
      expect(res.status, JSON.stringify(callId)).toBe(400);
      expect(ts.server.db.prepare('SELECT id FROM subscriptions WHERE call_id = ?').all(callId)).toEqual([]);
    }
    const ok = await peer.request(subscribe(peer, { user: '202', domain: 'example.test', watcher: '100', callId: "a-b.c!%*_+`'~()<>:\\\"/[]?{}@host" }));
    expect(ok.status).toBe(200);
  });

  // Found by seed 0x1a3b5eed: a CR without its LF inside a header line ("one line ending broken") was kept in the
  // value and the request accepted (RFC 3261 §7.3.1 and §25.1 allow no CR there). The value was stored as it came
  // (User-Agent in the subscriptions table) while the serializer sends a CR as a space, so what was stored and
  // what went out differed. The serializer's CR/LF guard already keeps the CR out of the answer.
  it('a request with a bare CR inside a header line is answered 400, and the CR is never echoed', async () => {
    for (const [name, value] of [['Call-ID', `cr-${randomTag()}\rX-Injected: 1`], ['User-Agent', 'Phone\rX-Injected: 1']] as const) {
      const text = [
        'OPTIONS sip:example.test SIP/2.0', `Via: ${peer.via()}`, 'Max-Forwards: 70', `From: <sip:100@example.test>;tag=${randomTag()}`,
        'To: <sip:example.test>', ...(name === 'Call-ID' ? [] : [`Call-ID: ua-${randomTag()}`]), `${name}: ${value}`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', '',
      ].join('\r\n');
      const mark = peer.received.length;
      peer.send(text);
      const res = await peer.waitFor((m) => m.status !== undefined, 2000, mark);
      expect(res.status, name).toBe(400);
      expect(res.text.includes('\rX-Injected'), 'the lone CR is not echoed').toBe(false);
    }
  });

  // Found by seed 7: a NUL inside a quoted display name or a From tag passed the name-addr check; the From value
  // became the subscription's remote URI in the database and the To header of every NOTIFY, NUL and all (RFC 3261
  // §25.1: neither qdtext nor token holds a control character). A C-string stack reads "Bro" and loses the tag.
  it('a SUBSCRIBE whose From or To holds a control character is refused with 400 and stores nothing', async () => {
    const cases: Array<{ display?: string; fromTag?: string; extraTo?: string }> = [
      { display: 'Bro\u0000ser' }, { fromTag: 'ab\u0000cd' }, { display: 'Bell\u0007' }, { display: 'Esc\u001b[31m' },
    ];
    for (const c of cases) {
      const callId = `ctl-${randomTag()}`;
      const res = await peer.request(subscribe(peer, { user: '203', domain: 'example.test', watcher: '100', callId, fromDisplay: c.display, fromTag: c.fromTag }));
      expect(res.status, JSON.stringify(c)).toBe(400);
      expect(ts.server.db.prepare('SELECT id FROM subscriptions WHERE call_id = ?').all(callId)).toEqual([]);
    }
    // UTF-8 display names and a tab are fine.
    const ok = await peer.request(subscribe(peer, { user: '203', domain: 'example.test', watcher: '100', fromDisplay: 'Zoë\tRéception' }));
    expect(ok.status).toBe(200);
  });

  // Found by the RSS check at FUZZ_SOCKET_CASES=15000: over UDP every answered request leaves a server
  // transaction in Completed for Timer J (64*T1 = 32 s, RFC 3261 §17.2.2) holding its whole last response, and
  // nothing bounds how many there are or how many bytes they hold (sip.limits.maxPendingRequests counts only
  // requests the TU has not answered). An answer copies every Via of the request (§8.2.6.2), so one source sending
  // OPTIONS with a 60 KB Via list pins 60 KB per request for 32 s: ~70 MB measured for 2000 of them before the fix, ~1 GB at
  // 1000 requests a second. Fixed in 277f4a5 (completed UDP transactions share a byte budget, oldest forgotten first).
  it('completed UDP transactions holding big answers do not grow memory without bound (3000 OPTIONS with 55 KB Via lists)', async () => {
    const gc = exposeGc();
    const sock = createSocket('udp4');
    sock.on('message', () => {});
    // Answers counted where they are made: the client's socket buffer may drop 60 KB datagrams, the server still
    // built and kept each one.
    const okAnswers = async () => {
      const m = await ts.server.metrics.sipResponses.get();
      return m.values.find((v) => v.labels.method === 'OPTIONS' && v.labels.status === '200')?.value ?? 0;
    };
    const answered0 = await okAnswers();
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const port = ts.sip('udp').port;
    const filler = Array.from({ length: 700 }, (_, k) => `SIP/2.0/UDP 10.1.${k >> 8}.${k & 255}:5060;branch=z9hG4bK${'f'.repeat(32)}${k}`).join(', ');
    const N = 3000;
    // V8 frees dead ArrayBuffers' memory on a concurrent sweeper after a collection, so the figure is read only once
    // that has caught up (on a loaded machine right after gc() it still counted buffers already dead).
    const settledArrayBuffers = async () => {
      gc();
      await new Promise((r) => setTimeout(r, 200));
      gc();
      return process.memoryUsage().arrayBuffers;
    };
    const before = await settledArrayBuffers();
    for (let i = 0; i < N; i++) {
      const text = [
        'OPTIONS sip:example.test SIP/2.0', `Via: SIP/2.0/UDP 127.0.0.1:${sock.address().port};branch=z9hG4bKbig${i}x${randomTag()}, ${filler}`,
        'Max-Forwards: 70', `From: <sip:scan@example.test>;tag=${randomTag()}`, 'To: <sip:example.test>', `Call-ID: big-${i}-${randomTag()}`,
        'CSeq: 1 OPTIONS', 'Content-Length: 0', '', '',
      ].join('\r\n');
      if (i === 0) expect(Buffer.byteLength(text)).toBeGreaterThan(50_000);
      await new Promise<void>((r) => sock.send(text, port, '127.0.0.1', () => r()));
      if (i % 4 === 3) await new Promise((r) => setImmediate(r));
    }
    const t0 = Date.now();
    while ((await okAnswers()) - answered0 < N && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
    sock.close();
    expect((await okAnswers()) - answered0).toBe(N);
    const grownMb = ((await settledArrayBuffers()) - before) / 1048576;
    // A server that bounds what completed transactions hold stays far below this.
    console.log(`[findings] arrayBuffers grew ${grownMb.toFixed(1)} MB for ${N} big answers`);
    expect(grownMb).toBeLessThan(56);
  }, 60_000);

  // Found by the RSS check at FUZZ_SOCKET_CASES=40000: byte flips in the method ("SUBSCRIKE", "OPTIONS\x01"...)
  // each become a new label value of lamplighter_sip_requests_total{method} and ..._sip_responses_total{method}
  // (src/sip/stack/engine.ts receiveRequest and sendResponseOnce, src/sip/drachtio/engine.ts likewise). Any token
  // is a valid extension method (RFC 3261 §25.1), so a scanner grows the registry and every /metrics answer
  // without bound: one series per distinct method per metric. Fixed in c3f212b (the label is a known method or
  // "other").
  it('distinct unknown methods do not grow the metrics without bound (300 methods, each answered 405)', async () => {
    const methods = Array.from({ length: 300 }, (_, i) => `X${i.toString(36).toUpperCase()}FUZZ`);
    const mark = peer.received.length;
    for (const [i, m] of methods.entries()) {
      peer.send([`${m} sip:201@example.test SIP/2.0`, `Via: ${peer.via()}`, 'Max-Forwards: 70', `From: <sip:100@example.test>;tag=${randomTag()}`,
        'To: <sip:201@example.test>', `Call-ID: m-${i}-${randomTag()}`, `CSeq: 1 ${m}`, 'Content-Length: 0', '', ''].join('\r\n'));
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 2));
    }
    const t0 = Date.now();
    while (peer.received.slice(mark).filter((m) => m.status === 405).length < methods.length && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(peer.received.slice(mark).filter((m) => m.status === 405).length).toBe(methods.length);
    const text = await ts.server.metrics.registry.metrics();
    const series = text.split('\n').filter((l) => /^lamplighter_sip_(requests|responses)_total\{/.test(l) && l.includes('FUZZ'));
    expect(series.length).toBeLessThanOrEqual(2);
  });

  // Found by seed 2026 (FUZZ_SOCKET_CASES=15000): a NUL inside a header nobody validates (here a second Accept
  // value) passes the parser, and SUBSCRIBE stores the joined Accept values in the subscriptions table as they came.
  // No SIP header value may hold a raw control character but HTAB (RFC 3261 §25.1: TEXT-UTF8, token and qdtext all
  // exclude them). SUBSCRIBE now refuses controls in the Accept and User-Agent it stores (src/sip/subscribe.ts).
  it('a request with a NUL inside a header value is answered 400 (here: Accept of a SUBSCRIBE)', async () => {
    const callId = `acc-${randomTag()}`;
    const res = await peer.request(subscribe(peer, { user: '204', domain: 'example.test', watcher: '100', callId, extra: ['Accept: text/x\u0000evil'] }));
    expect(res.status).toBe(400);
  });
});
