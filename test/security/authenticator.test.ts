// The authenticator driven directly, with a fake transaction and an in-memory directory; every digest the test
// sends is computed here with node:crypto, independently of src/sip/auth/digest.ts.
import { describe, expect, it, beforeEach } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { DigestAuthenticator, type DirectoryLookup } from '../../src/sip/auth/authenticator.js';
import { NonceService } from '../../src/sip/auth/nonce.js';
import { AuthThrottle } from '../../src/sip/auth/throttle.js';
import { CidrList } from '../../src/sip/auth/cidr.js';
import type { ResponseSpec, ServerTransaction } from '../../src/sip/port.js';
import type { SipIdentity } from '../../src/sip/auth/types.js';
import { REDACT_PATHS } from '../../src/log.js';

const h = (alg: 'md5' | 'sha256', s: string) => createHash(alg).update(s).digest('hex');

interface Device { accountId: string; realm: string; username: string; password: string; enabled?: boolean; ip?: string }

function fakeDirectory(accounts: Array<{ id: string; realm: string; enabled?: boolean }>, devices: Device[]): DirectoryLookup & { lookups: number } {
  const dir = {
    lookups: 0,
    accountByRealm(realm: string) {
      const a = accounts.find((x) => x.realm.toLowerCase() === realm.toLowerCase());
      return a ? { id: a.id, name: a.id, realm: a.realm, enabled: a.enabled ?? true } : undefined;
    },
    digestCredentials(realm: string, username: string) {
      dir.lookups++;
      const d = devices.find((x) => x.realm.toLowerCase() === realm.toLowerCase() && x.username === username && !x.ip);
      if (!d) return undefined;
      return {
        accountId: d.accountId, deviceId: `dev-${d.username}`, realm: d.realm, username: d.username, enabled: d.enabled ?? true,
        ha1Md5: h('md5', `${d.username}:${d.realm}:${d.password}`), ha1Sha256: h('sha256', `${d.username}:${d.realm}:${d.password}`),
      };
    },
    deviceByIp(ip: string) {
      const d = devices.find((x) => x.ip === ip);
      return d ? { accountId: d.accountId, deviceId: `dev-${d.username}`, realm: d.realm, username: d.username } : undefined;
    },
  };
  return dir;
}

function fakeTx(o: { method?: string; uri: string; authorization?: string[]; source?: string }): ServerTransaction & { answers: ResponseSpec[] } {
  const headers = new Map<string, string[]>();
  if (o.authorization) headers.set('authorization', o.authorization);
  const answers: ResponseSpec[] = [];
  return {
    request: { kind: 'request', method: o.method ?? 'SUBSCRIBE', uri: o.uri, version: 'SIP/2.0', headers, body: Buffer.alloc(0) },
    flow: { id: 'f', transport: 'udp', localAddress: '127.0.0.1', localPort: 5060, remoteAddress: o.source ?? '192.0.2.10', remotePort: 5062 },
    respond(r: ResponseSpec) { if (answers.length === 0) answers.push(r); },
    get responded() { return answers.length > 0; },
    answers,
  };
}

function challenges(r: ResponseSpec): Array<Record<string, string>> {
  return (r.headers ?? []).filter(([n]) => n.toLowerCase() === 'www-authenticate').map(([, v]) => {
    const out: Record<string, string> = {};
    for (const m of v.replace(/^Digest\s+/i, '').matchAll(/(\w+)=("([^"]*)"|[^,\s]+)/g)) out[m[1]!.toLowerCase()] = m[3] ?? m[2]!;
    return out;
  });
}

/** What a phone sends back: RFC 7616 §3.4.1 with qop=auth, computed here. */
function authorize(o: { alg: 'MD5' | 'SHA-256'; username: string; realm: string; password: string; nonce: string; uri: string; method?: string; nc?: number; cnonce?: string; }): string {
  const f = o.alg === 'MD5' ? 'md5' : 'sha256';
  const nc = (o.nc ?? 1).toString(16).padStart(8, '0');
  const cnonce = o.cnonce ?? randomBytes(8).toString('hex');
  const ha1 = h(f, `${o.username}:${o.realm}:${o.password}`);
  const ha2 = h(f, `${o.method ?? 'SUBSCRIBE'}:${o.uri}`);
  const response = h(f, `${ha1}:${o.nonce}:${nc}:${cnonce}:auth:${ha2}`);
  return `Digest username="${o.username}", realm="${o.realm}", nonce="${o.nonce}", uri="${o.uri}", response="${response}", algorithm=${o.alg}, cnonce="${cnonce}", qop=auth, nc=${nc}`;
}

function metricsSpy() {
  const counts: Record<string, number> = {};
  return { counts, authFailures: { inc: (l: { reason: string }) => { counts[l.reason] = (counts[l.reason] ?? 0) + 1; } } };
}

describe('DigestAuthenticator', () => {
  let now: number;
  let logs: string;
  let metrics: ReturnType<typeof metricsSpy>;
  let dir: ReturnType<typeof fakeDirectory>;
  let auth: DigestAuthenticator;
  const ACME = 'acme.example';
  const URI = `sip:201@${ACME}`;

  function build(opts: { trusted?: string[]; failures?: number } = {}) {
    const sink = new Writable({ write(c, _e, cb) { logs += c.toString(); cb(); } });
    const logger = pino({ level: 'debug', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
    auth = new DigestAuthenticator({
      directory: dir,
      nonces: new NonceService(randomBytes(32), { ttlSeconds: 300, now: () => now }),
      throttle: new AuthThrottle({ failuresBeforeBlock: opts.failures ?? 5, blockMs: 60_000, now: () => now }),
      trustedPublishers: new CidrList(opts.trusted ?? []),
      logger,
      metrics: metrics as never,
    });
  }

  beforeEach(() => {
    now = 1_750_000_000_000;
    logs = '';
    metrics = metricsSpy();
    dir = fakeDirectory(
      [{ id: 'acme', realm: ACME }, { id: 'globex', realm: 'globex.example' }, { id: 'off', realm: 'off.example', enabled: false }],
      [
        { accountId: 'acme', realm: ACME, username: '100', password: 's3cret-100' },
        { accountId: 'globex', realm: 'globex.example', username: '300', password: 'globex-pw' },
        { accountId: 'acme', realm: ACME, username: 'deskphone', password: '', ip: '198.51.100.20' },
      ],
    );
    build();
  });

  /** Send one request without credentials and return the parsed challenges. */
  function challenge(uri = URI, source?: string) {
    const tx = fakeTx({ uri, source });
    expect(auth.check(tx, { domain: ACME })).toEqual({ ok: false });
    expect(tx.answers[0]!.status).toBe(401);
    return challenges(tx.answers[0]!);
  }

  it('challenges with SHA-256 first, then MD5, realm = the account realm, qop=auth', () => {
    const c = challenge();
    expect(c.map((x) => x.algorithm)).toEqual(['SHA-256', 'MD5']);
    for (const x of c) {
      expect(x.realm).toBe(ACME);
      expect(x.qop).toBe('auth');
      expect(x.nonce).toMatch(/^[A-Za-z0-9_-]{20,}$/);
      expect(x.stale).toBeUndefined();
    }
  });

  for (const alg of ['MD5', 'SHA-256'] as const) {
    it(`accepts a correct ${alg} response and names the identity`, () => {
      const nonce = challenge()[0]!.nonce!;
      const tx = fakeTx({ uri: URI, authorization: [authorize({ alg, username: '100', realm: ACME, password: 's3cret-100', nonce, uri: URI })] });
      const d = auth.check(tx, { domain: ACME });
      expect(d).toEqual({ ok: true, identity: { accountId: 'acme', realm: ACME, username: '100', via: 'digest' } });
      expect(tx.responded).toBe(false);
    });
  }

  it('answers stale=true for a correct response on an expired nonce, and a fresh 401 for a wrong one', () => {
    const nonce = challenge()[0]!.nonce!;
    now += 301_000;
    const good = fakeTx({ uri: URI, authorization: [authorize({ alg: 'SHA-256', username: '100', realm: ACME, password: 's3cret-100', nonce, uri: URI })] });
    expect(auth.check(good, { domain: ACME }).ok).toBe(false);
    const c = challenges(good.answers[0]!);
    expect(good.answers[0]!.status).toBe(401);
    expect(c.every((x) => x.stale === 'true')).toBe(true);
    expect(c[0]!.nonce).not.toBe(nonce);
    // The new nonce works.
    const retry = fakeTx({ uri: URI, authorization: [authorize({ alg: 'SHA-256', username: '100', realm: ACME, password: 's3cret-100', nonce: c[0]!.nonce!, uri: URI })] });
    expect(auth.check(retry, { domain: ACME }).ok).toBe(true);
    const bad = fakeTx({ uri: URI, authorization: [authorize({ alg: 'SHA-256', username: '100', realm: ACME, password: 'guess', nonce, uri: URI })] });
    auth.check(bad, { domain: ACME });
    expect(challenges(bad.answers[0]!).every((x) => x.stale === undefined)).toBe(true);
  });

  it('refuses a replayed nonce-count, accepts a growing one', () => {
    const nonce = challenge()[0]!.nonce!;
    const a1 = authorize({ alg: 'MD5', username: '100', realm: ACME, password: 's3cret-100', nonce, uri: URI, nc: 1 });
    expect(auth.check(fakeTx({ uri: URI, authorization: [a1] }), { domain: ACME }).ok).toBe(true);
    const replay = fakeTx({ uri: URI, authorization: [a1] });
    expect(auth.check(replay, { domain: ACME }).ok).toBe(false);
    expect(replay.answers[0]!.status).toBe(401);
    expect(metrics.counts.replay).toBe(1);
    const a2 = authorize({ alg: 'MD5', username: '100', realm: ACME, password: 's3cret-100', nonce, uri: URI, nc: 2 });
    expect(auth.check(fakeTx({ uri: URI, authorization: [a2] }), { domain: ACME }).ok).toBe(true);
  });

  it('refuses a response computed for another uri or a realm we do not serve', () => {
    const nonce = challenge()[0]!.nonce!;
    const otherUri = `sip:202@${ACME}`;
    const wrongUri = fakeTx({ uri: URI, authorization: [authorize({ alg: 'MD5', username: '100', realm: ACME, password: 's3cret-100', nonce, uri: otherUri })] });
    expect(auth.check(wrongUri, { domain: ACME }).ok).toBe(false);
    expect(wrongUri.answers[0]!.status).toBe(401);
    const wrongRealm = fakeTx({ uri: URI, authorization: [authorize({ alg: 'MD5', username: '100', realm: 'evil.example', password: 's3cret-100', nonce, uri: URI })] });
    expect(auth.check(wrongRealm, { domain: ACME }).ok).toBe(false);
    expect(wrongRealm.answers[0]!.status).toBe(401);
    expect(metrics.counts.uri).toBe(1);
    expect(metrics.counts.realm).toBe(1);
  });

  it('answers an unknown user exactly like a wrong password, after the same HA1 comparison', () => {
    const nonce = challenge()[0]!.nonce!;
    const unknown = fakeTx({ uri: URI, authorization: [authorize({ alg: 'MD5', username: '999', realm: ACME, password: 'x', nonce, uri: URI })] });
    const wrong = fakeTx({ uri: URI, authorization: [authorize({ alg: 'MD5', username: '100', realm: ACME, password: 'x', nonce, uri: URI })] });
    auth.check(unknown, { domain: ACME });
    auth.check(wrong, { domain: ACME });
    const shape = (r: ResponseSpec) => ({ status: r.status, reason: r.reason, headers: (r.headers ?? []).map(([n, v]) => [n, v.replace(/nonce="[^"]*"/, 'nonce=X')]) });
    expect(shape(unknown.answers[0]!)).toEqual(shape(wrong.answers[0]!));
    expect(unknown.answers[0]!.status).toBe(401);
    expect(dir.lookups).toBe(2);
    expect(metrics.counts.unknown_user).toBe(1);
    expect(metrics.counts.wrong_password).toBe(1);
  });

  it('takes a 404 for a domain that is not an enabled account realm', () => {
    for (const domain of ['nowhere.example', 'off.example']) {
      const tx = fakeTx({ uri: `sip:201@${domain}` });
      expect(auth.check(tx, { domain }).ok).toBe(false);
      expect(tx.answers[0]!.status).toBe(404);
      expect(auth.servesDomain(domain)).toBe(false);
    }
    expect(auth.servesDomain(ACME)).toBe(true);
    expect(auth.servesDomain('ACME.Example')).toBe(true);
  });

  it('forbids a watcher of another account (valid credentials of its own realm): 403', () => {
    const nonce = challenge()[0]!.nonce!;
    const tx = fakeTx({ uri: URI, authorization: [authorize({ alg: 'MD5', username: '300', realm: 'globex.example', password: 'globex-pw', nonce, uri: URI })] });
    expect(auth.check(tx, { domain: ACME }).ok).toBe(false);
    expect(tx.answers[0]!.status).toBe(403);
  });

  it('binds in-dialog requests to the identity of the subscription', () => {
    const owner: SipIdentity = { accountId: 'acme', realm: ACME, username: '100', via: 'digest' };
    // Without credentials: challenged, never accepted.
    const forged = fakeTx({ uri: URI, source: '203.0.113.66' });
    expect(auth.check(forged, { domain: ACME, dialogIdentity: owner }).ok).toBe(false);
    expect(forged.answers[0]!.status).toBe(401);
    // Valid credentials of someone else in the same realm: 403.
    const other: SipIdentity = { accountId: 'acme', realm: ACME, username: '101', via: 'digest' };
    const nonce = challenge()[0]!.nonce!;
    const tx = fakeTx({ uri: URI, authorization: [authorize({ alg: 'MD5', username: '100', realm: ACME, password: 's3cret-100', nonce, uri: URI, nc: 1 })] });
    expect(auth.check(tx, { domain: ACME, dialogIdentity: other }).ok).toBe(false);
    expect(tx.answers[0]!.status).toBe(403);
    // The owner itself: accepted.
    const own = fakeTx({ uri: URI, authorization: [authorize({ alg: 'MD5', username: '100', realm: ACME, password: 's3cret-100', nonce, uri: URI, nc: 2 })] });
    expect(auth.check(own, { domain: ACME, dialogIdentity: owner }).ok).toBe(true);
  });

  it('lets trusted publishers PUBLISH without a challenge, IPv4 and IPv6 CIDRs, but not SUBSCRIBE', () => {
    build({ trusted: ['10.20.0.0/16', '2001:db8:5::/64'] });
    for (const source of ['10.20.3.4', '::ffff:10.20.9.9', '2001:db8:5::77']) {
      const tx = fakeTx({ method: 'PUBLISH', uri: URI, source });
      expect(auth.check(tx, { domain: ACME })).toEqual({ ok: true, identity: { accountId: null, realm: null, username: null, via: 'trusted' } });
    }
    const outside = fakeTx({ method: 'PUBLISH', uri: URI, source: '10.21.0.1' });
    expect(auth.check(outside, { domain: ACME }).ok).toBe(false);
    expect(outside.answers[0]!.status).toBe(401);
    const unserved = fakeTx({ method: 'PUBLISH', uri: 'sip:1@nowhere.example', source: '10.20.3.4' });
    expect(auth.check(unserved, { domain: 'nowhere.example' }).ok).toBe(false);
    expect(unserved.answers[0]!.status).toBe(404);
    const sub = fakeTx({ method: 'SUBSCRIBE', uri: URI, source: '10.20.3.4' });
    expect(auth.check(sub, { domain: ACME }).ok).toBe(false);
    expect(sub.answers[0]!.status).toBe(401);
  });

  it('matches devices with sip.method "ip" by source address', () => {
    const tx = fakeTx({ uri: URI, source: '198.51.100.20' });
    expect(auth.check(tx, { domain: ACME })).toEqual({ ok: true, identity: { accountId: 'acme', realm: ACME, username: 'deskphone', via: 'ip' } });
    const cross = fakeTx({ uri: 'sip:300@globex.example', source: '198.51.100.20' });
    expect(auth.check(cross, { domain: 'globex.example' }).ok).toBe(false);
    expect(cross.answers[0]!.status).toBe(403);
  });

  it('blocks a source after repeated failures without touching the directory, logs once, then recovers', () => {
    build({ failures: 3 });
    const src = '203.0.113.5';
    const nonce = challenge(URI, src)[0]!.nonce!;
    const attempt = (password: string, nc: number) => {
      const tx = fakeTx({ uri: URI, source: src, authorization: [authorize({ alg: 'MD5', username: '100', realm: ACME, password, nonce, uri: URI, nc })] });
      auth.check(tx, { domain: ACME });
      return tx.answers[0]?.status;
    };
    expect(attempt('a', 1)).toBe(401);
    expect(attempt('b', 2)).toBe(401);
    expect(attempt('c', 3)).toBe(401);
    const before = dir.lookups;
    // Blocked now: even the right password gets 403, and the directory is not asked.
    for (let i = 0; i < 20; i++) expect(attempt('s3cret-100', 10 + i)).toBe(403);
    expect(dir.lookups).toBe(before);
    // Other sources are unaffected.
    expect(challenge(URI, '203.0.113.6').length).toBe(2);
    expect(metrics.counts.blocked).toBe(20);
    expect(logs.match(/source blocked/g)?.length).toBe(1);
    now += 60_000;
    expect(attempt('s3cret-100', 40)).toBeUndefined(); // accepted: nothing answered
  });

  it('counts an IPv6 attacker per /64, so rotating addresses does not escape the block', () => {
    build({ failures: 3 });
    const nonce = challenge(URI, '2001:db8:7:7::1')[0]!.nonce!;
    for (let i = 1; i <= 3; i++) {
      const tx = fakeTx({ uri: URI, source: `2001:db8:7:7::${i}`, authorization: [authorize({ alg: 'MD5', username: '100', realm: ACME, password: 'x', nonce, uri: URI, nc: i })] });
      auth.check(tx, { domain: ACME });
      expect(tx.answers[0]!.status).toBe(401);
    }
    const rotated = fakeTx({ uri: URI, source: '2001:db8:7:7:abcd::99' });
    auth.check(rotated, { domain: ACME });
    expect(rotated.answers[0]!.status).toBe(403);
    const neighbour = fakeTx({ uri: URI, source: '2001:db8:7:8::1' });
    auth.check(neighbour, { domain: ACME });
    expect(neighbour.answers[0]!.status).toBe(401);
  });

  it('never logs a digest response, a password or an HA1', () => {
    const nonce = challenge()[0]!.nonce!;
    const header = authorize({ alg: 'MD5', username: '100', realm: ACME, password: 'wrong-pw', nonce, uri: URI });
    const response = /response="([^"]+)"/.exec(header)![1]!;
    auth.check(fakeTx({ uri: URI, authorization: [header] }), { domain: ACME });
    expect(logs).toContain('SIP authentication failed');
    expect(logs).not.toContain(response);
    expect(logs).not.toContain('wrong-pw');
    expect(logs).not.toContain(h('md5', `100:${ACME}:s3cret-100`));
    expect(logs).not.toContain(nonce);
  });

  it('refuses malformed credentials with a fresh challenge, never a throw', () => {
    build({ failures: 1000 });
    const nonce = challenge()[0]!.nonce!;
    const hostile = [
      'Basic dXNlcjpwYXNz', 'Digest', 'Digest username', 'Digest username="100', 'Digest username="100",,',
      `Digest username="100", username="101", realm="${ACME}", nonce="${nonce}", uri="${URI}", response="0", qop=auth, nc=00000001, cnonce="a"`,
      `Digest username="100", realm="${ACME}", nonce="${nonce}", uri="${URI}", response="0"`,
      `Digest username="100", realm="${ACME}", nonce="${nonce}", uri="${URI}", response="0", qop=auth, nc=1, cnonce="a"`,
      `Digest username="100", realm="${ACME}", nonce="${nonce}", uri="${URI}", response="0", qop=auth, nc=00000001, cnonce="a", algorithm=MD5-sess`,
      'Digest ' + 'a=b, '.repeat(500) + 'c=d',
      'Digest username="\\', '\u0000\u0001\u00ff',
    ];
    for (const a of hostile) {
      const tx = fakeTx({ uri: URI, authorization: [a] });
      expect(auth.check(tx, { domain: ACME }).ok).toBe(false);
      expect(tx.answers[0]!.status).toBe(401);
    }
  });
});
