// UDP overload control (src/sip/stack/overload.ts): a burst that leaves the receive queue older than
// sip.limits.maxQueueDelayMs gets 503 + Retry-After for its new SUBSCRIBEs instead of a backlog that outlives the
// senders' Timer E; what was answered 200 is stored; once the queue is drained new requests are served again. With
// the limit at 0 (off) the same burst is never shed on queue delay.
import { describe, it, expect } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import { RawPeer, subscribeText, type RawMessage } from '../helpers/raw-sip.js';
import { QueueDelayGate } from '../../src/sip/stack/overload.js';

const BURST = 2500;

interface BurstResult { ok: Set<string>; shed: RawMessage[]; stored: Set<string>; metric: string; after: number }

async function burst(maxQueueDelayMs: number): Promise<BurstResult> {
  const srv = await startTestServer({ overrides: { sip: { limits: { maxQueueDelayMs } } } });
  const peer = await RawPeer.open({ port: srv.sip('udp').port }, { recvBufferBytes: 4 * 1024 * 1024 });
  try {
    // Let the probe run a little, then send the burst in one go: the server reads it behind the probes.
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < BURST; i++) {
      const callId = `burst-${i}@127.0.0.1`;
      // 250 at a time, 2 ms apart: far faster than the server can take them, without overflowing its socket.
      if (i > 0 && i % 250 === 0) await new Promise((r) => setTimeout(r, 2));
      peer.sendRaw(subscribeText(peer, { user: `7${String(i).padStart(4, '0')}`, watcher: `w${i}`, expires: 600, callId }));
    }
    const answered = () => peer.received.filter((m) => m.status !== undefined && m.status >= 200 && /SUBSCRIBE/.test(m.get('cseq') ?? ''));
    // Until every SUBSCRIBE is answered, or nothing more comes for 1 s (this peer shares the event loop with the
    // server, and a few answers overflow its own receive buffer: they are lost, not late).
    const by = Date.now() + 30_000;
    let seen = -1;
    while (answered().length < BURST && answered().length !== seen && Date.now() < by) {
      seen = answered().length;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const finals = answered();
    const ok = new Set(finals.filter((m) => m.status === 200).map((m) => m.get('call-id')!));
    const shed = finals.filter((m) => m.status === 503);
    expect(finals.length, 'nearly every SUBSCRIBE of the burst was answered').toBeGreaterThan(BURST * 0.9);
    await new Promise((r) => setTimeout(r, 300)); // the last commits
    const stored = new Set((srv.server.db.prepare("SELECT call_id FROM subscriptions WHERE call_id LIKE 'burst-%'").all() as Array<{ call_id: string }>).map((x) => x.call_id));
    const metric = await (await fetch(`${srv.apiUrl}/metrics`)).text();
    // The queue is drained: a new SUBSCRIBE is served.
    const later = await peer.request(subscribeText(peer, { user: '79999', expires: 600 }), 10_000);
    return { ok, shed, stored, metric, after: later.status ?? 0 };
  } finally {
    peer.close();
    await srv.stop();
  }
}

describe('UDP queue-delay gate', () => {
  it('sheds new SUBSCRIBEs of a burst with 503 + Retry-After, keeps every one it accepted, then serves again', async () => {
    const r = await burst(20);
    expect(r.shed.length, 'some of the burst was shed').toBeGreaterThan(0);
    for (const m of r.shed) expect(Number(m.get('retry-after'))).toBeGreaterThan(0);
    expect(r.ok.size, 'some of the burst was served').toBeGreaterThan(0);
    for (const id of r.ok) expect(r.stored.has(id), `${id} was answered 200 and is stored`).toBe(true);
    for (const m of r.shed) expect(r.stored.has(m.get('call-id')!), 'a shed SUBSCRIBE left no row').toBe(false);
    expect(r.metric).toMatch(/lamplighter_overload_rejections_total\{limit="queueDelay"\} [1-9]/);
    expect(r.after).toBe(200);
  }, 60_000);

  it('with the limit at 0 the same burst is not shed on queue delay', async () => {
    const r = await burst(0);
    expect(r.metric).not.toMatch(/limit="queueDelay"/);
    expect(r.shed.length).toBe(0);
    for (const id of r.ok) expect(r.stored.has(id)).toBe(true);
    expect(r.after).toBe(200);
  }, 60_000);
});

describe('QueueDelayGate', () => {
  it('sheds when two late probes in a row show the queue growing, not after one, nor while it drains', () => {
    const g = new QueueDelayGate(100);
    g.observe(500); // one stall
    expect(g.shedding).toBe(false);
    g.observe(300); // late, but the queue it left is draining
    expect(g.shedding).toBe(false);
    g.observe(10);
    g.observe(150);
    expect(g.shedding).toBe(false);
    g.observe(120); // still late, but shorter than the one before: draining
    expect(g.shedding).toBe(false);
    g.observe(180); // late and growing: arrivals outrun the server
    expect(g.shedding).toBe(true);
    g.observe(80); // below the limit but above half of it: keeps shedding (no flapping at the limit)
    expect(g.shedding).toBe(true);
    g.observe(49);
    expect(g.shedding).toBe(false);
    expect(g.lastDelayMs).toBe(49);
  });

  it('is off at limit 0', () => {
    const g = new QueueDelayGate(0);
    for (let i = 0; i < 10; i++) g.observe(10_000);
    expect(g.shedding).toBe(false);
  });
});
