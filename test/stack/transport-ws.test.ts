// The engine over WebSocket (RFC 7118): the `sip` subprotocol is required, one SIP message per WS message,
// responses and NOTIFYs go back over the connection, and a closed connection leaves no way to reach the client.
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { WsPeer, counter, notifySpec, okFor, requestText, sleep, startEngine, until, type EngineUnderTest } from './engine-harness.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(opts: Parameters<typeof startEngine>[0] = {}): Promise<EngineUnderTest> {
  const e = await startEngine(opts);
  cleanups.push(() => e.stop());
  return e;
}

async function peerOf(e: EngineUnderTest, protocols?: string[]): Promise<WsPeer> {
  const p = await WsPeer.open(e.addr('ws').port, protocols);
  cleanups.push(() => p.close());
  return p;
}

function wsReq(p: WsPeer, o: Parameters<typeof requestText>[1] = {}): string {
  return requestText(p.via(), { ...o, extra: ['Contact: <sip:watcher@df7jal23ls0d.invalid;transport=ws>', ...(o.extra ?? [])] });
}

describe('embedded engine over WebSocket', () => {
  it('negotiates the sip subprotocol and answers over the same connection', async () => {
    const e = await setup();
    const p = await peerOf(e);
    expect(p.ws.protocol).toBe('sip');
    p.send(wsReq(p));
    const r = await p.next();
    expect(r.status).toBe(200);
    // Via sent-by is a .invalid host: received is added (RFC 3261 §18.2.1) and the answer still arrives.
    expect(r.all('via')[0]).toMatch(/^SIP\/2\.0\/WS [0-9a-f]+\.invalid;branch=z9hG4bK[0-9a-f]+;received=127\.0\.0\.1$/);
    expect(e.seen[0]!.flow.transport).toBe('ws');
    expect(await counter(e.metrics, 'sipRequests', { transport: 'ws' })).toBe(1);
  });

  it('refuses a WebSocket without the sip subprotocol (RFC 7118 §4.1)', async () => {
    const e = await setup();
    await expect(WsPeer.open(e.addr('ws').port, [])).rejects.toThrow(/400/);
    await expect(WsPeer.open(e.addr('ws').port, ['xmpp'])).rejects.toThrow(/400/);
    // With sip among others it is accepted.
    const p = await peerOf(e, ['xmpp', 'sip']);
    expect(p.ws.protocol).toBe('sip');
  });

  it('each WS message is one SIP message; a malformed one gets 400, garbage is dropped', async () => {
    const e = await setup();
    const p = await peerOf(e);
    p.send(wsReq(p).replace('CSeq: 1 SUBSCRIBE', 'CSeq: x SUBSCRIBE'));
    expect((await p.next()).status).toBe(400);
    p.send('garbage that is not SIP');
    await sleep(30);
    expect(p.received).toHaveLength(1);
    expect(await counter(e.metrics, 'sipDropped', { reason: 'malformed' })).toBe(1);
    p.send(wsReq(p));
    await p.next((m) => m.status === 200, 3000, 1);
  });

  it('a retransmission over WS reaches the handler again once Timer J (0 on reliable transports) is over', async () => {
    const e = await setup();
    const p = await peerOf(e);
    const text = wsReq(p);
    p.send(text);
    await p.next();
    p.send(text);
    await until(() => p.received.length === 2);
    expect(e.seen).toHaveLength(2);
  });

  it('sends an in-dialog NOTIFY over the stored WS flow; its 200 resolves it', async () => {
    const e = await setup();
    const p = await peerOf(e);
    p.send(wsReq(p));
    await p.next();
    const out = e.engine.sendRequest(notifySpec({ transport: 'ws', flowId: e.seen[0]!.flow.id, requestUri: 'sip:watcher@df7jal23ls0d.invalid;transport=ws' }));
    const n = await p.next((m) => m.method === 'NOTIFY');
    expect(n.get('via')).toMatch(new RegExp(`^SIP/2.0/WS 127.0.0.1:${e.addr('ws').port};rport;branch=z9hG4bK[0-9a-f]{32}$`));
    p.send(okFor(n));
    expect((await out).status).toBe(200);
  });

  it('with the WS flow gone, a NOTIFY is 408 no-flow at once', async () => {
    const e = await setup();
    const p = await peerOf(e);
    p.send(wsReq(p));
    await p.next();
    const flowId = e.seen[0]!.flow.id;
    expect(e.engine.isFlowOpen?.(flowId)).toBe(true);
    await p.close();
    await sleep(30);
    expect(e.engine.isFlowOpen?.(flowId)).toBe(false);
    expect(e.engine.isFlowOpen?.('ws|from-an-earlier-boot|1')).toBe(false);
    const o = await e.engine.sendRequest(notifySpec({ transport: 'ws', flowId, requestUri: 'sip:watcher@df7jal23ls0d.invalid;transport=ws' }));
    expect(o).toMatchObject({ status: 408, local: 'no-flow' });
  });

  it('counts WS connections against the connection caps', async () => {
    const e = await setup({ overrides: { sip: { limits: { connectionsPerSource: 1 } } } });
    await peerOf(e);
    await expect(WsPeer.open(e.addr('ws').port)).rejects.toThrow(/503/);
    expect(await counter(e.metrics, 'overload', { limit: 'connectionsPerSource' })).toBe(1);
  });

  it('stop() closes open WebSockets', async () => {
    const e = await setup();
    const p = await peerOf(e);
    await e.engine.stop();
    await until(() => p.ws.readyState === WebSocket.CLOSED, 3000, 'ws closed');
  });

  it('closes a WebSocket that sends no SIP message within 64*T1', async () => {
    const e = await setup({ timers: { T1: 10, T2: 80, T4: 100 } });
    const silent = await peerOf(e);
    const talker = await peerOf(e);
    talker.send(wsReq(talker));
    await talker.next();
    await until(() => silent.ws.readyState === WebSocket.CLOSED, 3000, 'silent ws closed');
    await sleep(700);
    expect(talker.ws.readyState).toBe(WebSocket.OPEN);
  });
});
