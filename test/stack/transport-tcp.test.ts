// The engine over TCP with raw sockets: stream framing at odd boundaries, keep-alive pongs, connection caps,
// NOTIFY over the stored flow without retransmission, and a new connection when the flow is gone.
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FakeScheduler, TcpPeer, counter, notifySpec, okFor, parseRaw, requestText, sleep, startEngine, until,
  type EngineUnderTest, type RawMessage,
} from './engine-harness.js';
import type { RequestOutcome } from '../../src/sip/port.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(opts: Parameters<typeof startEngine>[0] = {}): Promise<EngineUnderTest> {
  const e = await startEngine(opts);
  cleanups.push(() => e.stop());
  return e;
}

async function peerOf(e: EngineUnderTest): Promise<TcpPeer> {
  const p = await TcpPeer.open(e.addr('tcp').port);
  cleanups.push(() => p.close());
  return p;
}

function tcpReq(p: TcpPeer, o: Parameters<typeof requestText>[1] = {}): string {
  return requestText(p.via(), { ...o, extra: ['Contact: <sip:watcher@127.0.0.1;transport=tcp>', ...(o.extra ?? [])] });
}

/** A bare TCP listener standing in for a phone we have to connect to; answers NOTIFYs with 200. */
async function phoneServer(): Promise<{ server: Server; port: number; got: RawMessage[]; sockets: Socket[] }> {
  const got: RawMessage[] = [];
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('utf8');
      for (;;) {
        const sep = buf.indexOf('\r\n\r\n');
        if (sep < 0) return;
        const len = Number(/content-length:\s*(\d+)/i.exec(buf.slice(0, sep))?.[1] ?? 0);
        if (Buffer.byteLength(buf.slice(sep + 4)) < len) return;
        const m = parseRaw(buf.slice(0, sep + 4 + len));
        buf = buf.slice(sep + 4 + len);
        got.push(m);
        if (m.method) s.write(okFor(m));
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }));
  return { server, port: (server.address() as { port: number }).port, got, sockets };
}

describe('embedded engine over TCP', () => {
  it('frames a message written in pieces at odd byte boundaries', async () => {
    const e = await setup();
    const p = await peerOf(e);
    const bytes = Buffer.from(tcpReq(p, { body: 'hello Zoë', extra: ['Content-Type: text/plain'] }), 'utf8');
    const cuts = [1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47];
    let at = 0;
    for (const c of cuts) {
      if (at >= bytes.length) break;
      await p.write(bytes.subarray(at, Math.min(bytes.length, at + c)));
      await sleep(2);
      at += c;
    }
    if (at < bytes.length) await p.write(bytes.subarray(at));
    await p.next((m) => m.status === 200);
    expect(e.seen).toHaveLength(1);
    expect(e.seen[0]!.request.body.toString('utf8')).toBe('hello Zoë');
    expect(e.seen[0]!.flow.transport).toBe('tcp');
  });

  it('frames two messages coalesced in one segment, and splits a multi-byte body exactly', async () => {
    const e = await setup();
    const p = await peerOf(e);
    await p.write(tcpReq(p, { callId: 'one@t', body: 'ë' }) + tcpReq(p, { callId: 'two@t' }));
    await until(() => p.received.length === 2);
    expect(p.received.map((m) => m.get('call-id'))).toEqual(['one@t', 'two@t']);
    expect(e.seen.map((t) => t.request.body.toString('utf8'))).toEqual(['ë', '']);
    // Both arrived on the same flow.
    expect(e.seen[0]!.flow.id).toBe(e.seen[1]!.flow.id);
  });

  it('answers a CRLFCRLF keep-alive ping with a CRLF pong (RFC 5626 §4.4.1)', async () => {
    const e = await setup();
    const p = await peerOf(e);
    await p.write('\r\n\r\n');
    await until(() => p.raw === '\r\n', 3000, 'pong');
    await p.write('\r\n\r\n' + tcpReq(p));
    await p.next((m) => m.status === 200);
    expect(p.raw.startsWith('\r\n\r\nSIP/2.0 200')).toBe(true);
  });

  it('answers a malformed request with 400 on the same connection and keeps the connection', async () => {
    const e = await setup();
    const p = await peerOf(e);
    await p.write(tcpReq(p).replace('CSeq: 1 SUBSCRIBE', 'CSeq: 1 NOTIFY'));
    const r = await p.next();
    expect(r.status).toBe(400);
    await p.write(tcpReq(p));
    await p.next((m) => m.status === 200, 3000, 1);
    expect(p.closed).toBe(false);
  });

  it('closes the connection on a framing error and counts it', async () => {
    const e = await setup({ overrides: { sip: { maxMessageSize: 2048 } } });
    const p = await peerOf(e);
    await p.write(`SUBSCRIBE sip:201@example.test SIP/2.0\r\nX-Big: ${'a'.repeat(4096)}\r\n`);
    await until(() => p.closed, 3000, 'close');
    expect(await counter(e.metrics, 'sipDropped', { reason: 'framing' })).toBe(1);
    // The listener still serves others.
    const q = await peerOf(e);
    await q.write(tcpReq(q));
    await q.next((m) => m.status === 200);
  });

  it('refuses connections past sip.limits.connectionsPerSource and counts them', async () => {
    const e = await setup({ overrides: { sip: { limits: { connectionsPerSource: 2 } } } });
    const a = await peerOf(e);
    const b = await peerOf(e);
    await a.write(tcpReq(a));
    await b.write(tcpReq(b));
    await a.next();
    await b.next();
    const c = await peerOf(e);
    await until(() => c.closed, 3000, 'refused connection closed');
    expect(await counter(e.metrics, 'overload', { limit: 'connectionsPerSource' })).toBe(1);
    a.close();
    await sleep(50);
    const d = await peerOf(e);
    await d.write(tcpReq(d));
    await d.next((m) => m.status === 200);
  });

  it('refuses connections past sip.limits.connectionsTotal', async () => {
    const e = await setup({ overrides: { sip: { limits: { connectionsTotal: 1 } } } });
    const a = await peerOf(e);
    await a.write(tcpReq(a));
    await a.next();
    const b = await peerOf(e);
    await until(() => b.closed, 3000, 'refused connection closed');
    expect(await counter(e.metrics, 'overload', { limit: 'connectionsTotal' })).toBe(1);
    expect(a.closed).toBe(false);
  });

  it('sends an in-dialog NOTIFY over the stored flow, without retransmission, bounded by Timer F', async () => {
    const scheduler = new FakeScheduler();
    const e = await setup({ timers: { scheduler } });
    const p = await peerOf(e);
    await p.write(tcpReq(p));
    await p.next((m) => m.status === 200);
    const flow = e.seen[0]!.flow;
    let outcome: RequestOutcome | undefined;
    void e.engine.sendRequest(notifySpec({
      transport: 'tcp', flowId: flow.id, requestUri: 'sip:watcher@127.0.0.1:1;transport=tcp',
    })).then((o) => { outcome = o; });
    const n = await p.next((m) => m.method === 'NOTIFY');
    expect(n.get('via')).toMatch(new RegExp(`^SIP/2.0/TCP 127.0.0.1:${e.addr('tcp').port};rport;branch=z9hG4bK[0-9a-f]{32}$`));
    scheduler.advance(16_000);
    await sleep(30);
    expect(p.received.filter((m) => m.method === 'NOTIFY')).toHaveLength(1);
    expect(outcome).toBeUndefined();
    scheduler.advance(16_000);
    await until(() => outcome !== undefined);
    expect(outcome).toMatchObject({ status: 408, local: 'timeout' });
    expect(await counter(e.metrics, 'notifyRetransmitted')).toBe(0);
  });

  it('the response to a NOTIFY on the flow resolves it', async () => {
    const e = await setup();
    const p = await peerOf(e);
    await p.write(tcpReq(p));
    await p.next((m) => m.status === 200);
    const out = e.engine.sendRequest(notifySpec({ transport: 'tcp', flowId: e.seen[0]!.flow.id, requestUri: 'sip:w@x.invalid;transport=tcp' }));
    const n = await p.next((m) => m.method === 'NOTIFY');
    await p.write(okFor(n));
    expect((await out).status).toBe(200);
  });

  it('a NOTIFY in flight fails with transport-error when its connection closes', async () => {
    const e = await setup();
    const p = await peerOf(e);
    await p.write(tcpReq(p));
    await p.next((m) => m.status === 200);
    const out = e.engine.sendRequest(notifySpec({ transport: 'tcp', flowId: e.seen[0]!.flow.id, requestUri: 'sip:w@x.invalid;transport=tcp' }));
    await p.next((m) => m.method === 'NOTIFY');
    p.close();
    expect(await out).toMatchObject({ status: 503, local: 'transport-error' });
  });

  it('opens a new connection to the Contact when the flow is gone (RFC 3261 §18.1.1)', async () => {
    const e = await setup();
    const p = await peerOf(e);
    await p.write(tcpReq(p));
    await p.next((m) => m.status === 200);
    const flowId = e.seen[0]!.flow.id;
    p.close();
    await sleep(50);
    const phone = await phoneServer();
    const o = await e.engine.sendRequest(notifySpec({ transport: 'tcp', flowId, requestUri: `sip:watcher@127.0.0.1:${phone.port};transport=tcp` }));
    expect(o.status).toBe(200);
    expect(phone.got).toHaveLength(1);
    expect(phone.got[0]!.get('via')).toMatch(/^SIP\/2.0\/TCP /);
    // The second NOTIFY reuses that connection.
    const o2 = await e.engine.sendRequest(notifySpec({ transport: 'tcp', flowId, requestUri: `sip:watcher@127.0.0.1:${phone.port};transport=tcp`, cseq: 8 }));
    expect(o2.status).toBe(200);
    expect(phone.sockets).toHaveLength(1);
  });

  it('goes to the first loose Route, not the Request-URI', async () => {
    const e = await setup();
    const proxy = await phoneServer();
    const o = await e.engine.sendRequest(notifySpec({
      transport: 'tcp', requestUri: 'sip:watcher@192.0.2.1:5060;transport=tcp', routeSet: [`<sip:127.0.0.1:${proxy.port};transport=tcp;lr>`],
    }));
    expect(o.status).toBe(200);
    expect(proxy.got[0]!.startLine).toBe('NOTIFY sip:watcher@192.0.2.1:5060;transport=tcp SIP/2.0');
    expect(proxy.got[0]!.get('route')).toBe(`<sip:127.0.0.1:${proxy.port};transport=tcp;lr>`);
  });

  it('a refused connection is a transport error; a .invalid host is no-flow', async () => {
    const e = await setup();
    const closed = await phoneServer();
    await new Promise<void>((r) => closed.server.close(() => r()));
    const o = await e.engine.sendRequest(notifySpec({ transport: 'tcp', requestUri: `sip:watcher@127.0.0.1:${closed.port};transport=tcp` }));
    expect(o).toMatchObject({ status: 503, local: 'transport-error' });
    const o2 = await e.engine.sendRequest(notifySpec({ transport: 'tcp', flowId: 'tcp|gone|1', requestUri: 'sip:watcher@abc.invalid;transport=tcp' }));
    expect(o2).toMatchObject({ status: 408, local: 'no-flow' });
  });

  it('answers over a new connection to received + sent-by port when the request\'s connection closed (§18.2.2)', async () => {
    let held: import('../../src/sip/port.js').ServerTransaction | undefined;
    const e = await setup({ handler: (tx) => { held = tx; } });
    const phone = await phoneServer();
    const p = await peerOf(e);
    await p.write(requestText(`SIP/2.0/TCP 127.0.0.1:${phone.port};branch=z9hG4bKreconnect1`, { callId: 'late@t' }));
    await until(() => held !== undefined);
    p.close();
    await sleep(50);
    held!.respond({ status: 200 });
    await until(() => phone.got.length === 1, 3000, 'response over a new connection');
    expect(phone.got[0]!.status).toBe(200);
    expect(phone.got[0]!.get('call-id')).toBe('late@t');
  });

  it('concurrent NOTIFYs to one peer with no open flow share one new connection', async () => {
    const e = await setup();
    const phone = await phoneServer();
    const uri = `sip:watcher@127.0.0.1:${phone.port};transport=tcp`;
    const outs = await Promise.all([1, 2, 3, 4, 5].map((cseq) => e.engine.sendRequest(notifySpec({ transport: 'tcp', requestUri: uri, cseq }))));
    expect(outs.map((o) => o.status)).toEqual([200, 200, 200, 200, 200]);
    expect(phone.sockets).toHaveLength(1);
    expect(phone.got.map((m) => m.get('cseq'))).toEqual(['1 NOTIFY', '2 NOTIFY', '3 NOTIFY', '4 NOTIFY', '5 NOTIFY']);
  });

  it('closes a connection whose peer stops reading once the write backlog passes its bound', async () => {
    const e = await setup({ overrides: { sip: { maxMessageSize: 1024 } } });
    const p = await peerOf(e);
    await p.write(tcpReq(p));
    await p.next((m) => m.status === 200);
    p.socket.pause(); // reads nothing more: the kernel buffers fill, then ours would
    const flowId = e.seen[0]!.flow.id;
    const body = 'x'.repeat(900);
    const outs: Array<Promise<{ status: number; local?: string }>> = [];
    for (let i = 0; i < 8000; i++) outs.push(e.engine.sendRequest(notifySpec({ transport: 'tcp', flowId, requestUri: 'sip:w@x.invalid;transport=tcp', cseq: i + 1, body })));
    const results = await Promise.all(outs);
    expect(results.every((o) => o.local === 'transport-error' || o.local === 'no-flow')).toBe(true);
    expect(await e.engine.sendRequest(notifySpec({ transport: 'tcp', flowId, requestUri: 'sip:w@x.invalid;transport=tcp' }))).toMatchObject({ local: 'no-flow' });
    p.socket.resume();
    await until(() => p.closed, 5000, 'connection closed');
  });

  it('closes an accepted connection that sends no SIP message within 64*T1; one that did stays', async () => {
    const e = await setup({ timers: { T1: 10, T2: 80, T4: 100 } }); // 64*T1 = 640 ms
    const silent = await peerOf(e);
    const talker = await peerOf(e);
    await talker.write(tcpReq(talker));
    await talker.next((m) => m.status === 200);
    const t0 = Date.now();
    await until(() => silent.closed, 3000, 'silent connection closed');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    await sleep(700);
    expect(talker.closed).toBe(false);
  });
});
