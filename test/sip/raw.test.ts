// Raw-socket tests against a real in-process server on 127.0.0.1: the wire answers of the notifier and the
// compositor, retransmission absorption, and the 481 policy, asserted on wire contents and database rows.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import Database from 'better-sqlite3';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawPeer, subscribeText, publishText, randomTag, type RawMessage } from '../helpers/raw-sip.js';

let ts: TestServer;
const peers: RawPeer[] = [];

beforeAll(async () => { ts = await startTestServer(); });
afterAll(async () => { for (const p of peers) p.close(); await ts?.stop(); });

async function peer(transport: 'udp' | 'tcp' = 'udp', answer?: (m: RawMessage) => number | null): Promise<RawPeer> {
  const p = await RawPeer.open({ port: ts.sip(transport).port }, { transport, ...(answer ? { answer } : {}) });
  peers.push(p);
  return p;
}

function rows(sql: string, ...args: unknown[]): any[] {
  const db = new Database(ts.dbFile, { readonly: true });
  try { return db.prepare(sql).all(...args); } finally { db.close(); }
}

function version(body: string): number {
  return Number(/<dialog-info[^>]*\sversion="(\d+)"/.exec(body)![1]);
}

const notifyFor = (callId: string) => (m: RawMessage) => m.method === 'NOTIFY' && m.get('call-id') === callId;

describe('raw SUBSCRIBE over UDP and TCP', () => {
  for (const transport of ['udp', 'tcp'] as const) {
    it(`${transport}: 200 + initial NOTIFY, PUBLISH → NOTIFY, unsubscribe → final NOTIFY; CSeq and version go up`, async () => {
      const p = await peer(transport);
      const callId = `${randomTag()}@127.0.0.1`;
      const fromTag = randomTag();
      const user = `3${Math.floor(Math.random() * 1000)}`;
      const ok = await p.request(subscribeText(p, { user, callId, fromTag, expires: 300 }));
      expect(ok.status).toBe(200);
      expect(ok.get('expires')).toBe('300');
      expect(ok.get('contact')).toMatch(/^<sip:127\.0\.0\.1:\d+;transport=/);
      expect(ok.get('allow-events')).toContain('dialog');
      const toTag = /;tag=([^;>\s]+)/.exec(ok.get('to')!)![1]!;
      const n1 = await p.waitFor(notifyFor(callId), 5000, 0);
      expect(n1.startLine).toBe(`NOTIFY sip:watcher@127.0.0.1:${p.localPort}${transport === 'tcp' ? ';transport=tcp' : ''} SIP/2.0`);
      // The time left, never more than granted (a loaded machine may take a second or two to send it).
      const left = Number(/^active;expires=(\d+)$/.exec(n1.get('subscription-state') ?? '')?.[1]);
      expect(left).toBeLessThanOrEqual(300);
      expect(left).toBeGreaterThan(290);
      expect(n1.get('from')).toContain(`tag=${toTag}`);
      expect(n1.get('to')).toContain(`tag=${fromTag}`);
      expect(version(n1.body)).toBe(0);
      const c1 = Number(n1.get('cseq')!.split(' ')[0]);

      const pub = await p.request(publishText(p, { user, state: 'early' }));
      expect(pub.status).toBe(200);
      const n2 = await p.waitFor((m) => notifyFor(callId)(m) && m.body.includes('<state>early</state>'), 5000, 0);
      expect(Number(n2.get('cseq')!.split(' ')[0])).toBe(c1 + 1);
      expect(version(n2.body)).toBe(1);

      const bye = await p.request(subscribeText(p, { user, callId, fromTag, toTag, cseq: 2, expires: 0 }));
      expect(bye.status).toBe(200);
      const n3 = await p.waitFor((m) => notifyFor(callId)(m) && /^terminated/.test(m.get('subscription-state') ?? ''), 5000, 0);
      expect(n3.get('subscription-state')).toBe('terminated;reason=timeout');
      expect(Number(n3.get('cseq')!.split(' ')[0])).toBe(c1 + 2);
      expect(version(n3.body)).toBe(2);
      await new Promise((r) => setTimeout(r, 50));
      expect(rows('SELECT id FROM subscriptions WHERE call_id = ?', callId)).toHaveLength(0);
    });
  }

  it('a retransmitted SUBSCRIBE gets the same response and creates one subscription', async () => {
    const p = await peer('udp');
    const callId = `${randomTag()}@127.0.0.1`;
    const text = subscribeText(p, { user: '401', callId });
    const first = await p.request(text);
    const again = await p.request(text);
    expect(again.status).toBe(first.status);
    expect(again.get('to')).toBe(first.get('to'));
    await new Promise((r) => setTimeout(r, 50));
    expect(rows('SELECT id FROM subscriptions WHERE call_id = ?', callId)).toHaveLength(1);
  });

  it('489 / 423 / 481 / 500 / 405 / OPTIONS on the wire', async () => {
    const p = await peer('udp');
    const r489 = await p.request(subscribeText(p, { user: '402', event: 'reg' }));
    expect(r489.status).toBe(489);
    expect(r489.get('allow-events')).toBe('dialog, presence, message-summary');
    const r423 = await p.request(subscribeText(p, { user: '402', expires: 10 }));
    expect(r423.status).toBe(423);
    expect(r423.get('min-expires')).toBe('60');
    expect((await p.request(subscribeText(p, { user: '402', toTag: 'nope', cseq: 5 }))).status).toBe(481);
    const callId = `${randomTag()}@127.0.0.1`;
    const fromTag = randomTag();
    const ok = await p.request(subscribeText(p, { user: '402', callId, fromTag, cseq: 10 }));
    const toTag = /;tag=([^;>\s]+)/.exec(ok.get('to')!)![1]!;
    expect((await p.request(subscribeText(p, { user: '402', callId, fromTag, toTag, cseq: 9 }))).status).toBe(500);
    const inv = subscribeText(p, { user: '402' }).replace(/^SUBSCRIBE /, 'MESSAGE ').replace(/ SUBSCRIBE\r\n/, ' MESSAGE\r\n');
    const r405 = await p.request(inv);
    expect(r405.status).toBe(405);
    expect(r405.get('allow')).toBe('SUBSCRIBE, PUBLISH, OPTIONS');
    const opt = subscribeText(p, { user: '402' }).replace(/^SUBSCRIBE /, 'OPTIONS ').replace(/ SUBSCRIBE\r\n/, ' OPTIONS\r\n');
    const r200 = await p.request(opt);
    expect(r200.status).toBe(200);
    expect(r200.get('allow-events')).toBe('dialog, presence, message-summary');
    expect(r200.get('accept')).toContain('application/dialog-info+xml');
  });

  it('a 481 answer to a NOTIFY removes the subscription (checked in the db)', async () => {
    const p = await peer('udp', (m) => (m.method === 'NOTIFY' ? 481 : 200));
    const callId = `${randomTag()}@127.0.0.1`;
    expect((await p.request(subscribeText(p, { user: '403', callId }))).status).toBe(200);
    await p.waitFor(notifyFor(callId), 5000, 0);
    let left = 1;
    for (let i = 0; i < 50 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      left = rows('SELECT id FROM subscriptions WHERE call_id = ?', callId).length;
    }
    expect(left).toBe(0);
  });
});

describe('raw PUBLISH', () => {
  it('200 + SIP-ETag, refresh/modify/remove, 412 for an old tag, 415 with Accept, 400 without body or with a bad one, 423', async () => {
    const p = await peer('udp');
    const first = await p.request(publishText(p, { user: '501', state: 'early', expires: 120 }));
    expect(first.status).toBe(200);
    const e1 = first.get('sip-etag')!;
    expect(e1).toBeTruthy();
    expect(first.get('expires')).toBe('120');
    expect(rows('SELECT etag FROM publications WHERE presentity = ?', '501@example.test').map((r) => r.etag)).toEqual([e1]);
    const refresh = await p.request(publishText(p, { user: '501', ifMatch: e1, body: null }));
    expect(refresh.status).toBe(200);
    const e2 = refresh.get('sip-etag')!;
    expect(e2).not.toBe(e1);
    expect((await p.request(publishText(p, { user: '501', ifMatch: e1, body: null }))).status).toBe(412);
    const modify = await p.request(publishText(p, { user: '501', ifMatch: e2, state: 'confirmed' }));
    expect(modify.status).toBe(200);
    const e3 = modify.get('sip-etag')!;
    const removed = await p.request(publishText(p, { user: '501', ifMatch: e3, body: null, expires: 0 }));
    expect(removed.status).toBe(200);
    expect(rows('SELECT etag FROM publications WHERE presentity = ?', '501@example.test')).toHaveLength(0);
    const r415 = await p.request(publishText(p, { user: '501', contentType: 'text/plain' }));
    expect(r415.status).toBe(415);
    expect(r415.get('accept')).toBe('application/dialog-info+xml');
    expect((await p.request(publishText(p, { user: '501', body: null }))).status).toBe(400);
    const bad = await p.request(publishText(p, { user: '501', body: '<dialog-info><oops' }));
    expect(bad.status).toBe(400);
    const r423 = await p.request(publishText(p, { user: '501', expires: 5 }));
    expect(r423.status).toBe(423);
    expect(r423.get('min-expires')).toBe('60');
  });
});
