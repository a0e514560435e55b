// Audit of issue 3 findings that sit on the presence side (src/presence, src/sip/notify.ts, src/store), not in
// the API: the API's `notify` fields are only as right as the SubscriptionView presence hands it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawPeer, randomTag, subscribeText, type RawMessage } from '../helpers/raw-sip.js';
import { Directory } from '../../src/store/directory.js';
import { TokenStore } from '../../src/store/tokens.js';

const REALM = 'side.example.com';
const cseqOf = (m: RawMessage) => Number(m.get('cseq')!.split(/\s+/)[0]);
const notifyOn = (callId: string) => (m: RawMessage) => m.method === 'NOTIFY' && m.get('call-id') === callId;

let srv: TestServer;
let accountId: string;
let token: string;
let watcher: RawPeer;
const mode = { silent: false };

async function api(method: string, path: string, data?: unknown): Promise<any> {
  const res = await fetch(srv.apiUrl + path, { method, headers: { 'X-Auth-Token': token }, body: data === undefined ? undefined : JSON.stringify({ data }) });
  return res.json();
}

beforeAll(async () => {
  srv = await startTestServer();
  accountId = new Directory(srv.server.db).createAccount({ name: 'Side', realm: REALM }, null).id;
  const key = new TokenStore(srv.server.db, { ttlSeconds: 3600 }).issueApiKey(accountId);
  token = ((await (await fetch(`${srv.apiUrl}/v2/api_auth`, { method: 'PUT', body: JSON.stringify({ data: { api_key: key } }) })).json()) as { auth_token: string }).auth_token;
  watcher = await RawPeer.open(srv.sip('udp'), { answer: (m) => (m.method === 'NOTIFY' && mode.silent ? null : 200) });
});
afterAll(async () => {
  watcher?.close();
  await srv?.stop();
});

describe('presence side: SubscriptionView.lastNotify', () => {
  // Kazoo's notify{} (4.0 omnipresence notify_update) is written from the reply report, so body, reply and
  // sequence all describe one answered NOTIFY. Found broken in the audit (CSeq and body were recorded when a
  // NOTIFY left, the reply when one was answered, so with NOTIFY n answered and n+1 in flight the view showed
  // n+1's body and CSeq with n's 200); presence now records all three at the answer.
  it('describes one answered NOTIFY while the next one is in flight', async () => {
    const callId = `side-${randomTag()}`;
    const ok = await watcher.request(subscribeText(watcher, { user: '1801', domain: REALM, watcher: '2001', expires: 600, callId }));
    expect(ok.status).toBe(200);
    const first = await watcher.waitFor(notifyOn(callId), 5000, 0);
    // The first NOTIFY is answered (by the peer, 200) before we go silent.
    for (let i = 0; i < 100; i++) {
      const n = (await api('GET', `/v2/accounts/${accountId}/presence/1801`)).data.subscriptions['1801'].dialog[callId].notify;
      if (n.reply === 200) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    mode.silent = true;
    const mark = watcher.received.length;
    await api('POST', `/v2/accounts/${accountId}/presence/1801`, { action: 'set', state: 'confirmed' });
    const second = await watcher.waitFor(notifyOn(callId), 5000, mark);
    expect(cseqOf(second)).toBeGreaterThan(cseqOf(first));
    const shown = (await api('GET', `/v2/accounts/${accountId}/presence/1801`)).data.subscriptions['1801'].dialog[callId].notify;
    expect(shown).toEqual({ body: first.body, reply: 200, sequence: cseqOf(first) });
  });
});
