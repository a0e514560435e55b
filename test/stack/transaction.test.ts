// RFC 3261 §17 non-INVITE transaction state machines on their own, driven by a fake scheduler.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FakeScheduler } from './engine-harness.js';
import { createTimers, nextTimerE } from '../../src/sip/stack/timers.js';
import { NonInviteServerTransaction, ServerTransactionTable, serverTransactionKey } from '../../src/sip/stack/transaction-server.js';
import { ClientTransactionTable, clientTransactionKey } from '../../src/sip/stack/transaction-client.js';
import type { SipRequest, SipResponse } from '../../src/sip/stack/message.js';
import type { RequestOutcome } from '../../src/sip/port.js';

function req(over: Partial<Record<string, string>> = {}, method = 'SUBSCRIBE', uri = 'sip:201@example.test'): SipRequest {
  const h = new Map<string, string[]>();
  const base: Record<string, string | undefined> = {
    via: 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc123',
    from: '<sip:w@example.test>;tag=f1', to: '<sip:201@example.test>', 'call-id': 'c1@x', cseq: `1 ${method}`, ...over,
  };
  for (const [k, v] of Object.entries(base)) if (v !== undefined) h.set(k, [v]);
  return { kind: 'request', method, uri, version: 'SIP/2.0', headers: h, body: Buffer.alloc(0) };
}

function res(status: number): SipResponse {
  return { kind: 'response', status, reason: 'x', version: 'SIP/2.0', headers: new Map(), body: Buffer.alloc(0) };
}

describe('server transaction matching (§17.2.3)', () => {
  it('keys on branch + sent-by + method; ACK matches INVITE', () => {
    const k = serverTransactionKey(req())!;
    expect(serverTransactionKey(req())).toBe(k);
    expect(serverTransactionKey(req({ via: 'SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKabc123' }))).not.toBe(k);
    expect(serverTransactionKey(req({ via: 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKother' }))).not.toBe(k);
    expect(serverTransactionKey(req({}, 'PUBLISH'))).not.toBe(k);
    // Params other than branch, and the Call-ID, do not matter for an RFC 3261 branch.
    expect(serverTransactionKey(req({ via: 'SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKabc123', 'call-id': 'other' }))).toBe(k);
    expect(serverTransactionKey(req({}, 'ACK'))).toBe(serverTransactionKey(req({}, 'INVITE')));
    // The same branch and sent-by on another flow is another request.
    expect(serverTransactionKey(req(), 'udp|a')).toBe(serverTransactionKey(req(), 'udp|a'));
    expect(serverTransactionKey(req(), 'udp|a')).not.toBe(serverTransactionKey(req(), 'tcp|b'));
    expect(serverTransactionKey(req({ via: 'SIP/2.0/UDP 10.0.0.1:5060;branch=1234' }), 'udp|a'))
      .not.toBe(serverTransactionKey(req({ via: 'SIP/2.0/UDP 10.0.0.1:5060;branch=1234' }), 'udp|b'));
  });

  it('falls back to RFC 2543 matching without the magic cookie', () => {
    const old = { via: 'SIP/2.0/UDP 10.0.0.1:5060;branch=1234' };
    const k = serverTransactionKey(req(old))!;
    expect(k).toBe(serverTransactionKey(req(old)));
    expect(serverTransactionKey(req({ ...old, 'call-id': 'c2@x' }))).not.toBe(k);
    expect(serverTransactionKey(req({ ...old, cseq: '2 SUBSCRIBE' }))).not.toBe(k);
    expect(serverTransactionKey(req({ ...old, from: '<sip:w@example.test>;tag=f2' }))).not.toBe(k);
    expect(serverTransactionKey(req({ via: 'SIP/2.0/UDP 10.0.0.1:5060' }))).toBeDefined();
  });

  it('has no key without a usable Via', () => {
    expect(serverTransactionKey(req({ via: undefined }))).toBeUndefined();
    expect(serverTransactionKey(req({ via: 'garbage' }))).toBeUndefined();
  });
});

describe('non-INVITE server transaction (§17.2.2)', () => {
  function make(reliable: boolean) {
    const scheduler = new FakeScheduler();
    const timers = createTimers({ scheduler });
    const table = new ServerTransactionTable();
    const sent: string[] = [];
    const tx = table.create({ key: 'k', reliable, timers, send: (d) => sent.push(d.toString()) });
    return { scheduler, table, sent, tx };
  }

  it('absorbs retransmissions in Trying, resends the provisional in Proceeding and the final in Completed', () => {
    const { sent, tx } = make(false);
    expect(tx.receiveRetransmission()).toBe(false);
    tx.sendResponse(Buffer.from('100'), 100);
    expect(tx.state).toBe('proceeding');
    tx.receiveRetransmission();
    tx.sendResponse(Buffer.from('200'), 200);
    expect(tx.state).toBe('completed');
    tx.receiveRetransmission();
    tx.sendResponse(Buffer.from('500'), 500); // after the final: ignored
    expect(sent).toEqual(['100', '100', '200', '200']);
  });

  it('stays Completed for Timer J = 64*T1 on UDP', () => {
    const { scheduler, table, tx } = make(false);
    tx.sendResponse(Buffer.from('200'), 200);
    scheduler.advance(32_000 - 1);
    expect(table.get('k')).toBe(tx);
    scheduler.advance(1);
    expect(tx.state).toBe('terminated');
    expect(table.get('k')).toBeUndefined();
  });

  it('keeps completed transactions within a byte budget, forgetting the oldest first', () => {
    const scheduler = new FakeScheduler();
    const timers = createTimers({ scheduler });
    const per = 1000 + 512; // response bytes + COMPLETED_TX_OVERHEAD_BYTES
    const table = new ServerTransactionTable(3 * per);
    const txs = [0, 1, 2, 3, 4].map((i) => table.create({ key: `k${i}`, reliable: false, timers, send: () => {} }));
    for (const tx of txs) tx.sendResponse(Buffer.alloc(1000), 200);
    expect(txs.map((t) => t.state)).toEqual(['terminated', 'terminated', 'completed', 'completed', 'completed']);
    expect(table.get('k0')).toBeUndefined();
    expect(table.get('k4')).toBe(txs[4]);
    expect(table.completedSize).toBe(3 * per);
    scheduler.advance(32_000);
    expect(table.size).toBe(0);
    expect(table.completedSize).toBe(0);
  });

  it('terminates at once on TCP/WS (Timer J = 0)', () => {
    const { table, tx } = make(true);
    tx.sendResponse(Buffer.from('200'), 200);
    expect(tx.state).toBe('terminated');
    expect(table.size).toBe(0);
    expect(tx).toBeInstanceOf(NonInviteServerTransaction);
  });
});

describe('non-INVITE client transaction (§17.1.2)', () => {
  function make(reliable: boolean, sendResult: boolean | (() => boolean | Promise<boolean>) = true) {
    const scheduler = new FakeScheduler();
    const timers = createTimers({ scheduler });
    const table = new ClientTransactionTable();
    const sends: number[] = [];
    let retransmits = 0;
    const tx = table.create({
      key: clientTransactionKey('z9hG4bKx', 'NOTIFY'), request: Buffer.from('NOTIFY'), reliable, timers,
      send: () => { sends.push(scheduler.now()); return typeof sendResult === 'function' ? sendResult() : sendResult; },
      onRetransmit: () => { retransmits++; },
    });
    let outcome: RequestOutcome | undefined;
    void tx.outcome.then((o) => { outcome = o; });
    return { scheduler, table, sends, tx, get outcome() { return outcome; }, get retransmits() { return retransmits; } };
  }

  it('Timer E doubles up to T2, and is T2 in Proceeding', () => {
    const t = createTimers();
    expect([500, 1000, 2000, 4000].map((i) => nextTimerE(t, i, false))).toEqual([1000, 2000, 4000, 4000]);
    expect(nextTimerE(t, 500, true)).toBe(4000);
  });

  it('UDP: sends at 0, .5, 1.5, 3.5, 7.5, 11.5 ... 31.5 s, then Timer F gives a local 408 at 32 s', async () => {
    const c = make(false);
    c.tx.start();
    expect(c.table.inFlightCount).toBe(1);
    c.scheduler.advance(40_000);
    expect(c.sends).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    expect(c.retransmits).toBe(10);
    await Promise.resolve();
    expect(c.outcome).toEqual({ status: 408, reason: 'Request Timeout', local: 'timeout' });
    expect(c.table.size).toBe(0);
    expect(c.table.inFlightCount).toBe(0); // counted down once, though Timer F both finishes and terminates
  });

  it('a final response stops retransmission and resolves; Timer K = T4 keeps it to absorb copies', async () => {
    const c = make(false);
    c.tx.start();
    c.scheduler.advance(1600);
    const r = res(200);
    c.tx.receiveResponse(r);
    await Promise.resolve();
    expect(c.outcome).toEqual({ status: 200, reason: 'x', response: r });
    c.scheduler.advance(4999);
    expect(c.table.get(c.tx.key)).toBe(c.tx);
    // Held for Timer K, but no longer waiting for an answer: sip.limits.maxClientTransactions does not count it.
    expect(c.table.size).toBe(1);
    expect(c.table.inFlightCount).toBe(0);
    c.tx.receiveResponse(res(500)); // absorbed: the outcome does not change
    c.scheduler.advance(1);
    expect(c.table.size).toBe(0);
    c.scheduler.advance(60_000);
    expect(c.sends).toEqual([0, 500, 1500]);
    expect(c.outcome!.status).toBe(200);
  });

  it('a provisional response moves to Proceeding without resolving', async () => {
    const c = make(false);
    c.tx.start();
    c.scheduler.advance(500);
    c.tx.receiveResponse(res(180));
    expect(c.tx.state).toBe('proceeding');
    c.scheduler.advance(8000);
    await Promise.resolve();
    expect(c.outcome).toBeUndefined();
    expect(c.sends).toEqual([0, 500, 4500, 8500]);
  });

  it('TCP/WS: no retransmission, Timer F still bounds the wait, no Timer K', async () => {
    const c = make(true);
    c.tx.start();
    c.scheduler.advance(31_999);
    expect(c.sends).toEqual([0]);
    await Promise.resolve();
    expect(c.outcome).toBeUndefined();
    c.scheduler.advance(1);
    await Promise.resolve();
    expect(c.outcome?.local).toBe('timeout');

    const d = make(true);
    d.tx.start();
    d.tx.receiveResponse(res(200));
    expect(d.table.size).toBe(0);
  });

  it('a failed first send is a transport error (§17.1.4), sync or async', async () => {
    const c = make(false, false);
    c.tx.start();
    await Promise.resolve();
    expect(c.outcome).toMatchObject({ status: 503, local: 'transport-error' });
    expect(c.scheduler.pending).toBe(0);

    const d = make(false, () => Promise.resolve(false));
    d.tx.start();
    await new Promise((r) => setImmediate(r));
    expect(d.outcome).toMatchObject({ status: 503, local: 'transport-error' });
  });

  it('abort() (engine stop) resolves a request in flight with a local transport error', async () => {
    const c = make(false);
    c.tx.start();
    c.table.abortAll();
    await Promise.resolve();
    expect(c.outcome).toMatchObject({ status: 503, local: 'transport-error' });
    expect(c.scheduler.pending).toBe(0);
    expect(c.table.inFlightCount).toBe(0);
  });

  it('timers are validated', () => {
    expect(() => createTimers({ T1: 0 })).toThrow(RangeError);
  });

  it('for any T1 <= T2: retransmission gaps are T1, 2T1, ... capped at T2, and the outcome comes at 64*T1', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 16 }), async (T1, mult) => {
      const T2 = T1 * mult;
      const scheduler = new FakeScheduler();
      const timers = createTimers({ T1, T2, T4: 5 * T1, scheduler });
      const sends: number[] = [];
      const tx = new ClientTransactionTable().create({
        key: 'k', request: Buffer.from('x'), reliable: false, timers, send: () => { sends.push(scheduler.now()); return true; },
      });
      let at: number | undefined;
      void tx.outcome.then(() => { at = scheduler.now(); });
      tx.start();
      scheduler.advance(64 * T1 - 1);
      await Promise.resolve();
      expect(at).toBeUndefined();
      scheduler.advance(1);
      await Promise.resolve();
      expect(at).toBe(64 * T1);
      let gap = T1;
      for (let i = 1; i < sends.length; i++) {
        expect(sends[i]! - sends[i - 1]!).toBe(gap);
        gap = Math.min(2 * gap, T2);
      }
      // The last send is the final one before Timer F: the next would have been at or after 64*T1.
      expect(sends[sends.length - 1]! + gap).toBeGreaterThanOrEqual(64 * T1);
    }), { numRuns: 200 });
  });
});
