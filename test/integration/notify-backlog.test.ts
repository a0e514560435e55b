// Overload: NOTIFYs that nobody answers (Timer E/F, 32 s each) are a queue. Past sip.limits.maxClientTransactions the
// server takes no new work (503 + Retry-After) instead of letting that queue, and memory, grow; existing watchers
// keep their subscriptions, and the cap is counted in lamplighter_overload_rejections_total{limit="clientTransactions"}.
import { describe, it, expect } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import { RawPeer, subscribeText } from '../helpers/raw-sip.js';

describe('NOTIFY backlog cap', () => {
  it('answers 503 with Retry-After once maxClientTransactions NOTIFYs wait for answers', async () => {
    const srv = await startTestServer({ overrides: { sip: { limits: { maxClientTransactions: 5 } } } });
    // A watcher that never answers NOTIFY: each subscription leaves one NOTIFY client transaction in flight.
    const silent = await RawPeer.open({ port: srv.sip('udp').port }, { answer: () => null });
    try {
      for (let i = 0; i < 5; i++) {
        const ok = await silent.request(subscribeText(silent, { user: `50${i}`, expires: 600 }));
        expect(ok.status).toBe(200);
        const seen = silent.received.length;
        await silent.waitFor((m) => m.method === 'NOTIFY', 5000, seen - 1); // its initial NOTIFY, left unanswered
      }
      const shed = await silent.request(subscribeText(silent, { user: '599', expires: 600 }));
      expect(shed.status).toBe(503);
      expect(Number(shed.get('retry-after'))).toBeGreaterThan(0);
      const text = await (await fetch(`${srv.apiUrl}/metrics`)).text();
      expect(text).toMatch(/lamplighter_overload_rejections_total\{limit="clientTransactions"\} [1-9]/);
      // The five acknowledged subscriptions are still there.
      const rows = srv.server.db.prepare('SELECT count(*) AS n FROM subscriptions').get() as { n: number };
      expect(rows.n).toBe(5);
    } finally {
      silent.close();
      await srv.stop();
    }
  });

  it('does not count answered NOTIFYs that only wait out Timer K (a busy fan-out is not a backlog)', async () => {
    const srv = await startTestServer({ overrides: { sip: { limits: { maxClientTransactions: 5 } } } });
    // This watcher answers every NOTIFY, so each transaction is Completed (held 5 s for Timer K) within a turn or two.
    const peer = await RawPeer.open({ port: srv.sip('udp').port });
    try {
      for (let i = 0; i < 12; i++) {
        const seen = peer.received.length;
        const ok = await peer.request(subscribeText(peer, { user: `51${i}`, expires: 600 }));
        expect(ok.status).toBe(200);
        await peer.waitFor((m) => m.method === 'NOTIFY', 5000, seen - 1);
        await new Promise((r) => setTimeout(r, 20)); // its 200 is matched
      }
      const rows = srv.server.db.prepare('SELECT count(*) AS n FROM subscriptions').get() as { n: number };
      expect(rows.n).toBe(12);
      const text = await (await fetch(`${srv.apiUrl}/metrics`)).text();
      expect(text).not.toMatch(/lamplighter_overload_rejections_total\{limit="clientTransactions"\} [1-9]/);
    } finally {
      peer.close();
      await srv.stop();
    }
  });
});
