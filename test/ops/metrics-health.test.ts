// Issue 7: /health, /ready and /metrics without a token, and metrics that move as SIP traffic flows.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawPeer, subscribeText, publishText, randomTag } from '../helpers/raw-sip.js';

let srv: TestServer;
beforeAll(async () => { srv = await startTestServer(); });
afterAll(async () => { await srv?.stop(); });

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${srv.apiUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

describe('health, readiness and metrics', () => {
  it('/health and /ready answer without a token once the engine listens', async () => {
    const h = await fetch(`${srv.apiUrl}/health`);
    expect(h.status).toBe(200);
    const r = await fetch(`${srv.apiUrl}/ready`);
    expect(r.status).toBe(200);
  });

  it('/metrics is Prometheus text and counts requests, responses, subscriptions, NOTIFYs and publications', async () => {
    const res = await fetch(`${srv.apiUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);

    const before = {
      options: await metric('lamplighter_sip_requests_total', { method: 'OPTIONS' }),
      subs: await metric('lamplighter_subscriptions', { event: 'dialog', transport: 'udp' }),
      notify: await metric('lamplighter_notify_sent_total'),
      resp200: await metric('lamplighter_sip_responses_total', { status: '200' }),
      pubs: await metric('lamplighter_publish_total'),
    };

    const peer = await RawPeer.open({ port: srv.sip('udp').port });
    try {
      const callId = `${randomTag()}@127.0.0.1`;
      const opt = await peer.request([
        'OPTIONS sip:example.test SIP/2.0', `Via: ${peer.via()}`, 'Max-Forwards: 70',
        `From: <sip:probe@example.test>;tag=${randomTag()}`, '<sip:example.test>'.replace(/^/, 'To: '),
        `Call-ID: ${callId}`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', ''].join('\r\n'));
      expect(opt.status).toBe(200);

      const ok = await peer.request(subscribeText(peer, { user: 'm201', expires: 600 }));
      expect(ok.status).toBe(200);
      await peer.waitFor((m) => m.method === 'NOTIFY', 5000, 0);
      const pub = await peer.request(publishText(peer, { user: 'm201', state: 'confirmed' }));
      expect(pub.status).toBe(200);
      await peer.waitFor((m) => m.method === 'NOTIFY' && m.body.includes('confirmed'), 5000, 0);

      expect(await metric('lamplighter_sip_requests_total', { method: 'OPTIONS' })).toBe(before.options + 1);
      expect(await metric('lamplighter_subscriptions', { event: 'dialog', transport: 'udp' })).toBe(before.subs + 1);
      expect(await metric('lamplighter_notify_sent_total')).toBeGreaterThanOrEqual(before.notify + 2);
      expect(await metric('lamplighter_sip_responses_total', { status: '200' })).toBeGreaterThanOrEqual(before.resp200 + 3);
      expect(await metric('lamplighter_publish_total')).toBe(before.pubs + 1);
      expect(await metric('lamplighter_fanout_seconds_count')).toBeGreaterThan(0);
      expect(await metric('lamplighter_sqlite_commit_seconds_count')).toBeGreaterThan(0);
      const text = await (await fetch(`${srv.apiUrl}/metrics`)).text();
      expect(text).toContain('lamplighter_event_loop_lag_seconds');
    } finally {
      peer.close();
    }
  });
});
