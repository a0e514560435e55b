// Reconnect back-off of the drachtio connection, with real drachtio-srf against a local TCP server that accepts
// and drops connections (or speaks the authenticate step), and timers the test fires by hand.
import { afterEach, describe, expect, it } from 'vitest';
import { DrachtioConnection } from '../../src/sip/drachtio/connection.js';
import { loadSrf } from '../../src/sip/drachtio/types.js';
import { silentLogger } from '../../src/log.js';
import { FakeDrachtioServer } from './fake-server.js';
import { ManualScheduler, until } from './helpers.js';

const AUTH_MS = 99_999;
const Srf = loadSrf();
let fake: FakeDrachtioServer;
let conn: DrachtioConnection | undefined;

afterEach(async () => {
  conn?.stop();
  conn = undefined;
  await fake?.close();
});

function connection(port: number, scheduler: ManualScheduler, min = 100, max = 1000): DrachtioConnection {
  return new DrachtioConnection({
    host: '127.0.0.1', port, secret: 'cymru', reconnectMinMs: min, reconnectMaxMs: max, authTimeoutMs: AUTH_MS, pingIntervalMs: 15_000,
    createSrf: () => new Srf(), setup: (srf) => { srf.use('subscribe', () => {}); },
    scheduler, logger: silentLogger,
  });
}

describe('drachtio connection back-off', () => {
  it('doubles the delay from reconnectMinMs up to reconnectMaxMs while connections are dropped', async () => {
    fake = new FakeDrachtioServer();
    fake.mode = 'drop';
    const port = await fake.listen();
    const sched = new ManualScheduler();
    conn = connection(port, sched);
    await conn.start(); // resolves after the first failed attempt
    expect(conn.state).toBe('waiting');
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      await until(() => sched.delays(AUTH_MS).length === 1, 3000, `retry timer ${i}`);
      seen.push(...sched.fire(AUTH_MS));
      await until(() => fake.connections === i + 2 && conn!.state === 'waiting', 3000, `attempt ${i + 2}`);
    }
    expect(seen).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('resets to reconnectMinMs after a successful authentication, and reports lost connections', async () => {
    fake = new FakeDrachtioServer();
    fake.mode = 'drop';
    const port = await fake.listen();
    const sched = new ManualScheduler();
    conn = connection(port, sched);
    const states: string[] = [];
    conn.onState = (s) => states.push(s);
    await conn.start();
    await until(() => sched.delays(AUTH_MS).length === 1);
    expect(sched.fire(AUTH_MS)).toEqual([100]);
    await until(() => sched.delays(AUTH_MS).length === 1 && fake.connections === 2);
    fake.mode = 'speak';
    expect(sched.fire(AUTH_MS)).toEqual([200]);
    await until(() => conn!.state === 'connected', 3000, 'connected');
    expect(conn.connected?.hostports).toEqual([{ transport: 'udp', address: '127.0.0.1', port: 5070 }, { transport: 'tcp', address: '127.0.0.1', port: 5070 }]);
    expect(conn.connected?.serverVersion).toBe('v0.9.2-fake');
    // route|subscribe went out after authenticate
    await fake.waitFrame((f) => f.type === 'route' && f.tokens[0] === 'subscribe');
    fake.dropAll();
    await until(() => conn!.state === 'waiting', 3000, 'lost');
    expect(sched.delays(AUTH_MS)).toEqual([100]);
    expect(conn.lastHostports.length).toBe(2); // kept for contactUri() while down
    expect(states).toEqual(['connecting', 'waiting', 'connecting', 'waiting', 'connecting', 'connected', 'waiting']);
  });

  it('treats a refused secret as a failed attempt and retries', async () => {
    fake = new FakeDrachtioServer('other-secret');
    const port = await fake.listen();
    const sched = new ManualScheduler();
    conn = connection(port, sched);
    await conn.start();
    expect(conn.state).toBe('waiting');
    await fake.waitFrame((f) => f.type === 'authenticate' && f.tokens[0] === 'cymru');
    expect(sched.delays(AUTH_MS)).toEqual([100]);
  });

  it('gives up on a peer that accepts but never answers authenticate', async () => {
    fake = new FakeDrachtioServer();
    fake.mode = 'silent';
    const port = await fake.listen();
    const sched = new ManualScheduler();
    conn = connection(port, sched);
    const started = conn.start();
    await fake.waitFrame((f) => f.type === 'authenticate');
    expect(conn.state).toBe('connecting');
    // fire the auth guard
    for (const [id, t] of [...sched.pending]) if (t.ms === AUTH_MS) { sched.pending.delete(id); t.fn(); }
    await started;
    expect(conn.state).toBe('waiting');
    expect(sched.delays(AUTH_MS)).toEqual([100]);
  });

  it('stop() cancels the retry and never connects again', async () => {
    fake = new FakeDrachtioServer();
    fake.mode = 'drop';
    const port = await fake.listen();
    const sched = new ManualScheduler();
    conn = connection(port, sched);
    await conn.start();
    conn.stop();
    expect(conn.state).toBe('stopped');
    expect(sched.pending.size).toBe(0);
    expect(await conn.waitConnected(10)).toBe(false);
    expect(fake.connections).toBe(1);
  });
});
