// The presence endpoints against a recording fake PresenceService: Kazoo's shapes, texts and field errors, and
// the presence id resolution of devices and users. The same endpoints over real SIP are in integration.test.ts.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startApi, type ApiHarness } from './helpers.js';
import type { SubscriptionView } from '../../src/presence/service.js';

const T0 = Date.UTC(2026, 0, 2, 3, 0, 0);
function sub(over: Partial<SubscriptionView>): SubscriptionView {
  return {
    id: 'sub-1', callId: 'call-1@phone', event: 'dialog', presentity: '1001@acme.example.com', watcher: '"Desk" <sip:2001@acme.example.com>;tag=abc',
    expires: 1800, expiresAt: T0 + 1_800_000, updatedAt: T0, transport: 'udp', contact: 'sip:2001@192.0.2.1', userAgent: 'Yealink T46',
    nodeId: 'node-a', version: 3, lastNotify: { body: '<dialog-info/>', reply: 200, sequence: 7 }, ...over,
  };
}

let h: ApiHarness;
let a: { id: string; token: string };
let other: { id: string; token: string };
beforeAll(async () => {
  h = await startApi();
  a = await h.account('Acme', 'acme.example.com');
  other = await h.account('Other', 'other.example.com');
  h.presence.subscriptions = [
    sub({}),
    sub({ id: 'sub-2', callId: 'call-2', event: 'presence', watcher: 'sip:2002@acme.example.com' }),
    sub({ id: 'sub-3', callId: 'call-3', presentity: '*3101@acme.example.com', lastNotify: { body: 'undefined', reply: 0, sequence: 0 }, userAgent: undefined }),
    sub({ id: 'sub-4', callId: 'call-4', presentity: '1001@other.example.com' }),
  ];
  h.presence.states.set('1001@acme.example.com', [
    { event: 'dialog', state: 'confirmed', source: 'manual', body: '<dialog-info state="full"/>', contentType: 'application/dialog-info+xml' },
    { event: 'presence', state: 'open', source: 'none', body: '<presence/>', contentType: 'application/pidf+xml' },
  ]);
});
afterAll(async () => { await h.close(); });
beforeEach(() => { h.presence.calls = []; });

describe('GET presence', () => {
  it('lists the account\'s subscriptions as data.subscriptions.{ext}.{event}.{call_id}', async () => {
    const r = await h.call('GET', `/v2/accounts/${a.id}/presence`, { token: a.token });
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({
      subscriptions: {
        '1001': {
          dialog: { 'call-1@phone': { expires: 1800, from: '2001@acme.example.com', notify: { body: '<dialog-info/>', reply: 200, sequence: 7 }, stalker: 'node-a', timestamp: T0 / 1000 + 62167219200, version: 1, subscription_id: 'sub-1', user_agent: 'Yealink T46' } },
          presence: { 'call-2': expect.objectContaining({ from: '2002@acme.example.com' }) },
        },
        '*3101': { dialog: { 'call-3': expect.objectContaining({ notify: { body: 'undefined', reply: 0, sequence: 0 } }) } },
      },
    });
  });

  it('?event= filters, and an unknown event is a 400 enum error', async () => {
    const r = await h.call('GET', `/v2/accounts/${a.id}/presence?event=presence`, { token: a.token });
    expect(Object.keys(r.body.data.subscriptions)).toEqual(['1001']);
    expect(Object.keys(r.body.data.subscriptions['1001'])).toEqual(['presence']);
    const bad = await h.call('GET', `/v2/accounts/${a.id}/presence?event=reg`, { token: a.token });
    expect(bad.status).toBe(400);
    expect(bad.body.data).toEqual({ event: { enum: { message: 'Value not found in enumerated list of values', target: ['dialog', 'presence', 'message-summary'], value: 'reg' } } });
  });

  it('GET /presence/{EXT} gives that extension\'s subscriptions and current state per event', async () => {
    const r = await h.call('GET', `/v2/accounts/${a.id}/presence/1001?event=dialog`, { token: a.token });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body.data.subscriptions)).toEqual(['1001']);
    expect(Object.keys(r.body.data.subscriptions['1001'])).toEqual(['dialog']);
    expect(r.body.data.presentities).toEqual({ '1001': { dialog: { state: 'confirmed', source: 'manual', content_type: 'application/dialog-info+xml', body: '<dialog-info state="full"/>' } } });
    const park = await h.call('GET', `/v2/accounts/${a.id}/presence/*3101`, { token: a.token });
    expect(Object.keys(park.body.data.subscriptions)).toEqual(['*3101']);
  });

  it('an extension with characters outside the safe set is refused', async () => {
    for (const ext of ['10%2001', '1001%3Cscript%3E', "1001'--"]) {
      const r = await h.call('POST', `/v2/accounts/${a.id}/presence/${ext}`, { token: a.token, data: {} });
      expect(r.status, ext).toBe(404);
      expect(r.body.message).toBe('bad_identifier');
    }
    expect(h.presence.calls).toEqual([]);
  });
});

describe('POST /presence/{EXT}', () => {
  it('resets {ext lower-cased}@{account realm} for reset:true, action:reset and an empty body', async () => {
    for (const data of [{ reset: true }, { action: 'reset' }, {}]) {
      const r = await h.call('POST', `/v2/accounts/${a.id}/presence/Park*3101`, { token: a.token, data });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ status: 'success', data: 'reset command sent for extension Park*3101' });
    }
    expect(h.presence.calls).toEqual(Array(3).fill({ op: 'reset', presentity: 'park*3101@acme.example.com' }));
  });

  it('sets a manual state; a bad action or state gets Kazoo\'s field errors and changes nothing', async () => {
    const r = await h.call('POST', `/v2/accounts/${a.id}/presence/1001`, { token: a.token, data: { action: 'set', state: 'early' } });
    expect(r.body.data).toBe('early command sent for extension 1001');
    expect(h.presence.calls).toEqual([{ op: 'set', presentity: '1001@acme.example.com', state: 'early' }]);
    const badState = await h.call('POST', `/v2/accounts/${a.id}/presence/1001`, { token: a.token, data: { action: 'set', state: 'ringing' } });
    expect(badState.status).toBe(400);
    expect(badState.body).toMatchObject({ status: 'error', error: '400', message: 'validation error', data: { state: { invalid: { message: 'Field must be set to a valid state', target: 'invalid' } } } });
    const badAction = await h.call('POST', `/v2/accounts/${a.id}/presence/1001`, { token: a.token, data: { action: 'blink' } });
    expect(badAction.body.data).toEqual({ action: { invalid: { message: 'Field must be set to a valid action', target: 'invalid' } } });
    expect(h.presence.calls).toHaveLength(1);
  });

  it('POST /presence without an extension is 404 faulty_request, as in Kazoo', async () => {
    const r = await h.call('POST', `/v2/accounts/${a.id}/presence`, { token: a.token, data: { action: 'reset' } });
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ status: 'error', error: '404', message: 'faulty_request', data: { message: 'faulty request' } });
    expect(h.presence.calls).toEqual([]);
  });

  it('saves the reset snapshot as report-{ID}, readable only from the account', async () => {
    const r = await h.call('POST', `/v2/accounts/${a.id}/presence/1001`, { token: a.token, data: { action: 'reset' } });
    const path = r.headers.get('x-presence-report')!;
    expect(path).toMatch(new RegExp(`^/v2/accounts/${a.id}/presence/report-[0-9a-f]{32}$`));
    const rep = await h.call('GET', path, { token: a.token });
    expect(rep.status).toBe(200);
    expect(rep.headers.get('content-disposition')).toMatch(/^attachment; filename=[0-9a-f]{32}\.json$/);
    expect(rep.body).toMatchObject({ account_id: a.id, presentities: ['1001@acme.example.com'], notified: 2 });
    expect(Object.keys(rep.body.subscriptions['1001']).sort()).toEqual(['dialog', 'presence']);
    const foreign = await h.call('GET', path.replace(a.id, other.id), { token: other.token });
    expect(foreign.status).toBe(404);
    const unknown = await h.call('GET', `/v2/accounts/${a.id}/presence/report-${'0'.repeat(32)}`, { token: a.token });
    expect(unknown.body).toMatchObject({ error: '404', message: 'bad_identifier', data: { cause: '0'.repeat(32) } });
  });
});

describe('devices and users', () => {
  let withPid: string; let withUser: string; let bare: string; let owner: string; let lonely: string; let userPid: string;
  beforeAll(async () => {
    const mk = async (path: string, data: unknown) => (await h.call('PUT', `/v2/accounts/${a.id}/${path}`, { token: a.token, data })).body.data.id as string;
    owner = await mk('users', { first_name: 'O', last_name: 'Wner' });
    lonely = await mk('users', { first_name: 'L', last_name: 'One' });
    userPid = await mk('users', { first_name: 'P', last_name: 'Id', presence_id: '5000' });
    withPid = await mk('devices', { name: 'a', presence_id: '4001', sip: { username: 'u4001' }, owner_id: owner });
    withUser = await mk('devices', { name: 'b', sip: { username: 'U4002' }, owner_id: owner });
    bare = await mk('devices', { name: 'c' });
  });

  it('a device resolves to presence_id, else sip.username; nothing -> "nothing to send command to"', async () => {
    const r1 = await h.call('POST', `/v2/accounts/${a.id}/devices/${withPid}/presence`, { token: a.token, data: { action: 'reset' } });
    expect(r1.body.data).toBe('command sent');
    const r2 = await h.call('POST', `/v2/accounts/${a.id}/device/${withUser}/presence`, { token: a.token, data: { action: 'set', state: 'confirmed' } });
    expect(r2.body.data).toBe('command sent');
    const r3 = await h.call('POST', `/v2/accounts/${a.id}/devices/${bare}/presence`, { token: a.token, data: { action: 'reset' } });
    expect(r3.status).toBe(200);
    expect(r3.body).toMatchObject({ status: 'success', data: 'nothing to send command to' });
    expect(h.presence.calls).toEqual([
      { op: 'reset', presentity: '4001@acme.example.com' },
      { op: 'set', presentity: 'u4002@acme.example.com', state: 'confirmed' },
    ]);
  });

  it('a user resolves to its presence_id, else its devices\' ids; a missing action is action.invalid', async () => {
    await h.call('POST', `/v2/accounts/${a.id}/users/${userPid}/presence`, { token: a.token, data: { action: 'reset' } });
    await h.call('POST', `/v2/accounts/${a.id}/users/${owner}/presence`, { token: a.token, data: { reset: true } });
    const none = await h.call('POST', `/v2/accounts/${a.id}/users/${lonely}/presence`, { token: a.token, data: { action: 'reset' } });
    expect(none.body.data).toBe('nothing to send command to');
    const got = h.presence.calls.map((c) => c.presentity);
    expect(got[0]).toBe('5000@acme.example.com');
    expect(got.slice(1).sort()).toEqual(['4001@acme.example.com', 'u4002@acme.example.com']);
    const missing = await h.call('POST', `/v2/accounts/${a.id}/users/${owner}/presence`, { token: a.token, data: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.data).toEqual({ action: { invalid: { message: 'Field must be set to a valid action', target: 'invalid' } } });
  });

  it('an unknown device or user is 404 bad_identifier; GET on their /presence is 405', async () => {
    const id = 'd'.repeat(32);
    const r = await h.call('POST', `/v2/accounts/${a.id}/devices/${id}/presence`, { token: a.token, data: { action: 'reset' } });
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ message: 'bad_identifier', data: { message: 'bad identifier', cause: id } });
    const u = await h.call('POST', `/v2/accounts/${other.id}/users/${owner}/presence`, { token: other.token, data: { action: 'reset' } });
    expect(u.status).toBe(404);
    const g = await h.call('GET', `/v2/accounts/${a.id}/devices/${withPid}/presence`, { token: a.token });
    expect(g.status).toBe(405);
  });
});
