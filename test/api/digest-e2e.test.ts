// The directory as SIP digest auth sees it, end to end with sip.auth on: a device created, re-keyed and disabled
// through the API is what decides whether a real SUBSCRIBE is accepted (RFC 7616 MD5 and SHA-256).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { LoopPeer, authenticated, subscribe } from '../security/helpers.js';
import { Directory } from '../../src/store/directory.js';
import { TokenStore } from '../../src/store/tokens.js';

const REALM = 'acme.example.com';
let srv: TestServer;
let peer: LoopPeer;
let accountId: string;
let token: string;

async function api(method: string, path: string, data?: unknown) {
  const res = await fetch(srv.apiUrl + path, { method, headers: { 'X-Auth-Token': token }, body: data === undefined ? undefined : JSON.stringify({ data }) });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  srv = await startTestServer({ overrides: { sip: { auth: true } } });
  accountId = new Directory(srv.server.db).createAccount({ name: 'Acme', realm: REALM }, null).id;
  const key = new TokenStore(srv.server.db, { ttlSeconds: 3600 }).issueApiKey(accountId);
  token = ((await (await fetch(`${srv.apiUrl}/v2/api_auth`, { method: 'PUT', body: JSON.stringify({ data: { api_key: key } }) })).json()) as { auth_token: string }).auth_token;
  peer = await LoopPeer.open(srv.sip('udp').port);
});
afterAll(async () => {
  peer?.close();
  await srv?.stop();
});

const sub = (watcher: string) => subscribe(peer, { user: '1001', domain: REALM, watcher });

describe('devices made through the API authenticate SIP', () => {
  let deviceId: string;
  it('a device with sip.password can SUBSCRIBE with MD5 and with SHA-256; a wrong password cannot', async () => {
    const r = await api('PUT', `/v2/accounts/${accountId}/devices`, { name: 'Desk 2001', sip: { username: '2001', password: 'first-pass' } });
    expect(r.status).toBe(201);
    deviceId = r.body.data.id;
    expect((await authenticated(peer, sub('2001'), { username: '2001', password: 'first-pass', algorithm: 'MD5' })).final.status).toBe(200);
    expect((await authenticated(peer, sub('2001'), { username: '2001', password: 'first-pass', algorithm: 'SHA-256' })).final.status).toBe(200);
    const wrong = await authenticated(peer, sub('2001'), { username: '2001', password: 'guess' });
    expect(wrong.final.status).not.toBe(200);
  });

  it('a new sip.password through PATCH replaces the old one at once', async () => {
    expect((await api('PATCH', `/v2/accounts/${accountId}/devices/${deviceId}`, { sip: { password: 'second-pass' } })).status).toBe(200);
    expect((await authenticated(peer, sub('2001'), { username: '2001', password: 'first-pass' })).final.status).not.toBe(200);
    expect((await authenticated(peer, sub('2001'), { username: '2001', password: 'second-pass' })).final.status).toBe(200);
  });

  it('a disabled device, or a deleted one, no longer authenticates', async () => {
    expect((await api('PATCH', `/v2/accounts/${accountId}/devices/${deviceId}`, { enabled: false })).status).toBe(200);
    expect((await authenticated(peer, sub('2001'), { username: '2001', password: 'second-pass' })).final.status).not.toBe(200);
    await api('PATCH', `/v2/accounts/${accountId}/devices/${deviceId}`, { enabled: true });
    expect((await authenticated(peer, sub('2001'), { username: '2001', password: 'second-pass' })).final.status).toBe(200);
    expect((await api('DELETE', `/v2/accounts/${accountId}/devices/${deviceId}`)).status).toBe(200);
    expect((await authenticated(peer, sub('2001'), { username: '2001', password: 'second-pass' })).final.status).not.toBe(200);
  });
});
