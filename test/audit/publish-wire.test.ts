// Audit of issue 2, "State coming in: PUBLISH (RFC 3903)", black-box on the wire: the compositor's answers, the
// composition of several publications, removal and expiry of one of them reaching the watchers, and the three
// packages' bodies as a phone sees them.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { subscribeText, publishText, randomTag, type RawMessage, type RawPeer } from '../helpers/raw-sip.js';
import { Peers, dbRows, sleep, until, cseqOf, versionOf, isNotify, notifies, uniqueUser } from './util.js';

let ts: TestServer;
const peers = new Peers();
beforeAll(async () => {
  ts = await startTestServer({ overrides: { sip: { publication: { minExpires: 1, maxExpires: 3600, defaultExpires: 3600 } } } });
});
afterAll(async () => { peers.closeAll(); await ts?.stop(); });

const udp = () => peers.open(ts.sip('udp').port, 'udp');
const pubRows = (presentity: string) => dbRows(ts.dbFile, 'SELECT * FROM publications WHERE presentity = ?', presentity);

function callBody(entity: string, calls: Array<{ id: string; state: string }>): string {
  const dialogs = calls.map((c) => `<dialog id="${c.id}" call-id="${c.id}@pbx" local-tag="l-${c.id}" remote-tag="r-${c.id}" direction="recipient"><state>${c.state}</state></dialog>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\r\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="${entity}">${dialogs}</dialog-info>`;
}

async function watch(p: RawPeer, user: string, event = 'dialog', extra: string[] = []): Promise<{ callId: string; first: RawMessage }> {
  const callId = `${randomTag()}@audit`;
  const ok = await p.request(subscribeText(p, { user, callId, event, expires: 600, extra }));
  expect(ok.status).toBe(200);
  return { callId, first: await p.waitFor(isNotify(callId), 5000, 0) };
}

/** The `<dialog ...>` open tags of a body, as id -> state. */
function dialogs(body: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of body.matchAll(/<dialog\s(?:[^>]*\s)?id="([^"]+)"[^>]*>[\s\S]*?<state[^>]*>([a-z]+)<\/state>/g)) out.set(m[1]!, m[2]!);
  return out;
}

describe('PUBLISH answers', () => {
  it('489 with Allow-Events for an unknown or missing Event; 412 for a tag of another presentity; Expires absent -> default', async () => {
    const p = await udp();
    const user = uniqueUser();
    const unknown = await p.request(publishText(p, { user, event: 'reg' }));
    expect(unknown.status).toBe(489);
    expect(unknown.get('allow-events')).toContain('dialog');
    const missing = await p.request(publishText(p, { user }).replace(/^Event: .*\r\n/m, ''));
    expect(missing.status).toBe(489);
    expect(missing.get('allow-events')).toContain('dialog');

    const noExpires = await p.request(publishText(p, { user, state: 'early' }).replace(/^Expires: .*\r\n/m, ''));
    expect(noExpires.status).toBe(200);
    expect(noExpires.get('expires')).toBe('3600');
    const etag = noExpires.get('sip-etag')!;
    const other = await p.request(publishText(p, { user: uniqueUser(), ifMatch: etag, body: null }));
    expect(other.status).toBe(412);
    const wrongEvent = await p.request(publishText(p, { user, ifMatch: etag, body: null, event: 'presence' }));
    expect(wrongEvent.status).toBe(412);
    // The tag is still good for its own presentity and event.
    expect((await p.request(publishText(p, { user, ifMatch: etag, body: null }))).status).toBe(200);
  });

  it('a refresh keeps the state and renews the row; a modify changes what the watchers see', async () => {
    const p = await udp();
    const user = uniqueUser();
    const w = await watch(p, user);
    const first = await p.request(publishText(p, { user, state: 'early', expires: 60 }));
    const n1 = await p.waitFor((m) => isNotify(w.callId)(m) && m.body.includes('<state>early</state>'), 5000, 0);
    const before = pubRows(`${user}@example.test`)[0];
    await sleep(20);
    const refresh = await p.request(publishText(p, { user, ifMatch: first.get('sip-etag')!, body: null, expires: 120 }));
    expect(refresh.status).toBe(200);
    expect(refresh.get('expires')).toBe('120');
    const after = pubRows(`${user}@example.test`);
    expect(after).toHaveLength(1);
    expect(after[0].etag).toBe(refresh.get('sip-etag'));
    expect(after[0].expires_at).toBeGreaterThan(before.expires_at);
    const modify = await p.request(publishText(p, { user, ifMatch: refresh.get('sip-etag')!, state: 'confirmed' }));
    expect(modify.status).toBe(200);
    const n2 = await p.waitFor((m) => isNotify(w.callId)(m) && m.body.includes('<state>confirmed</state>'), 5000, 0);
    expect(cseqOf(n2)).toBeGreaterThan(cseqOf(n1));
    expect(n2.body).not.toContain('<state>early</state>');
  });

  it('400 names the fault: no body on an initial PUBLISH, Expires 0 without SIP-If-Match; 415 carries Accept', async () => {
    const p = await udp();
    const user = uniqueUser();
    const noBody = await p.request(publishText(p, { user, body: null }));
    expect(noBody.status).toBe(400);
    expect(noBody.startLine).toMatch(/body/i);
    const r415 = await p.request(publishText(p, { user, contentType: 'application/pidf+xml' }));
    expect(r415.status).toBe(415);
    expect(r415.get('accept')).toBe('application/dialog-info+xml');
    const zero = await p.request(publishText(p, { user, state: 'early', expires: 0 }));
    expect(zero.status).toBe(400);
    expect(pubRows(`${user}@example.test`)).toHaveLength(0);
  });
});

describe('composition of publications', () => {
  it('two live publications are merged; removing one takes its part away; the expiry of the other notifies idle', async () => {
    const p = await udp();
    const user = uniqueUser();
    const entity = `sip:${user}@example.test`;
    const w = await watch(p, user);
    const a = await p.request(publishText(p, { user, body: callBody(entity, [{ id: 'calla', state: 'early' }]), expires: 2 }));
    expect(a.status).toBe(200);
    const b = await p.request(publishText(p, { user, body: callBody(entity, [{ id: 'callb', state: 'confirmed' }]), expires: 600 }));
    expect(b.status).toBe(200);
    const both = await until(() => notifies(p, w.callId).find((m) => {
      const d = dialogs(m.body);
      return d.get('calla') === 'early' && d.get('callb') === 'confirmed' ? m : undefined;
    }), 5000, 'a NOTIFY with both calls');
    expect(both.body).toContain('call-id="calla@pbx"');
    expect(both.body).toContain('call-id="callb@pbx"');

    const seen = p.received.length;
    const removed = await p.request(publishText(p, { user, ifMatch: b.get('sip-etag')!, body: null, expires: 0 }));
    expect(removed.status).toBe(200);
    const onlyA = await p.waitFor(isNotify(w.callId), 5000, seen);
    const d1 = dialogs(onlyA.body);
    expect(d1.get('calla')).toBe('early');
    expect(d1.get('callb') ?? 'terminated').toBe('terminated');
    expect(pubRows(`${user}@example.test`).map((r) => r.etag)).toEqual([a.get('sip-etag')]);

    // Publication A runs out (2 s): its part goes, the watcher is told, its tag no longer matches.
    const seen2 = p.received.length;
    const idle = await p.waitFor(isNotify(w.callId), 5000, seen2);
    expect(idle.body).not.toMatch(/<state>(early|confirmed)<\/state>/);
    expect(idle.body.match(/<dialog[\s>]/g)!.length).toBeGreaterThanOrEqual(1);
    expect(versionOf(idle)).toBe(versionOf(onlyA) + 1);
    await until(() => pubRows(`${user}@example.test`).length === 0 || undefined, 2000, 'publication row gone');
    expect((await p.request(publishText(p, { user, ifMatch: a.get('sip-etag')!, body: null }))).status).toBe(412);
  });

  it('a refresh moves a publication\'s expiry: its state outlives the old deadline, then runs out at the new one', async () => {
    const p = await udp();
    const user = uniqueUser();
    const w = await watch(p, user);
    const first = await p.request(publishText(p, { user, state: 'early', expires: 2 }));
    await p.waitFor((m) => isNotify(w.callId)(m) && m.body.includes('<state>early</state>'), 5000, 0);
    await sleep(800);
    const refresh = await p.request(publishText(p, { user, ifMatch: first.get('sip-etag')!, body: null, expires: 4 }));
    expect(refresh.status).toBe(200);
    const t0 = Date.now();
    const seen = p.received.length;
    await sleep(2200);
    expect(p.received.slice(seen).filter(isNotify(w.callId))).toHaveLength(0);
    expect(pubRows(`${user}@example.test`)).toHaveLength(1);
    const idle = await p.waitFor(isNotify(w.callId), 5000, seen);
    expect(Date.now() - t0).toBeGreaterThan(3000);
    expect(idle.body).not.toContain('<state>early</state>');
  });

  it('a publication with no <dialog> still gives the watcher one <dialog> element (Yealink)', async () => {
    const p = await udp();
    const user = uniqueUser();
    const w = await watch(p, user);
    const empty = callBody(`sip:${user}@example.test`, []);
    expect((await p.request(publishText(p, { user, body: empty }))).status).toBe(200);
    await sleep(150);
    const last = notifies(p, w.callId).at(-1)!;
    expect(last.body.match(/<dialog[\s>]/g)).toHaveLength(1);
    expect(last.body).toContain(`entity="sip:${user}@example.test"`);
  });

  it('nothing invented: a published dialog without call-id or tags is passed on without them', async () => {
    const p = await udp();
    const user = uniqueUser();
    const w = await watch(p, user);
    const body = `<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full" entity="sip:${user}@example.test">`
      + '<dialog id="d1" direction="recipient"><state>confirmed</state></dialog></dialog-info>';
    expect((await p.request(publishText(p, { user, body }))).status).toBe(200);
    const n = await p.waitFor((m) => isNotify(w.callId)(m) && m.body.includes('<state>confirmed</state>'), 5000, 0);
    expect(n.body).not.toMatch(/call-id=|local-tag=|remote-tag=/);
    // The publisher's own version is not ours: the watcher's counter goes on from its last NOTIFY.
    expect(versionOf(n)).toBe(versionOf(w.first) + 1);
  });

  it('no cross-talk: a PUBLISH for 201@b reaches no watcher of 201@a, nor of the presence event of 201@b', async () => {
    const p = await udp();
    const user = uniqueUser();
    const a = `${randomTag()}@audit`;
    const pres = `${randomTag()}@audit`;
    const b = `${randomTag()}@audit`;
    expect((await p.request(subscribeText(p, { user, domain: 'a.example', callId: a }))).status).toBe(200);
    expect((await p.request(subscribeText(p, { user, domain: 'b.example', callId: pres, event: 'presence', extra: ['Accept: application/pidf+xml'] }))).status).toBe(200);
    expect((await p.request(subscribeText(p, { user, domain: 'b.example', callId: b }))).status).toBe(200);
    for (const c of [a, pres, b]) await p.waitFor(isNotify(c), 5000, 0);
    expect((await p.request(publishText(p, { user, domain: 'b.example', state: 'confirmed' }))).status).toBe(200);
    await p.waitFor((m) => isNotify(b)(m) && m.body.includes('<state>confirmed</state>'), 5000, 0);
    await sleep(200);
    expect(notifies(p, a)).toHaveLength(1);
    expect(notifies(p, pres)).toHaveLength(1);
  });

  it('every watcher of the extension is notified: UDP and TCP, several dialogs each', async () => {
    const user = uniqueUser();
    const u = await udp();
    const t = await peers.open(ts.sip('tcp').port, 'tcp');
    const ws = [await watch(u, user), await watch(u, user), await watch(t, user), await watch(t, user)];
    const pbx = await udp();
    expect((await pbx.request(publishText(pbx, { user, state: 'early' }))).status).toBe(200);
    for (const [i, w] of ws.entries()) {
      const peer = i < 2 ? u : t;
      const n = await peer.waitFor((m) => isNotify(w.callId)(m) && m.body.includes('<state>early</state>'), 5000, 0);
      expect(cseqOf(n)).toBe(cseqOf(w.first) + 1);
      expect(versionOf(n)).toBe(1);
    }
  });
});

describe('the other two packages end to end', () => {
  it('presence: PIDF with basic, note and an RPID activity reaches a presence watcher', async () => {
    const p = await udp();
    const user = uniqueUser();
    const w = await watch(p, user, 'presence', ['Accept: application/pidf+xml']);
    expect(w.first.get('content-type')).toBe('application/pidf+xml');
    expect(w.first.body).toMatch(/<basic>open<\/basic>/);
    const entity = `sip:${user}@example.test`;
    const pidf = `<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="${entity}">`
      + '<tuple id="t1"><status><basic>closed</basic></status><note>Away &amp; out</note></tuple>'
      + '<dm:person id="p1"><rpid:activities><rpid:away/></rpid:activities></dm:person></presence>';
    const r = await p.request(publishText(p, { user, event: 'presence', body: pidf, contentType: 'application/pidf+xml' }));
    expect(r.status).toBe(200);
    const n = await p.waitFor((m) => isNotify(w.callId)(m) && m.body.includes('closed'), 5000, 0);
    expect(n.get('event')).toBe('presence');
    expect(n.body).toContain(`entity="${entity}"`);
    expect(n.body).toMatch(/<basic>closed<\/basic>/);
    expect(n.body).toContain('Away &amp; out');
    expect(n.body).toMatch(/away/);
  });

  it('message-summary: RFC 3842 text reaches an MWI watcher', async () => {
    const p = await udp();
    const user = uniqueUser();
    const w = await watch(p, user, 'message-summary', ['Accept: application/simple-message-summary']);
    expect(w.first.get('content-type')).toBe('application/simple-message-summary');
    expect(w.first.body).toMatch(/^Messages-Waiting: no\r\n/);
    const body = `Messages-Waiting: yes\r\nMessage-Account: sip:${user}@example.test\r\nVoice-Message: 2/8 (0/2)\r\n`;
    const r = await p.request(publishText(p, { user, event: 'message-summary', body, contentType: 'application/simple-message-summary' }));
    expect(r.status).toBe(200);
    const n = await p.waitFor((m) => isNotify(w.callId)(m) && m.body.includes('yes'), 5000, 0);
    expect(n.body).toMatch(/^Messages-Waiting: yes\r\n/);
    expect(n.body).toMatch(/Voice-Message: 2\/8 \(0\/2\)/);
  });
});
