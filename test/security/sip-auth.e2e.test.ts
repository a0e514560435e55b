// Digest authentication and authorization end to end: a real server on 127.0.0.1 with sip.auth on, accounts and
// devices written through the directory, and every digest computed in the test with node:crypto. Different
// loopback source addresses (127.0.0.x) stand for different hosts, so a blocked attacker is not the watcher.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import pino from 'pino';
import { startTestServer, tempDbFile, type TestServer } from '../helpers/server.js';
import {
  LoopPeer, authenticated, authorization, parseChallenges, parseRaw, publish, seed, sleep, subscribe, withAuth, type RawMessage,
} from './helpers.js';

const ACME = 'acme.test';
const GLOBEX = 'globex.test';
const FAILURES = 5;
const BLOCK_SECONDS = 2;

let ts: TestServer;
let udpPort: number;
const peers: LoopPeer[] = [];
async function peer(localAddress = '127.0.0.1', transport: 'udp' | 'tcp' = 'udp'): Promise<LoopPeer> {
  const p = await LoopPeer.open(transport === 'udp' ? udpPort : ts.sip('tcp').port, { localAddress, transport });
  peers.push(p);
  return p;
}

beforeAll(async () => {
  ts = await startTestServer({
    overrides: {
      sip: {
        auth: true,
        trustedPublishers: ['127.0.0.8/30'],
        limits: { authFailuresBeforeBlock: FAILURES, authBlockSeconds: BLOCK_SECONDS },
      },
    },
  });
  udpPort = ts.sip('udp').port;
  seed(ts.server.db, [
    { name: 'Acme', realm: ACME, devices: [{ username: '100', password: 'acme-100-pw' }, { username: '101', password: 'acme-101-pw' }, { username: '201', password: 'acme-201-pw' }, { username: 'lobby', method: 'ip', ip: '127.0.0.20' }] },
    { name: 'Globex', realm: GLOBEX, devices: [{ username: '300', password: 'globex-300-pw' }] },
  ]);
});

afterAll(async () => {
  for (const p of peers) p.close();
  await ts?.stop();
});

function subscriptions(domain = ACME) {
  return ts.server.presence.listSubscriptions(domain);
}

/** Normalise the parts that must differ between two answers (tags, nonces, branches) to compare the rest. */
function wireShape(m: RawMessage): string {
  return m.text
    .replace(/tag=[^;\r\n>]+/g, 'tag=T')
    .replace(/nonce="[^"]*"/g, 'nonce="N"')
    .replace(/branch=[^;\r\n]+/g, 'branch=B')
    .replace(/rport=\d+/g, 'rport=P')
    .replace(/^Call-ID: .*$/m, 'Call-ID: C')
    .replace(/127\.0\.0\.\d+:\d+/g, 'HOST');
}

describe('digest challenge and round trips', () => {
  it('challenges SUBSCRIBE with SHA-256 then MD5, qop=auth, realm = the account realm', async () => {
    const p = await peer();
    const r = await p.request(subscribe(p, { user: '201', domain: ACME, watcher: '100' }));
    expect(r.status).toBe(401);
    const c = parseChallenges(r);
    expect(c.map((x) => x.algorithm)).toEqual(['SHA-256', 'MD5']);
    expect(c.every((x) => x.realm === ACME && x.qop === 'auth' && x.nonce.length > 16)).toBe(true);
  });

  for (const algorithm of ['MD5', 'SHA-256'] as const) {
    it(`subscribes with an ${algorithm} digest and gets the initial NOTIFY`, async () => {
      const p = await peer();
      const text = subscribe(p, { user: '201', domain: ACME, watcher: '100' });
      const { final } = await authenticated(p, text, { username: '100', password: 'acme-100-pw', algorithm });
      expect(final.status).toBe(200);
      const notify = await p.waitFor((m) => m.method === 'NOTIFY' && m.get('call-id') === final.get('call-id'), 3000, 0);
      expect(notify.body).toContain('dialog-info');
    });
  }

  it('challenges PUBLISH too, and accepts it with credentials', async () => {
    const p = await peer('127.0.0.2');
    const body = '<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:101@acme.test"></dialog-info>';
    const text = publish(p, { user: '101', domain: ACME, body });
    const { first, final } = await authenticated(p, text, { username: '101', password: 'acme-101-pw', algorithm: 'SHA-256' });
    expect(first.status).toBe(401);
    expect(final.status).toBe(200);
    expect(final.get('sip-etag')).toBeTruthy();
  });

  it('refuses a replayed nonce-count and a response computed for another uri or realm', async () => {
    const p = await peer('127.0.0.3');
    const text = subscribe(p, { user: '201', domain: ACME, watcher: '100' });
    const first = await p.request(text);
    const ch = parseChallenges(first).find((c) => c.algorithm === 'MD5')!;
    const uri = `sip:201@${ACME}`;
    const good = authorization({ algorithm: 'MD5', username: '100', realm: ACME, password: 'acme-100-pw', nonce: ch.nonce, uri, method: 'SUBSCRIBE', nc: 1, cnonce: 'abc' });
    expect((await p.request(withAuth(text, good, 2))).status).toBe(200);
    // The very same Authorization again (new transaction): a replay.
    const replay = await p.request(withAuth(text.replace(/tag=\w+/, 'tag=replay1'), good, 3));
    expect(replay.status).toBe(401);
    const otherUri = authorization({ algorithm: 'MD5', username: '100', realm: ACME, password: 'acme-100-pw', nonce: ch.nonce, uri: `sip:202@${ACME}`, method: 'SUBSCRIBE', nc: 2 });
    expect((await p.request(withAuth(text.replace(/tag=\w+/, 'tag=uri1'), otherUri, 4))).status).toBe(401);
    const otherRealm = authorization({ algorithm: 'MD5', username: '100', realm: 'evil.test', password: 'acme-100-pw', nonce: ch.nonce, uri, method: 'SUBSCRIBE', nc: 3 });
    expect((await p.request(withAuth(text.replace(/tag=\w+/, 'tag=realm1'), otherRealm, 5))).status).toBe(401);
    // A growing nc on the same nonce is fine (phones reuse nonces, RFC 7616 §3.4).
    const next = authorization({ algorithm: 'MD5', username: '100', realm: ACME, password: 'acme-100-pw', nonce: ch.nonce, uri, method: 'SUBSCRIBE', nc: 9 });
    expect((await p.request(withAuth(text.replace(/tag=\w+/, 'tag=next1'), next, 6))).status).toBe(200);
  });
});

describe('enumeration resistance', () => {
  it('answers an unknown user and a wrong password identically on the wire', async () => {
    const p = await peer('127.0.0.4');
    const answers: RawMessage[] = [];
    for (const username of ['999', '100']) {
      const text = subscribe(p, { user: '201', domain: ACME, watcher: 'w', callId: 'same-call-id' });
      const { final } = await authenticated(p, text, { username, password: 'not-the-password' });
      answers.push(final);
    }
    expect(answers[0]!.status).toBe(401);
    expect(wireShape(answers[0]!)).toBe(wireShape(answers[1]!));
  });

  it('takes a watcher of another account to 403, and a domain we do not serve to 404', async () => {
    const p = await peer('127.0.0.5');
    // Globex's phone, with valid Globex credentials, asks for an Acme presentity.
    const text = subscribe(p, { user: '201', domain: ACME, watcher: '300', watcherDomain: GLOBEX });
    const { final } = await authenticated(p, text, { username: '300', password: 'globex-300-pw', realm: GLOBEX });
    expect(final.status).toBe(403);
    const unserved = await p.request(subscribe(p, { user: '201', domain: 'nobody.test', watcher: '100' }));
    expect(unserved.status).toBe(404);
    expect(subscriptions('nobody.test')).toHaveLength(0);
    expect(subscriptions(ACME).some((s) => s.watcher.includes('300@'))).toBe(false);
  });
});

describe('subscription dialogs are bound to their credentials', () => {
  it('a forged in-dialog SUBSCRIBE without credentials neither refreshes nor ends it', async () => {
    const owner = await peer('127.0.0.6');
    const text = subscribe(owner, { user: '201', domain: ACME, watcher: '101', expires: 600, fromTag: 'ownertag' });
    const { final } = await authenticated(owner, text, { username: '101', password: 'acme-101-pw' });
    expect(final.status).toBe(200);
    const callId = final.get('call-id')!;
    const toTag = /tag=([^;>\s]+)/.exec(final.get('to')!)![1]!;
    const target = /<([^>]+)>/.exec(final.get('contact')!)![1]!;
    const mine = () => subscriptions().find((s) => s.callId === callId);
    const before = mine()!;
    expect(before).toBeDefined();
    await sleep(20);

    const attacker = await peer('127.0.0.66');
    const forged = (expires: number, cseq: number) => subscribe(attacker, {
      user: '201', domain: ACME, watcher: '101', callId, fromTag: 'ownertag', toTag, cseq, expires, requestUri: target,
    });
    const unsub = await attacker.request(forged(0, 10));
    expect(unsub.status).toBe(401);
    const refresh = await attacker.request(forged(3600, 11));
    expect(refresh.status).toBe(401);
    // Valid credentials of someone else in the same account: 403.
    const { final: other } = await authenticated(attacker, forged(0, 12), { username: '100', password: 'acme-100-pw' });
    expect(other.status).toBe(403);
    const after = mine()!;
    expect(after).toBeDefined();
    expect(after.expiresAt).toBe(before.expiresAt);
    expect(after.expires).toBe(600);
    expect(attacker.received.filter((m) => m.method === 'NOTIFY')).toHaveLength(0);

    // The owner, with its own credentials, can end it.
    const { final: bye } = await authenticated(owner, subscribe(owner, {
      user: '201', domain: ACME, watcher: '101', callId, fromTag: 'ownertag', toTag, cseq: 20, expires: 0, requestUri: target,
    }), { username: '101', password: 'acme-101-pw' });
    expect(bye.status).toBe(200);
    await owner.waitFor((m) => m.method === 'NOTIFY' && /terminated/.test(m.get('subscription-state') ?? ''), 3000, 0);
    expect(mine()).toBeUndefined();
  });
});

describe('trusted publishers and IP devices', () => {
  const body = (state: string) => `<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:201@acme.test"><dialog id="d1" direction="recipient"><state>${state}</state></dialog></dialog-info>`;

  it('a source inside sip.trustedPublishers PUBLISHes without a challenge; one outside is challenged', async () => {
    const pbx = await peer('127.0.0.9');
    const ok = await pbx.request(publish(pbx, { user: '201', domain: ACME, body: body('confirmed') }));
    expect(ok.status).toBe(200);
    const outside = await peer('127.0.0.12');
    const r = await outside.request(publish(outside, { user: '201', domain: ACME, body: body('early') }));
    expect(r.status).toBe(401);
    // A trusted source is not trusted to SUBSCRIBE.
    const sub = await pbx.request(subscribe(pbx, { user: '201', domain: ACME, watcher: 'pbx' }));
    expect(sub.status).toBe(401);
  });

  it('a device with sip.method "ip" is recognised by its source address', async () => {
    const lobby = await peer('127.0.0.20');
    const r = await lobby.request(subscribe(lobby, { user: '201', domain: ACME, watcher: 'lobby' }));
    expect(r.status).toBe(200);
    const cross = await lobby.request(subscribe(lobby, { user: '300', domain: GLOBEX, watcher: 'lobby' }));
    expect(cross.status).toBe(403);
  });
});

describe('brute-force back-off', () => {
  it(`after ${FAILURES} failures a source gets 403 for the window, other sources are served, then it recovers`, async () => {
    const failuresBefore = await counter('lamplighter_auth_failures_total', 'blocked');
    const attacker = await peer('127.0.0.77');
    const fresh = () => subscribe(attacker, { user: '201', domain: ACME, watcher: '100' });
    const statuses: number[] = [];
    for (let i = 0; i < FAILURES + 5; i++) {
      const text = fresh();
      const first = await attacker.request(text);
      if (first.status !== 401) { statuses.push(first.status!); continue; }
      const ch = parseChallenges(first)[1]!;
      const auth = authorization({ algorithm: 'MD5', username: '100', realm: ACME, password: `guess-${i}`, nonce: ch.nonce, uri: `sip:201@${ACME}`, method: 'SUBSCRIBE' });
      statuses.push((await attacker.request(withAuth(text, auth, 2))).status!);
    }
    expect(statuses.slice(0, FAILURES)).toEqual(Array(FAILURES).fill(401));
    expect(statuses.slice(FAILURES)).toEqual(Array(5).fill(403));
    // Blocked means blocked: the right password gets 403 too.
    const right = await attacker.request(fresh());
    expect(right.status).toBe(403);
    expect(await counter('lamplighter_auth_failures_total', 'blocked')).toBeGreaterThan(failuresBefore);
    // The watcher on another address is unaffected.
    const watcher = await peer('127.0.0.78');
    const { final } = await authenticated(watcher, subscribe(watcher, { user: '201', domain: ACME, watcher: '100' }), { username: '100', password: 'acme-100-pw' });
    expect(final.status).toBe(200);
    // After the window the attacker's source is challenged again, and the right password works.
    await sleep(BLOCK_SECONDS * 1000 + 100);
    const { final: recovered } = await authenticated(attacker, fresh(), { username: '100', password: 'acme-100-pw' });
    expect(recovered.status).toBe(200);
  });
});

describe('XML bodies escape what came from outside', () => {
  it('a hostile display name in a PUBLISH shows up escaped in the NOTIFY', async () => {
    const watcher = await peer('127.0.0.30');
    const text = subscribe(watcher, { user: '201', domain: ACME, watcher: '100' });
    const { final } = await authenticated(watcher, text, { username: '100', password: 'acme-100-pw' });
    expect(final.status).toBe(200);
    const callId = final.get('call-id');
    await watcher.waitFor((m) => m.method === 'NOTIFY' && m.get('call-id') === callId, 3000, 0);
    const mark = watcher.received.length;
    const pbx = await peer('127.0.0.10');
    const hostile = 'Eve &quot;&lt;/identity&gt;&lt;script&gt;x&lt;/script&gt;&amp;&apos;';
    const body = '<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:201@acme.test">'
      + '<dialog id="d9" direction="recipient"><state>early</state>'
      + `<remote><identity display="${hostile}">sip:eve@evil.test</identity></remote></dialog></dialog-info>`;
    expect((await pbx.request(publish(pbx, { user: '201', domain: ACME, body }))).status).toBe(200);
    const n = await watcher.waitFor((m) => m.method === 'NOTIFY' && m.get('call-id') === callId && m.body.includes('early'), 3000, mark);
    expect(n.body).not.toContain('<script>');
    expect(n.body).not.toContain('"<');
    expect(n.body).toMatch(/display="Eve &quot;&lt;\/identity&gt;&lt;script&gt;x&lt;\/script&gt;&amp;(&apos;|')"/);
  });
});

describe('XML bodies escape what came from outside (PIDF, hostile presentity)', () => {
  it('a hostile PIDF note and a hostile presentity user part come out escaped', async () => {
    const watcher = await peer('127.0.0.31');
    // %3C%22%26 is <"& in the user part (RFC 3261 §19.1.2 escapes); it ends up in the entity attribute.
    const hostileUser = 'x%3Cy%22z%26';
    const text = subscribe(watcher, { user: hostileUser, domain: ACME, watcher: '100', event: 'presence', extra: ['Accept: application/pidf+xml'] });
    const { final } = await authenticated(watcher, text, { username: '100', password: 'acme-100-pw' });
    expect(final.status).toBe(200);
    const callId = final.get('call-id');
    const first = await watcher.waitFor((m) => m.method === 'NOTIFY' && m.get('call-id') === callId, 3000, 0);
    const entity = /entity="([^"]*)"/.exec(first.body)?.[1];
    expect(entity).toBeDefined();
    expect(entity).not.toMatch(/[<&](?!amp;|lt;|gt;|quot;|apos;|#)/);
    const mark = watcher.received.length;
    const pbx = await peer('127.0.0.10');
    const pidf = '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:x@acme.test">'
      + '<tuple id="t1"><status><basic>open</basic></status><note>&lt;/note&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</note></tuple></presence>';
    const r = await pbx.request(publish(pbx, { user: hostileUser, domain: ACME, body: pidf, event: 'presence', contentType: 'application/pidf+xml' }));
    expect(r.status).toBe(200);
    const n = await watcher.waitFor((m) => m.method === 'NOTIFY' && m.get('call-id') === callId && m.body.includes('open'), 3000, mark);
    expect(n.body).not.toContain('<script>');
    expect(n.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; co');
  });
});

async function counter(name: string, reason: string): Promise<number> {
  const text = await ts.server.metrics.registry.metrics();
  const m = new RegExp(`^${name}\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('stale nonces', () => {
  it('answers a correct response on an expired nonce with stale=true and accepts the new nonce', async () => {
    const short = await startTestServer({ overrides: { sip: { auth: true, nonceTtl: 1 } } });
    const p = await LoopPeer.open(short.sip('udp').port, { localAddress: '127.0.0.40' });
    try {
      seed(short.server.db, [{ name: 'Acme', realm: ACME, devices: [{ username: '100', password: 'acme-100-pw' }] }]);
      const text = subscribe(p, { user: '201', domain: ACME, watcher: '100' });
      const first = await p.request(text);
      const ch = parseChallenges(first).find((c) => c.algorithm === 'SHA-256')!;
      await sleep(2100);
      const uri = `sip:201@${ACME}`;
      const late = await p.request(withAuth(text, authorization({ algorithm: 'SHA-256', username: '100', realm: ACME, password: 'acme-100-pw', nonce: ch.nonce, uri, method: 'SUBSCRIBE' }), 2));
      expect(late.status).toBe(401);
      const fresh = parseChallenges(late);
      expect(fresh.every((c) => c.stale?.toLowerCase() === 'true')).toBe(true);
      expect(fresh[0]!.nonce).not.toBe(ch.nonce);
      const ok = await p.request(withAuth(text, authorization({ algorithm: 'SHA-256', username: '100', realm: ACME, password: 'acme-100-pw', nonce: fresh[0]!.nonce, uri, method: 'SUBSCRIBE' }), 3));
      expect(ok.status).toBe(200);
    } finally {
      p.close();
      await short.stop();
    }
  });
});

describe('auth off (a lab)', () => {
  it('logs the warning at start and serves any domain without a challenge', async () => {
    let out = '';
    const logger = pino({ level: 'info' }, new Writable({ write(c, _e, cb) { out += c.toString(); cb(); } }));
    const open = await startTestServer({ overrides: { sip: { auth: false } }, logger });
    const p = await LoopPeer.open(open.sip('udp').port);
    try {
      const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string });
      expect(lines.some((l) => l.level === 40 && /authentication is OFF/i.test(l.msg))).toBe(true);
      const r = await p.request(subscribe(p, { user: 'anyone', domain: 'any-domain.invalid', watcher: 'w' }));
      expect(r.status).toBe(200);
    } finally {
      p.close();
      await open.stop();
    }
  });
});

describe('the dialog binding survives a restart', () => {
  it('after a restart on the same database, another user still cannot end the subscription; its owner can', async () => {
    const db = tempDbFile();
    const overrides = { sip: { auth: true } };
    let server = await startTestServer({ dbFile: db.file, overrides });
    const owner = await LoopPeer.open(server.sip('udp').port, { localAddress: '127.0.0.60' });
    const other = await LoopPeer.open(server.sip('udp').port, { localAddress: '127.0.0.61' });
    try {
      seed(server.server.db, [{ name: 'Acme', realm: ACME, devices: [{ username: '100', password: 'restart-100' }, { username: '101', password: 'restart-101' }] }]);
      const { final } = await authenticated(owner, subscribe(owner, { user: '201', domain: ACME, watcher: '100', fromTag: 'rt-owner' }), { username: '100', password: 'restart-100' });
      expect(final.status).toBe(200);
      const callId = final.get('call-id')!;
      const toTag = /tag=([^;>\s]+)/.exec(final.get('to')!)![1]!;
      await server.server.stop();
      server = await startTestServer({ dbFile: db.file, overrides });
      const port = server.sip('udp').port;
      const target = `sip:127.0.0.1:${port};transport=udp`;
      const reopen = async (p: LoopPeer) => LoopPeer.open(port, { localAddress: p.localAddress });
      const owner2 = await reopen(owner);
      const other2 = await reopen(other);
      try {
        const inDialog = (peer: LoopPeer, cseq: number) => subscribe(peer, { user: '201', domain: ACME, watcher: '100', callId, fromTag: 'rt-owner', toTag, cseq, expires: 0, requestUri: target });
        const { final: forged } = await authenticated(other2, inDialog(other2, 10), { username: '101', password: 'restart-101' });
        expect(forged.status).toBe(403);
        expect(server.server.presence.listSubscriptions(ACME).some((s) => s.callId === callId)).toBe(true);
        const { final: ended } = await authenticated(owner2, inDialog(owner2, 20), { username: '100', password: 'restart-100' });
        expect(ended.status).toBe(200);
      } finally {
        owner2.close();
        other2.close();
      }
    } finally {
      owner.close();
      other.close();
      await server.server.stop();
      db.cleanup();
    }
  });
});

describe('secrets stay out of the logs', () => {
  it('with SIP tracing on for the source and debug logging, no digest response, password or HA1 is logged', async () => {
    let out = '';
    const logger = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { out += c.toString(); cb(); } }));
    const traced = await startTestServer({ logger, overrides: { log: { level: 'debug', traceSip: ['127.0.0.50'] }, sip: { auth: true } } });
    const p = await LoopPeer.open(traced.sip('udp').port, { localAddress: '127.0.0.50' });
    try {
      seed(traced.server.db, [{ name: 'Acme', realm: ACME, devices: [{ username: '100', password: 'trace-secret-pw' }] }]);
      const sent: string[] = [];
      for (const password of ['trace-wrong-pw', 'trace-secret-pw']) {
        const text = subscribe(p, { user: '201', domain: ACME, watcher: '100' });
        const { final } = await authenticated(p, text, { username: '100', password });
        sent.push(final.status === 200 ? 'ok' : 'fail');
      }
      expect(sent).toEqual(['fail', 'ok']);
      await sleep(50);
      expect(out).toContain('SIP message in');
      const responses = [...out.matchAll(/response=\\?"([0-9a-f]{32,64})/g)].map((m) => m[1]);
      expect(responses).toEqual([]);
      expect(out).not.toContain('trace-secret-pw');
      expect(out).not.toContain('trace-wrong-pw');
      const ha1 = (await import('node:crypto')).createHash('md5').update(`100:${ACME}:trace-secret-pw`).digest('hex');
      expect(out).not.toContain(ha1);
      const secret = (traced.server.db.prepare('SELECT value FROM server_secrets').get() as { value: Buffer }).value;
      expect(out).not.toContain(secret.toString('hex'));
      expect(out).not.toContain(secret.toString('base64'));
    } finally {
      p.close();
      await traced.stop();
    }
  });
});
