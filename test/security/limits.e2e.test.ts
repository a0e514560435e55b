// The named limits, end to end over loopback sockets: each test drives the server past one cap and checks the
// clear SIP answer (or refused connection), then that the server still serves a normal request.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { LoopPeer, authenticated, publish, seed, sleep, subscribe } from './helpers.js';

const ACME = 'acme.test';
const PER_WATCHER = 3;
const PER_SOURCE = 3;

let ts: TestServer;
const peers: LoopPeer[] = [];

beforeAll(async () => {
  ts = await startTestServer({
    overrides: {
      sip: {
        auth: true,
        maxHeaders: 60,
        limits: { subscriptionsPerWatcher: PER_WATCHER, connectionsPerSource: PER_SOURCE },
      },
    },
  });
  seed(ts.server.db, [{ name: 'Acme', realm: ACME, devices: [{ username: '100', password: 'limits-100' }, { username: '101', password: 'limits-101' }] }]);
});

afterAll(async () => {
  for (const p of peers) p.close();
  await ts?.stop();
});

async function peer(localAddress = '127.0.0.1', transport: 'udp' | 'tcp' = 'udp'): Promise<LoopPeer> {
  const p = await LoopPeer.open(transport === 'udp' ? ts.sip('udp').port : ts.sip('tcp').port, { localAddress, transport });
  peers.push(p);
  return p;
}

/** A normal request still gets its normal answer (a challenge). */
async function stillServes(localAddress: string): Promise<void> {
  const p = await peer(localAddress);
  const r = await p.request(subscribe(p, { user: '201', domain: ACME, watcher: '100' }));
  expect(r.status).toBe(401);
}

describe('limits', () => {
  it(`sip.limits.subscriptionsPerWatcher: subscription ${PER_WATCHER + 1} from one watcher is refused with 403`, async () => {
    const p = await peer('127.0.1.1');
    const statuses: number[] = [];
    for (let i = 0; i < PER_WATCHER + 2; i++) {
      const { final } = await authenticated(p, subscribe(p, { user: `2${i}0`, domain: ACME, watcher: '101' }), { username: '101', password: 'limits-101' });
      statuses.push(final.status!);
    }
    expect(statuses.slice(0, PER_WATCHER)).toEqual(Array(PER_WATCHER).fill(200));
    expect(statuses.slice(PER_WATCHER)).toEqual([403, 403]);
    expect(ts.server.presence.listSubscriptions(ACME).filter((s) => s.watcher.includes('101@'))).toHaveLength(PER_WATCHER);
  });

  it(`sip.limits.connectionsPerSource: connection ${PER_SOURCE + 1} from one address is refused, others are not`, async () => {
    const port = ts.sip('tcp').port;
    const open = async (localAddress: string): Promise<{ s: Socket; closed: Promise<void> }> => {
      const s = connect({ port, host: '127.0.0.1', localAddress });
      s.on('error', () => {});
      await new Promise<void>((r, j) => { s.once('connect', () => r()); s.once('error', j); });
      return { s, closed: new Promise<void>((r) => s.once('close', () => r())) };
    };
    const conns = [];
    for (let i = 0; i < PER_SOURCE; i++) conns.push(await open('127.0.1.2'));
    await sleep(50);
    const extra = await open('127.0.1.2');
    const refused = await Promise.race([extra.closed.then(() => true), sleep(1500).then(() => false)]);
    expect(refused).toBe(true);
    // The first ones are still open and usable; another source may connect.
    const other = await peer('127.0.1.3', 'tcp');
    const r = await other.request(subscribe(other, { user: '201', domain: ACME, watcher: '100' }));
    expect(r.status).toBe(401);
    for (const c of conns) expect(c.s.destroyed).toBe(false);
    for (const c of conns) c.s.destroy();
  });

  it('sip.maxMessageSize: a 70 KiB SUBSCRIBE is refused (513 or the stream closed), never processed', async () => {
    const p = await peer('127.0.1.4', 'tcp');
    const closed = new Promise<boolean>((r) => { (p as unknown as { tcp: Socket }).tcp.once('close', () => r(true)); setTimeout(() => r(false), 3000); });
    const pad = 'x'.repeat(70 * 1024);
    p.send(subscribe(p, { user: '201', domain: ACME, watcher: '100', extra: [`X-Pad: ${pad}`] }));
    const answer = await Promise.race([
      p.waitFor((m) => m.status !== undefined, 3000).then((m) => m.status!).catch(() => 0),
      closed.then((c) => (c ? -1 : 0)),
    ]);
    // -1: the stream was closed (RFC 3261 §18.3 framing cannot recover), or a 513 Message Too Large.
    expect([513, -1]).toContain(answer);
    expect(p.received.some((m) => m.status === 401 || m.status === 200)).toBe(false);
    await stillServes('127.0.1.5');
  });

  it('sip.maxHeaders: a SUBSCRIBE with too many header lines gets 400, not a challenge', async () => {
    const p = await peer('127.0.1.6');
    const extra = Array.from({ length: 80 }, (_, i) => `X-H${i}: v`);
    const r = await p.request(subscribe(p, { user: '201', domain: ACME, watcher: '100', extra }));
    expect(r.status).toBe(400);
    const ok = await p.request(subscribe(p, { user: '201', domain: ACME, watcher: '100', extra: extra.slice(0, 10) }));
    expect(ok.status).toBe(401);
  });
});

describe('overload', () => {
  let small: TestServer;
  beforeAll(async () => {
    small = await startTestServer({ overrides: { sip: { auth: false, limits: { maxPendingRequests: 2 } } } });
  });
  afterAll(async () => {
    await small?.stop();
  });

  it('sheds a burst past sip.limits.maxPendingRequests with 503 + Retry-After, answers every request, recovers', async () => {
    // TCP, so the kernel drops nothing: every request that reached the server must be answered.
    const p = await LoopPeer.open(small.sip('tcp').port, { localAddress: '127.0.1.7', transport: 'tcp' });
    peers.push(p);
    p.answer = () => null; // never answer NOTIFYs: nothing else competes for the loop
    const N = 200;
    const texts = Array.from({ length: N }, (_, i) => subscribe(p, { user: `u${i}`, domain: 'lab.test', watcher: `w${i}` }));
    const answers = texts.map((t) => p.request(t, 8000));
    const results = await Promise.all(answers);
    const shed = results.filter((m) => m.status === 503);
    expect(shed.length).toBeGreaterThan(0);
    for (const m of shed) expect(Number(m.get('retry-after'))).toBeGreaterThan(0);
    expect(results.filter((m) => m.status === 200).length).toBeGreaterThan(0);
    expect(results.every((m) => m.status === 200 || m.status === 503)).toBe(true);
    await sleep(100);
    const later = await p.request(subscribe(p, { user: 'after', domain: 'lab.test', watcher: 'after' }));
    expect(later.status).toBe(200);
  });
});

describe('the other caps (auth off, so only the cap decides)', () => {
  let lab: TestServer;
  beforeAll(async () => {
    lab = await startTestServer({
      overrides: { sip: { auth: false, limits: { watchersPerPresentity: 2, totalSubscriptions: 5, publicationsPerAor: 2, connectionsTotal: 4 } } },
    });
  });
  afterAll(async () => {
    await lab?.stop();
  });
  const labPeer = async (localAddress: string, transport: 'udp' | 'tcp' = 'udp') => {
    const p = await LoopPeer.open(transport === 'udp' ? lab.sip('udp').port : lab.sip('tcp').port, { localAddress, transport });
    peers.push(p);
    return p;
  };

  it('sip.limits.watchersPerPresentity: the third watcher of one presentity gets 503 + Retry-After', async () => {
    const p = await labPeer('127.0.2.1');
    const st: Array<{ status: number; retry?: string }> = [];
    for (let i = 0; i < 3; i++) {
      const r = await p.request(subscribe(p, { user: 'popular', domain: 'lab.test', watcher: `fan${i}` }));
      st.push({ status: r.status!, retry: r.get('retry-after') });
    }
    expect(st.map((x) => x.status)).toEqual([200, 200, 503]);
    expect(Number(st[2]!.retry)).toBeGreaterThan(0);
  });

  it('sip.limits.totalSubscriptions: past the total, new subscriptions get 503 + Retry-After', async () => {
    const p = await labPeer('127.0.2.2');
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await p.request(subscribe(p, { user: `t${i}`, domain: 'lab.test', watcher: `tw${i}` }))).status!);
    // Two subscriptions exist from the previous test: 3 more fit, then the cap.
    expect(statuses).toEqual([200, 200, 200, 503, 503]);
    expect(lab.server.presence.listSubscriptions('lab.test')).toHaveLength(5);
  });

  it('sip.limits.publicationsPerAor: a third publication for one AOR gets 503 + Retry-After', async () => {
    const p = await labPeer('127.0.2.3');
    const body = '<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:busy@lab.test"></dialog-info>';
    const statuses: number[] = [];
    let retry: string | undefined;
    for (let i = 0; i < 3; i++) {
      const r = await p.request(publish(p, { user: 'busy', domain: 'lab.test', body }));
      statuses.push(r.status!);
      retry = r.get('retry-after');
    }
    expect(statuses).toEqual([200, 200, 503]);
    expect(Number(retry)).toBeGreaterThan(0);
  });

  it('sip.limits.connectionsTotal: past the total, connections from any source are closed', async () => {
    const port = lab.sip('tcp').port;
    const socks: Socket[] = [];
    const open = async (localAddress: string) => {
      const s = connect({ port, host: '127.0.0.1', localAddress });
      s.on('error', () => {});
      socks.push(s);
      await new Promise<void>((r, j) => { s.once('connect', () => r()); s.once('error', j); });
      return new Promise<boolean>((r) => { s.once('close', () => r(true)); setTimeout(() => r(false), 1500); });
    };
    const closes = [];
    for (let i = 0; i < 4; i++) closes.push(open(`127.0.2.${10 + i}`));
    await sleep(50);
    const extra = await open('127.0.2.20');
    expect(extra).toBe(true);
    expect((await Promise.all(closes)).filter(Boolean)).toHaveLength(0);
    for (const s of socks) s.destroy();
  });
});
