// Audit of issue 2, "Subscriptions (RFC 6665)" and the parser bullets, black-box on the wire: a real in-process
// server on 127.0.0.1, raw UDP/TCP peers, the database file read directly. Each test names the bullet it checks.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { subscribeText, publishText, randomTag, dialogInfoBody, type RawMessage } from '../helpers/raw-sip.js';
import {
  Peers, dbRows, sleep, until, cseqOf, toTagOf, versionOf, expiresParam, isNotify, notifies, uniqueUser,
} from './util.js';

let ts: TestServer;
const peers = new Peers();
beforeAll(async () => { ts = await startTestServer(); });
afterAll(async () => { peers.closeAll(); await ts?.stop(); });

const udp = () => peers.open(ts.sip('udp').port, 'udp');
const tcp = () => peers.open(ts.sip('tcp').port, 'tcp');
const subRows = (callId: string) => dbRows(ts.dbFile, 'SELECT * FROM subscriptions WHERE call_id = ?', callId);
/** Header values split at top-level commas before a name-addr (Record-Route / Route / Via lists). */
const listOf = (m: RawMessage, name: string) => m.all(name).flatMap((v) => v.split(/\s*,\s*(?=<|SIP\/)/i));

describe('SUBSCRIBE accepted: the 200 and the initial NOTIFY on the wire', () => {
  for (const kind of ['udp', 'tcp'] as const) {
    it(`${kind}: 200 (not 202) with Expires, Contact, To-tag, Record-Route copied in order, Allow-Events; NOTIFY Route in the same order`, async () => {
      const p = kind === 'udp' ? await udp() : await tcp();
      const user = uniqueUser();
      const callId = `${randomTag()}@audit`;
      const fromTag = randomTag();
      // Every Record-Route points back at this peer so that whatever hop the NOTIFY takes stays on 127.0.0.1.
      const t = kind === 'tcp' ? ';transport=tcp' : '';
      const rr = [`<sip:127.0.0.1:${p.localPort}${t};lr;rr=a>`, `<sip:127.0.0.1:${p.localPort}${t};lr;rr=b>`, `<sip:127.0.0.1:${p.localPort}${t};lr;rr=c>`];
      const text = subscribeText(p, { user, callId, fromTag, expires: 600, extra: [`Record-Route: ${rr[0]}, ${rr[1]}`, `Record-Route: ${rr[2]}`] });
      const ok = await p.request(text);
      expect(ok.status).toBe(200);
      expect(ok.get('expires')).toBe('600');
      expect(ok.get('contact')).toMatch(/^<sip:[^>]+>/);
      expect(toTagOf(ok).length).toBeGreaterThanOrEqual(4);
      expect(ok.get('allow-events')?.split(/\s*,\s*/).sort()).toEqual(['dialog', 'message-summary', 'presence']);
      expect(listOf(ok, 'record-route')).toEqual(rr);

      const n = await p.waitFor(isNotify(callId), 5000, 0);
      // RFC 3261 §12.1.1: the UAS route set is the Record-Route list in order; §12.2.1.1: Route carries it.
      expect(listOf(n, 'route')).toEqual(rr);
      expect(n.startLine).toBe(`NOTIFY sip:watcher@127.0.0.1:${p.localPort}${t} SIP/2.0`);
      expect(n.get('event')).toBe('dialog');
      expect(n.get('subscription-state')).toMatch(/^active;expires=(600|599)$/);
      expect(n.get('contact')).toMatch(/^<sip:[^>]+>/);
      expect(n.get('content-type')).toBe('application/dialog-info+xml');
      expect(n.get('max-forwards')).toBe('70');
      // RFC 6665 §4.4.1 / RFC 3261 §12.1.1: From = the SUBSCRIBE's To plus our tag, To = its From, same Call-ID.
      expect(n.get('from')).toMatch(new RegExp(`^<sip:${user}@example\\.test>;\\s*tag=${toTagOf(ok)}$`));
      expect(n.get('to')).toBe(`<sip:watcher@example.test>;tag=${fromTag}`);
      expect(n.get('call-id')).toBe(callId);
      // A neutral idle body (issue 2 / spec §2.1): one <dialog>, entity = the watched AOR, nothing invented.
      expect(versionOf(n)).toBe(0);
      expect(n.body).toContain(`entity="sip:${user}@example.test"`);
      expect(n.body).toContain('state="full"');
      expect(n.body.match(/<dialog[\s>]/g)).toHaveLength(1);
      expect(n.body).toContain('<state>terminated</state>');
      expect(n.body).not.toMatch(/call-id=|local-tag=|remote-tag=/);
      expect(Number(n.get('content-length'))).toBe(Buffer.byteLength(n.body));
    });
  }

  it('Expires absent: 3600 granted; 7200 is clamped to maxExpires (3600)', async () => {
    const p = await udp();
    const absent = await p.request(subscribeText(p, { user: uniqueUser() }));
    expect(absent.status).toBe(200);
    expect(absent.get('expires')).toBe('3600');
    const callId = `${randomTag()}@audit`;
    const long = await p.request(subscribeText(p, { user: uniqueUser(), callId, expires: 7200 }));
    expect(long.status).toBe(200);
    expect(long.get('expires')).toBe('3600');
    const n = await p.waitFor(isNotify(callId), 5000, 0);
    expect(n.get('subscription-state')).toMatch(/^active;expires=(3600|3599)$/);
    const row = subRows(callId)[0];
    expect(row.expires).toBe(3600);
  });

  it('Event: dialog;id=7 is echoed in every NOTIFY of that subscription (RFC 6665 §8.2.1)', async () => {
    const p = await udp();
    const user = uniqueUser();
    const callId = `${randomTag()}@audit`;
    expect((await p.request(subscribeText(p, { user, callId, event: 'dialog;id=7', extra: ['Accept: application/dialog-info+xml'] }))).status).toBe(200);
    const n0 = await p.waitFor(isNotify(callId), 5000, 0);
    expect(n0.get('event')?.replace(/\s+/g, '')).toBe('dialog;id=7');
    const pbx = await udp();
    expect((await pbx.request(publishText(pbx, { user, state: 'early' }))).status).toBe(200);
    const n1 = await p.waitFor((m) => isNotify(callId)(m) && m.body.includes('<state>early</state>'), 5000, 0);
    expect(n1.get('event')?.replace(/\s+/g, '')).toBe('dialog;id=7');
  });

  it('Event missing: 489 with Allow-Events; Expires below min: 423 with Min-Expires; nothing stored', async () => {
    const p = await udp();
    const callId = `${randomTag()}@audit`;
    const noEvent = subscribeText(p, { user: uniqueUser(), callId }).replace(/^Event: .*\r\n/m, '');
    const r489 = await p.request(noEvent);
    expect(r489.status).toBe(489);
    expect(r489.get('allow-events')).toContain('dialog');
    const r423 = await p.request(subscribeText(p, { user: uniqueUser(), callId, cseq: 2, expires: 59 }));
    expect(r423.status).toBe(423);
    expect(r423.get('min-expires')).toBe('60');
    await sleep(30);
    expect(subRows(callId)).toHaveLength(0);
  });
});

describe('Subscription-State expires counts down; refresh in the dialog', () => {
  it('a NOTIFY 2 s later says the time left, not the granted value; a refresh answers the new Expires and NOTIFYs full state', async () => {
    const p = await udp();
    const user = uniqueUser();
    const callId = `${randomTag()}@audit`;
    const fromTag = randomTag();
    const ok = await p.request(subscribeText(p, { user, callId, fromTag, expires: 120 }));
    const toTag = toTagOf(ok);
    const n0 = await p.waitFor(isNotify(callId), 5000, 0);
    await sleep(2300);
    const pbx = await udp();
    expect((await pbx.request(publishText(pbx, { user, state: 'early' }))).status).toBe(200);
    const n1 = await p.waitFor((m) => isNotify(callId)(m) && m.body.includes('<state>early</state>'), 5000, 0);
    const left = expiresParam(n1);
    expect(left).toBeGreaterThanOrEqual(115);
    expect(left).toBeLessThanOrEqual(118);
    expect(cseqOf(n1)).toBe(cseqOf(n0) + 1);
    expect(versionOf(n1)).toBe(versionOf(n0) + 1);

    // RFC 6665 §4.2.1.4: refresh = 200 with the new Expires (same dialog), then a NOTIFY with the full state.
    const seen = p.received.length;
    const refresh = await p.request(subscribeText(p, { user, callId, fromTag, toTag, cseq: 2, expires: 300 }));
    expect(refresh.status).toBe(200);
    expect(refresh.get('expires')).toBe('300');
    expect(toTagOf(refresh)).toBe(toTag);
    const n2 = await p.waitFor(isNotify(callId), 5000, seen);
    expect(n2.get('subscription-state')).toMatch(/^active;expires=(300|299)$/);
    expect(n2.body).toContain('<state>early</state>');
    expect(cseqOf(n2)).toBe(cseqOf(n1) + 1);
    expect(versionOf(n2)).toBe(versionOf(n1) + 1);
    await until(() => subRows(callId)[0]?.expires === 300 || undefined, 2000, 'refreshed row');
  });
});

describe('Expires: 0', () => {
  it('outside a dialog is a fetch: 200, one terminated NOTIFY with the current state, nothing stored, no later NOTIFY', async () => {
    const p = await udp();
    const user = uniqueUser();
    const pbx = await udp();
    expect((await pbx.request(publishText(pbx, { user, state: 'confirmed' }))).status).toBe(200);
    const callId = `${randomTag()}@audit`;
    const ok = await p.request(subscribeText(p, { user, callId, expires: 0 }));
    expect(ok.status).toBe(200);
    expect(subRows(callId)).toHaveLength(0); // at the moment of the 200
    const n = await p.waitFor(isNotify(callId), 5000, 0);
    expect(n.get('subscription-state')).toMatch(/^terminated/);
    expect(n.body).toContain('<state>confirmed</state>');
    expect((await pbx.request(publishText(pbx, { user, state: 'early' }))).status).toBe(200);
    await sleep(300);
    expect(notifies(p, callId)).toHaveLength(1);
    expect(subRows(callId)).toHaveLength(0);
  });

  it('inside the dialog: 200, one final NOTIFY terminated with CSeq+1, row gone, then 481 for the dialog', async () => {
    const p = await tcp();
    const user = uniqueUser();
    const callId = `${randomTag()}@audit`;
    const fromTag = randomTag();
    const ok = await p.request(subscribeText(p, { user, callId, fromTag, expires: 600 }));
    const toTag = toTagOf(ok);
    const n0 = await p.waitFor(isNotify(callId), 5000, 0);
    const bye = await p.request(subscribeText(p, { user, callId, fromTag, toTag, cseq: 2, expires: 0 }));
    expect(bye.status).toBe(200);
    const fin = await p.waitFor((m) => isNotify(callId)(m) && /^terminated/.test(m.get('subscription-state') ?? ''), 5000, 0);
    expect(cseqOf(fin)).toBe(cseqOf(n0) + 1);
    await until(() => subRows(callId).length === 0 || undefined, 2000, 'row removed');
    const again = await p.request(subscribeText(p, { user, callId, fromTag, toTag, cseq: 3, expires: 600 }));
    expect(again.status).toBe(481);
    await sleep(100);
    expect(notifies(p, callId)).toHaveLength(2);
  });
});

describe('presentities: user@domain of the Request-URI', () => {
  it('the user part is lower-cased (a PUBLISH to the lower-case AOR reaches an upper-case subscriber) and *3101 is allowed', async () => {
    const p = await udp();
    const pbx = await udp();
    const upper = `ABC${uniqueUser()}`;
    const callId = `${randomTag()}@audit`;
    expect((await p.request(subscribeText(p, { user: upper, callId, domain: 'Example.TEST' }))).status).toBe(200);
    expect(subRows(callId)[0].presentity).toBe(`${upper.toLowerCase()}@example.test`);
    expect((await pbx.request(publishText(pbx, { user: upper.toLowerCase(), state: 'early' }))).status).toBe(200);
    await p.waitFor((m) => isNotify(callId)(m) && m.body.includes('<state>early</state>'), 5000, 0);

    const star = `*3${Math.floor(Math.random() * 900 + 100)}`;
    const c2 = `${randomTag()}@audit`;
    expect((await p.request(subscribeText(p, { user: star, callId: c2 }))).status).toBe(200);
    expect(subRows(c2)[0].presentity).toBe(`${star}@example.test`);
    const n0 = await p.waitFor(isNotify(c2), 5000, 0);
    expect(n0.body).toContain(`entity="sip:${star}@example.test"`);
    expect((await pbx.request(publishText(pbx, { user: star, state: 'confirmed' }))).status).toBe(200);
    await p.waitFor((m) => isNotify(c2)(m) && m.body.includes('<state>confirmed</state>'), 5000, 0);
  });
});

describe('presentity keys from Request-URIs as phones and PBXes write them', () => {
  it('port, uri-parameters, %-escapes and domain case do not split one extension into several', async () => {
    const p = await udp();
    const pbx = await udp();
    const n = uniqueUser();
    const star = `*${n}`;
    const callId = `${randomTag()}@audit`;
    // A phone: the server's port and user=phone in the R-URI, the star escaped.
    const sub = subscribeText(p, { user: star, callId, requestUri: `sip:%2A${n}@example.test:5060;user=phone` });
    expect((await p.request(sub)).status).toBe(200);
    expect(subRows(callId)[0].presentity).toBe(`${star}@example.test`);
    // The PBX: the domain in capitals.
    expect((await pbx.request(publishText(pbx, { user: star, domain: 'EXAMPLE.TEST', state: 'early' }))).status).toBe(200);
    await p.waitFor((m) => isNotify(callId)(m) && m.body.includes('<state>early</state>'), 5000, 0);
  });
});

// RFC 4235 §4.1 and RFC 3863 §4.1.1 make `entity` a URI; RFC 3261 §25.1 lets a user part carry only unreserved /
// user-unreserved characters and %-escapes. Audit finding (entity="sip:#100@..." went out raw), fixed in 2dc4e92.
describe('entity is a valid URI for user parts that need escaping', () => {
  it('sip:%23100, sip:a%20b and sip:%C3%BC1 come back %-escaped in entity=', async () => {
    const p = await udp();
    const bad: string[] = [];
    for (const user of ['%23100', 'a%20b', '%C3%BC1']) {
      const callId = `${randomTag()}@audit`;
      expect((await p.request(subscribeText(p, { user: 'x', callId, requestUri: `sip:${user}@example.test` }))).status).toBe(200);
      const n = await p.waitFor(isNotify(callId), 5000, 0);
      const entity = /entity="([^"]*)"/.exec(n.body)![1]!;
      if (!/^sip:(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+@example\.test$/.test(entity)) bad.push(entity);
    }
    expect(bad).toEqual([]);
  });
});

describe('parser on the wire', () => {
  it('compact forms v f t i m l o (Event) and u (Allow-Events): a presence SUBSCRIBE written compactly', async () => {
    const p = await udp();
    const user = uniqueUser();
    const callId = `${randomTag()}@audit`;
    const text = [
      `SUBSCRIBE sip:${user}@example.test SIP/2.0`,
      `v: ${p.via()}`,
      'Max-Forwards: 70',
      `f: <sip:watcher@example.test>;tag=${randomTag()}`,
      `t: <sip:${user}@example.test>`,
      `i: ${callId}`,
      'CSeq: 1 SUBSCRIBE',
      `m: ${p.contact()}`,
      'o: presence',
      'u: presence, dialog',
      'Accept: application/pidf+xml',
      'Expires: 300',
      'l: 0',
      '', '',
    ].join('\r\n');
    const ok = await p.request(text);
    expect(ok.status).toBe(200);
    expect(ok.get('expires')).toBe('300');
    const n = await p.waitFor(isNotify(callId), 5000, 0);
    // `o: presence` was read as the Event: the NOTIFY is a PIDF one.
    expect(n.get('event')).toBe('presence');
    expect(n.get('content-type')).toBe('application/pidf+xml');
    expect(n.body).toContain('<basic>');
    // And `o: reg` is an unknown package, not a missing header alone.
    const bad = await p.request(text.replace('o: presence', 'o: reg').replace(`i: ${callId}`, `i: ${randomTag()}@audit`)
      .replace(/^v: .*$/m, `v: ${p.via()}`));
    expect(bad.status).toBe(489);
  });

  it('folded header lines (RFC 3261 §7.3.1) are unfolded: a folded Expires and a folded From are understood', async () => {
    const p = await udp();
    const callId = `${randomTag()}@audit`;
    const fromTag = randomTag();
    let text = subscribeText(p, { user: uniqueUser(), callId, fromTag, expires: 300 });
    text = text.replace('Expires: 300', 'Expires:\r\n   300');
    text = text.replace(/^From: (<[^>]+>);tag=/m, 'From: $1\r\n\t;tag=');
    const ok = await p.request(text);
    expect(ok.status).toBe(200);
    expect(ok.get('expires')).toBe('300');
    const n = await p.waitFor(isNotify(callId), 5000, 0);
    expect(n.get('to')).toContain(`tag=${fromTag}`);
  });

  it('Via, Record-Route on one line separated by commas: the response copies every Via in order', async () => {
    const p = await udp();
    const callId = `${randomTag()}@audit`;
    const top = p.via();
    const text = subscribeText(p, { user: uniqueUser(), callId })
      .replace(/^Via: (.*)$/m, `Via: ${top}, SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKsecond`);
    const ok = await p.request(text);
    expect(ok.status).toBe(200);
    const vias = listOf(ok, 'via');
    expect(vias).toHaveLength(2);
    expect(vias[0]).toContain(top.split(';branch=')[1]!);
    expect(vias[1]).toContain('z9hG4bKsecond');
  });

  it('Content-Length counts UTF-8 bytes: a PUBLISH with "Jürgen Müller" goes through and the NOTIFY length is in bytes', async () => {
    const p = await udp();
    const user = uniqueUser();
    const callId = `${randomTag()}@audit`;
    expect((await p.request(subscribeText(p, { user, callId }))).status).toBe(200);
    await p.waitFor(isNotify(callId), 5000, 0);
    const body = dialogInfoBody(`sip:${user}@example.test`, 'early', 'utf8-call@pbx')
      .replace('<state>early</state>', '<state>early</state><remote><identity display="Jürgen Müller">sip:100@example.test</identity></remote>');
    expect(Buffer.byteLength(body)).toBeGreaterThan(body.length);
    const pub = await p.request(publishText(p, { user, body }));
    expect(pub.status).toBe(200);
    const n = await p.waitFor((m) => isNotify(callId)(m) && m.body.includes('early'), 5000, 0);
    expect(n.body).toContain('Jürgen Müller');
    expect(Number(n.get('content-length'))).toBe(Buffer.byteLength(n.body));
    expect(n.body.trimEnd().endsWith('</dialog-info>')).toBe(true);
  });

  it('a malformed request gets 400 with a reason that names the fault, and the server keeps answering', async () => {
    const p = await udp();
    const cases: Array<[string, (t: string) => string, RegExp]> = [
      ['CSeq method differs from the request method', (t) => t.replace(/^CSeq: 1 SUBSCRIBE/m, 'CSeq: 1 PUBLISH'), /cseq/i],
      ['CSeq number is not a number', (t) => t.replace(/^CSeq: 1 SUBSCRIBE/m, 'CSeq: one SUBSCRIBE'), /cseq/i],
      ['Expires is not a number', (t) => t.replace(/^Expires: 300/m, 'Expires: soon'), /expires/i],
      ['Content-Length larger than the datagram', (t) => t.replace(/^Content-Length: 0/m, 'Content-Length: 50'), /content-length|length|body/i],
    ];
    for (const [what, mutate, reason] of cases) {
      const r = await p.request(mutate(subscribeText(p, { user: uniqueUser(), expires: 300 })));
      expect(r.status, what).toBe(400);
      const phrase = r.startLine.replace(/^SIP\/2\.0 400 ?/, '');
      expect(phrase, what).toMatch(reason);
    }
    const opt = subscribeText(p, { user: uniqueUser() }).replace(/^SUBSCRIBE /, 'OPTIONS ').replace(/ SUBSCRIBE\r\n/, ' OPTIONS\r\n');
    expect((await p.request(opt)).status).toBe(200);
  });

  it('OPTIONS: 200 with Allow and Allow-Events; another method: 405 with Allow', async () => {
    const p = await tcp();
    const base = subscribeText(p, { user: uniqueUser() });
    const opt = await p.request(base.replace(/^SUBSCRIBE /, 'OPTIONS ').replace(/ SUBSCRIBE\r\n/, ' OPTIONS\r\n'));
    expect(opt.status).toBe(200);
    expect(opt.get('allow')?.split(/\s*,\s*/)).toEqual(expect.arrayContaining(['SUBSCRIBE', 'PUBLISH', 'OPTIONS']));
    expect(opt.get('allow-events')).toContain('dialog');
    for (const method of ['INVITE', 'REGISTER', 'MESSAGE', 'NOTIFY', 'REFER']) {
      const t = subscribeText(p, { user: uniqueUser() }).replace(/^SUBSCRIBE /, `${method} `).replace(/ SUBSCRIBE\r\n/, ` ${method}\r\n`);
      const r = await p.request(t);
      expect(r.status, method).toBe(405);
      expect(r.get('allow'), method).toContain('SUBSCRIBE');
    }
  });
});

