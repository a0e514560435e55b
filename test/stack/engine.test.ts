// The embedded engine over UDP, with raw sockets on 127.0.0.1: transactions, rport/received, malformed input,
// overload shedding, NOTIFY routing and the RFC 3261 §17.1.2.2 retransmission schedule (fake scheduler).
import { afterEach, describe, expect, it } from 'vitest';
import {
  FakeScheduler, UdpPeer, counter, memoryLogger, notifySpec, okFor, requestText, sleep, startEngine, until,
  type EngineUnderTest,
} from './engine-harness.js';
import type { RequestOutcome, ServerTransaction } from '../../src/sip/port.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(opts: Parameters<typeof startEngine>[0] = {}): Promise<{ e: EngineUnderTest; peer: UdpPeer; port: number }> {
  const e = await startEngine(opts);
  cleanups.push(() => e.stop());
  const peer = await UdpPeer.open(opts.timers?.scheduler ? () => opts.timers!.scheduler!.now() : undefined);
  cleanups.push(() => peer.close());
  return { e, peer, port: e.addr('udp').port };
}

describe('embedded engine: server transactions over UDP', () => {
  it('reports the real ports it listens on and a Contact for each transport', async () => {
    const { e } = await setup();
    const l = e.engine.listening();
    expect(l.map((a) => a.transport).sort()).toEqual(['tcp', 'udp', 'ws']);
    for (const a of l) expect(a.port).toBeGreaterThan(0);
    expect(e.engine.isReady()).toBe(true);
    expect(e.engine.contactUri('udp')).toBe(`sip:127.0.0.1:${e.addr('udp').port};transport=udp`);
    expect(e.engine.contactUri('ws')).toBe(`sip:127.0.0.1:${e.addr('ws').port};transport=ws`);
  });

  it('start() fails cleanly when an address is taken, closing what it had opened', async () => {
    const taken = await UdpPeer.open();
    cleanups.push(() => taken.close());
    const { createEmbeddedEngine } = await import('../../src/sip/stack/engine.js');
    const { engineConfig } = await import('./engine-harness.js');
    const { createMetrics } = await import('../../src/metrics.js');
    const { silentLogger } = await import('../../src/log.js');
    const net = await import('node:net');
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const tcpPort = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const metrics = createMetrics();
    cleanups.push(() => metrics.stop());
    const engine = createEmbeddedEngine({
      config: engineConfig({ sip: { listen: [{ transport: 'tcp', address: '127.0.0.1', port: tcpPort }, { transport: 'udp', address: '127.0.0.1', port: taken.port }] } }),
      logger: silentLogger, metrics,
    });
    await expect(engine.start()).rejects.toThrow(/EADDRINUSE/);
    expect(engine.isReady()).toBe(false);
    // The TCP listener it had opened first is closed again: the port can be bound.
    const again = net.createServer();
    await new Promise<void>((r, j) => { again.once('error', j); again.listen(tcpPort, '127.0.0.1', () => r()); });
    await new Promise<void>((r) => again.close(() => r()));
  });

  it('uses sip.publicAddress in Contact and in the Via of what it sends', async () => {
    const { e, peer } = await setup({ overrides: { sip: { publicAddress: '203.0.113.7' } } });
    expect(e.engine.contactUri('tcp')).toBe(`sip:203.0.113.7:${e.addr('tcp').port};transport=tcp`);
    const p = e.engine.sendRequest(notifySpec({ flowRemote: { address: '127.0.0.1', port: peer.port } }));
    const n = await peer.next((m) => m.method === 'NOTIFY');
    expect(n.get('via')).toMatch(new RegExp(`^SIP/2.0/UDP 203.0.113.7:${e.addr('udp').port};rport;branch=`));
    peer.send(okFor(n), e.addr('udp').port);
    expect((await p).status).toBe(200);
  });

  it('never answers an ACK, not even one matching a finished transaction', async () => {
    const { e, peer, port } = await setup({ handler: (tx) => tx.respond({ status: 405, headers: [['Allow', 'SUBSCRIBE']] }) });
    const via = peer.via('z9hG4bKinvite1');
    peer.send(requestText(via, { method: 'INVITE', callId: 'inv@t' }), port);
    await peer.next((m) => m.status === 405);
    peer.send(requestText(via, { method: 'ACK', callId: 'inv@t' }).replace('CSeq: 1 ACK', 'CSeq: 1 ACK'), port);
    peer.send(requestText(peer.via(), { method: 'ACK', callId: 'other@t' }), port);
    await sleep(50);
    expect(peer.received).toHaveLength(1);
    expect(e.seen).toHaveLength(1);
  });

  it('answers an oversized request with 513 when it can', async () => {
    const { e, peer, port } = await setup({ overrides: { sip: { maxMessageSize: 1024 } } });
    peer.send(requestText(peer.via(), { body: 'x'.repeat(2000), extra: ['Content-Type: text/plain'] }), port);
    const r = await peer.next();
    expect(r.status).toBe(513);
    expect(e.seen).toHaveLength(0);
  });

  it('a retransmitted SUBSCRIBE reaches the handler once and gets the same response again', async () => {
    const { e, peer, port } = await setup();
    const text = requestText(peer.via());
    peer.send(text, port);
    const first = await peer.next((m) => m.status === 200);
    peer.send(text, port);
    peer.send(text, port);
    await until(() => peer.received.length === 3, 3000, 'three responses');
    expect(e.seen).toHaveLength(1);
    expect(peer.received.map((r) => r.msg.text)).toEqual([first.text, first.text, first.text]);
    expect(first.get('to')).toMatch(/;tag=srv1$/);
    expect(first.get('expires')).toBe('600');
    expect(first.get('content-length')).toBe('0');
    expect(await counter(e.metrics, 'sipRequests', { method: 'SUBSCRIBE', transport: 'udp' })).toBe(1);
    expect(await counter(e.metrics, 'sipResponses', { method: 'SUBSCRIBE', status: '200' })).toBe(1);
  });

  it('absorbs a retransmission that arrives before the handler answered', async () => {
    let held: ServerTransaction | undefined;
    const { e, peer, port } = await setup({ handler: (tx) => { held = tx; } });
    const text = requestText(peer.via());
    peer.send(text, port);
    await until(() => held !== undefined);
    peer.send(text, port);
    await sleep(50);
    expect(peer.received).toHaveLength(0);
    expect(e.seen).toHaveLength(1);
    held!.respond({ status: 202 });
    held!.respond({ status: 500 }); // later calls are ignored
    await peer.next((m) => m.status === 202);
    await sleep(30);
    expect(peer.received).toHaveLength(1);
    expect(held!.responded).toBe(true);
  });

  it('a new branch is a new transaction; the same branch with another method too (§17.2.3)', async () => {
    const { e, peer, port } = await setup();
    const via = peer.via('z9hG4bKsamebranch1');
    peer.send(requestText(via, { callId: 'a@t' }), port);
    await peer.next((m) => m.status === 200);
    peer.send(requestText(via, { callId: 'a@t', method: 'OPTIONS' }), port);
    peer.send(requestText(peer.via(), { callId: 'a@t', cseq: 2 }), port);
    await until(() => e.seen.length === 3);
  });

  it('the same branch and sent-by from another flow is a new request, answered on its own flow', async () => {
    const { e, peer, port } = await setup();
    const other = await UdpPeer.open();
    cleanups.push(() => other.close());
    const via = 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKshared1';
    peer.send(requestText(via, { callId: 'shared@t' }), port);
    await peer.next((m) => m.status === 200);
    other.send(requestText(via, { callId: 'shared@t' }), port);
    await other.next((m) => m.status === 200);
    expect(e.seen).toHaveLength(2);
    expect(peer.received).toHaveLength(1);
  });

  it('falls back to RFC 2543 matching when the branch has no magic cookie', async () => {
    const { e, peer, port } = await setup();
    const old = `SIP/2.0/UDP 127.0.0.1:${peer.port};branch=oldstyle1`;
    const text = requestText(old, { callId: 'rfc2543@t' });
    peer.send(text, port);
    await peer.next((m) => m.status === 200);
    peer.send(text, port);
    await until(() => peer.received.length === 2);
    expect(e.seen).toHaveLength(1);
    // Same branch, different CSeq: another transaction under the fallback key.
    peer.send(requestText(old, { callId: 'rfc2543@t', cseq: 2 }), port);
    await until(() => e.seen.length === 2);
  });

  it('the response copies every Via, From, To, Call-ID, CSeq, then the handler headers and the body', async () => {
    const { peer, port } = await setup({
      handler: (tx) => tx.respond({ status: 489, headers: [['Allow-Events', 'dialog, presence']], body: 'Zoë' }),
    });
    const vias = [peer.via(), 'SIP/2.0/UDP proxy.example.test:5070;branch=z9hG4bKproxy1'];
    const text = requestText(vias.join(', '), { callId: 'copy@t', cseq: 41, toTag: 'existing' });
    peer.send(text, port);
    const r = await peer.next();
    expect(r.status).toBe(489);
    expect(r.startLine).toBe('SIP/2.0 489 Bad Event');
    expect(r.all('via')).toHaveLength(2);
    expect(r.all('via')[1]).toBe(vias[1]);
    expect(r.get('from')).toBe('<sip:watcher@example.test>;tag=ft1');
    expect(r.get('to')).toBe('<sip:201@example.test>;tag=existing');
    expect(r.get('call-id')).toBe('copy@t');
    expect(r.get('cseq')).toBe('41 SUBSCRIBE');
    expect(r.get('allow-events')).toBe('dialog, presence');
    expect(r.get('content-length')).toBe('4'); // bytes, not characters
    expect(r.body).toBe('Zoë');
  });

  it('honours rport and received (RFC 3581 §4, RFC 3261 §18.2.1) and answers the source address', async () => {
    const { e, peer, port } = await setup();
    // sent-by names a host and port nobody listens on; the answer must still come to the source.
    peer.send(requestText('SIP/2.0/UDP phone.example.test:5999;rport;branch=z9hG4bKrport1'), port);
    const r = await peer.next();
    const via = r.all('via')[0]!;
    expect(via).toContain(`rport=${peer.port}`);
    expect(via).toContain('received=127.0.0.1');
    expect(via).toMatch(/^SIP\/2\.0\/UDP phone\.example\.test:5999;/);
    // The handler saw the same top Via (what it would store for the dialog).
    expect(e.seen[0]!.request.headers.get('via')![0]).toBe(via);
    expect(e.seen[0]!.flow).toMatchObject({ transport: 'udp', remoteAddress: '127.0.0.1', remotePort: peer.port });
    expect(e.engine.isFlowOpen?.(e.seen[0]!.flow.id)).toBe(true); // UDP flows have no connection to lose

    // Without rport and with the sent-by equal to the source: no received, rport stays absent.
    peer.send(requestText(peer.via(undefined, `127.0.0.1:${peer.port}`, false)), port);
    const r2 = await peer.next((m) => m !== r, 3000, 1);
    expect(r2.all('via')[0]).not.toContain('received=');
    expect(r2.all('via')[0]).not.toContain('rport');
  });

  it('answers a malformed but answerable request with 400 and the parser reason, then keeps answering', async () => {
    const { e, peer, port } = await setup();
    const bad = requestText(peer.via()).replace('CSeq: 1 SUBSCRIBE', 'CSeq: one SUBSCRIBE');
    peer.send(bad, port);
    const r = await peer.next();
    expect(r.status).toBe(400);
    expect(r.startLine).not.toBe('SIP/2.0 400 Bad Request'); // says what was wrong
    expect(r.startLine.toLowerCase()).toContain('cseq');
    expect(r.get('to')).toMatch(/;tag=[0-9a-f]{16}$/); // §8.2.6.2, also on the engine's own answers
    expect(e.seen).toHaveLength(0);
    peer.send(requestText(peer.via()), port);
    await peer.next((m) => m.status === 200, 3000, 1);
    expect(e.seen).toHaveLength(1);
  });

  it('ignores UDP keep-alive datagrams of bare CRLFs without counting them as malformed', async () => {
    const { e, peer, port } = await setup();
    for (const k of ['\r\n\r\n', '\r\n', '']) peer.send(k, port);
    await sleep(50);
    expect(peer.received).toHaveLength(0);
    expect(await counter(e.metrics, 'sipDropped')).toBe(0);
  });

  it('drops unanswerable garbage, counts it, and keeps serving', async () => {
    const { e, peer, port } = await setup();
    peer.send(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a]), port);
    peer.send('HELLO\r\n\r\n', port);
    peer.send(requestText(peer.via()).replace(/^Via:.*\r\n/m, ''), port); // no Via: nowhere to answer
    await sleep(50);
    expect(peer.received).toHaveLength(0);
    expect(await counter(e.metrics, 'sipDropped', { reason: 'malformed' })).toBe(3);
    peer.send(requestText(peer.via()), port);
    await peer.next((m) => m.status === 200);
  });

  it('survives 500 seeded mutations of real requests and responses and still answers (no internal errors)', async () => {
    const { e, peer, port } = await setup();
    const fc = (await import('fast-check')).default;
    const seeds = [
      requestText(peer.via()),
      requestText(peer.via(), { method: 'PUBLISH', body: '<x/>', extra: ['Content-Type: application/pidf+xml'] }),
      ['SIP/2.0 200 OK', `Via: ${peer.via()}`, 'From: <sip:a@example.test>;tag=1', 'To: <sip:b@example.test>;tag=2',
        'Call-ID: m@t', 'CSeq: 1 NOTIFY', 'Content-Length: 0', '', ''].join('\r\n'),
    ].map((t) => Buffer.from(t, 'utf8'));
    const mutation = fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 }), fc.nat({ max: 2 })), { minLength: 1, maxLength: 8 }));
    const cases = fc.sample(mutation, { numRuns: 500, seed: 4475 });
    for (const [n, [i, edits]] of cases.entries()) {
      let b = Buffer.from(seeds[i]!);
      for (const [pos, byte, op] of edits) {
        const at = pos % (b.length + 1);
        if (op === 0) b = Buffer.concat([b.subarray(0, at), Buffer.from([byte]), b.subarray(at)]);
        else if (op === 1 && b.length > 0) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        else if (at < b.length) b[at] = byte;
      }
      peer.send(b, port);
      if (n % 50 === 49) await sleep(5);
    }
    await sleep(100);
    const mark = peer.received.length;
    peer.send(requestText(peer.via(), { callId: 'after-fuzz@t' }), port);
    await peer.next((m) => m.get('call-id') === 'after-fuzz@t', 3000, mark);
    expect(await counter(e.metrics, 'sipDropped', { reason: 'internal' })).toBe(0);
  });

  it('drops responses to requests it never sent, silently, and counts them', async () => {
    const { e, peer, port } = await setup();
    peer.send(['SIP/2.0 200 OK', `Via: ${peer.via()}`, 'From: <sip:a@example.test>;tag=1', 'To: <sip:b@example.test>;tag=2',
      'Call-ID: stray@t', 'CSeq: 1 NOTIFY', 'Content-Length: 0', '', ''].join('\r\n'), port);
    await sleep(50);
    expect(peer.received).toHaveLength(0);
    expect(await counter(e.metrics, 'sipDropped', { reason: 'stray-response' })).toBe(1);
  });

  it('sheds load with 503 + Retry-After past sip.limits.maxPendingRequests, without calling the handler', async () => {
    const held: ServerTransaction[] = [];
    const { e, peer, port } = await setup({
      overrides: { sip: { limits: { maxPendingRequests: 2 } } },
      handler: (tx) => { held.push(tx); },
    });
    for (let i = 0; i < 3; i++) peer.send(requestText(peer.via(), { callId: `p${i}@t` }), port);
    const r = await peer.next((m) => m.status === 503);
    expect(r.get('retry-after')).toMatch(/^\d+$/);
    expect(r.get('to')).toMatch(/;tag=[0-9a-f]{16}$/);
    expect(r.get('call-id')).toBe('p2@t');
    expect(held).toHaveLength(2);
    expect(await counter(e.metrics, 'overload', { limit: 'pending' })).toBe(1);
    // Once one is answered, there is room again.
    held[0]!.respond({ status: 200 });
    peer.send(requestText(peer.via(), { callId: 'p3@t' }), port);
    await until(() => held.length === 3);
  });

  it('frees the pending slot of a request the handler never answers after 64*T1', async () => {
    const scheduler = new FakeScheduler();
    const held: ServerTransaction[] = [];
    const { peer, port } = await setup({
      timers: { scheduler }, overrides: { sip: { limits: { maxPendingRequests: 1 } } }, handler: (tx) => { held.push(tx); },
    });
    peer.send(requestText(peer.via(), { callId: 'never@t' }), port);
    await until(() => held.length === 1);
    peer.send(requestText(peer.via(), { callId: 'shed@t' }), port);
    await peer.next((m) => m.status === 503);
    scheduler.advance(32_000);
    peer.send(requestText(peer.via(), { callId: 'later@t' }), port);
    await until(() => held.length === 2);
    held[0]!.respond({ status: 200 }); // too late: ignored, nothing sent
    await sleep(30);
    expect(peer.received.map((r) => r.msg.status)).toEqual([503]);
  });

  it('counts unknown methods under method="other", so made-up methods mint no new metric series', async () => {
    const { e, peer, port } = await setup({ handler: (tx) => tx.respond({ status: 405, headers: [['Allow', 'SUBSCRIBE']] }) });
    for (let i = 0; i < 20; i++) peer.send(requestText(peer.via(), { method: `X${i}FUZZ` }), port);
    peer.send(requestText(peer.via(), { method: 'SUBSCRIBE' }), port);
    await until(() => peer.received.length === 21);
    expect(await counter(e.metrics, 'sipRequests', { method: 'other' })).toBe(20);
    expect(await counter(e.metrics, 'sipResponses', { method: 'other', status: '405' })).toBe(20);
    expect(await counter(e.metrics, 'sipRequests', { method: 'SUBSCRIBE' })).toBe(1);
    expect(await e.metrics.registry.metrics()).not.toContain('FUZZ');
  });

  it('a handler that throws gets a 500 sent for it', async () => {
    const { peer, port } = await setup({ handler: () => { throw new Error('boom'); } });
    peer.send(requestText(peer.via()), port);
    const r = await peer.next();
    expect(r.status).toBe(500);
  });

  it('traces the full message in and out for a listed AOR, and nothing for others', async () => {
    const mem = memoryLogger('info');
    const { peer, port } = await setup({ logger: mem.logger, overrides: { log: { traceSip: ['201@example.test'] } } });
    peer.send(requestText(peer.via(), { user: '201' }), port);
    await peer.next();
    peer.send(requestText(peer.via(), { user: '999' }), port);
    await peer.next(() => true, 3000, 1);
    await sleep(20);
    const traced = mem.lines.filter((l) => l.sip === 'in' || l.sip === 'out');
    expect(traced.map((l) => l.sip)).toEqual(['in', 'out']);
    expect(String(traced[0]!.text)).toMatch(/^SUBSCRIBE sip:201@example.test SIP\/2.0/);
    expect(String(traced[1]!.text)).toMatch(/^SIP\/2.0 200 OK/);
    expect(mem.lines.some((l) => typeof l.text === 'string' && l.text.includes('999@'))).toBe(false);
  });

  it('traces by source IP', async () => {
    const mem = memoryLogger('info');
    const { peer, port } = await setup({ logger: mem.logger, overrides: { log: { traceSip: ['127.0.0.1'] } } });
    peer.send(requestText(peer.via()), port);
    await peer.next();
    await sleep(20);
    expect(mem.lines.filter((l) => l.sip).length).toBe(2);
  });
});

describe('embedded engine: NOTIFY over UDP (client transactions)', () => {
  it('sends to flowRemote with our Via, Max-Forwards, Route, dialog headers and body; the 200 resolves', async () => {
    const { e, peer } = await setup();
    const p = e.engine.sendRequest(notifySpec({
      requestUri: 'sip:watcher@abcdef.invalid;transport=udp',
      flowRemote: { address: '127.0.0.1', port: peer.port },
      routeSet: ['<sip:127.0.0.1:1;lr>'],
      body: 'Zoë',
    }));
    const n = await peer.next((m) => m.method === 'NOTIFY');
    expect(n.startLine).toBe('NOTIFY sip:watcher@abcdef.invalid;transport=udp SIP/2.0');
    expect(n.get('via')).toMatch(new RegExp(`^SIP/2.0/UDP 127.0.0.1:${e.addr('udp').port};rport;branch=z9hG4bK[0-9a-f]{32}$`));
    expect(n.get('max-forwards')).toBe('70');
    expect(n.get('route')).toBe('<sip:127.0.0.1:1;lr>');
    expect(n.get('cseq')).toBe('7 NOTIFY');
    expect(n.get('event')).toBe('dialog');
    expect(n.get('subscription-state')).toBe('active;expires=600');
    expect(n.get('content-length')).toBe('4');
    expect(n.body).toBe('Zoë');
    peer.send(okFor(n), e.addr('udp').port);
    const o = await p;
    expect(o.status).toBe(200);
    expect(o.local).toBeUndefined();
    expect(o.response?.status).toBe(200);
    expect(await counter(e.metrics, 'notifySent', { event: 'dialog' })).toBe(1);
  });

  it('branches are 128 random bits, different for each request', async () => {
    const { e, peer } = await setup();
    const outcomes: Array<Promise<RequestOutcome>> = [];
    for (let i = 0; i < 5; i++) outcomes.push(e.engine.sendRequest(notifySpec({ flowRemote: { address: '127.0.0.1', port: peer.port } })));
    await until(() => peer.received.length >= 5);
    const branches = new Set(peer.received.map((r) => /branch=([^;]+)/.exec(r.msg.get('via')!)![1]));
    expect(branches.size).toBe(5);
    for (const b of branches) expect(b).toMatch(/^z9hG4bK[0-9a-f]{32}$/);
    for (const r of peer.received) peer.send(okFor(r.msg), e.addr('udp').port);
    expect((await Promise.all(outcomes)).map((o) => o.status)).toEqual([200, 200, 200, 200, 200]);
  });

  it('without flowRemote, goes to the Request-URI host:port', async () => {
    const { e, peer } = await setup();
    const p = e.engine.sendRequest(notifySpec({ requestUri: `sip:watcher@127.0.0.1:${peer.port}` }));
    const n = await peer.next((m) => m.method === 'NOTIFY');
    peer.send(okFor(n, 481, 'Call/Transaction Does Not Exist'), e.addr('udp').port);
    expect((await p).status).toBe(481);
  });

  it('strips URI headers from the Request-URI (§19.1.1) and refuses one nobody could parse', async () => {
    const { asRequestUri } = await import('../../src/sip/stack/engine.js');
    expect(asRequestUri('sip:16@127.0.0.1:51980?;transport=tcp')).toBe('sip:16@127.0.0.1:51980');
    expect(asRequestUri('sip:a?b@example.test;lr?Subject=x')).toBe('sip:a?b@example.test;lr');
    expect(asRequestUri('sip:w@127.0.0.1:5070;transport=udp')).toBe('sip:w@127.0.0.1:5070;transport=udp');
    expect(asRequestUri('tel:+1-201-555-0123')).toBe('tel:+1-201-555-0123');
    for (const bad of ['', 'nocolon', 'sip:a b@host', 'sip:<x>@host', ':x', 'sip:w@host\r\nX: y']) expect(asRequestUri(bad)).toBeUndefined();
    const { e, peer } = await setup();
    const p = e.engine.sendRequest(notifySpec({ requestUri: 'sip:w@127.0.0.1:1?Subject=hi', flowRemote: { address: '127.0.0.1', port: peer.port } }));
    const n = await peer.next((m) => m.method === 'NOTIFY');
    expect(n.startLine).toBe('NOTIFY sip:w@127.0.0.1:1 SIP/2.0');
    peer.send(okFor(n), e.addr('udp').port);
    expect((await p).status).toBe(200);
    expect(await e.engine.sendRequest(notifySpec({ requestUri: 'sip:w@bad host', flowRemote: { address: '127.0.0.1', port: peer.port } })))
      .toMatchObject({ status: 503, local: 'transport-error' });
  });

  it('a .invalid target with no flowRemote cannot be reached: 408 no-flow', async () => {
    const { e } = await setup();
    const o = await e.engine.sendRequest(notifySpec({ requestUri: 'sip:watcher@xyz.invalid' }));
    expect(o).toMatchObject({ status: 408, local: 'no-flow' });
  });

  it('retransmits at 0, 0.5, 1.5, 3.5, 7.5, 11.5 ... 31.5 s and fails with a local 408 at 32 s', async () => {
    const scheduler = new FakeScheduler();
    const { e, peer } = await setup({ timers: { scheduler } });
    let outcome: RequestOutcome | undefined;
    void e.engine.sendRequest(notifySpec({ flowRemote: { address: '127.0.0.1', port: peer.port } })).then((o) => { outcome = o; });
    await until(() => peer.received.length === 1);
    const expected = [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500];
    for (let i = 1; i < expected.length; i++) {
      const next = scheduler.nextAt()!;
      scheduler.advance(next - scheduler.now());
      await until(() => peer.received.length === i + 1, 3000, `transmission ${i + 1}`);
    }
    expect(peer.received.map((r) => r.at)).toEqual(expected);
    expect(outcome).toBeUndefined();
    scheduler.advance(32000 - scheduler.now() - 1);
    await sleep(10);
    expect(outcome).toBeUndefined();
    scheduler.advance(1);
    await until(() => outcome !== undefined);
    expect(outcome).toEqual({ status: 408, reason: 'Request Timeout', local: 'timeout' });
    // All transmissions were the same bytes (same branch).
    expect(new Set(peer.received.map((r) => r.msg.text)).size).toBe(1);
    expect(await counter(e.metrics, 'notifyRetransmitted')).toBe(10);
    scheduler.advance(60_000);
    await sleep(20);
    expect(peer.received).toHaveLength(11);
  });

  it('a 200 stops retransmission; a retransmitted 200 is absorbed during Timer K', async () => {
    const scheduler = new FakeScheduler();
    const { e, peer } = await setup({ timers: { scheduler } });
    const p = e.engine.sendRequest(notifySpec({ flowRemote: { address: '127.0.0.1', port: peer.port } }));
    await until(() => peer.received.length === 1);
    scheduler.advance(500);
    await until(() => peer.received.length === 2);
    const n = peer.received[0]!.msg;
    peer.send(okFor(n), e.addr('udp').port);
    expect((await p).status).toBe(200);
    peer.send(okFor(n), e.addr('udp').port); // retransmitted response: absorbed by the transaction
    await sleep(30);
    expect(await counter(e.metrics, 'sipDropped', { reason: 'stray-response' })).toBe(0);
    scheduler.advance(40_000);
    await sleep(30);
    expect(peer.received).toHaveLength(2);
    // After Timer K the transaction is gone: now a late copy is a stray response.
    peer.send(okFor(n), e.addr('udp').port);
    await sleep(50);
    expect(await counter(e.metrics, 'sipDropped', { reason: 'stray-response' })).toBe(1);
  });

  it('a provisional response does not resolve; retransmissions go on every T2 in Proceeding', async () => {
    const scheduler = new FakeScheduler();
    const { e, peer } = await setup({ timers: { scheduler } });
    let outcome: RequestOutcome | undefined;
    void e.engine.sendRequest(notifySpec({ flowRemote: { address: '127.0.0.1', port: peer.port } })).then((o) => { outcome = o; });
    await until(() => peer.received.length === 1);
    const n = peer.received[0]!.msg;
    peer.send(okFor(n, 100, 'Trying'), e.addr('udp').port);
    await sleep(30);
    expect(outcome).toBeUndefined();
    scheduler.advance(4000);
    await until(() => peer.received.length === 2);
    expect(peer.received[1]!.at).toBe(4000);
    scheduler.advance(4000);
    await until(() => peer.received.length === 3);
    expect(peer.received[2]!.at).toBe(8000);
    peer.send(okFor(n), e.addr('udp').port);
    await until(() => outcome !== undefined);
    expect(outcome!.status).toBe(200);
  });

  it('works with vitest fake timers and the default scheduler too (Timer F after 64*T1)', async () => {
    const { vi } = await import('vitest');
    const { e, peer } = await setup({ timers: { T1: 20, T2: 160 } });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    cleanups.push(() => vi.useRealTimers());
    let outcome: RequestOutcome | undefined;
    void e.engine.sendRequest(notifySpec({ flowRemote: { address: '127.0.0.1', port: peer.port } })).then((o) => { outcome = o; });
    await vi.waitFor(() => expect(peer.received.length).toBe(1), { timeout: 3000, interval: 5 });
    await vi.advanceTimersByTimeAsync(64 * 20);
    expect(outcome).toMatchObject({ status: 408, local: 'timeout' });
    vi.useRealTimers();
  });

  it('stop() waits for NOTIFYs in flight (bounded) and then closes', async () => {
    const { e, peer } = await setup();
    const p = e.engine.sendRequest(notifySpec({ flowRemote: { address: '127.0.0.1', port: peer.port } }));
    const n = await peer.next((m) => m.method === 'NOTIFY');
    const stopping = e.engine.stop();
    await sleep(50);
    peer.send(okFor(n), e.addr('udp').port);
    expect((await p).status).toBe(200);
    await stopping;
    expect(e.engine.isReady()).toBe(false);
    const after = await e.engine.sendRequest(notifySpec({ flowRemote: { address: '127.0.0.1', port: peer.port } }));
    expect(after.local).toBe('transport-error');
  });

  it('stop() gives up on a silent peer after the grace period', async () => {
    const { e, peer } = await setup();
    const p = e.engine.sendRequest(notifySpec({ flowRemote: { address: '127.0.0.1', port: peer.port } }));
    await peer.next((m) => m.method === 'NOTIFY');
    const t0 = Date.now();
    await e.engine.stop();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(4000);
    expect(await p).toMatchObject({ status: 503, local: 'transport-error' });
  });
});

