// Accounts, users and devices over real HTTP: Kazoo field errors, write-only passwords, HA1 digests for SIP,
// pagination, the /device alias, and the lookups SIP digest auth makes.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiHarness } from './helpers.js';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

let h: ApiHarness;
let a: { id: string; token: string };
let b: { id: string; token: string };
beforeAll(async () => {
  h = await startApi();
  a = await h.account('Acme', 'acme.example.com');
  b = await h.account('Beta', 'beta.example.com');
});
afterAll(async () => { await h.close(); });

describe('accounts', () => {
  it('PATCH merges, POST replaces, realm uniqueness is a 400 unique error', async () => {
    const p = await h.call('PATCH', `/v2/accounts/${a.id}`, { token: a.token, data: { timezone: 'Europe/Paris', custom: { x: 1 } } });
    expect(p.status).toBe(200);
    expect(p.body.data).toMatchObject({ id: a.id, name: 'Acme', realm: 'acme.example.com', timezone: 'Europe/Paris', custom: { x: 1 } });
    const post = await h.call('POST', `/v2/accounts/${a.id}`, { token: a.token, data: { name: 'Acme Inc' } });
    expect(post.body.data).toMatchObject({ name: 'Acme Inc', realm: 'acme.example.com' });
    expect(post.body.data.timezone).toBeUndefined();
    const dup = await h.call('PATCH', `/v2/accounts/${a.id}`, { token: a.token, data: { realm: 'BETA.example.com' } });
    expect(dup.status).toBe(400);
    expect(dup.body).toMatchObject({ message: 'validation error', data: { realm: { unique: { message: 'Account realm already in use', cause: 'beta.example.com' } } } });
  });

  it('schema violations give Kazoo field errors for every failing rule', async () => {
    const r = await h.call('PUT', `/v2/accounts/${a.id}`, { token: a.token, data: { name: '', realm: 'a b', enabled: 'yes' } });
    expect(r.status).toBe(400);
    expect(r.body.data).toEqual({
      name: { minLength: { message: 'String must be at least 1 characters', target: 1, value: '' } },
      realm: { minLength: { message: 'String must be at least 4 characters', target: 4, value: 'a b' }, pattern: { message: "Failed to match pattern '^[.\\w-]+$'", target: '^[.\\w-]+$', value: 'a b' } },
      enabled: { type: { message: 'Value did not match type(s): boolean', target: 'boolean', value: 'yes' } },
    });
    const missing = await h.call('PUT', `/v2/accounts/${a.id}`, { token: a.token, data: {} });
    expect(missing.body.data).toEqual({ name: { required: { message: 'Field is required but missing' } }, realm: { required: { message: 'Field is required but missing' } } });
  });
});

describe('users', () => {
  let userId: string;
  it('creates a user; the password is never returned and kept only as digests', async () => {
    const r = await h.call('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, data: { first_name: 'Bob', last_name: 'Smith', username: 'Bob', password: 's3cret-pw', presence_id: '2001', hobby: 'chess' } });
    expect(r.status).toBe(201);
    userId = r.body.data.id;
    expect(r.body.data).toEqual({ id: userId, first_name: 'Bob', last_name: 'Smith', username: 'bob', presence_id: '2001', hobby: 'chess', enabled: true });
    const g = await h.call('GET', `/v2/accounts/${a.id}/users/${userId}`, { token: a.token });
    expect(g.text).not.toContain('s3cret-pw');
    expect(JSON.stringify(h.db.prepare('SELECT * FROM users').all())).not.toContain('s3cret-pw');
  });

  it('400 for a missing first_name, a bad presence_id and a duplicate username', async () => {
    const r = await h.call('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, data: { last_name: 'X', presence_id: 'no spaces allowed' } });
    expect(r.status).toBe(400);
    expect(Object.keys(r.body.data).sort()).toEqual(['first_name', 'presence_id']);
    expect(r.body.data.first_name).toEqual({ required: { message: 'Field is required but missing' } });
    expect(r.body.data.presence_id.pattern.message).toMatch(/^Failed to match pattern/);
    const dup = await h.call('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, data: { first_name: 'B', last_name: 'C', username: 'BOB' } });
    expect(dup.body.data).toEqual({ username: { unique: { message: 'Username is not unique for this account', cause: 'bob' } } });
  });

  it('PATCH keeps the password digests; renaming without a password is refused', async () => {
    const p = await h.call('PATCH', `/v2/accounts/${a.id}/users/${userId}`, { token: a.token, data: { last_name: 'Smyth', hobby: null } });
    expect(p.status).toBe(200);
    expect(p.body.data.last_name).toBe('Smyth');
    expect(p.body.data.hobby).toBeUndefined();
    const login = await h.call('PUT', '/v2/user_auth', { data: { credentials: md5('bob:s3cret-pw'), account_name: 'Acme Inc' } });
    expect(login.status).toBe(201);
    const rename = await h.call('PATCH', `/v2/accounts/${a.id}/users/${userId}`, { token: a.token, data: { username: 'robert' } });
    expect(rename.status).toBe(400);
    expect(rename.body.data.password.required.message).toMatch(/kept only as digests/);
  });

  it('another account\'s user is 404 from this account, bad ids are 404', async () => {
    expect((await h.call('GET', `/v2/accounts/${b.id}/users/${userId}`, { token: b.token })).status).toBe(404);
    const bad = await h.call('GET', `/v2/accounts/${a.id}/users/not-an-id`, { token: a.token });
    expect(bad.body).toMatchObject({ error: '404', message: 'bad_identifier', data: { cause: 'not-an-id' } });
  });
});

describe('devices', () => {
  let deviceId: string;
  it('creates a device: sip.password is write-only, HA1 = H(username:realm:password) per algorithm', async () => {
    const r = await h.call('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, data: { name: 'Desk', sip: { username: '1001', password: 'pa55word', invite_format: 'username' }, mac_address: '00:11' } });
    expect(r.status).toBe(201);
    deviceId = r.body.data.id;
    expect(r.body.data).toEqual({ id: deviceId, name: 'Desk', sip: { username: '1001', invite_format: 'username' }, mac_address: '00:11', enabled: true });
    expect(r.text).not.toContain('pa55word');
    const c = h.directory.digestCredentials('ACME.example.com', '1001');
    expect(c).toEqual({ accountId: a.id, deviceId, realm: 'acme.example.com', username: '1001', ha1Md5: md5('1001:acme.example.com:pa55word'), ha1Sha256: sha256('1001:acme.example.com:pa55word'), enabled: true });
    expect(h.directory.digestCredentials('beta.example.com', '1001')).toBeUndefined();
    expect(JSON.stringify(h.db.prepare('SELECT * FROM devices').all())).not.toContain('pa55word');
  });

  it('the /device alias reads and writes the same devices', async () => {
    const g = await h.call('GET', `/v2/accounts/${a.id}/device/${deviceId}`, { token: a.token });
    expect(g.status).toBe(200);
    expect(g.body.data.name).toBe('Desk');
    const p = await h.call('PATCH', `/v2/accounts/${a.id}/device/${deviceId}`, { token: a.token, data: { enabled: false } });
    expect(p.body.data.enabled).toBe(false);
    expect(h.directory.digestCredentials('acme.example.com', '1001')?.enabled).toBe(false);
  });

  it('sip field rules, unique sip.username per realm, owner must be a user of the account', async () => {
    const r = await h.call('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, data: { sip: { username: 'x', password: '123', method: 'radius', ip: 'not-an-ip' }, owner_id: 'short' } });
    expect(r.status).toBe(400);
    expect(Object.keys(r.body.data).sort()).toEqual(['name', 'owner_id', 'sip.ip', 'sip.method', 'sip.password', 'sip.username']);
    expect(r.body.data['sip.password']).toEqual({ minLength: { message: 'String must be at least 5 characters', target: 5 } });
    expect(r.body.data['sip.method'].enum).toEqual({ message: 'Value not found in enumerated list of values', target: ['password', 'ip'], value: 'radius' });
    const dup = await h.call('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, data: { name: 'Other', sip: { username: '1001', password: 'another1' } } });
    expect(dup.body.data).toEqual({ 'sip.username': { unique: { message: 'SIP username already in use', cause: '1001' } } });
    // The same username in another realm is another device.
    expect((await h.call('PUT', `/v2/accounts/${b.id}/devices`, { token: b.token, data: { name: 'B1', sip: { username: '1001', password: 'bbbbbbb' } } })).status).toBe(201);
    const owner = await h.call('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, data: { name: 'O', owner_id: 'c'.repeat(32) } });
    expect(owner.body.data).toEqual({ owner_id: { not_found: { message: 'Owner is not a user of this account', cause: 'c'.repeat(32) } } });
  });

  it('changing sip.username needs the password again; with it the digests follow', async () => {
    const no = await h.call('PATCH', `/v2/accounts/${a.id}/devices/${deviceId}`, { token: a.token, data: { sip: { username: '1002' } } });
    expect(no.status).toBe(400);
    expect(Object.keys(no.body.data)).toEqual(['sip.password']);
    const yes = await h.call('PATCH', `/v2/accounts/${a.id}/devices/${deviceId}`, { token: a.token, data: { sip: { username: '1002', password: 'newpass1' } } });
    expect(yes.status).toBe(200);
    expect(h.directory.digestCredentials('acme.example.com', '1002')?.ha1Md5).toBe(md5('1002:acme.example.com:newpass1'));
    expect(h.directory.digestCredentials('acme.example.com', '1001')).toBeUndefined();
  });

  it('devices with sip.method "ip" are found by source address', async () => {
    const r = await h.call('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, data: { name: 'Trunk', presence_id: '3000', sip: { method: 'ip', ip: '192.0.2.7' } } });
    expect(r.status).toBe(201);
    expect(h.directory.deviceByIp('192.0.2.7')).toEqual({ accountId: a.id, deviceId: r.body.data.id, realm: 'acme.example.com', username: '3000' });
    expect(h.directory.deviceByIp('192.0.2.8')).toBeUndefined();
  });

  it('lists with Kazoo pagination (page_size, next_start_key)', async () => {
    for (let i = 0; i < 5; i++) await h.call('PUT', `/v2/accounts/${b.id}/devices`, { token: b.token, data: { name: `P${i}` } });
    const seen: string[] = [];
    let key: string | undefined;
    let pages = 0;
    do {
      const r = await h.call('GET', `/v2/accounts/${b.id}/devices?page_size=2${key ? `&start_key=${key}` : ''}`, { token: b.token });
      expect(r.status).toBe(200);
      expect(r.body.page_size).toBe(r.body.data.length);
      seen.push(...r.body.data.map((d: { id: string }) => d.id));
      key = r.body.next_start_key;
      pages++;
    } while (key && pages < 10);
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(6);
    const bad = await h.call('GET', `/v2/accounts/${b.id}/devices?page_size=0`, { token: b.token });
    expect(bad.status).toBe(400);
  });

  it('a realm change is refused while devices hold digests made with it', async () => {
    const r = await h.call('PATCH', `/v2/accounts/${a.id}`, { token: a.token, data: { realm: 'acme2.example.com' } });
    expect(r.status).toBe(400);
    expect(Object.keys(r.body.data)).toEqual(['realm']);
    expect(h.directory.accountRealms()).toContain('acme.example.com');
  });

  it('deleting a user keeps its devices without an owner; deleting an account removes everything', async () => {
    const u = await h.call('PUT', `/v2/accounts/${b.id}/users`, { token: b.token, data: { first_name: 'O', last_name: 'W' } });
    const d = await h.call('PUT', `/v2/accounts/${b.id}/devices`, { token: b.token, data: { name: 'Owned', owner_id: u.body.data.id } });
    expect(d.body.data.owner_id).toBe(u.body.data.id);
    await h.call('DELETE', `/v2/accounts/${b.id}/users/${u.body.data.id}`, { token: b.token });
    const after = await h.call('GET', `/v2/accounts/${b.id}/devices/${d.body.data.id}`, { token: b.token });
    expect(after.body.data.owner_id).toBeUndefined();
    const del = await h.call('DELETE', `/v2/accounts/${b.id}`, { token: b.token });
    expect(del.status).toBe(200);
    expect(h.directory.getAccount(b.id)).toBeUndefined();
    expect(h.directory.digestCredentials('beta.example.com', '1001')).toBeUndefined();
    expect(h.db.prepare('SELECT count(*) AS n FROM devices WHERE account_id = ?').get(b.id)).toEqual({ n: 0 });
    expect((await h.call('GET', `/v2/accounts/${b.id}`, { token: b.token })).status).toBe(401);
  });
});

describe('hostile documents', () => {
  it('a "__proto__" key changes no prototype and is not stored', async () => {
    const raw = '{"data":{"first_name":"P","last_name":"Q","nested":{"__proto__":{"polluted":true}},"__proto__":{"polluted":true}}}';
    const r = await h.call('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, raw });
    expect(r.status).toBe(201);
    const p = await h.call('PATCH', `/v2/accounts/${a.id}/users/${r.body.data.id}`, { token: a.token, raw: '{"data":{"nested":{"__proto__":{"polluted":true}}}}' });
    expect(p.status).toBe(200);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(p.body.data.polluted).toBeUndefined();
    expect(p.body.data.nested.polluted).toBeUndefined();
  });
});

describe('isDescendant', () => {
  it('is true for the account itself and anything below, false across and upward', () => {
    const p = h.directory.createAccount({ name: 'P', realm: 'p.example.com' }, null);
    const c = h.directory.createAccount({ name: 'C', realm: 'c.example.com' }, p.id);
    const g = h.directory.createAccount({ name: 'G', realm: 'g.example.com' }, c.id);
    expect(h.directory.isDescendant(g.id, p.id)).toBe(true);
    expect(h.directory.isDescendant(p.id, p.id)).toBe(true);
    expect(h.directory.isDescendant(p.id, g.id)).toBe(false);
    expect(h.directory.isDescendant(g.id, a.id)).toBe(false);
  });
});
