// Audit of issue 3's presence endpoints on the whole server, over real HTTP and real SIP (raw UDP watchers):
// the `notify` fields before and after the first answer, POSTs that answer while the watcher stays silent,
// a reset reaching dialog, presence and message-summary watchers (MWI keeps its counts), set/reset on users and
// devices, ?event= filters, granted expires, tenancy between realms, and manual state across restarts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, tempDbFile, type TestServer } from '../helpers/server.js';
import { RawPeer, publishText, randomTag, responseTo, subscribeText, type RawMessage } from '../helpers/raw-sip.js';
import { Directory } from '../../src/store/directory.js';
import { TokenStore } from '../../src/store/tokens.js';

const ACME = 'acme.example.com';
const BETA = 'beta.example.com';
const GREGORIAN = 62167219200;
const POST_BUDGET_MS = 5000; // far below Timer F (64*T1 = 32 s): a POST that waited for a silent phone would hit it

type Api = (method: string, path: string, data?: unknown) => Promise<{ status: number; body: any; headers: Headers }>;

function apiFor(srv: () => TestServer, token: () => string): Api {
  return async (method, path, data) => {
    const res = await fetch(srv().apiUrl + path, {
      method,
      headers: { 'X-Auth-Token': token(), 'Content-Type': 'application/json' },
      body: data === undefined ? undefined : JSON.stringify({ data }),
      signal: AbortSignal.timeout(POST_BUDGET_MS),
    });
    return { status: res.status, body: await res.json(), headers: res.headers };
  };
}

async function accountWithToken(srv: TestServer, name: string, realm: string): Promise<{ id: string; token: string }> {
  const id = new Directory(srv.server.db).createAccount({ name, realm }, null).id;
  const apiKey = new TokenStore(srv.server.db, { ttlSeconds: 3600 }).issueApiKey(id);
  const r = await fetch(`${srv.apiUrl}/v2/api_auth`, { method: 'PUT', body: JSON.stringify({ data: { api_key: apiKey } }) });
  expect(r.status).toBe(201);
  return { id, token: ((await r.json()) as { auth_token: string }).auth_token };
}

const dialogState = (m: RawMessage) => /<state>(\w+)<\/state>/.exec(m.body)?.[1] ?? 'none';
const cseqOf = (m: RawMessage) => Number(m.get('cseq')!.split(/\s+/)[0]);
const notifyOn = (callId: string) => (m: RawMessage) => m.method === 'NOTIFY' && m.get('call-id') === callId;
const silent = (m: RawMessage) => (m.method === 'NOTIFY' ? null : 200);

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** SUBSCRIBE and wait for the 200 (the initial NOTIFY is left to the caller). */
async function subscribe(peer: RawPeer, o: { user: string; domain: string; event?: string; expires?: number; watcher?: string; callId?: string; fromTag?: string }): Promise<RawMessage> {
  const r = await peer.request(subscribeText(peer, { watcher: '2001', expires: 600, ...o }));
  expect(r.status, `SUBSCRIBE ${o.user} ${o.event ?? 'dialog'}`).toBe(200);
  return r;
}

let srv: TestServer;
let acme: { id: string; token: string };
let beta: { id: string; token: string };
let api: Api;
let betaApi: Api;
const peers: RawPeer[] = [];
async function peer(opts: { answer?: (m: RawMessage) => number | null } = {}): Promise<RawPeer> {
  const p = await RawPeer.open(srv.sip('udp'), opts);
  peers.push(p);
  return p;
}

beforeAll(async () => {
  srv = await startTestServer();
  acme = await accountWithToken(srv, 'Acme', ACME);
  beta = await accountWithToken(srv, 'Beta', BETA);
  api = apiFor(() => srv, () => acme.token);
  betaApi = apiFor(() => srv, () => beta.token);
});
afterAll(async () => {
  for (const p of peers) p.close();
  await srv?.stop();
});

describe('notify fields of a listed subscription', () => {
  it('are "undefined", 0, 0 while the first NOTIFY is unanswered; then its body, reply code and CSeq', async () => {
    const w = await peer({ answer: silent });
    const callId = `nf-${randomTag()}@watcher`;
    await subscribe(w, { user: '1101', domain: ACME, callId });
    const first = await w.waitFor(notifyOn(callId), 5000, 0);
    const list = await api('GET', `/v2/accounts/${acme.id}/presence/1101`);
    expect(list.body.data.subscriptions['1101'].dialog[callId].notify).toEqual({ body: 'undefined', reply: 0, sequence: 0 });

    w.sendRaw(responseTo(first, 200));
    const answered = await until(async () => {
      const n = (await api('GET', `/v2/accounts/${acme.id}/presence/1101`)).body.data.subscriptions['1101'].dialog[callId].notify;
      return n.reply === 200 ? n : undefined;
    }, 5000, 'the NOTIFY answer to show');
    expect(answered).toEqual({ body: first.body, reply: 200, sequence: cseqOf(first) });
  });
});

describe('a POST answers once the NOTIFYs are queued, not once the phones answer', () => {
  it('extension, device and user POSTs return while every watcher stays silent; the NOTIFYs still go out', async () => {
    // The watcher answers the initial NOTIFYs (so no NOTIFY is outstanding in its dialogs, RFC 6665 §4.2.2 lets a
    // notifier hold the next one until then), then goes silent for good.
    const mode = { silent: false };
    const w = await peer({ answer: (m) => (m.method === 'NOTIFY' && mode.silent ? null : 200) });
    const withPid = (await api('PUT', `/v2/accounts/${acme.id}/devices`, { name: 'Silent desk', presence_id: '1202' })).body.data.id as string;
    const user = (await api('PUT', `/v2/accounts/${acme.id}/users`, { first_name: 'Si', last_name: 'Lent' })).body.data.id as string;
    expect((await api('PUT', `/v2/accounts/${acme.id}/devices`, { name: 'Owned', owner_id: user, sip: { username: '1203' } })).status).toBe(201);
    const calls: Record<string, string> = {};
    for (const ext of ['1201', '1202', '1203', '1204']) {
      calls[ext] = `silent-${ext}-${randomTag()}`;
      await subscribe(w, { user: ext, domain: ACME, callId: calls[ext] });
      await w.waitFor(notifyOn(calls[ext]), 5000, 0);
    }
    mode.silent = true;
    const posts: Array<[string, unknown, string, string]> = [
      ['/presence/1201', { action: 'set', state: 'confirmed' }, '1201', 'confirmed'],
      [`/devices/${withPid}/presence`, { action: 'set', state: 'early' }, '1202', 'early'],
      [`/users/${user}/presence`, { action: 'set', state: 'confirmed' }, '1203', 'confirmed'],
      ['/presence/1204', { action: 'reset' }, '1204', 'terminated'],
    ];
    for (const [path, data, ext, want] of posts) {
      const mark = w.received.length;
      const started = performance.now();
      const r = await api('POST', `/v2/accounts/${acme.id}${path}`, data);
      const ms = performance.now() - started;
      expect(r.status, path).toBe(200);
      expect(r.body.status).toBe('success');
      expect(ms, `${path} answered in ${ms.toFixed(0)} ms`).toBeLessThan(POST_BUDGET_MS);
      const n = await w.waitFor((m) => notifyOn(calls[ext]!)(m) && dialogState(m) === want, 5000, mark);
      expect(n.get('subscription-state')).toMatch(/^active/);
    }
  });

  it('a set on a presentity with 100 silent watchers answers at once and every watcher gets its NOTIFY', async () => {
    const mode = { silent: false };
    const w = await peer({ answer: (m) => (m.method === 'NOTIFY' && mode.silent ? null : 200) });
    const calls: string[] = [];
    for (let i = 0; i < 100; i++) {
      const callId = `many-${i}-${randomTag()}`;
      calls.push(callId);
      await subscribe(w, { user: '1250', domain: ACME, callId, watcher: `3${String(i).padStart(3, '0')}` });
    }
    for (const c of calls) await w.waitFor(notifyOn(c), 5000, 0);
    mode.silent = true;
    const mark = w.received.length;
    const started = performance.now();
    const r = await api('POST', `/v2/accounts/${acme.id}/presence/1250`, { action: 'set', state: 'early' });
    const ms = performance.now() - started;
    expect(r.body.data).toBe('early command sent for extension 1250');
    expect(ms, `answered in ${ms.toFixed(0)} ms`).toBeLessThan(POST_BUDGET_MS);
    await until(() => {
      const got = new Set(w.received.slice(mark).filter((m) => m.method === 'NOTIFY' && dialogState(m) === 'early').map((m) => m.get('call-id')));
      return calls.every((c) => got.has(c)) ? true : undefined;
    }, 10_000, 'every watcher to get the early NOTIFY');
  });
});

describe('reset', () => {
  it('NOTIFYs dialog and presence watchers idle and MWI watchers the current counts; subscriptions stay', async () => {
    const w = await peer();
    const pbx = await peer();
    const ids = { dialog: `r-d-${randomTag()}`, presence: `r-p-${randomTag()}`, 'message-summary': `r-m-${randomTag()}` };
    for (const [event, callId] of Object.entries(ids)) {
      await subscribe(w, { user: '1301', domain: ACME, event, callId });
      await w.waitFor(notifyOn(callId), 5000, 0);
    }
    let mark = w.received.length;
    const pidf = `<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1301@${ACME}"><tuple id="t1"><status><basic>closed</basic></status></tuple></presence>`;
    const mwi = `Messages-Waiting: yes\r\nMessage-Account: sip:*981301@${ACME}\r\nVoice-Message: 2/1\r\n`;
    expect((await pbx.request(publishText(pbx, { user: '1301', domain: ACME, state: 'confirmed' }))).status).toBe(200);
    expect((await pbx.request(publishText(pbx, { user: '1301', domain: ACME, event: 'presence', contentType: 'application/pidf+xml', body: pidf }))).status).toBe(200);
    expect((await pbx.request(publishText(pbx, { user: '1301', domain: ACME, event: 'message-summary', contentType: 'application/simple-message-summary', body: mwi }))).status).toBe(200);
    await w.waitFor((m) => notifyOn(ids.dialog)(m) && dialogState(m) === 'confirmed', 5000, mark);
    await w.waitFor((m) => notifyOn(ids.presence)(m) && m.body.includes('<basic>closed</basic>'), 5000, mark);
    await w.waitFor((m) => notifyOn(ids['message-summary'])(m) && /Messages-Waiting: yes/i.test(m.body), 5000, mark);

    mark = w.received.length;
    const r = await api('POST', `/v2/accounts/${acme.id}/presence/1301`, { action: 'reset' });
    expect(r.body).toMatchObject({ status: 'success', data: 'reset command sent for extension 1301' });
    const d = await w.waitFor(notifyOn(ids.dialog), 5000, mark);
    const p = await w.waitFor(notifyOn(ids.presence), 5000, mark);
    const m = await w.waitFor(notifyOn(ids['message-summary']), 5000, mark);
    expect(['terminated', 'none']).toContain(dialogState(d));
    expect(p.body).toContain('<basic>open</basic>');
    expect(p.body).not.toContain('closed');
    expect(m.body).toMatch(/Messages-Waiting: yes/i);
    expect(m.body).toContain('2/1');
    for (const n of [d, p, m]) expect(n.get('subscription-state'), n.get('event')).toMatch(/^active/);

    const after = await api('GET', `/v2/accounts/${acme.id}/presence/1301`);
    expect(Object.keys(after.body.data.subscriptions['1301']).sort()).toEqual(['dialog', 'message-summary', 'presence']);
    expect(after.body.data.presentities['1301']['message-summary']).toMatchObject({ state: 'yes', source: 'publication' });
    expect(after.body.data.presentities['1301'].presence).toMatchObject({ state: 'open' });
    expect(after.body.data.presentities['1301'].dialog.state).not.toBe('confirmed');
  });
});

describe('set', () => {
  it('reaches presence (PIDF) watchers as well as dialog watchers, and never MWI watchers', async () => {
    const w = await peer();
    const ids = { dialog: `s-d-${randomTag()}`, presence: `s-p-${randomTag()}`, 'message-summary': `s-m-${randomTag()}` };
    for (const [event, callId] of Object.entries(ids)) {
      await subscribe(w, { user: '1350', domain: ACME, event, callId });
      await w.waitFor(notifyOn(callId), 5000, 0);
    }
    const mark = w.received.length;
    expect((await api('POST', `/v2/accounts/${acme.id}/presence/1350`, { action: 'set', state: 'confirmed' })).status).toBe(200);
    expect(dialogState(await w.waitFor(notifyOn(ids.dialog), 5000, mark))).toBe('confirmed');
    const pidf = await w.waitFor(notifyOn(ids.presence), 5000, mark);
    expect(pidf.body).toContain('<basic>open</basic>');
    expect(pidf.body).toMatch(/on-the-phone/);
    // Barrier: a reset NOTIFYs MWI watchers; the first MWI NOTIFY after the set must be that one, not one from the set.
    const resetMark = w.received.length;
    await api('POST', `/v2/accounts/${acme.id}/presence/1350`, { action: 'reset' });
    await w.waitFor(notifyOn(ids['message-summary']), 5000, resetMark);
    const mwi = w.received.slice(mark).filter(notifyOn(ids['message-summary']));
    expect(mwi.length).toBeGreaterThan(0);
    expect(w.received.indexOf(mwi[0]!)).toBeGreaterThanOrEqual(resetMark);
  });
});

describe('devices and users over real SIP', () => {
  it('a user without presence_id sets every owned device\'s id (presence_id, else sip.username, realm part dropped)', async () => {
    const w = await peer();
    const u = (await api('PUT', `/v2/accounts/${acme.id}/users`, { first_name: 'Own', last_name: 'Er' })).body.data.id as string;
    const mk = async (data: Record<string, unknown>) => {
      const r = await api('PUT', `/v2/accounts/${acme.id}/devices`, { owner_id: u, ...data });
      expect(r.status, JSON.stringify(r.body.data)).toBe(201);
      return r.body.data.id as string;
    };
    await mk({ name: 'A', presence_id: '1401' });
    await mk({ name: 'B', sip: { username: '1402' } });
    const c = await mk({ name: 'C', presence_id: `1403@${BETA}` });
    const calls: Record<string, string> = {};
    for (const ext of ['1401', '1402', '1403']) {
      calls[ext] = `u-${ext}-${randomTag()}`;
      await subscribe(w, { user: ext, domain: ACME, callId: calls[ext] });
      await w.waitFor(notifyOn(calls[ext]), 5000, 0);
    }
    const betaWatcher = await peer();
    const betaCall = `b-1403-${randomTag()}`;
    await subscribe(betaWatcher, { user: '1403', domain: BETA, callId: betaCall });
    await betaWatcher.waitFor(notifyOn(betaCall), 5000, 0);

    let mark = w.received.length;
    const betaMark = betaWatcher.received.length;
    const set = await api('POST', `/v2/accounts/${acme.id}/users/${u}/presence`, { action: 'set', state: 'early' });
    expect(set.body.data).toBe('command sent');
    for (const ext of ['1401', '1402', '1403']) await w.waitFor((m) => notifyOn(calls[ext]!)(m) && dialogState(m) === 'early', 5000, mark);

    // Only the device's own presentity is reset; the others keep their lamp.
    mark = w.received.length;
    expect((await api('POST', `/v2/accounts/${acme.id}/devices/${c}/presence`, { reset: true })).body.data).toBe('command sent');
    const idle = await w.waitFor(notifyOn(calls['1403']!), 5000, mark);
    expect(dialogState(idle)).not.toBe('early');
    const states = await api('GET', `/v2/accounts/${acme.id}/presence/1401`);
    expect(states.body.data.presentities['1401'].dialog).toMatchObject({ state: 'early', source: 'manual' });

    // The realm in presence_id is not the device's to choose: 1403@beta never heard of any of it. The barrier: a
    // set through beta's own API must be the first NOTIFY its watcher gets.
    await betaApi('POST', `/v2/accounts/${beta.id}/presence/1403`, { action: 'set', state: 'confirmed' });
    const firstBeta = await betaWatcher.waitFor(notifyOn(betaCall), 5000, betaMark);
    expect(dialogState(firstBeta)).toBe('confirmed');
  });
});

describe('listing over real SIP', () => {
  it('?event= filters both listings; expires is the granted duration; timestamp is Gregorian; an unsubscribe is gone', async () => {
    const w = await peer();
    const fromTag = randomTag();
    const ids = { dialog: `l-d-${randomTag()}`, presence: `l-p-${randomTag()}`, 'message-summary': `l-m-${randomTag()}` };
    await subscribe(w, { user: '1501', domain: ACME, event: 'dialog', callId: ids.dialog, fromTag, expires: 99999 });
    await subscribe(w, { user: '1501', domain: ACME, event: 'presence', callId: ids.presence, expires: 300 });
    await subscribe(w, { user: '1501', domain: ACME, event: 'message-summary', callId: ids['message-summary'], expires: 300 });
    const before = Math.floor(Date.now() / 1000) + GREGORIAN;

    const all = await api('GET', `/v2/accounts/${acme.id}/presence`);
    const mine = all.body.data.subscriptions['1501'];
    expect(Object.keys(mine).sort()).toEqual(['dialog', 'message-summary', 'presence']);
    expect(mine.dialog[ids.dialog].expires).toBe(srv.server.config.sip.subscription.maxExpires);
    expect(mine.presence[ids.presence]).toMatchObject({ expires: 300, from: `2001@${ACME}`, stalker: 'test-node', version: 1 });
    expect(Math.abs(mine.presence[ids.presence].timestamp - before)).toBeLessThanOrEqual(5);

    const onlyPresence = await api('GET', `/v2/accounts/${acme.id}/presence?event=presence`);
    for (const byEvent of Object.values(onlyPresence.body.data.subscriptions) as Array<Record<string, unknown>>) expect(Object.keys(byEvent)).toEqual(['presence']);
    const mwiDetail = await api('GET', `/v2/accounts/${acme.id}/presence/1501?event=message-summary`);
    expect(Object.keys(mwiDetail.body.data.subscriptions['1501'])).toEqual(['message-summary']);
    expect(Object.keys(mwiDetail.body.data.presentities['1501'])).toEqual(['message-summary']);

    // Beta's watcher of the same extension is not acme's to see.
    const other = await peer();
    await subscribe(other, { user: '1501', domain: BETA, callId: `l-beta-${randomTag()}` });
    const again = await api('GET', `/v2/accounts/${acme.id}/presence/1501`);
    expect(Object.keys(again.body.data.subscriptions['1501'].dialog)).toEqual([ids.dialog]);
    expect((await api('GET', `/v2/accounts/${beta.id}/presence`)).status).toBe(403);

    // A refresh (RFC 6665 §4.1.2.1) moves timestamp and expires, as omnipresence's re-SUBSCRIBE did.
    const first = await w.waitFor(notifyOn(ids.dialog), 5000, 0);
    const toTag = /;\s*tag=([^;>\s]+)/.exec(first.get('from')!)![1]!;
    const stamp = mine.dialog[ids.dialog].timestamp as number;
    await new Promise((r) => setTimeout(r, 1100));
    const re = await w.request(subscribeText(w, { user: '1501', domain: ACME, watcher: '2001', callId: ids.dialog, fromTag, toTag, cseq: 2, expires: 120 }));
    expect(re.status).toBe(200);
    const refreshed = (await api('GET', `/v2/accounts/${acme.id}/presence/1501?event=dialog`)).body.data.subscriptions['1501'].dialog[ids.dialog];
    expect(refreshed.expires).toBe(120);
    expect(refreshed.timestamp).toBeGreaterThan(stamp);

    // Unsubscribe (Expires: 0 inside the dialog, RFC 6665 §4.1.2.3): no longer listed.
    const un = await w.request(subscribeText(w, { user: '1501', domain: ACME, watcher: '2001', callId: ids.dialog, fromTag, toTag, cseq: 3, expires: 0 }));
    expect(un.status).toBe(200);
    await until(async () => {
      const s = (await api('GET', `/v2/accounts/${acme.id}/presence/1501?event=dialog`)).body.data.subscriptions;
      return s['1501'] === undefined ? true : undefined;
    }, 5000, 'the unsubscribed dialog to leave the listing');
  });
});

describe('tenancy over real SIP', () => {
  it('a reset in one account NOTIFYs none of another realm\'s watchers of the same extension', async () => {
    const a = await peer();
    const b = await peer();
    const ca = `t-a-${randomTag()}`;
    const cb = `t-b-${randomTag()}`;
    await subscribe(a, { user: '1601', domain: ACME, callId: ca });
    await subscribe(b, { user: '1601', domain: BETA, callId: cb });
    await a.waitFor(notifyOn(ca), 5000, 0);
    await b.waitFor(notifyOn(cb), 5000, 0);
    const ma = a.received.length;
    const mb = b.received.length;
    expect((await api('POST', `/v2/accounts/${acme.id}/presence/1601`, { action: 'set', state: 'confirmed' })).status).toBe(200);
    await a.waitFor((m) => notifyOn(ca)(m) && dialogState(m) === 'confirmed', 5000, ma);
    // Beta cannot act on acme, and acme's command did not reach beta's watcher (barrier: beta's own set comes first).
    expect((await betaApi('POST', `/v2/accounts/${acme.id}/presence/1601`, { action: 'reset' })).status).toBe(403);
    await betaApi('POST', `/v2/accounts/${beta.id}/presence/1601`, { action: 'set', state: 'early' });
    expect(dialogState(await b.waitFor(notifyOn(cb), 5000, mb))).toBe('early');
    const acmeState = await api('GET', `/v2/accounts/${acme.id}/presence/1601`);
    expect(acmeState.body.data.presentities['1601'].dialog.state).toBe('confirmed');
  });
});

describe('manual state and reset across restarts', () => {
  it('a set survives a restart until a reset, and the reset (of a PBX publication too) survives one as well', async () => {
    const tmp = tempDbFile();
    let s = await startTestServer({ dbFile: tmp.file });
    const acct = await accountWithToken(s, 'Restart', 'restart.example.com');
    const call = apiFor(() => s, () => acct.token);
    const local: RawPeer[] = [];
    const watch = async (ext: string): Promise<string> => {
      const w = await RawPeer.open(s.sip('udp'));
      local.push(w);
      const callId = `rs-${ext}-${randomTag()}`;
      await subscribe(w, { user: ext, domain: 'restart.example.com', callId });
      return dialogState(await w.waitFor(notifyOn(callId), 5000, 0));
    };
    try {
      expect((await call('POST', `/v2/accounts/${acct.id}/presence/*3101`, { action: 'set', state: 'early' })).status).toBe(200);
      const pbx = await RawPeer.open(s.sip('udp'));
      local.push(pbx);
      expect((await pbx.request(publishText(pbx, { user: '1701', domain: 'restart.example.com', state: 'confirmed', expires: 3600 }))).status).toBe(200);
      await s.stop();

      s = await startTestServer({ dbFile: tmp.file });
      expect((await call('GET', `/v2/accounts/${acct.id}/presence/*3101`)).body.data.presentities['*3101'].dialog).toMatchObject({ state: 'early', source: 'manual' });
      expect(await watch('*3101')).toBe('early');
      expect(await watch('1701')).toBe('confirmed');
      expect((await call('POST', `/v2/accounts/${acct.id}/presence/*3101`, { action: 'reset' })).status).toBe(200);
      expect((await call('POST', `/v2/accounts/${acct.id}/presence/1701`, {})).status).toBe(200);
      await s.stop();

      s = await startTestServer({ dbFile: tmp.file });
      for (const ext of ['*3101', '1701']) {
        const st = (await call('GET', `/v2/accounts/${acct.id}/presence/${ext}`)).body.data.presentities[ext].dialog;
        expect(st.source, ext).toBe('none');
        expect(['early', 'confirmed'], ext).not.toContain(await watch(ext));
      }
    } finally {
      for (const p of local) p.close();
      await s.stop();
      tmp.cleanup();
    }
  });
});
