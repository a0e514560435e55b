// Audit of issue 3 over real HTTP with a recording fake presence: the quirks Kazoo clients depend on that the
// first tests left open or weak (paginate=false, start_key, the presence field errors on every target, exact
// envelopes, 405s, expired tokens on presence routes, disabled users and accounts, sub-accounts, presence ids
// carrying a realm). The same endpoints over real SIP are in audit-presence-sip.test.ts.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startApi, type ApiHarness } from './helpers.js';
import { kazooSubscriptions, watcherAor } from '../../src/api/routes/presence.js';
import type { SubscriptionView } from '../../src/presence/service.js';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const ENVELOPE_KEYS = ['auth_token', 'data', 'node', 'request_id', 'revision', 'status', 'timestamp', 'version'];
const ERROR_KEYS = ['auth_token', 'data', 'error', 'message', 'node', 'request_id', 'status', 'timestamp', 'version'];
const ACTION_INVALID = { action: { invalid: { message: 'Field must be set to a valid action', target: 'invalid' } } };
const STATE_INVALID = { state: { invalid: { message: 'Field must be set to a valid state', target: 'invalid' } } };

function sub(over: Partial<SubscriptionView>): SubscriptionView {
  const t = Date.UTC(2026, 0, 2, 3, 0, 0);
  return {
    id: 's', callId: 'c', event: 'dialog', presentity: '1001@acme.example.com', watcher: 'sip:2001@acme.example.com',
    expires: 600, expiresAt: t + 600_000, updatedAt: t, transport: 'udp', contact: 'sip:2001@192.0.2.1', nodeId: 'n',
    version: 0, lastNotify: { body: 'undefined', reply: 0, sequence: 0 }, ...over,
  };
}

let h: ApiHarness;
let a: { id: string; apiKey: string; token: string };
let other: { id: string; apiKey: string; token: string };
beforeAll(async () => {
  h = await startApi({ limits: { maxUnpaginatedRows: 4 } });
  a = await h.account('Acme', 'acme.example.com');
  other = await h.account('Other', 'other.example.com');
});
afterAll(async () => { await h.close(); });
beforeEach(() => { h.presence.calls = []; });

describe('listings: Kazoo pagination', () => {
  let ids: string[];
  beforeAll(async () => {
    ids = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await h.call('PUT', `/v2/accounts/${other.id}/users`, { token: other.token, data: { first_name: `F${i}`, last_name: 'L' } })).body.data.id);
    }
    ids.sort();
  });

  it('users page with page_size/start_key/next_start_key; start_key names every page, next_start_key is absent on the last', async () => {
    const p1 = await h.call('GET', `/v2/accounts/${other.id}/users?page_size=2`, { token: other.token });
    expect(p1.status).toBe(200);
    expect(Object.keys(p1.body).sort()).toEqual([...ENVELOPE_KEYS, 'next_start_key', 'page_size', 'start_key'].sort());
    expect(p1.body.data.map((u: { id: string }) => u.id)).toEqual(ids.slice(0, 2));
    expect(p1.body.page_size).toBe(2);
    expect(typeof p1.body.start_key).toBe('string');
    const again = await h.call('GET', `/v2/accounts/${other.id}/users?page_size=2&start_key=${p1.body.start_key}`, { token: other.token });
    expect(again.body.data).toEqual(p1.body.data);
    const p2 = await h.call('GET', `/v2/accounts/${other.id}/users?page_size=2&start_key=${p1.body.next_start_key}`, { token: other.token });
    expect(p2.body.data.map((u: { id: string }) => u.id)).toEqual(ids.slice(2));
    expect(p2.body.start_key).toBe(p1.body.next_start_key);
    expect(p2.body).not.toHaveProperty('next_start_key');
  });

  it('paginate=false returns every row without pagination keys (Monster UI sends it), up to the named limit', async () => {
    const all = await h.call('GET', `/v2/accounts/${other.id}/users?paginate=false&page_size=1`, { token: other.token });
    expect(all.status).toBe(200);
    expect(all.body.data).toHaveLength(3);
    expect(Object.keys(all.body).sort()).toEqual(ENVELOPE_KEYS);
    for (let i = 0; i < 3; i++) await h.call('PUT', `/v2/accounts/${other.id}/device`, { token: other.token, data: { name: `D${i}` } });
    for (let i = 0; i < 2; i++) await h.call('PUT', `/v2/accounts/${other.id}/devices`, { token: other.token, data: { name: `E${i}` } });
    // Five devices, maxUnpaginatedRows 4: the answer says there is more instead of cutting silently.
    const over = await h.call('GET', `/v2/accounts/${other.id}/device?paginate=false`, { token: other.token });
    expect(over.body.data).toHaveLength(4);
    expect(over.body.next_start_key).toEqual(expect.any(String));
  });

  it('a start_key the server did not hand out and a bad page_size are 400 validation errors, not a silent first page', async () => {
    for (const [q, field, rule] of [
      ['start_key=bm90LWEta2V5', 'start_key', 'invalid'],
      ['start_key=%25%25', 'start_key', 'invalid'],
      ['page_size=abc', 'page_size', 'type'],
      ['page_size=0', 'page_size', 'minimum'],
      ['page_size=1000000', 'page_size', 'maximum'],
    ] as const) {
      const r = await h.call('GET', `/v2/accounts/${other.id}/users?${q}`, { token: other.token });
      expect(r.status, q).toBe(400);
      expect(r.body.message, q).toBe('validation error');
      expect(Object.keys(r.body.data), q).toEqual([field]);
      expect(Object.keys(r.body.data[field]), q).toEqual([rule]);
    }
  });
});

describe('presence POST bodies on every target', () => {
  let device: string;
  let user: string;
  beforeAll(async () => {
    user = (await h.call('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, data: { first_name: 'U', last_name: 'S', presence_id: `2500@elsewhere.example.com` } })).body.data.id;
    device = (await h.call('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, data: { name: 'D', presence_id: '2501' } })).body.data.id;
  });

  it('set without a valid state is state.invalid, an unknown or missing action is action.invalid, and nothing is sent', async () => {
    const targets = { ext: '/presence/2502', device: `/devices/${device}/presence`, alias: `/device/${device}/presence`, user: `/users/${user}/presence` };
    const cases: Array<[unknown, unknown, ReadonlyArray<keyof typeof targets>]> = [
      [{ action: 'set' }, STATE_INVALID, ['ext', 'device', 'alias', 'user']],
      [{ action: 'set', state: 'ringing' }, STATE_INVALID, ['ext', 'device', 'alias', 'user']],
      [{ action: 'set', state: 5 }, STATE_INVALID, ['ext', 'device', 'alias', 'user']],
      [{ action: 'set', state: 'Confirmed' }, STATE_INVALID, ['ext', 'device', 'user']],
      [{ action: 'blink' }, ACTION_INVALID, ['ext', 'device', 'alias', 'user']],
      [{ action: ['reset'] }, ACTION_INVALID, ['ext', 'device', 'user']],
      [{ state: 'early' }, ACTION_INVALID, ['ext', 'device', 'user']],
      [{ reset: false }, ACTION_INVALID, ['ext', 'device', 'user']],
      [{}, ACTION_INVALID, ['device', 'alias', 'user']],
    ];
    for (const [data, fields, where] of cases) {
      for (const t of where) {
        const r = await h.call('POST', `/v2/accounts/${a.id}${targets[t]}`, { token: a.token, data });
        const what = `${t} ${JSON.stringify(data)}`;
        expect(r.status, what).toBe(400);
        expect(Object.keys(r.body).sort(), what).toEqual(ERROR_KEYS);
        expect(r.body, what).toMatchObject({ status: 'error', error: '400', message: 'validation error', data: fields });
        expect(r.body.data, what).toEqual(fields);
      }
    }
    expect(h.presence.calls).toEqual([]);
  });

  it('success is a plain success envelope with Kazoo\'s text; a presence id\'s own realm gives way to the account realm', async () => {
    const r = await h.call('POST', `/v2/accounts/${a.id}/users/${user}/presence`, { token: a.token, data: { action: 'set', state: 'terminated' } });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(ENVELOPE_KEYS);
    expect(r.body).toMatchObject({ status: 'success', data: 'command sent', auth_token: a.token });
    const d = await h.call('POST', `/v2/accounts/${a.id}/device/${device}/presence`, { token: a.token, data: { reset: true } });
    expect(d.body.data).toBe('command sent');
    const e = await h.call('POST', `/v2/accounts/${a.id}/presence/2502`, { token: a.token });
    expect(e.body.data).toBe('reset command sent for extension 2502');
    expect(h.presence.calls).toEqual([
      { op: 'set', presentity: '2500@acme.example.com', state: 'terminated' },
      { op: 'reset', presentity: '2501@acme.example.com' },
      { op: 'reset', presentity: '2502@acme.example.com' },
    ]);
  });

  it('a device or user of another account is 404 bad_identifier with the id as cause', async () => {
    for (const path of [`/devices/${device}/presence`, `/users/${user}/presence`]) {
      const r = await h.call('POST', `/v2/accounts/${other.id}${path}`, { token: other.token, data: { action: 'reset' } });
      expect(r.status, path).toBe(404);
      expect(r.body.data, path).toEqual({ message: 'bad identifier', cause: path.split('/')[2] });
    }
    expect(h.presence.calls).toEqual([]);
  });

  it('any other verb on the presence routes is 405 invalid_method with Allow', async () => {
    for (const [method, path] of [
      ['PUT', '/presence/2502'], ['DELETE', '/presence/2502'], ['PATCH', '/presence/2502'], ['PUT', '/presence'], ['DELETE', '/presence'],
      ['PUT', `/devices/${device}/presence`], ['DELETE', `/users/${user}/presence`],
    ] as const) {
      const r = await h.call(method, `/v2/accounts/${a.id}${path}`, { token: a.token, data: {} });
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.body, `${method} ${path}`).toMatchObject({ status: 'error', error: '405', message: 'invalid_method' });
      expect(r.headers.get('allow'), `${method} ${path}`).toMatch(/POST/);
    }
    const rep = await h.call('POST', `/v2/accounts/${a.id}/presence/report-${'a'.repeat(32)}`, { token: a.token, data: {} });
    expect(rep.status).toBe(405);
    expect(h.presence.calls).toEqual([]);
  });
});

describe('presence listings', () => {
  it('leave out a subscription that ran out but is not swept yet', async () => {
    const now = h.clock.now;
    h.presence.subscriptions = [
      sub({ id: 'live', callId: 'live-call', expiresAt: now + 1000 }),
      sub({ id: 'gone', callId: 'gone-call', expiresAt: now }),
    ];
    try {
      const all = await h.call('GET', `/v2/accounts/${a.id}/presence`, { token: a.token });
      expect(Object.keys(all.body.data.subscriptions['1001'].dialog)).toEqual(['live-call']);
      const one = await h.call('GET', `/v2/accounts/${a.id}/presence/1001`, { token: a.token });
      expect(Object.keys(one.body.data.subscriptions['1001'].dialog)).toEqual(['live-call']);
    } finally {
      h.presence.subscriptions = [];
    }
  });

  it('notify is "undefined", 0, 0 until a NOTIFY was answered, whatever CSeq presence recorded when it left', () => {
    const out = kazooSubscriptions([
      sub({ callId: 'sent', lastNotify: { body: 'undefined', reply: 0, sequence: 3 } }),
      sub({ callId: 'answered', lastNotify: { body: '<x/>', reply: 200, sequence: 4 } }),
      sub({ callId: 'timed-out', lastNotify: { body: '<y/>', reply: 408, sequence: 5 } }),
    ]);
    expect(out['1001']!.dialog!.sent!.notify).toEqual({ body: 'undefined', reply: 0, sequence: 0 });
    expect(out['1001']!.dialog!.answered!.notify).toEqual({ body: '<x/>', reply: 200, sequence: 4 });
    expect(out['1001']!.dialog!['timed-out']!.notify).toEqual({ body: '<y/>', reply: 408, sequence: 5 });
  });

  it('from is the watcher\'s user@realm: no display name, tag, URI parameters, headers or port', () => {
    expect(watcherAor('"Desk" <sip:2001@Acme.Example.com:5060;transport=udp?subject=x>;tag=abc')).toBe('2001@acme.example.com');
    expect(watcherAor('sips:2001@acme.example.com;tag=1')).toBe('2001@acme.example.com');
    expect(watcherAor('<sip:2001@[2001:db8::1]:5070>')).toBe('2001@[2001:db8::1]');
    expect(watcherAor('<sip:Bob.Smith@acme.example.com>')).toBe('Bob.Smith@acme.example.com');
  });

  it('an empty account lists data.subscriptions = {} in a full success envelope', async () => {
    const r = await h.call('GET', `/v2/accounts/${other.id}/presence?event=message-summary`, { token: other.token });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(ENVELOPE_KEYS);
    expect(r.body.data).toEqual({ subscriptions: {} });
  });
});

describe('tokens on the presence routes', () => {
  it('an expired token (api_auth or user_auth) is 401 on every presence route and sends nothing', async () => {
    await h.call('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, data: { first_name: 'T', last_name: 'K', username: 'tk', password: 'tk-pass', priv_level: 'admin' } });
    const key = (await h.call('PUT', '/v2/api_auth', { data: { api_key: a.apiKey } })).body;
    const usr = (await h.call('PUT', '/v2/user_auth', { data: { credentials: md5('tk:tk-pass'), account_name: 'Acme' } })).body;
    expect(usr.data.method).toBe('user_auth');
    expect(Date.parse(key.data.expires_at)).toBe(h.clock.now + 3600_000);
    const saved = h.clock.now;
    h.clock.now = Date.parse(key.data.expires_at); // expiry is inclusive: at expires_at the token is dead
    try {
      for (const token of [key.auth_token as string, usr.auth_token as string]) {
        for (const [method, path] of [['GET', '/presence'], ['GET', '/presence/1001'], ['POST', '/presence/1001']] as const) {
          const r = await h.call(method, `/v2/accounts/${a.id}${path}`, { token, data: method === 'POST' ? { action: 'reset' } : undefined });
          expect(r.status, `${method} ${path}`).toBe(401);
          expect(r.body).toMatchObject({ status: 'error', error: '401', message: 'invalid_credentials', data: { message: 'invalid credentials' } });
        }
      }
    } finally {
      h.clock.now = saved;
    }
    expect(h.presence.calls).toEqual([]);
  });

  it('user_auth: upper-case hex credentials work; a disabled user or account, or the wrong realm, is 401', async () => {
    await h.call('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, data: { first_name: 'Di', last_name: 'S', username: 'dis', password: 'dis-pass' } });
    const creds = md5('dis:dis-pass');
    expect((await h.call('PUT', '/v2/user_auth', { data: { credentials: creds.toUpperCase(), realm: 'acme.example.com' } })).status).toBe(201);
    expect((await h.call('PUT', '/v2/user_auth', { data: { credentials: creds, realm: 'other.example.com' } })).status).toBe(401);
    const list = await h.call('GET', `/v2/accounts/${a.id}/users?paginate=false`, { token: a.token });
    const id = list.body.data.find((u: { username?: string }) => u.username === 'dis').id as string;
    await h.call('PATCH', `/v2/accounts/${a.id}/users/${id}`, { token: a.token, data: { enabled: false } });
    expect((await h.call('PUT', '/v2/user_auth', { data: { credentials: creds, realm: 'acme.example.com' } })).status).toBe(401);
    await h.call('PATCH', `/v2/accounts/${a.id}/users/${id}`, { token: a.token, data: { enabled: true } });
    const d = await h.account('Disabled', 'disabled.example.com');
    await h.call('PUT', `/v2/accounts/${d.id}/users`, { token: d.token, data: { first_name: 'X', last_name: 'Y', username: 'x', password: 'x-pass' } });
    expect((await h.call('PUT', '/v2/user_auth', { data: { credentials: md5('x:x-pass'), account_name: 'Disabled' } })).status).toBe(201);
    expect((await h.call('PATCH', `/v2/accounts/${d.id}`, { token: d.token, data: { enabled: false } })).status).toBe(200);
    expect((await h.call('PUT', '/v2/user_auth', { data: { credentials: md5('x:x-pass'), account_name: 'Disabled' } })).status).toBe(401);
    expect((await h.call('PUT', '/v2/api_auth', { data: { api_key: d.apiKey } })).status).toBe(401);
  });
});

describe('disabled accounts', () => {
  it('the tokens of a disabled account stop working; its parent can still reach it and enable it again', async () => {
    const parent = await h.account('Parent', 'parent.example.com');
    const kid = await h.account('Kid', 'kid.example.com', parent.id);
    expect((await h.call('GET', `/v2/accounts/${kid.id}/presence`, { token: kid.token })).status).toBe(200);
    expect((await h.call('PATCH', `/v2/accounts/${kid.id}`, { token: parent.token, data: { enabled: false } })).status).toBe(200);
    for (const [method, path] of [['GET', ''], ['GET', '/presence'], ['POST', '/presence/1001']] as const) {
      const r = await h.call(method, `/v2/accounts/${kid.id}${path}`, { token: kid.token, data: method === 'POST' ? { action: 'reset' } : undefined });
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(r.body.message).toBe('invalid_credentials');
    }
    expect(h.presence.calls).toEqual([]);
    expect((await h.call('GET', `/v2/accounts/${kid.id}`, { token: parent.token })).body.data.enabled).toBe(false);
    expect((await h.call('PATCH', `/v2/accounts/${kid.id}`, { token: parent.token, data: { enabled: true } })).status).toBe(200);
    expect((await h.call('GET', `/v2/accounts/${kid.id}/presence`, { token: kid.token })).status).toBe(200);
  });
});

describe('sub-accounts', () => {
  it('PUT /accounts/{A} creates below A; its realm must be unique; a child cannot create beside itself', async () => {
    const r = await h.call('PUT', `/v2/accounts/${a.id}`, { token: a.token, data: { name: 'Branch', realm: 'branch.acme.example.com', custom_field: 1 } });
    expect(r.status).toBe(201);
    expect(Object.keys(r.body).sort()).toEqual(ENVELOPE_KEYS);
    expect(r.body.data).toMatchObject({ name: 'Branch', realm: 'branch.acme.example.com', parent_id: a.id, enabled: true, custom_field: 1 });
    const child = r.body.data.id as string;
    const kids = await h.call('GET', `/v2/accounts/${a.id}/children`, { token: a.token });
    expect(kids.body.data.map((k: { id: string }) => k.id)).toContain(child);
    const dup = await h.call('PUT', `/v2/accounts/${a.id}`, { token: a.token, data: { name: 'Again', realm: 'ACME.example.com' } });
    expect(dup.status).toBe(400);
    expect(dup.body.data).toEqual({ realm: { unique: { message: 'Account realm already in use', cause: 'acme.example.com' } } });
    // The parent's token reaches the child's presence; the child's own key does not reach the parent.
    expect((await h.call('GET', `/v2/accounts/${child}/presence`, { token: a.token })).status).toBe(200);
    const childKey = h.tokens.issueApiKey(child);
    const childToken = (await h.call('PUT', '/v2/api_auth', { data: { api_key: childKey } })).body.auth_token as string;
    const up = await h.call('PUT', `/v2/accounts/${a.id}`, { token: childToken, data: { name: 'Sneaky', realm: 'sneaky.example.com' } });
    expect(up.status).toBe(403);
    expect(h.directory.accountByRealm('sneaky.example.com')).toBeUndefined();
  });
});

describe('hostile input never reaches a 500', () => {
  it('random bodies on the presence POSTs and random query strings on the listings get an envelope, 2xx or 4xx', async () => {
    const fc = (await import('fast-check')).default;
    const user = (await h.call('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, data: { first_name: 'F', last_name: 'Z' } })).body.data.id as string;
    const device = (await h.call('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, data: { name: 'Z', presence_id: '2900' } })).body.data.id as string;
    const paths = ['/presence/2901', `/devices/${device}/presence`, `/users/${user}/presence`, '/presence/*3101'];
    const body = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ data: v })),
      fc.record({ action: fc.oneof(fc.constantFrom('reset', 'set', 'Reset', ''), fc.jsonValue({ maxDepth: 2 })), state: fc.oneof(fc.constantFrom('early', 'confirmed', 'terminated', 'idle'), fc.jsonValue({ maxDepth: 2 })), reset: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: [] }).map((d) => JSON.stringify({ data: d })),
      fc.string({ maxLength: 40 }),
    );
    await fc.assert(fc.asyncProperty(fc.constantFrom(...paths), body, async (path, raw) => {
      const r = await h.call('POST', `/v2/accounts/${a.id}${path}`, { token: a.token, raw });
      expect([200, 400]).toContain(r.status);
      expect(Object.keys(r.body).sort()).toEqual(r.status === 200 ? ENVELOPE_KEYS : ERROR_KEYS);
    }), { numRuns: 150 });
    const query = fc.array(fc.tuple(fc.constantFrom('page_size', 'start_key', 'paginate', 'event', 'verb'), fc.string({ maxLength: 12 })), { maxLength: 3 })
      .map((kv) => kv.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&'));
    const lists = ['/users', '/devices', '/device', '/presence', '/presence/2901'];
    await fc.assert(fc.asyncProperty(fc.constantFrom(...lists), query, async (path, q) => {
      const r = await h.call('GET', `/v2/accounts/${a.id}${path}?${q}`, { token: a.token });
      expect([200, 400], `${path}?${q}`).toContain(r.status);
      expect(r.body.status).toBe(r.status === 200 ? 'success' : 'error');
    }), { numRuns: 150 });
  });
});
