// The cheaper hot paths of the embedded engine (issue 6) against the slower ways they replace: fixed-delay
// expiry queues, the 'match' checks for responses, received/rport written into a canonical Via, the bytes of an
// in-dialog request written straight from its spec, and a Completed client transaction that lets go of its answer.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FakeScheduler, UdpPeer, counter, notifySpec, okFor, startEngine, type EngineUnderTest } from './engine-harness.js';
import { ExpiryQueue, createTimers } from '../../src/sip/stack/timers.js';
import { parseMessage } from '../../src/sip/stack/parser.js';
import { formatVia, parseVia, viaBranch } from '../../src/sip/stack/headers.js';
import { withReceived } from '../../src/sip/stack/engine.js';
import { ClientTransactionTable } from '../../src/sip/stack/transaction-client.js';
import type { SipResponse } from '../../src/sip/stack/message.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('ExpiryQueue: fixed-delay deadlines on one timer', () => {
  it('expires items at start + delay, in order, with one scheduler timer, and holds none when empty', () => {
    const s = new FakeScheduler();
    const fired: Array<[string, number]> = [];
    const q = new ExpiryQueue<string>(s, 100, (x) => fired.push([x, s.now()]));
    q.add('a');
    s.advance(30);
    q.add('b');
    q.add('c');
    expect(s.pending).toBe(1);
    s.advance(69);
    expect(fired).toEqual([]);
    s.advance(1);
    expect(fired).toEqual([['a', 100]]);
    q.delete('b');
    s.advance(100);
    expect(fired).toEqual([['a', 100], ['c', 130]]);
    expect(q.size).toBe(0);
    expect(s.pending).toBe(0);
    q.add('d');
    q.delete('d');
    expect(s.pending).toBe(0);
  });

  it('an item added again starts over; items added while expiring wait their own delay', () => {
    const s = new FakeScheduler();
    const fired: Array<[string, number]> = [];
    const q = new ExpiryQueue<string>(s, 50, (x) => {
      fired.push([x, s.now()]);
      if (x === 'a') q.add('again');
    });
    q.add('a');
    q.add('b');
    s.advance(20);
    q.add('b'); // restarted: now due at 70
    s.advance(200);
    expect(fired).toEqual([['a', 50], ['b', 70], ['again', 100]]);
  });

  it('takes the moment it was armed for as now when the clock lags the timer (vitest fake timers, real Date)', () => {
    let clock = 1000;
    const timers: Array<{ fn: () => void; ms: number }> = [];
    const q = new ExpiryQueue<number>({
      now: () => clock,
      setTimeout: (fn, ms) => { timers.push({ fn, ms }); return {}; },
      clearTimeout: () => {},
    }, 500, (x) => fired.push(x));
    const fired: number[] = [];
    q.add(1);
    clock += 3; // the clock barely moved while the timer ran its 500 ms
    timers.shift()!.fn();
    expect(fired).toEqual([1]);
  });

  it('for any schedule of adds and deletes, each item expires exactly delay after its last add unless deleted', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat({ max: 40 }), fc.nat({ max: 5 }), fc.boolean()), { maxLength: 40 }), (ops) => {
      const s = new FakeScheduler();
      const fired = new Map<number, number>();
      const q = new ExpiryQueue<number>(s, 25, (x) => fired.set(x, s.now()));
      const expect_ = new Map<number, number>();
      for (const [wait, item, del] of ops) {
        s.advance(wait);
        if (del) {
          q.delete(item);
          if (!fired.has(item)) expect_.delete(item); // deleting after it expired changes nothing
        } else {
          q.add(item);
          expect_.set(item, s.now() + 25);
          fired.delete(item);
        }
      }
      s.advance(1000);
      for (const [item, at] of expect_) if (fired.get(item) !== at) return false;
      return fired.size === expect_.size && s.pending === 0;
    }), { numRuns: 300 });
  });
});

describe("responses with the 'match' checks (RFC 3261 §17.1.3)", () => {
  const response = (from: string, via = 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKm1;received=10.0.0.1') =>
    Buffer.from(['SIP/2.0 200 OK', `Via: ${via}`, `From: ${from}`, 'To: <sip:w@example.test>;tag=t1', 'Call-ID: c1', 'CSeq: 2 NOTIFY', 'Content-Length: 0', '', ''].join('\r\n'));

  it('leave From/To unparsed but still refuse what matching needs (top Via, CSeq)', () => {
    const odd = response('Bob (desk) <sip:b@example.test>;tag=1');
    expect(parseMessage(odd).ok).toBe(false);
    const m = parseMessage(odd, undefined, 'match');
    expect(m.ok && m.message.kind === 'response' && m.message.status).toBe(200);
    expect(parseMessage(response('<sip:b@example.test>;tag=1', 'garbage'), undefined, 'match').ok).toBe(false);
    const noCseq = Buffer.from(odd.toString().replace('CSeq: 2 NOTIFY\r\n', ''));
    expect(parseMessage(noCseq, undefined, 'match').ok).toBe(false);
  });

  it('requests keep every check', () => {
    const req = Buffer.from(['NOTIFY sip:w@example.test SIP/2.0', 'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKr1', 'From: Bob (desk) <sip:b@example.test>;tag=1',
      'To: <sip:w@example.test>', 'Call-ID: c1', 'CSeq: 2 NOTIFY', 'Content-Length: 0', '', ''].join('\r\n'));
    const r = parseMessage(req, undefined, 'match');
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toBe('Bad From');
  });

  it('viaBranch gives parseVia().branch for any valid Via', () => {
    const name = fc.constantFrom('branch', 'BRANCH', 'Branch', 'rport', 'received', 'x');
    const value = fc.constantFrom(undefined, '', 'z9hG4bK1', '"q;x"', 'a2');
    fc.assert(fc.property(fc.array(fc.tuple(name, value), { maxLength: 4 }), (ps) => {
      const v = 'SIP/2.0/UDP h:1' + ps.map(([n, x]) => `;${n}${x === undefined ? '' : '=' + x}`).join('');
      const p = parseVia(v);
      return p === null || viaBranch(v) === p.branch;
    }), { numRuns: 500 });
  });

  it('a NOTIFY answered by a 200 with an odd From resolves; a stray malformed response is still counted as malformed', async () => {
    const e: EngineUnderTest = await startEngine();
    cleanups.push(() => e.stop());
    const peer = await UdpPeer.open();
    cleanups.push(() => peer.close());
    const p = e.engine.sendRequest(notifySpec({ flowRemote: { address: '127.0.0.1', port: peer.port } }));
    const n = await peer.next((m) => m.method === 'NOTIFY');
    peer.send(okFor(n).replace(/^From: .*$/m, 'From: Bob (desk) <sip:201@example.test>;tag=srv1'), e.addr('udp').port);
    expect((await p).status).toBe(200);
    peer.send(response('Bob (desk) <sip:b@example.test>;tag=1', `SIP/2.0/UDP 127.0.0.1:${peer.port};branch=z9hG4bKnobody`), e.addr('udp').port);
    peer.send(response('<sip:b@example.test>;tag=1', `SIP/2.0/UDP 127.0.0.1:${peer.port};branch=z9hG4bKnobody2`), e.addr('udp').port);
    const dropped = async (reason: string) => counter(e.metrics, 'sipDropped', { reason });
    const t0 = Date.now();
    while ((await dropped('malformed')) + (await dropped('stray-response')) < 2 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
    expect(await dropped('malformed')).toBe(1);
    expect(await dropped('stray-response')).toBe(1);
  });
});

describe('received/rport written into a canonical Via (RFC 3261 §18.2.1, RFC 3581 §4)', () => {
  it('gives the string parse and format give, or leaves the Via to them', () => {
    const proto = fc.constantFrom('SIP/2.0/UDP', 'SIP/2.0/TCP', 'sip/2.0/udp', 'SIP / 2.0 / UDP');
    const host = fc.constantFrom('127.0.0.1', 'Host.Example', '[::1]', '10.0.0.1:5060', 'h:05060', 'x:65535', '[2001:db8::1]:5070');
    const pname = fc.constantFrom('branch', 'rport', 'received', 'RPort', 'maddr', '1', 'x-y');
    const pval = fc.constantFrom(undefined, '', 'z9hG4bK1', '10.0.0.9', '"q;x"', '5060');
    const via = fc.tuple(proto, host, fc.array(fc.tuple(fc.constantFrom(';', ' ;'), pname, pval), { maxLength: 5 }))
      .map(([p, h, ps]) => `${p} ${h}` + ps.map(([s, n, v]) => s + n + (v === undefined ? '' : '=' + v)).join(''));
    let quick = 0;
    fc.assert(fc.property(via, fc.constantFrom(undefined, '127.0.0.2'), fc.boolean(), (v, received, setRport) => {
      const parsed = parseVia(v);
      if (parsed === null) return true;
      const rport = setRport && Object.prototype.hasOwnProperty.call(parsed.params, 'rport') && !parsed.params.rport ? '5062' : undefined;
      const fast = withReceived(v, received, rport);
      if (fast === undefined) return true;
      quick++;
      if (received !== undefined) parsed.params.received = received;
      if (rport !== undefined) parsed.params.rport = rport;
      return fast === formatVia(parsed);
    }), { numRuns: 3000 });
    expect(quick).toBeGreaterThan(100);
    expect(withReceived('SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKa;rport', '127.0.0.1', '5062')).toBe('SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKa;rport=5062;received=127.0.0.1');
  });
});

describe('in-dialog requests written from the spec', () => {
  it('TU headers that repeat or join ours are grouped as a header map would group them', async () => {
    const e = await startEngine();
    cleanups.push(() => e.stop());
    const peer = await UdpPeer.open();
    cleanups.push(() => peer.close());
    const flowRemote = { address: '127.0.0.1', port: peer.port };
    void e.engine.sendRequest(notifySpec({ flowRemote, headers: [['Event', 'dialog'], ['X-A', '1'], ['event', 'presence'], ['to', 'ignored?']] }));
    const n = await peer.next((m) => m.method === 'NOTIFY');
    const names = n.text.split('\r\n\r\n')[0]!.split('\r\n').slice(1).map((l) => l.split(':')[0]);
    // Event values together at the first Event's place, the extra To beside ours (RFC 3261 §7.3.1 order per name).
    expect(names.slice(0, 10)).toEqual(['Via', 'Max-Forwards', 'To', 'To', 'From', 'Call-ID', 'CSeq', 'Event', 'Event', 'X-A']);
    void e.engine.sendRequest(notifySpec({ flowRemote, callId: 'plain@t', headers: [['Event', 'dialog'], ['Subscription-State', 'active\r\nX: y']] }));
    const m = await peer.next((x) => x.get('call-id') === 'plain@t');
    expect(m.get('subscription-state')).toBe('active  X: y'); // CR and LF each become SP: no header line injected
    expect(m.text.startsWith('NOTIFY sip:watcher@127.0.0.1:5999 SIP/2.0\r\nVia: SIP/2.0/UDP ')).toBe(true);
  });
});

describe('a Completed client transaction', () => {
  it('resolves with the response, then keeps only the status through Timer K', async () => {
    const scheduler = new FakeScheduler();
    const timers = createTimers({ scheduler });
    const table = new ClientTransactionTable();
    const tx = table.create({ key: 'k', request: Buffer.from('NOTIFY'), reliable: false, timers, send: () => true });
    const outcome = tx.outcome;
    tx.start();
    const res: SipResponse = { kind: 'response', status: 202, reason: 'Accepted', version: 'SIP/2.0', headers: new Map(), body: Buffer.alloc(0) };
    tx.receiveResponse(res);
    expect(await outcome).toEqual({ status: 202, reason: 'Accepted', response: res });
    expect(tx.state).toBe('completed');
    expect(await tx.outcome).toEqual({ status: 202, reason: '' });
    scheduler.advance(5000);
    expect(table.size).toBe(0);
  });
});
