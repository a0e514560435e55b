// Audit of issue 2: edge cases on the wire that the bullets imply but the other tests do not pin down: NAT
// (rport/received and NOTIFY to the source), limits on refresh and PUBLISH durations, an unsubscribe racing a
// NOTIFY in flight, header-name case and leading CRLFs, and the maximum-vs-default duration in the config.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { subscribeText, publishText, randomTag, responseTo, type RawMessage } from '../helpers/raw-sip.js';
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

// BUG (it.fails): grantExpires() in src/sip/face-common.ts returns policy.defaultExpires unclamped when Expires is
// absent, and the config schema (expirySchema in src/config.ts) only checks minExpires <= maxExpires. An operator who
// lowers maxExpires below the shipped default of 3600 gets subscriptions and publications granted longer than the
// maximum. Fix: Math.min(defaultExpires, maxExpires) in grantExpires, or refuse default > max in expirySchema.
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
    it.fails(`sip.${kind}.maxExpires 1800 (defaultExpires 3600 as shipped): without Expires the grant is <= 1800`, async () => {
      const g = await grantedWithoutExpires(kind);
      if (g !== 'refused') expect(g).toBeLessThanOrEqual(1800);
    });
  }
});
