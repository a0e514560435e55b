// Audit of issue 2, NOTIFY rules on the wire: one NOTIFY in flight with the newest state after, the failure policy
// (481 at once, 408 after maxFailuresUdp / maxFailuresReliable consecutive failures), what is recorded of the last
// NOTIFY, expiry -> terminated;reason=timeout, UDP retransmission on Timer E and none over TCP (RFC 3261 §17.1.2).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { subscribeText, publishText, randomTag, responseTo, type RawMessage } from '../helpers/raw-sip.js';
import { Peers, dbRows, sleep, until, cseqOf, toTagOf, versionOf, isNotify, notifies, distinctNotifies, uniqueUser } from './util.js';

let ts: TestServer;
const peers = new Peers();
beforeAll(async () => {
  ts = await startTestServer({ overrides: { sip: { subscription: { minExpires: 1, maxExpires: 3600, defaultExpires: 3600 } } } });
});
afterAll(async () => { peers.closeAll(); await ts?.stop(); });

const subRows = (callId: string) => dbRows(ts.dbFile, 'SELECT * FROM subscriptions WHERE call_id = ?', callId);
type Policy = (m: RawMessage) => number | null;

/** A watcher whose answer to each NOTIFY the test decides as it goes. */
async function watcher(transport: 'udp' | 'tcp', policy: { fn: Policy }) {
  return peers.open(ts.sip(transport).port, transport, (m) => (m.method === 'NOTIFY' ? policy.fn(m) : 200));
}

async function publishState(user: string, state: 'early' | 'confirmed' | 'terminated', etag?: string): Promise<string> {
  const pbx = await peers.open(ts.sip('udp').port);
  const r = await pbx.request(publishText(pbx, { user, state, ...(etag ? { ifMatch: etag } : {}) }));
  expect(r.status).toBe(200);
  return r.get('sip-etag')!;
}

describe('at most one NOTIFY in flight per subscription', () => {
  for (const kind of ['tcp', 'udp'] as const) {
    it(`${kind}: two changes while the first NOTIFY is unanswered give exactly one more NOTIFY, with the newest state`, async () => {
      const held: RawMessage[] = [];
      const policy = { fn: ((m) => { held.push(m); return null; }) as Policy };
      const p = await watcher(kind, policy);
      const user = uniqueUser();
      const callId = `${randomTag()}@audit`;
      expect((await p.request(subscribeText(p, { user, callId, expires: 600 }))).status).toBe(200);
      const first = await p.waitFor(isNotify(callId), 5000, 0);
      const etag = await publishState(user, 'early');
      await publishState(user, 'confirmed', etag);
      await sleep(300);
      // Nothing new leaves while the first is unanswered (UDP copies of it keep its CSeq).
      expect(distinctNotifies(p, callId).map(cseqOf)).toEqual([cseqOf(first)]);
      policy.fn = () => 200;
      p.sendRaw(responseTo(held[held.length - 1]!, 200));
      const next = await p.waitFor((m) => isNotify(callId)(m) && cseqOf(m) === cseqOf(first) + 1, 5000, 0);
      expect(next.body).toContain('<state>confirmed</state>');
      expect(versionOf(next)).toBe(versionOf(first) + 1);
      await sleep(300);
      expect(distinctNotifies(p, callId).map(cseqOf)).toEqual([cseqOf(first), cseqOf(first) + 1]);
    });
  }
});

describe('NOTIFY failure policy', () => {
  it('udp: 408 twice keeps the subscription, a 200 resets the count, three consecutive 408s remove it (maxFailuresUdp = 3)', async () => {
    const answers = [408, 408, 200, 408, 408, 408];
    const policy = { fn: (() => answers.shift() ?? 200) as Policy };
    const p = await watcher('udp', policy);
    const user = uniqueUser();
    const callId = `${randomTag()}@audit`;
    expect((await p.request(subscribeText(p, { user, callId, expires: 600 }))).status).toBe(200);
    const states: Array<'early' | 'confirmed' | 'terminated'> = ['early', 'confirmed', 'terminated', 'early', 'confirmed'];
    for (let i = 0; i < states.length; i++) {
      // Wait until the previous NOTIFY got its answer (recorded in the row), then change the state.
      await until(() => distinctNotifies(p, callId).length === i + 1 || undefined, 5000, `NOTIFY ${i + 1}`);
      await sleep(80);
      expect(subRows(callId), `after ${i + 1} NOTIFYs`).toHaveLength(1);
      await publishState(user, states[i]!);
    }
    await until(() => distinctNotifies(p, callId).length === 6 || undefined, 5000, 'NOTIFY 6');
    await until(() => subRows(callId).length === 0 || undefined, 3000, 'row removed after the third consecutive 408');
    await publishState(user, 'terminated');
    await sleep(200);
    expect(distinctNotifies(p, callId)).toHaveLength(6);
  });

  it('tcp: one 408 removes it (maxFailuresReliable = 1)', async () => {
    const p = await watcher('tcp', { fn: () => 408 });
    const callId = `${randomTag()}@audit`;
    const user = uniqueUser();
    expect((await p.request(subscribeText(p, { user, callId, expires: 600 }))).status).toBe(200);
    await p.waitFor(isNotify(callId), 5000, 0);
    await until(() => subRows(callId).length === 0 || undefined, 3000, 'row removed');
    await publishState(user, 'early');
    await sleep(200);
    expect(notifies(p, callId)).toHaveLength(1);
  });

  it('a 481 removes it at once; the dialog then answers 481 to a refresh', async () => {
    const p = await watcher('udp', { fn: () => 481 });
    const callId = `${randomTag()}@audit`;
    const fromTag = randomTag();
    const user = uniqueUser();
    const ok = await p.request(subscribeText(p, { user, callId, fromTag, expires: 600 }));
    await p.waitFor(isNotify(callId), 5000, 0);
    await until(() => subRows(callId).length === 0 || undefined, 1000, 'row removed');
    const refresh = await p.request(subscribeText(p, { user, callId, fromTag, toTag: toTagOf(ok), cseq: 2, expires: 600 }));
    expect(refresh.status).toBe(481);
    // Gone means gone: no final NOTIFY, nothing on the next change.
    await publishState(user, 'early');
    await sleep(200);
    expect(notifies(p, callId)).toHaveLength(1);
  });

  it('the last NOTIFY\'s CSeq, response code and body are recorded for the subscription', async () => {
    const p = await watcher('udp', { fn: () => 486 });
    const callId = `${randomTag()}@audit`;
    expect((await p.request(subscribeText(p, { user: uniqueUser(), callId, expires: 600 }))).status).toBe(200);
    const n = await p.waitFor(isNotify(callId), 5000, 0);
    const row = await until(() => subRows(callId).find((r) => r.last_notify_reply !== 0), 3000, 'reply recorded');
    expect(row.last_notify_cseq).toBe(cseqOf(n));
    expect(row.last_notify_reply).toBe(486);
    expect(String(row.last_notify_body)).toBe(n.body);
  });
});

describe('expiry', () => {
  it('a subscription that runs out gets terminated;reason=timeout with CSeq+1 and its row is gone', async () => {
    const p = await watcher('udp', { fn: () => 200 });
    const callId = `${randomTag()}@audit`;
    expect((await p.request(subscribeText(p, { user: uniqueUser(), callId, expires: 2 }))).status).toBe(200);
    const n0 = await p.waitFor(isNotify(callId), 5000, 0);
    const t0 = Date.now();
    const fin = await p.waitFor((m) => isNotify(callId)(m) && /^terminated/.test(m.get('subscription-state') ?? ''), 5000, 0);
    expect(Date.now() - t0).toBeGreaterThan(1000);
    expect(fin.get('subscription-state')).toBe('terminated;reason=timeout');
    expect(cseqOf(fin)).toBe(cseqOf(n0) + 1);
    await until(() => subRows(callId).length === 0 || undefined, 2000, 'row removed');
  });

  it('a refresh moves the expiry: no timeout at the old deadline, the new one is honoured', async () => {
    const p = await watcher('udp', { fn: () => 200 });
    const callId = `${randomTag()}@audit`;
    const fromTag = randomTag();
    const user = uniqueUser();
    const ok = await p.request(subscribeText(p, { user, callId, fromTag, expires: 2 }));
    await p.waitFor(isNotify(callId), 5000, 0);
    await sleep(800);
    const r = await p.request(subscribeText(p, { user, callId, fromTag, toTag: toTagOf(ok), cseq: 2, expires: 4 }));
    expect(r.status).toBe(200);
    const t0 = Date.now();
    await sleep(2200); // past the old deadline (2 s after the SUBSCRIBE) and the sweeper's 1 s period
    expect(notifies(p, callId).filter((m) => /^terminated/.test(m.get('subscription-state') ?? ''))).toHaveLength(0);
    expect(subRows(callId)).toHaveLength(1);
    const fin = await p.waitFor((m) => isNotify(callId)(m) && /^terminated/.test(m.get('subscription-state') ?? ''), 5000, 0);
    expect(Date.now() - t0).toBeGreaterThan(3000);
    expect(fin.get('subscription-state')).toBe('terminated;reason=timeout');
  });
});


describe('client transactions on the wire (RFC 3261 §17.1.2)', () => {
  it('udp: an unanswered NOTIFY is sent again after ~0.5 s and ~1 s more; a 200 stops it (no copy at ~3.5 s)', async () => {
    const times: number[] = [];
    const policy = { fn: ((m) => { times.push(Date.now()); void m; return null; }) as Policy };
    const p = await watcher('udp', policy);
    const callId = `${randomTag()}@audit`;
    expect((await p.request(subscribeText(p, { user: uniqueUser(), callId, expires: 600 }))).status).toBe(200);
    await until(() => times.length >= 3 || undefined, 4000, 'two retransmissions');
    const copies = notifies(p, callId);
    expect(new Set(copies.map(cseqOf)).size).toBe(1);
    expect(new Set(copies.map((m) => m.get('via'))).size).toBe(1); // same transaction, same branch
    const d1 = times[1]! - times[0]!;
    const d2 = times[2]! - times[1]!;
    if (process.env.AUDIT_FIGURES) console.log(`Timer E on the wire: ${d1} ms, then ${d2} ms`);
    expect(d1).toBeGreaterThan(350); expect(d1).toBeLessThan(1200);
    expect(d2).toBeGreaterThan(800); expect(d2).toBeLessThan(2200);
    expect(d2).toBeGreaterThan(d1); // Timer E doubles (RFC 3261 §17.1.2.2)
    p.sendRaw(responseTo(copies[copies.length - 1]!, 200));
    await sleep(2400); // the next copy would have come 2 s after the third
    expect(notifies(p, callId)).toHaveLength(3);
  });

  it('tcp: an unanswered NOTIFY is not retransmitted', async () => {
    const p = await watcher('tcp', { fn: () => null });
    const callId = `${randomTag()}@audit`;
    expect((await p.request(subscribeText(p, { user: uniqueUser(), callId, expires: 600 }))).status).toBe(200);
    await p.waitFor(isNotify(callId), 5000, 0);
    await sleep(1800);
    expect(notifies(p, callId)).toHaveLength(1);
  });
});
