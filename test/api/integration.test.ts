// The admin API on the whole server: a raw-UDP watcher subscribes over real SIP, the test resets and sets its
// lamp through the API, and asserts on the NOTIFYs the watcher received and on the API's answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawPeer, publishText, subscribeText, type RawMessage } from '../helpers/raw-sip.js';
import { Directory } from '../../src/store/directory.js';
import { TokenStore } from '../../src/store/tokens.js';

const REALM = 'acme.example.com';
let srv: TestServer;
let watcher: RawPeer;
let pbx: RawPeer;
let accountId: string;
let token: string;

async function api(method: string, path: string, data?: unknown): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(srv.apiUrl + path, {
    method,
    headers: { 'X-Auth-Token': token, 'Content-Type': 'application/json' },
    body: data === undefined ? undefined : JSON.stringify({ data }),
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

const stateOf = (m: RawMessage) => /<state>(\w+)<\/state>/.exec(m.body)?.[1] ?? 'none';
const notifiesFrom = (from: number) => watcher.received.slice(from).filter((m) => m.method === 'NOTIFY');

beforeAll(async () => {
  srv = await startTestServer();
  const dir = new Directory(srv.server.db);
  const account = dir.createAccount({ name: 'Acme', realm: REALM }, null);
  accountId = account.id;
  const apiKey = new TokenStore(srv.server.db, { ttlSeconds: 3600 }).issueApiKey(accountId);
  const auth = await fetch(`${srv.apiUrl}/v2/api_auth`, { method: 'PUT', body: JSON.stringify({ data: { api_key: apiKey } }) });
  token = ((await auth.json()) as { auth_token: string }).auth_token;
  watcher = await RawPeer.open(srv.sip('udp'));
  pbx = await RawPeer.open(srv.sip('udp'));
});
afterAll(async () => {
  watcher?.close();
  pbx?.close();
  await srv?.stop();
});

describe('presence through the API, over real SIP', () => {
  it('lists the live subscription in Kazoo\'s shape', async () => {
    const mark = watcher.received.length;
    const ok = await watcher.request(subscribeText(watcher, { user: '1001', domain: REALM, watcher: '2001', expires: 600, callId: 'blf-1@watcher' }));
    expect(ok.status).toBe(200);
    const first = await watcher.waitFor((m) => m.method === 'NOTIFY', 5000, mark);
    expect(stateOf(first)).not.toBe('confirmed');
    const r = await api('GET', `/v2/accounts/${accountId}/presence?event=dialog`);
    expect(r.status).toBe(200);
    const sub = r.body.data.subscriptions['1001'].dialog['blf-1@watcher'];
    expect(sub).toMatchObject({ expires: 600, from: `2001@${REALM}`, version: 1 });
    expect(sub.stalker).toBe('test-node');
    expect(sub.timestamp).toBeGreaterThan(Date.now() / 1000 + 62167219200 - 60);
    expect(sub.timestamp).toBeLessThanOrEqual(Date.now() / 1000 + 62167219200 + 1);
  });

  it('set confirmed lights the lamp at once; it survives until a reset, which NOTIFYs idle and keeps the subscription', async () => {
    let mark = watcher.received.length;
    const set = await api('POST', `/v2/accounts/${accountId}/presence/1001`, { action: 'set', state: 'confirmed' });
    expect(set.body).toMatchObject({ status: 'success', data: 'confirmed command sent for extension 1001' });
    const lit = await watcher.waitFor((m) => m.method === 'NOTIFY' && stateOf(m) === 'confirmed', 5000, mark);
    expect(lit.get('subscription-state')).toMatch(/^active/);
    const detail = await api('GET', `/v2/accounts/${accountId}/presence/1001`);
    expect(detail.body.data.presentities['1001'].dialog).toMatchObject({ state: 'confirmed', source: 'manual' });

    mark = watcher.received.length;
    const reset = await api('POST', `/v2/accounts/${accountId}/presence/1001`, { action: 'reset' });
    expect(reset.body.data).toBe('reset command sent for extension 1001');
    const idle = await watcher.waitFor((m) => m.method === 'NOTIFY', 5000, mark);
    expect(stateOf(idle)).not.toBe('confirmed');
    expect(idle.get('subscription-state')).toMatch(/^active/);
    const after = await api('GET', `/v2/accounts/${accountId}/presence/1001`);
    expect(after.body.data.subscriptions['1001'].dialog['blf-1@watcher']).toBeDefined();
    expect(after.body.data.presentities['1001'].dialog.state).not.toBe('confirmed');

    // The report holds the subscription as it was at the reset.
    const rep = await fetch(srv.apiUrl + reset.headers.get('x-presence-report')!, { headers: { 'X-Auth-Token': token } });
    const report = (await rep.json()) as { subscriptions: Record<string, Record<string, Record<string, unknown>>> };
    expect(report.subscriptions['1001'].dialog['blf-1@watcher']).toMatchObject({ from: `2001@${REALM}` });
  });

  it('a reset clears a PBX publication; a device reset goes to its sip.username', async () => {
    const mark = watcher.received.length;
    const pub = await pbx.request(publishText(pbx, { user: '1001', domain: REALM, state: 'early' }));
    expect(pub.status).toBe(200);
    await watcher.waitFor((m) => m.method === 'NOTIFY' && stateOf(m) === 'early', 5000, mark);
    const dev = await api('PUT', `/v2/accounts/${accountId}/devices`, { name: 'Desk 1001', sip: { username: '1001', password: 'secret-1001' } });
    expect(dev.status).toBe(201);
    const mark2 = watcher.received.length;
    const r = await api('POST', `/v2/accounts/${accountId}/devices/${dev.body.data.id}/presence`, { action: 'reset' });
    expect(r.body.data).toBe('command sent');
    const idle = await watcher.waitFor((m) => m.method === 'NOTIFY', 5000, mark2);
    expect(stateOf(idle)).not.toBe('early');
    expect(notifiesFrom(mark2).every((m) => stateOf(m) !== 'early')).toBe(true);
  });

  it('a park slot with no device or user can be reset and set', async () => {
    const mark = watcher.received.length;
    expect((await watcher.request(subscribeText(watcher, { user: '*3101', domain: REALM, watcher: '2001', expires: 600 }))).status).toBe(200);
    await watcher.waitFor((m) => m.method === 'NOTIFY', 5000, mark);
    const mark2 = watcher.received.length;
    const r = await api('POST', `/v2/accounts/${accountId}/presence/*3101`, { action: 'set', state: 'early' });
    expect(r.body.data).toBe('early command sent for extension *3101');
    const n = await watcher.waitFor((m) => m.method === 'NOTIFY' && stateOf(m) === 'early', 5000, mark2);
    expect(n.body).toContain('*3101@acme.example.com');
  });
});
