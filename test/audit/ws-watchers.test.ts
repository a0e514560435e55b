// Audit of issue 2: WebSocket watchers (RFC 7118). A browser cannot be dialled, so a subscription whose WebSocket
// is gone can only wait for its expiry or be replaced when the same watcher subscribes again.
import { describe, it, expect, afterAll } from 'vitest';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { parseRaw, responseTo, randomTag, RawPeer, subscribeText, type RawMessage } from '../helpers/raw-sip.js';
import { dbRows, sleep, until } from './util.js';

const servers: TestServer[] = [];
const sockets: WebSocket[] = [];
afterAll(async () => {
  for (const s of sockets) s.terminate();
  for (const s of servers) await s.stop();
});

/** One browser tab: its own WebSocket and `.invalid` host (as SIP.js does), answering NOTIFYs 200. */
async function tab(port: number) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, 'sip');
  sockets.push(ws);
  await new Promise<void>((r, j) => { ws.once('open', () => r()); ws.once('error', j); });
  const received: RawMessage[] = [];
  ws.on('message', (d) => {
    const m = parseRaw(d.toString());
    received.push(m);
    if (m.method === 'NOTIFY') ws.send(responseTo(m, 200));
  });
  ws.on('error', () => undefined);
  const host = `${randomTag()}.invalid`;
  return {
    received,
    async subscribe(user: string): Promise<RawMessage> {
      const callId = `${randomTag()}@ws`;
      ws.send([
        `SUBSCRIBE sip:${user}@example.test SIP/2.0`,
        `Via: SIP/2.0/WS ${host};branch=z9hG4bK${randomTag()}${randomTag()}`,
        'Max-Forwards: 70',
        `From: <sip:browser@example.test>;tag=${randomTag()}`,
        `To: <sip:${user}@example.test>`,
        `Call-ID: ${callId}`,
        'CSeq: 1 SUBSCRIBE',
        `Contact: <sip:browser@${host};transport=ws>`,
        'Event: dialog',
        'Accept: application/dialog-info+xml',
        'Expires: 600',
        'Content-Length: 0',
        '', '',
      ].join('\r\n'));
      return until(() => received.find((m) => m.status !== undefined && m.get('call-id') === callId), 5000, 'answer over WS');
    },
    close(): void { ws.close(); },
  };
}

const rows = (ts: TestServer) => dbRows(ts.dbFile, "SELECT call_id FROM subscriptions WHERE watcher_uri = 'sip:browser@example.test'");

describe('WebSocket watchers', () => {
  it('a second open tab of the same watcher keeps the first tab\'s subscription (both are reachable)', async () => {
    const ts = await startTestServer();
    servers.push(ts);
    const a = await tab(ts.sip('ws').port);
    const b = await tab(ts.sip('ws').port);
    expect((await a.subscribe('201')).status).toBe(200);
    expect((await b.subscribe('201')).status).toBe(200);
    await sleep(200);
    expect(rows(ts)).toHaveLength(2);
  });

  // Audit finding, fixed in 3abb863/694c5b7 (SipEngine.isFlowOpen): a page reload left the closed WebSocket's
  // subscription until a NOTIFY to it failed, so reloads without lamp changes piled up dead subscriptions against
  // sip.limits.subscriptionsPerWatcher (here 2: the third reload got 403).
  it('a reload (WebSocket closed, same watcher subscribes again) replaces the old subscription before any NOTIFY failed', async () => {
    const ts = await startTestServer({ overrides: { sip: { limits: { subscriptionsPerWatcher: 2 } } } });
    servers.push(ts);
    for (let reload = 0; reload < 3; reload++) {
      const t = await tab(ts.sip('ws').port);
      const r = await t.subscribe('202');
      expect(r.status, `subscribe after ${reload} reloads`).toBe(200);
      await sleep(100);
      t.close();
      await sleep(200);
    }
    expect(rows(ts)).toHaveLength(1);
  });

  // The same for a TCP client whose Contact cannot be dialled (`.invalid` host, RFC 5626 / SIP.js with a TCP
  // transport; issue 2 names `.invalid` hosts beside WebSocket): such subscriptions are flow-bound (face-common.ts).
  it('SIP.js over TCP (Contact on an .invalid host): after the connection closed, a re-subscribe replaces the old one too', async () => {
    const ts = await startTestServer({ overrides: { sip: { limits: { subscriptionsPerWatcher: 2 } } } });
    servers.push(ts);
    for (let reload = 0; reload < 3; reload++) {
      const p = await RawPeer.open({ port: ts.sip('tcp').port }, { transport: 'tcp' });
      const host = `${randomTag()}.invalid`;
      const text = subscribeText(p, { user: '203', watcher: 'browser', expires: 600 })
        .replace(/^Via: SIP\/2\.0\/TCP [^;]+;/m, `Via: SIP/2.0/TCP ${host};`)
        .replace(/^Contact: .*$/m, `Contact: <sip:browser@${host};transport=tcp>`);
      const r = await p.request(text);
      expect(r.status, `subscribe after ${reload} reconnects`).toBe(200);
      await sleep(100);
      p.close();
      await sleep(200);
    }
    expect(rows(ts)).toHaveLength(1);
  });
});
