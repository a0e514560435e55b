// Audit of issue 2: edge cases on the wire that the bullets imply but the other tests do not pin down: NAT
// (rport/received and NOTIFY to the source), limits on refresh and PUBLISH durations, an unsubscribe racing a
// NOTIFY in flight, header-name case and leading CRLFs, and the maximum-vs-default duration in the config.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { connect } from 'node:net';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { subscribeText, publishText, randomTag, responseTo, dialogInfoBody, ContactListener, type RawMessage } from '../helpers/raw-sip.js';
import { Peers, dbRows, sleep, until, cseqOf, toTagOf, isNotify, notifies, uniqueUser } from './util.js';

let ts: TestServer;
const peers = new Peers();
beforeAll(async () => { ts = await startTestServer(); });
afterAll(async () => { peers.closeAll(); await ts?.stop(); });

const subRows = (callId: string) => dbRows(ts.dbFile, 'SELECT * FROM subscriptions WHERE call_id = ?', callId);

describe('NAT: rport/received (RFC 3581) and NOTIFYs to the flow', () => {
  it('a Via and Contact naming a port nobody listens on: the 200 and the NOTIFYs still reach the source address', async () => {
    const p = await peers.open(ts.sip('udp').port);
    const callId = `${randomTag()}@audit`;
    const user = uniqueUser();
    // Port 9 (discard) on loopback stands for the phone's private address behind a NAT.
    const text = subscribeText(p, { user, callId, expires: 600 })
      .replace(/^Via: SIP\/2\.0\/UDP 127\.0\.0\.1:\d+;rport;/m, 'Via: SIP/2.0/UDP 127.0.0.1:9;rport;')
      .replace(/^Contact: .*$/m, 'Contact: <sip:watcher@127.0.0.1:9>');
    const ok = await p.request(text);
    expect(ok.status).toBe(200);
    expect(ok.get('via')).toMatch(new RegExp(`;rport=${p.localPort}(;|$)`));
    expect(ok.get('via')).toMatch(/;received=127\.0\.0\.1(;|$)/);
    const n = await p.waitFor(isNotify(callId), 5000, 0);
    expect(n.startLine).toBe('NOTIFY sip:watcher@127.0.0.1:9 SIP/2.0');
    const pbx = await peers.open(ts.sip('udp').port);
    expect((await pbx.request(publishText(pbx, { user, state: 'early' }))).status).toBe(200);
    await p.waitFor((m) => isNotify(callId)(m) && m.body.includes('<state>early</state>'), 5000, 0);
  });
});

describe('Route headers in requests to us', () => {
  it('a pre-loaded Route naming this server and an in-dialog Route from a record-routing proxy do not stop the request', async () => {
    const p = await peers.open(ts.sip('udp').port);
    const user = uniqueUser();
    const callId = `${randomTag()}@audit`;
    const fromTag = randomTag();
    const ok = await p.request(subscribeText(p, { user, callId, fromTag, expires: 600, extra: [`Route: <sip:127.0.0.1:${ts.sip('udp').port};lr>`] }));
    expect(ok.status).toBe(200);
    const refresh = await p.request(subscribeText(p, { user, callId, fromTag, toTag: toTagOf(ok), cseq: 2, expires: 600, extra: [`Route: <sip:127.0.0.1:${p.localPort};lr>`] }));
    expect(refresh.status).toBe(200);
  });
});

describe('TCP stream framing through the whole server', () => {
  it('a PUBLISH with a UTF-8 body and an OPTIONS in one segment: the body is cut by bytes, both are answered', async () => {
    const p = await peers.open(ts.sip('tcp').port, 'tcp');
    const user = uniqueUser();
    const body = dialogInfoBody(`sip:${user}@example.test`, 'early', 'ü-call@pbx')
      .replace('<state>early</state>', '<state>early</state><remote><identity display="Zoë Ünal">sip:100@example.test</identity></remote>');
    const pub = publishText(p, { user, body });
    const optCall = `${randomTag()}@audit`;
    const opt = subscribeText(p, { user, callId: optCall }).replace(/^SUBSCRIBE /, 'OPTIONS ').replace(/ SUBSCRIBE\r\n/, ' OPTIONS\r\n');
    const pubCall = /^Call-ID: (.*)$/m.exec(pub)![1]!.trim();
    const a = p.waitFor((m) => m.status !== undefined && m.get('call-id') === pubCall, 5000);
    const b = p.waitFor((m) => m.status !== undefined && m.get('call-id') === optCall, 5000);
    p.sendRaw(pub + opt);
    expect((await a).status).toBe(200);
    expect((await b).status).toBe(200);
    const row = dbRows(ts.dbFile, 'SELECT body FROM publications WHERE presentity = ?', `${user}@example.test`)[0];
    expect(Buffer.from(row.body).toString('utf8')).toBe(body);
  });

  it('a CRLFCRLF keep-alive gets a CRLF pong (RFC 5626 §4.4.1) and the connection keeps serving', async () => {
    const sock = connect(ts.sip('tcp').port, '127.0.0.1');
    await new Promise<void>((r, j) => { sock.once('connect', () => r()); sock.once('error', j); });
    try {
      let got = '';
      sock.on('data', (d) => { got += d.toString('utf8'); });
      sock.write('\r\n\r\n');
      await until(() => got.length >= 2 || undefined, 2000, 'pong');
      expect(got).toBe('\r\n');
      const callId = `${randomTag()}@audit`;
      const fake = { via: () => `SIP/2.0/TCP 127.0.0.1:${sock.localPort};rport;branch=z9hG4bK${randomTag()}${randomTag()}`, contact: () => `<sip:watcher@127.0.0.1:${sock.localPort};transport=tcp>` };
      const opt = subscribeText(fake as never, { user: uniqueUser(), callId }).replace(/^SUBSCRIBE /, 'OPTIONS ').replace(/ SUBSCRIBE\r\n/, ' OPTIONS\r\n');
      sock.write(opt);
      await until(() => /^\r\nSIP\/2\.0 200 /.test(got) || undefined, 3000, 'OPTIONS answer after the ping');
    } finally {
      sock.destroy();
    }
  });
});

describe('TCP watcher whose connection is gone', () => {
  it('the next NOTIFY opens a new connection to the Contact (RFC 3261 §18.1.1) in the same dialog', async () => {
    // The phone's Contact: a listener of ours that answers every request 200.
    const contact = await ContactListener.open();
    const { port, received: got } = contact;
    try {
      const p = await peers.open(ts.sip('tcp').port, 'tcp');
      const callId = `${randomTag()}@audit`;
      const fromTag = randomTag();
      const user = uniqueUser();
      const text = subscribeText(p, { user, callId, fromTag, expires: 600 }).replace(/^Contact: .*$/m, `Contact: <sip:watcher@127.0.0.1:${port};transport=tcp>`);
      const ok = await p.request(text);
      const n0 = await p.waitFor(isNotify(callId), 5000, 0);
      p.close(); // the phone's connection goes away
      await sleep(100);
      const pbx = await peers.open(ts.sip('udp').port);
      expect((await pbx.request(publishText(pbx, { user, state: 'confirmed' }))).status).toBe(200);
      const n1 = await until(() => got.find((m) => m.method === 'NOTIFY' && m.get('call-id') === callId), 5000, 'NOTIFY over a new connection');
      expect(n1.startLine).toBe(`NOTIFY sip:watcher@127.0.0.1:${port};transport=tcp SIP/2.0`);
      expect(cseqOf(n1)).toBe(cseqOf(n0) + 1);
      expect(n1.get('from')).toContain(`tag=${toTagOf(ok)}`);
      expect(n1.body).toContain('<state>confirmed</state>');
      await until(() => subRows(callId)[0]?.last_notify_reply === 200 || undefined, 2000, 'its 200 recorded');
    } finally {
      contact.close();
    }
  });
});

describe('durations', () => {
  it('a refresh asking for more than maxExpires is clamped; a PUBLISH too', async () => {
    const p = await peers.open(ts.sip('udp').port);
    const callId = `${randomTag()}@audit`;
    const fromTag = randomTag();
    const user = uniqueUser();
    const ok = await p.request(subscribeText(p, { user, callId, fromTag, expires: 600 }));
    const refresh = await p.request(subscribeText(p, { user, callId, fromTag, toTag: toTagOf(ok), cseq: 2, expires: 86400 }));
    expect(refresh.status).toBe(200);
    expect(refresh.get('expires')).toBe('3600');
    const longPub = await p.request(publishText(p, { user, state: 'early', expires: 86400 }));
    expect(longPub.status).toBe(200);
    expect(longPub.get('expires')).toBe('3600');
  });

  it('in-dialog: a refresh below minExpires gets 423 and the subscription keeps its old expiry', async () => {
    const p = await peers.open(ts.sip('udp').port);
    const callId = `${randomTag()}@audit`;
    const fromTag = randomTag();
    const user = uniqueUser();
    const ok = await p.request(subscribeText(p, { user, callId, fromTag, expires: 600 }));
    const before = subRows(callId)[0].expires_at;
    const brief = await p.request(subscribeText(p, { user, callId, fromTag, toTag: toTagOf(ok), cseq: 2, expires: 5 }));
    expect(brief.status).toBe(423);
    expect(brief.get('min-expires')).toBe('60');
    await sleep(30);
    expect(subRows(callId)[0].expires_at).toBe(before);
  });
});

describe('unsubscribe while a NOTIFY is in flight', () => {
  it('tcp: the final NOTIFY waits for the one in flight, then comes with CSeq+1 and terminated', async () => {
    const held: RawMessage[] = [];
    let hold = true;
    const p = await peers.open(ts.sip('tcp').port, 'tcp', (m) => {
      if (m.method !== 'NOTIFY') return 200;
      if (hold) { held.push(m); return null; }
      return 200;
    });
    const callId = `${randomTag()}@audit`;
    const fromTag = randomTag();
    const user = uniqueUser();
    const ok = await p.request(subscribeText(p, { user, callId, fromTag, expires: 600 }));
    const n0 = await p.waitFor(isNotify(callId), 5000, 0);
    const bye = await p.request(subscribeText(p, { user, callId, fromTag, toTag: toTagOf(ok), cseq: 2, expires: 0 }));
    expect(bye.status).toBe(200);
    await sleep(200);
    expect(notifies(p, callId)).toHaveLength(1);
    hold = false;
    p.sendRaw(responseTo(held[0]!, 200));
    const fin = await p.waitFor((m) => isNotify(callId)(m) && /^terminated/.test(m.get('subscription-state') ?? ''), 5000, 0);
    expect(cseqOf(fin)).toBe(cseqOf(n0) + 1);
    await until(() => subRows(callId).length === 0 || undefined, 2000, 'row removed');
  });
});

describe('parser leniency RFC 3261 asks for', () => {
  it('header names in any case (§7.3.1) and CRLFs before the start line (§7.5) are accepted', async () => {
    const p = await peers.open(ts.sip('udp').port);
    const callId = `${randomTag()}@audit`;
    const text = subscribeText(p, { user: uniqueUser(), callId, expires: 300 })
      .replace(/^Expires:/m, 'EXPIRES:').replace(/^Call-ID:/m, 'call-id:').replace(/^CSeq:/m, 'CSEQ:').replace(/^Event:/m, 'eVeNt:');
    const ok = await p.request(text);
    expect(ok.status).toBe(200);
    expect(ok.get('expires')).toBe('300');
    await p.waitFor(isNotify(callId), 5000, 0);
    const c2 = `${randomTag()}@audit`;
    const answer = p.waitFor((m) => m.status !== undefined && m.get('call-id') === c2, 3000);
    p.sendRaw(`\r\n\r\n${subscribeText(p, { user: uniqueUser(), callId: c2, expires: 300 })}`);
    expect((await answer).status).toBe(200);
  });

  it('LWS around the colon and inside the value (§7.3.1): "Expires :  300" and "CSeq:  1   SUBSCRIBE"', async () => {
    const p = await peers.open(ts.sip('udp').port);
    const callId = `${randomTag()}@audit`;
    const text = subscribeText(p, { user: uniqueUser(), callId, expires: 300 })
      .replace(/^Expires: 300/m, 'Expires :  300').replace(/^CSeq: 1 SUBSCRIBE/m, 'CSeq:  1   SUBSCRIBE');
    const answer = p.waitFor((m) => m.status !== undefined && m.status >= 200 && m.get('call-id') === callId, 5000);
    p.sendRaw(text);
    const ok = await answer;
    // The response copies CSeq; its value still means 1 SUBSCRIBE.
    expect(ok.get('cseq')?.replace(/\s+/g, ' ')).toBe('1 SUBSCRIBE');
    expect(ok.status).toBe(200);
    expect(ok.get('expires')).toBe('300');
  });
});

describe('responses and retransmissions from the other side', () => {
  it('a NOTIFY answered with compact headers (v f t i l) is matched: no retransmission after it, reply 200 recorded', async () => {
    const p = await peers.open(ts.sip('udp').port, 'udp', (m) => (m.method === 'NOTIFY' ? null : 200));
    const callId = `${randomTag()}@audit`;
    expect((await p.request(subscribeText(p, { user: uniqueUser(), callId, expires: 600 }))).status).toBe(200);
    const n = await p.waitFor(isNotify(callId), 5000, 0);
    const compact = responseTo(n, 200)
      .replace(/^Via:/gm, 'v:').replace(/^From:/m, 'f:').replace(/^To:/m, 't:').replace(/^Call-ID:/m, 'i:').replace(/^Content-Length:/m, 'l:');
    p.sendRaw(compact);
    await until(() => subRows(callId)[0]?.last_notify_reply === 200 || undefined, 2000, 'reply recorded');
    await sleep(1200); // Timer E would have resent it at 0.5 s and 1.5 s
    expect(notifies(p, callId)).toHaveLength(1);
  });

  it('a retransmitted PUBLISH gets the same answer (same SIP-ETag) and makes one publication', async () => {
    const p = await peers.open(ts.sip('udp').port);
    const user = uniqueUser();
    const text = publishText(p, { user, state: 'early' });
    const a = await p.request(text);
    const b = await p.request(text);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(b.get('sip-etag')).toBe(a.get('sip-etag'));
    expect(dbRows(ts.dbFile, 'SELECT etag FROM publications WHERE presentity = ?', `${user}@example.test`)).toHaveLength(1);
  });

  it('tcp through the whole server: two SUBSCRIBEs in one segment, then one written 7 bytes at a time', async () => {
    const p = await peers.open(ts.sip('tcp').port, 'tcp');
    const c1 = `${randomTag()}@audit`;
    const c2 = `${randomTag()}@audit`;
    const c3 = `${randomTag()}@audit`;
    const w1 = p.waitFor((m) => m.status === 200 && m.get('call-id') === c1, 5000);
    const w2 = p.waitFor((m) => m.status === 200 && m.get('call-id') === c2, 5000);
    p.sendRaw(subscribeText(p, { user: uniqueUser(), callId: c1 }) + subscribeText(p, { user: uniqueUser(), callId: c2 }));
    await Promise.all([w1, w2]);
    // Let both NOTIFYs arrive and be answered first: our answers must not land inside the split message.
    for (const c of [c1, c2]) await p.waitFor(isNotify(c), 5000, 0);
    await sleep(100);
    const w3 = p.waitFor((m) => m.status === 200 && m.get('call-id') === c3, 5000);
    const bytes = Buffer.from(subscribeText(p, { user: uniqueUser(), callId: c3 }));
    for (let i = 0; i < bytes.length; i += 7) {
      p.sendRaw(bytes.subarray(i, i + 7));
      if (i % 70 === 0) await sleep(1);
    }
    await w3;
    await p.waitFor(isNotify(c3), 5000, 0);
  });
});

// RFC 3261 §8.2.6.2: "if the To header field in the request did not contain a tag ... the UAS MUST add a tag to
// the To header field in the response (with the exception of the 100 (Trying) response)". Audit finding: only the
// 200 to a new SUBSCRIBE had one; fixed in 8c8af4f (the SIP face) and 23eb590 (the engine's own 400s and 503s).
describe('RFC 3261 §8.2.6.2: every final response to a request without a To-tag carries one', () => {
  async function untagged(cases: Array<[string, (p: Awaited<ReturnType<Peers['open']>>) => string]>): Promise<string[]> {
    const p = await peers.open(ts.sip('udp').port);
    const missing: string[] = [];
    for (const [what, build] of cases) {
      const text = build(p);
      const callId = /^Call-ID: (.*)$/m.exec(text)![1]!.trim();
      const answer = p.waitFor((m) => m.status !== undefined && m.status >= 200 && m.get('call-id') === callId, 3000);
      p.sendRaw(text);
      const r = await answer;
      if (!/;\s*tag=/i.test(r.get('to') ?? '')) missing.push(`${what} -> ${r.status}`);
    }
    return missing;
  }
  const method = (m: string) => (t: string) => t.replace(/^SUBSCRIBE /, `${m} `).replace(/ SUBSCRIBE\r\n/, ` ${m}\r\n`);
  it('the 200 to a new SUBSCRIBE has one (control)', async () => {
    expect(await untagged([['SUBSCRIBE', (p) => subscribeText(p, { user: uniqueUser() })]])).toEqual([]);
  });
  it('answers of the SIP face: PUBLISH 200/412/415/489/423, OPTIONS 200, SUBSCRIBE 489/423, MESSAGE 405', async () => {
    const user = uniqueUser();
    const missing = await untagged([
      ['PUBLISH', (p) => publishText(p, { user, state: 'early' })],
      ['PUBLISH unknown tag', (p) => publishText(p, { user, ifMatch: 'nope', body: null })],
      ['PUBLISH text/plain', (p) => publishText(p, { user, contentType: 'text/plain' })],
      ['PUBLISH Event: reg', (p) => publishText(p, { user, event: 'reg' })],
      ['PUBLISH Expires: 5', (p) => publishText(p, { user, expires: 5 })],
      ['OPTIONS', (p) => method('OPTIONS')(subscribeText(p, { user }))],
      ['SUBSCRIBE Event: reg', (p) => subscribeText(p, { user, event: 'reg' })],
      ['SUBSCRIBE Expires: 5', (p) => subscribeText(p, { user, expires: 5 })],
      ['MESSAGE', (p) => method('MESSAGE')(subscribeText(p, { user }))],
    ]);
    expect(missing).toEqual([]);
  });
  it('a 400 from the parser (CSeq method mismatch)', async () => {
    const missing = await untagged([
      ['SUBSCRIBE with CSeq 1 PUBLISH', (p) => subscribeText(p, { user: uniqueUser() }).replace(/^CSeq: 1 SUBSCRIBE/m, 'CSeq: 1 PUBLISH')],
    ]);
    expect(missing).toEqual([]);
  });
});

// RFC 3261 §8.2.2.2 merged requests (a SHOULD): the same SUBSCRIBE (From tag, Call-ID, CSeq) arriving on a second
// branch gets 482. Audit finding, fixed in 4ed0b81 (it used to create a second dialog).
describe('RFC 3261 §8.2.2.2 merged requests', () => {
  it('the same SUBSCRIBE (Call-ID, From tag, CSeq) on a second branch gets 482 and makes no second subscription', async () => {
    const p = await peers.open(ts.sip('udp').port);
    const callId = `${randomTag()}@audit`;
    const t = subscribeText(p, { user: uniqueUser(), callId, fromTag: randomTag() });
    expect((await p.request(t)).status).toBe(200);
    const again = await p.request(t.replace(/branch=z9hG4bK[0-9a-f]+/, `branch=z9hG4bK${randomTag()}${randomTag()}`));
    await sleep(50);
    expect(subRows(callId)).toHaveLength(1);
    expect(again.status).toBe(482);
  });
});

// Audit finding, fixed in bc56731: without Expires the grant was sip.*.defaultExpires even when an operator had set
// maxExpires below it (grantExpires in src/sip/face-common.ts did not clamp the default).
describe('config: the default duration never exceeds the maximum', () => {
  async function grantedWithoutExpires(kind: 'subscription' | 'publication'): Promise<number | 'refused'> {
    let server: TestServer;
    try {
      server = await startTestServer({ overrides: { sip: { [kind]: { maxExpires: 1800 } } } });
    } catch {
      return 'refused'; // refusing the config at start satisfies the rule too
    }
    try {
      const p = await peers.open(server.sip('udp').port);
      const user = uniqueUser();
      const text = kind === 'subscription'
        ? subscribeText(p, { user })
        : publishText(p, { user, state: 'early' }).replace(/^Expires: .*\r\n/m, '');
      const r = await p.request(text);
      expect(r.status).toBe(200);
      return Number(r.get('expires'));
    } finally {
      await server.stop();
    }
  }
  for (const kind of ['subscription', 'publication'] as const) {
    it(`sip.${kind}.maxExpires 1800 (defaultExpires 3600 as shipped): without Expires the grant is <= 1800`, async () => {
      const g = await grantedWithoutExpires(kind);
      if (g !== 'refused') expect(g).toBeLessThanOrEqual(1800);
    });
  }
});
