// Issue 7: no password, token, API key, HA1 or digest response in any log line, even at trace level with SIP
// message tracing switched on for the test's own address.
import { describe, it, expect } from 'vitest';
import { Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { createLogger } from '../../src/log.js';
import { TokenStore } from '../../src/store/tokens.js';
import { startTestServer } from '../helpers/server.js';
import { LoopPeer, seed, subscribe, authenticated } from '../security/helpers.js';

describe('secrets stay out of the logs', () => {
  it('digest auth, a wrong password, API key exchange and token use log nothing secret', async () => {
    let out = '';
    const sink = new Writable({ write(c, _e, cb) { out += c.toString(); cb(); } });
    const logger = createLogger('trace', sink);
    const srv = await startTestServer({ logger, overrides: { log: { level: 'trace', traceSip: ['127.0.0.1'] }, sip: { auth: true } } });
    const password = 'Correct-Horse-9f3a';
    const wrong = 'Wrong-Battery-77c1';
    const ids = seed(srv.server.db, [{ name: 'Acme', realm: 'acme.test', devices: [{ username: '201', password }] }]);
    const apiKey = new TokenStore(srv.server.db, { ttlSeconds: 3600 }).issueApiKey(ids['acme.test']!);
    const peer = await LoopPeer.open(srv.sip('udp').port);
    try {
      const good = await authenticated(peer, subscribe(peer, { user: '202', domain: 'acme.test', watcher: '201' }), { username: '201', password });
      expect(good.final.status).toBe(200);
      const bad = await authenticated(peer, subscribe(peer, { user: '202', domain: 'acme.test', watcher: '201' }), { username: '201', password: wrong });
      expect(bad.final.status).not.toBe(200);

      const auth = await fetch(`${srv.apiUrl}/v2/api_auth`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { api_key: apiKey } }) });
      const token = (await auth.json() as { auth_token: string }).auth_token;
      expect(token).toMatch(/\S{20,}/);
      const list = await fetch(`${srv.apiUrl}/v2/accounts/${ids['acme.test']}/presence`, { headers: { 'x-auth-token': token } });
      expect(list.status).toBe(200);
      const denied = await fetch(`${srv.apiUrl}/v2/accounts/${ids['acme.test']}/presence`, { headers: { 'x-auth-token': `${token}x` } });
      expect(denied.status).toBe(401);
      await new Promise((r) => setTimeout(r, 100));

      const ha1 = createHash('md5').update(`201:acme.test:${password}`).digest('hex');
      const ha1Sha = createHash('sha256').update(`201:acme.test:${password}`).digest('hex');
      expect(out.length).toBeGreaterThan(1000); // the trace really logged the SIP traffic
      expect(out).toContain('SIP message in');
      for (const secret of [password, wrong, apiKey, token, ha1, ha1Sha]) expect(out).not.toContain(secret);
      // No digest response value survives in the traced messages.
      expect(out).not.toMatch(/response=\\?"?[0-9a-f]{32}/i);
    } finally {
      peer.close();
      await srv.stop();
    }
  });
});
