// Tokens, API keys, user_auth, expiry, tenancy (own tree only) and CORS, over real HTTP.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiHarness } from './helpers.js';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');

let h: ApiHarness;
let root: { id: string; apiKey: string; token: string };
let child: { id: string; apiKey: string; token: string };
let sibling: { id: string; apiKey: string; token: string };
beforeAll(async () => {
  h = await startApi({ overrides: { api: { tokenTtl: 60 } } });
  root = await h.account('Root', 'root.example.com');
  child = await h.account('Child', 'child.example.com', root.id);
  sibling = await h.account('Sibling', 'sibling.example.com');
});
afterAll(async () => { await h.close(); });

describe('PUT /v2/api_auth', () => {
  it('gives a 64-hex token with Kazoo\'s data fields, 201', async () => {
    const r = await h.call('PUT', '/v2/api_auth', { data: { api_key: root.apiKey } });
    expect(r.status).toBe(201);
    expect(r.body.status).toBe('success');
    expect(r.body.auth_token).toMatch(/^[0-9a-f]{64}$/);
    expect(r.body.data).toMatchObject({ account_id: root.id, account_name: 'Root', apps: [], is_reseller: false, method: 'api_key' });
    // A new token each time: random, not derived from the key.
    const again = await h.call('PUT', '/v2/api_auth', { data: { api_key: root.apiKey } });
    expect(again.body.auth_token).not.toBe(r.body.auth_token);
  });

  it('401 for an unknown key; 400 for a malformed one or an unknown field (additionalProperties false)', async () => {
    const unknown = await h.call('PUT', '/v2/api_auth', { data: { api_key: 'a'.repeat(64) } });
    expect(unknown.status).toBe(401);
    expect(unknown.body).toMatchObject({ error: '401', message: 'invalid_credentials', data: { message: 'invalid credentials' } });
    const short = await h.call('PUT', '/v2/api_auth', { data: { api_key: 'abc' } });
    expect(short.status).toBe(400);
    expect(short.body).toMatchObject({ error: '400', message: 'validation error', data: { api_key: { minLength: { message: 'String must be at least 64 characters', target: 64 } } } });
    expect(JSON.stringify(short.body)).not.toContain('"abc"'); // secret values are not echoed
    const extra = await h.call('PUT', '/v2/api_auth', { data: { api_key: root.apiKey, admin: true } });
    expect(extra.status).toBe(400);
    expect(extra.body.data).toEqual({ admin: { additionalProperties: { message: 'Strict checking of data is enabled; only include schema-defined properties' } } });
    const missing = await h.call('PUT', '/v2/api_auth', { data: {} });
    expect(missing.body.data).toEqual({ api_key: { required: { message: 'Field is required but missing' } } });
  });

  it('stores only hashes of keys and tokens', async () => {
    const keys = h.db.prepare('SELECT key_hash FROM api_keys').all() as Array<{ key_hash: string }>;
    const tokens = h.db.prepare('SELECT token_hash FROM auth_tokens').all() as Array<{ token_hash: string }>;
    const dump = JSON.stringify([keys, tokens]);
    expect(dump).not.toContain(root.apiKey);
    expect(dump).not.toContain(root.token);
    expect(keys.map((k) => k.key_hash)).toContain(createHash('sha256').update(root.apiKey).digest('hex'));
  });

  it('a replaced API key stops working', async () => {
    const r = await h.call('PUT', `/v2/accounts/${sibling.id}/api_key`, { token: sibling.token });
    expect(r.status).toBe(201);
    expect(r.body.data.api_key).toMatch(/^[0-9a-f]{64}$/);
    expect((await h.call('PUT', '/v2/api_auth', { data: { api_key: sibling.apiKey } })).status).toBe(401);
    expect((await h.call('PUT', '/v2/api_auth', { data: { api_key: r.body.data.api_key } })).status).toBe(201);
    sibling.apiKey = r.body.data.api_key;
  });
});

describe('PUT /v2/user_auth', () => {
  beforeAll(async () => {
    const r = await h.call('PUT', `/v2/accounts/${root.id}/users`, { token: root.token, data: { first_name: 'Al', last_name: 'Ice', username: 'Alice', password: 'wonder land' } });
    expect(r.status).toBe(201);
  });

  it('accepts md5("username:password") with account_name, realm or account_realm; sha1 with method "sha"', async () => {
    for (const data of [
      { credentials: md5('alice:wonder land'), account_name: 'root' },
      { credentials: md5('alice:wonder land'), realm: 'root.example.com' },
      { credentials: md5('alice:wonder land'), account_realm: 'ROOT.example.com' },
      { credentials: sha1('alice:wonder land'), method: 'sha', account_name: 'Root' },
    ]) {
      const r = await h.call('PUT', '/v2/user_auth', { data });
      expect(r.status, JSON.stringify(data)).toBe(201);
      expect(r.body.auth_token).toMatch(/^[0-9a-f]{64}$/);
      expect(r.body.data).toMatchObject({ account_id: root.id, method: 'user_auth' });
      expect(r.body.data.owner_id).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  it('401 for a wrong password or another account; 400 without an account name or realm', async () => {
    expect((await h.call('PUT', '/v2/user_auth', { data: { credentials: md5('alice:wrong'), account_name: 'Root' } })).status).toBe(401);
    expect((await h.call('PUT', '/v2/user_auth', { data: { credentials: md5('alice:wonder land'), account_name: 'Sibling' } })).status).toBe(401);
    const r = await h.call('PUT', '/v2/user_auth', { data: { credentials: md5('alice:wonder land') } });
    expect(r.status).toBe(400);
    expect(r.body.data).toEqual({ account_name: { required: { message: 'Field is required but missing' } } });
  });

  it('keeps no password and no credentials hash in clear', () => {
    const dump = JSON.stringify(h.db.prepare('SELECT * FROM users').all());
    expect(dump).not.toContain('wonder land');
    expect(dump).not.toContain(md5('alice:wonder land'));
    expect(dump).toContain(md5('alice:root.example.com:wonder land')); // HA1 (RFC 7616 §3.4.2)
  });
});

describe('token expiry and revocation', () => {
  it('a token stops working after api.tokenTtl seconds (injected clock)', async () => {
    const r = await h.call('PUT', '/v2/api_auth', { data: { api_key: root.apiKey } });
    const token = r.body.auth_token as string;
    h.clock.now += 59_000;
    expect((await h.call('GET', `/v2/accounts/${root.id}`, { token })).status).toBe(200);
    h.clock.now += 1_000;
    const expired = await h.call('GET', `/v2/accounts/${root.id}`, { token });
    expect(expired.status).toBe(401);
    expect(expired.body).toMatchObject({ message: 'invalid_credentials' });
    // Renew the fixtures' tokens for the tests below.
    for (const a of [root, child, sibling]) a.token = (await h.call('PUT', '/v2/api_auth', { data: { api_key: a.apiKey } })).body.auth_token;
  });

  it('DELETE /v2/token_auth revokes the token in use', async () => {
    const token = (await h.call('PUT', '/v2/api_auth', { data: { api_key: root.apiKey } })).body.auth_token as string;
    const info = await h.call('GET', '/v2/token_auth', { token });
    expect(info.body.data).toMatchObject({ account_id: root.id, method: 'api_key' });
    expect((await h.call('DELETE', '/v2/token_auth', { token })).status).toBe(200);
    expect((await h.call('GET', `/v2/accounts/${root.id}`, { token })).status).toBe(401);
  });
});

describe('tenancy', () => {
  it('a token reaches its own account and the accounts below it', async () => {
    expect((await h.call('GET', `/v2/accounts/${root.id}`, { token: root.token })).status).toBe(200);
    expect((await h.call('GET', `/v2/accounts/${child.id}`, { token: root.token })).status).toBe(200);
    expect((await h.call('GET', `/v2/accounts/${child.id}/users`, { token: root.token })).status).toBe(200);
  });

  it('403 forbidden for a sibling or a parent, on every kind of route', async () => {
    for (const [token, target] of [[child.token, root.id], [root.token, sibling.id], [sibling.token, child.id]]) {
      for (const [method, path] of [['GET', ''], ['GET', '/users'], ['PUT', '/devices'], ['GET', '/presence'], ['POST', '/presence/1001'], ['DELETE', '']]) {
        const r = await h.call(method, `/v2/accounts/${target}${path}`, { token, data: method === 'GET' ? undefined : {} });
        expect(r.status, `${method} ${path}`).toBe(403);
        expect(r.body).toMatchObject({ status: 'error', error: '403', message: 'forbidden', data: { message: 'forbidden' } });
      }
    }
    expect(h.presence.calls).toEqual([]);
    expect(h.directory.getAccount(root.id)).toBeDefined();
  });

  it('404 bad_identifier for an unknown account id, and for an id with bad characters', async () => {
    const unknown = 'ab'.repeat(16);
    const r = await h.call('GET', `/v2/accounts/${unknown}`, { token: root.token });
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ error: '404', message: 'bad_identifier', data: { message: 'bad identifier', cause: unknown } });
    for (const bad of ["x' OR '1'='1", '..%2F..%2Fetc', 'ABCDEF'.repeat(6)]) {
      const b = await h.call('GET', `/v2/accounts/${bad}/users`, { token: root.token });
      expect(b.status, bad).toBe(404);
      expect(b.body.message).toBe('bad_identifier');
    }
  });

  it('a sub-account created through the API is reachable by its creator and not by a sibling', async () => {
    const r = await h.call('PUT', `/v2/accounts/${child.id}`, { token: root.token, data: { name: 'Grandchild', realm: 'gc.example.com' } });
    expect(r.status).toBe(201);
    const gc = r.body.data.id as string;
    expect(r.body.data.parent_id).toBe(child.id);
    expect((await h.call('GET', `/v2/accounts/${gc}`, { token: root.token })).status).toBe(200);
    expect((await h.call('GET', `/v2/accounts/${gc}`, { token: child.token })).status).toBe(200);
    expect((await h.call('GET', `/v2/accounts/${gc}`, { token: sibling.token })).status).toBe(403);
    const del = await h.call('DELETE', `/v2/accounts/${child.id}`, { token: root.token });
    expect(del.status).toBe(400);
    expect(del.body).toMatchObject({ message: 'account_has_descendants', data: { message: 'account has descendants' } });
  });
});

describe('CORS', () => {
  it('is off by default: no Access-Control headers, even on a preflight', async () => {
    const pre = await fetch(`${h.url}/v2/accounts/${root.id}`, { method: 'OPTIONS', headers: { Origin: 'https://ui.example.com', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'x-auth-token' } });
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const get = await fetch(`${h.url}/v2/accounts/${root.id}`, { headers: { Origin: 'https://ui.example.com', 'X-Auth-Token': root.token } });
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('when enabled, answers listed origins only, and allows X-Auth-Token', async () => {
    const c = await startApi({ overrides: { api: { cors: { enabled: true, origins: ['https://ui.example.com'] } } } });
    try {
      const pre = await fetch(`${c.url}/v2/accounts/x`, { method: 'OPTIONS', headers: { Origin: 'https://ui.example.com', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'x-auth-token,content-type' } });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe('https://ui.example.com');
      expect(pre.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-auth-token');
      const err = await fetch(`${c.url}/v2/accounts/x`, { headers: { Origin: 'https://ui.example.com' } });
      expect(err.status).toBe(401);
      expect(err.headers.get('access-control-allow-origin')).toBe('https://ui.example.com');
      const other = await fetch(`${c.url}/health`, { headers: { Origin: 'https://evil.example.net' } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await c.close();
    }
  });
});

describe('user tokens act with the user\'s privilege', () => {
  it('a priv_level "user" reads, changes itself and its own lamps only; an admin reaches everything', async () => {
    const mk = async (data: Record<string, unknown>) => (await h.call('PUT', `/v2/accounts/${root.id}/users`, { token: root.token, data })).body.data.id as string;
    const plainId = await mk({ first_name: 'Pl', last_name: 'Ain', username: 'plain', password: 'plain-pw', presence_id: '7001' });
    const adminId = await mk({ first_name: 'Ad', last_name: 'Min', username: 'boss', password: 'boss-pw', priv_level: 'admin' });
    const mine = (await h.call('PUT', `/v2/accounts/${root.id}/devices`, { token: root.token, data: { name: 'Mine', owner_id: plainId, presence_id: '7002' } })).body.data.id as string;
    const theirs = (await h.call('PUT', `/v2/accounts/${root.id}/devices`, { token: root.token, data: { name: 'Theirs', presence_id: '7003' } })).body.data.id as string;
    const login = async (u: string, p: string) => (await h.call('PUT', '/v2/user_auth', { data: { credentials: md5(`${u}:${p}`), account_name: 'Root' } })).body.auth_token as string;
    const plain = await login('plain', 'plain-pw');
    const admin = await login('boss', 'boss-pw');

    expect((await h.call('GET', `/v2/accounts/${root.id}/presence`, { token: plain })).status).toBe(200);
    expect((await h.call('PATCH', `/v2/accounts/${root.id}/users/${plainId}`, { token: plain, data: { last_name: 'Ayn' } })).status).toBe(200);
    expect((await h.call('POST', `/v2/accounts/${root.id}/users/${plainId}/presence`, { token: plain, data: { action: 'reset' } })).status).toBe(200);
    expect((await h.call('POST', `/v2/accounts/${root.id}/devices/${mine}/presence`, { token: plain, data: { action: 'reset' } })).status).toBe(200);
    for (const [method, path, data] of [
      ['PATCH', `/users/${plainId}`, { priv_level: 'admin' }],
      ['PATCH', `/users/${adminId}`, { last_name: 'X' }],
      ['POST', `/devices/${theirs}/presence`, { action: 'reset' }],
      ['POST', '/presence/7003', { action: 'reset' }],
      ['PUT', '/devices', { name: 'Sneaky' }],
      ['DELETE', `/users/${adminId}`, {}],
    ] as const) {
      const r = await h.call(method, `/v2/accounts/${root.id}${path}`, { token: plain, data });
      expect(r.status, `${method} ${path}`).toBe(403);
    }
    expect((await h.call('GET', `/v2/accounts/${child.id}`, { token: plain })).status).toBe(403);
    expect((await h.call('POST', `/v2/accounts/${root.id}/presence/7003`, { token: admin, data: { action: 'reset' } })).status).toBe(200);
    expect((await h.call('GET', `/v2/accounts/${child.id}`, { token: admin })).status).toBe(200);
    // Demoting the admin takes effect on its existing token.
    await h.call('PATCH', `/v2/accounts/${root.id}/users/${adminId}`, { token: root.token, data: { priv_level: 'user' } });
    expect((await h.call('PUT', `/v2/accounts/${root.id}/devices`, { token: admin, data: { name: 'Late' } })).status).toBe(403);
  });
});

describe('login throttle', () => {
  it('after sip.limits.authFailuresBeforeBlock failures a source gets 429 with Retry-After, even with a good key, until the window passes', async () => {
    const t = await startApi({ overrides: { sip: { limits: { authFailuresBeforeBlock: 3, authBlockSeconds: 30 } } } });
    try {
      const good = await t.account('T', 't.example.com');
      for (let i = 0; i < 3; i++) expect((await t.call('PUT', '/v2/api_auth', { data: { api_key: 'c'.repeat(64) } })).status).toBe(401);
      const blocked = await t.call('PUT', '/v2/user_auth', { data: { credentials: md5('x:y'), account_name: 'T' } });
      expect(blocked.status).toBe(429);
      expect(blocked.body).toMatchObject({ status: 'error', error: '429', message: 'too_many_requests' });
      expect(blocked.headers.get('retry-after')).toBe('30');
      expect((await t.call('PUT', '/v2/api_auth', { data: { api_key: good.apiKey } })).status).toBe(429);
      // Tokens already issued keep working: only logins are throttled.
      expect((await t.call('GET', `/v2/accounts/${good.id}`, { token: good.token })).status).toBe(200);
      t.clock.now += 30_001;
      expect((await t.call('PUT', '/v2/api_auth', { data: { api_key: good.apiKey } })).status).toBe(201);
    } finally {
      await t.close();
    }
  });
});
