// End-to-end fuzzing of the admin API (issue 4, "Hostile input": oversized bodies, deep JSON, unknown fields, bad
// path parameters; guide: "Fuzz what parses"). A whole server runs in this process on 127.0.0.1 with an account, a
// token, a user and a device; a seeded mutator breaks valid Crossbar request bodies (truncated JSON, wrong types,
// deep nesting, huge strings, unknown fields, __proto__ / constructor / prototype keys, lone surrogates and other
// unicode, non-object envelopes, verb tunnelling) and the paths and query strings of the PUT/POST/PATCH routes of
// accounts, users, devices and presence. Checked for every answer:
//   - never a 5xx; the body is a Crossbar envelope: status "success" with data, or status "error" with error (the
//     HTTP code as a string), message and data; a 400 "validation error" carries Kazoo's field errors;
//   - no stack trace, source path or exception name in the body, and no password we sent echoed back;
//   - Object.prototype and Array.prototype are unchanged (the server runs in this very process).
// After each batch /health still answers, and at the end a valid request still works.
//   FUZZ_API_CASES=20000 FUZZ_SEED=7 npx vitest run test/fuzz/api-fuzz.test.ts
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Directory } from '../../src/store/directory.js';
import { TokenStore } from '../../src/store/tokens.js';
import { int, mulberry32, pick, type Rand } from './mutator.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x1a3b5eed);
const CASES = Number(process.env.FUZZ_API_CASES ?? 3000);
const BATCH = 250;
const REALM = 'api-fuzz.test';
/** Passwords we send carry this marker; it must never come back in any answer. */
const SECRET = 'pw-Zq7secretMARK';

let ts: TestServer;
let agent: http.Agent;
const ids = { account: '', token: '', user: '', device: '' };
const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort().join(',');
const arrayProtoBefore = Object.getOwnPropertyNames(Array.prototype).sort().join(',');

/** A fresh account, token, user and device, through the same stores the API uses (a case may delete any of them). */
function heal(): void {
  const dir = new Directory(ts.server.db);
  const tokens = new TokenStore(ts.server.db, { ttlSeconds: 3600 });
  // A case may also have disabled the account (PATCH enabled: false), which turns every token away: start afresh.
  const current = ids.account ? dir.getAccount(ids.account) : undefined;
  if (!current || !current.enabled) {
    const a = dir.createAccount({ name: 'API Fuzz', realm: `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}.${REALM}` }, null);
    ids.account = a.id;
    ids.token = tokens.issueToken(a.id, null, 'api_key').token;
  }
  if (!ids.token || !tokens.verifyToken(ids.token)) ids.token = tokens.issueToken(ids.account, null, 'api_key').token;
  if (!ids.user || !dir.getUser(ids.account, ids.user)) {
    ids.user = dir.createUser(ids.account, { first_name: 'Ada', last_name: 'Lovelace', username: `ada${Date.now()}`, presence_id: '1001' }, `${SECRET}-user`).id;
  }
  if (!ids.device || !dir.getDevice(ids.account, ids.device)) {
    ids.device = dir.createDevice(ids.account, { name: 'Desk', owner_id: ids.user, sip: { username: `dev${Date.now()}`, method: 'password' } }, `${SECRET}-dev`).id;
  }
}

interface Answer { status: number; text: string; body: any; headers: http.IncomingHttpHeaders }

/** A raw HTTP request: the path goes on the wire as written (fetch would normalise it). */
function request(method: string, path: string, body: Buffer | undefined, headers: Record<string, string>): Promise<Answer | { clientError: string }> {
  return new Promise((resolve) => {
    let req: http.ClientRequest;
    try {
      req = http.request({ host: '127.0.0.1', port: ts.server.apiAddress.port, method, path, agent, headers: { ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try { parsed = JSON.parse(text); } catch { parsed = undefined; }
          resolve({ status: res.statusCode ?? 0, text, body: parsed, headers: res.headers });
        });
        res.on('error', (e) => resolve({ clientError: e.message }));
      });
    } catch (e) {
      // Node refuses some paths before sending (unescaped characters): nothing reached the server.
      resolve({ clientError: (e as Error).message });
      return;
    }
    req.on('error', (e) => resolve({ clientError: e.message }));
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

// ---- bodies ------------------------------------------------------------------------------------------------------

type Route = { method: 'PUT' | 'POST' | 'PATCH'; path: () => string; body: () => Record<string, unknown>; kind: string };

const ROUTES: Route[] = [
  { kind: 'account-put', method: 'PUT', path: () => `/v2/accounts/${ids.account}`, body: () => ({ name: 'Child', realm: `c${Math.floor(Math.random() * 1e9)}.${REALM}` }) },
  { kind: 'account-post', method: 'POST', path: () => `/v2/accounts/${ids.account}`, body: () => ({ name: 'API Fuzz', timezone: 'Europe/Paris', language: 'en-us' }) },
  { kind: 'account-patch', method: 'PATCH', path: () => `/v2/accounts/${ids.account}`, body: () => ({ name: 'Renamed', enabled: true }) },
  { kind: 'users-put', method: 'PUT', path: () => `/v2/accounts/${ids.account}/users`, body: () => ({ first_name: 'Grace', last_name: 'Hopper', username: `g${Math.floor(Math.random() * 1e9)}`, password: `${SECRET}-u`, email: 'grace@example.test', priv_level: 'user', presence_id: '2001' }) },
  { kind: 'user-post', method: 'POST', path: () => `/v2/accounts/${ids.account}/users/${ids.user}`, body: () => ({ first_name: 'Ada', last_name: 'Lovelace', presence_id: '1001' }) },
  { kind: 'user-patch', method: 'PATCH', path: () => `/v2/accounts/${ids.account}/users/${ids.user}`, body: () => ({ email: 'ada@example.test', password: `${SECRET}-p` }) },
  { kind: 'devices-put', method: 'PUT', path: () => `/v2/accounts/${ids.account}/devices`, body: () => ({ name: 'Phone', device_type: 'sip_device', owner_id: ids.user, sip: { username: `d${Math.floor(Math.random() * 1e9)}`, password: `${SECRET}-d`, method: 'password' } }) },
  { kind: 'device-post', method: 'POST', path: () => `/v2/accounts/${ids.account}/devices/${ids.device}`, body: () => ({ name: 'Desk', presence_id: '1001', sip: { username: `dev${Math.floor(Math.random() * 1e9)}`, method: 'ip', ip: '127.0.0.9' } }) },
  { kind: 'device-patch', method: 'PATCH', path: () => `/v2/accounts/${ids.account}/device/${ids.device}`, body: () => ({ enabled: false, sip: { password: `${SECRET}-x` } }) },
  { kind: 'presence-ext', method: 'POST', path: () => `/v2/accounts/${ids.account}/presence/1001`, body: () => ({ action: 'set', state: 'confirmed' }) },
  { kind: 'presence-reset', method: 'POST', path: () => `/v2/accounts/${ids.account}/presence/2001`, body: () => ({ action: 'reset' }) },
  { kind: 'presence-device', method: 'POST', path: () => `/v2/accounts/${ids.account}/devices/${ids.device}/presence`, body: () => ({ action: 'reset' }) },
  { kind: 'presence-user', method: 'POST', path: () => `/v2/accounts/${ids.account}/users/${ids.user}/presence`, body: () => ({ action: 'set', state: 'early' }) },
  { kind: 'presence-none', method: 'POST', path: () => `/v2/accounts/${ids.account}/presence`, body: () => ({ action: 'reset' }) },
];

const WEIRD_STRINGS = ['', ' ', '\u0000', 'a\u0000b', '\ud800', '\udfff\ud800', '\u202e\u0644\u0627', 'e\u0301\u0301\u0301', '\u200b\u200d\ufeff', '🦄'.repeat(50),
  '%00', '../../etc/passwd', '<script>alert(1)</script>', "' OR 1=1 --", '${jndi:ldap://x}', '__proto__', 'constructor', '\r\nX-Injected: 1', 'ＡＢＣ', '1e309'];

function weirdValue(r: Rand): unknown {
  switch (int(r, 12)) {
    case 0: return pick(r, WEIRD_STRINGS);
    case 1: return pick(r, [0, -1, 1.5, 1e308, -0, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER]);
    case 2: return pick(r, [true, false, null]);
    case 3: return [];
    case 4: return {};
    case 5: return pick(r, ['x', '\u00e9', '\ud83d\ude00', '\u0000']).repeat(pick(r, [129, 257, 10_000, 200_000]));
    case 6: return [pick(r, WEIRD_STRINGS), { a: [1, { b: null }] }];
    case 7: return { __proto__: { polluted: 'yes' } }; // JSON.stringify drops this one; the raw forms below do not
    case 8: return pick(r, ['user', 'admin', 'password', 'ip', 'reset', 'set', 'early']);
    case 9: return { $gt: '' };
    case 10: return 'plain-value-w';
    default: return String(int(r, 1e6));
  }
}

/** The JSON text of a nested value `depth` levels deep. */
function deep(depth: number, r: Rand): string {
  const open = Array.from({ length: depth }, () => (r() < 0.5 ? '[' : '{"k":'));
  const close = open.reverse().map((o) => (o === '[' ? ']' : '}'));
  return open.reverse().join('') + '1' + close.join('');
}

/** Raw JSON fragments that JSON.stringify cannot make: prototype keys as own keys, duplicates, odd numbers. */
const RAW_MEMBERS = [
  '"__proto__": {"polluted": "yes", "isAdmin": true}',
  '"constructor": {"prototype": {"polluted": "yes"}}',
  '"prototype": {"polluted": "yes"}',
  '"__proto__": null',
  '"__proto__": [1, 2]',
  '"sip": {"__proto__": {"polluted": "yes"}, "username": "proto1"}',
  '"name": "a", "name": {"x": 1}',
  '"enabled": 1e999',
  '"toString": "x", "valueOf": {}, "hasOwnProperty": 1',
  '"": ""',
];

interface BodyCase { body: Buffer | undefined; what: string; contentType: string }

function mutateBody(r: Rand, kind: string, base: Record<string, unknown>): BodyCase {
  const doc: Record<string, unknown> = structuredClone(base);
  const keys = Object.keys(doc);
  let what = '';
  let extraRaw: string | undefined;
  // Value-level changes to the document.
  for (let k = 1 + int(r, 3); k > 0; k--) {
    switch (int(r, 8)) {
      case 0: { const f = pick(r, keys.length ? keys : ['name']); doc[f] = weirdValue(r); what += `wrong:${f} `; break; }
      case 1: { const f = pick(r, keys.length ? keys : ['name']); delete doc[f]; what += `drop:${f} `; break; }
      case 2: { doc[pick(r, ['x_unknown', 'pvt_type', 'id', '_rev', 'realm', 'sip', 'owner_id', 'caller_id', 'call_restriction'])] = weirdValue(r); what += 'unknown '; break; }
      case 3: { extraRaw = pick(r, RAW_MEMBERS); what += 'raw-member '; break; }
      case 4: { const f = pick(r, keys.length ? keys : ['name']); doc[f] = { nested: weirdValue(r) }; what += `obj:${f} `; break; }
      case 5: { if (doc.sip && typeof doc.sip === 'object') (doc.sip as Record<string, unknown>)[pick(r, ['username', 'password', 'method', 'ip', 'realm'])] = weirdValue(r); what += 'sip '; break; }
      case 6: { // a password that breaks its field's rules: the field error must not quote it (issue 4)
        const bad = pick(r, [`${SECRET}${'x'.repeat(300)}`, [SECRET], { v: SECRET }, `${SECRET}\u0000`, 7, null, true]);
        // Only where a password is a real field (users: password, devices: sip.password); elsewhere it is just an
        // unknown field, kept as given like any other (Kazoo's schemas allow them).
        if (kind.startsWith('device')) doc.sip = { ...(typeof doc.sip === 'object' && doc.sip !== null ? doc.sip : {}), password: bad };
        else if (kind.startsWith('user')) doc.password = bad;
        what += 'bad-password ';
        break;
      }
    }
  }
  let data = JSON.stringify(doc);
  if (extraRaw) data = data === '{}' ? `{${extraRaw}}` : `{${extraRaw},${data.slice(1)}`;
  // Envelope-level changes.
  let text: string;
  switch (int(r, 10)) {
    case 0: text = data; what += 'no-envelope '; break;
    case 1: text = pick(r, ['[]', '"data"', '42', 'null', 'true', `[${data}]`, '{"data": []}', '{"data": "x"}', '{"data": null}', '{"data": 7}']); what += 'envelope-type '; break;
    case 2: text = `{"data": ${data}, "verb": ${JSON.stringify(pick(r, ['DELETE', 'PATCH', 'PUT', 'GET', 'delete', 'BREW', '', 'PUT\u0000']))}}`; what += 'verb '; break;
    case 3: text = `{"data": ${data}, "auth_token": ${pick(r, ['1', 'null', '{}', '"forged"'])}}`; what += 'auth_token '; break;
    case 4: text = `{"data": ${deep(pick(r, [20, 31, 32, 33, 100, 5000]), r)}}`; what += 'deep '; break;
    case 5: text = `{"__proto__": {"polluted": "yes"}, "data": ${data}}`; what += 'proto-envelope '; break;
    default: text = `{"data": ${data}}`;
  }
  // Text-level changes (about one case in three, so most bodies still reach the schema checks).
  let buf = Buffer.from(text, 'utf8');
  switch (int(r, 16)) {
    case 0: buf = buf.subarray(0, int(r, buf.length)); what += 'truncated '; break;
    case 1: { const b = Buffer.from(buf); for (let k = 1 + int(r, 3); k > 0 && b.length; k--) b[int(r, b.length)] = int(r, 256); buf = b; what += 'flipped '; break; }
    case 2: buf = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), buf]); what += 'bom '; break;
    case 3: { const at = int(r, buf.length + 1); buf = Buffer.concat([buf.subarray(0, at), Buffer.from(pick(r, [[0xc3], [0xff], [0xed, 0xa0, 0x80], [0xc0, 0xaf]])), buf.subarray(at)]); what += 'bad-utf8 '; break; }
    case 4: buf = Buffer.concat([buf, Buffer.from(pick(r, ['}', ' garbage', '\u0000', ',', ']]]']))]); what += 'trailing '; break;
    case 5: if (r() < 0.2) { buf = Buffer.alloc(1_100_000, 0x20); what += 'oversize '; } break;
    default: break;
  }
  const contentType = pick(r, ['application/json', 'application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', '']);
  return { body: r() < 0.03 ? undefined : buf, what: what.trim(), contentType };
}

// ---- paths and query strings -------------------------------------------------------------------------------------

const BAD_IDS = ['', 'x', '0'.repeat(31), 'G'.repeat(32), '0'.repeat(33), '%00', '%2e%2e', '..', '%2F', '%zz', '%', '%E0%A4%A', '🦄', '%F0%9F%A6%84',
  'a'.repeat(5000), "'%20OR%201=1", '__proto__', 'constructor', 'report-', 'report-' + 'f'.repeat(32), '*3101', '1001@other.test', '%0d%0aX:1', '%25'];

function mutatePath(r: Rand, path: string): { path: string; what: string } {
  const parts = path.split('/');
  let what = '';
  switch (int(r, 8)) {
    case 0: case 1: {
      const i = 2 + int(r, Math.max(1, parts.length - 2));
      parts[i] = pick(r, BAD_IDS);
      what = `segment ${i}`;
      break;
    }
    case 2: parts.push(pick(r, ['', 'x', 'presence', 'children', '..', '%2e%2e', 'api_key'])); what = 'extra segment'; break;
    case 3: return { path: path.replace('/v2/', pick(r, ['/v2//', '/V2/', '/v1/', '/v2/./', '//v2/'])), what: 'prefix' };
    default: break;
  }
  let p = parts.join('/');
  if (r() < 0.5) {
    p += '?' + Array.from({ length: 1 + int(r, 3) }, () => pick(r, [
      'page_size=-1', 'page_size=abc', 'page_size=1e9', 'page_size=0', 'start_key=%00', 'start_key=' + 'z'.repeat(3000), 'event=bogus', 'event=dialog&event=presence',
      'verb=DELETE', 'verb=PATCH', '__proto__[polluted]=yes', 'constructor[prototype][polluted]=yes', 'a[b][c][d]=1', '%zz=1', '=', '&&&', 'event=%F0%9F%A6%84',
    ])).join('&');
    what += ' query';
  }
  return { path: p, what: what.trim() };
}

// ---- checks --------------------------------------------------------------------------------------------------

const LEAKS: Array<[RegExp, string]> = [
  [/\bat [\w$.<>]+ \(|\bat (file|node):/, 'stack frame'],
  [/\/work\/|\/home\/|node_modules|\/src\/|\.ts:\d+|\.js:\d+/, 'source path'],
  [/\b(TypeError|ReferenceError|RangeError|SqliteError|SQLITE_\w+|AssertionError)\b/, 'exception name'],
];

/** Methods Node's HTTP parser knows; any other is refused there with a bare 400, before the application. */
const HTTP_METHODS = new Set(http.METHODS);

function checkAnswer(method: string, kind: string, a: Answer, fail: (why: string) => void): void {
  if (a.status >= 500) fail(`HTTP ${a.status}`);
  if (a.status < 200 || a.status > 599) fail(`HTTP status ${a.status}`);
  for (const [re, what] of LEAKS) if (re.test(a.text)) fail(`${what} in the body`);
  if (!HTTP_METHODS.has(method)) return;
  const b = a.body;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) { fail('body is not a JSON object'); return; }
  for (const k of ['request_id', 'node', 'version', 'timestamp']) if (typeof b[k] !== 'string') fail(`envelope without ${k}`);
  if (a.status < 400) {
    if (b.status !== 'success' || !('data' in b)) fail('a 2xx that is not a success envelope');
    // Passwords are write-only: stored as digests, never returned (a mutated key such as "pas\u00ffsword" is just
    // an unknown field and comes back like any other).
    const d = b.data as Record<string, any> | null;
    // (On an account, "password" or "sip" is an unknown field, kept as given.)
    if (d && typeof d === 'object' && ((kind.startsWith('user') && d.password !== undefined)
      || (kind.startsWith('device') && d.sip && typeof d.sip === 'object' && d.sip.password !== undefined))) fail('a password in a success answer');
  } else {
    if (b.status !== 'error') fail(`a ${a.status} whose status is ${JSON.stringify(b.status)}`);
    if (b.error !== String(a.status)) fail(`error ${JSON.stringify(b.error)} is not the HTTP code ${a.status}`);
    if (typeof b.message !== 'string' || b.message === '') fail('error without a message');
    if (!('data' in b)) fail('error without data');
    if (b.message === 'validation error') {
      const fields = b.data;
      const ok = typeof fields === 'object' && fields !== null && Object.keys(fields).length > 0
        && Object.values(fields).every((rules) => typeof rules === 'object' && rules !== null && Object.values(rules as object).every((d) => typeof d === 'object' && d !== null && typeof (d as { message?: unknown }).message === 'string'));
      if (!ok) fail(`validation error without Kazoo field errors: ${JSON.stringify(fields).slice(0, 200)}`);
      // A field error on a secret never quotes what was sent (issue 4).
      for (const [field, rules] of Object.entries(fields ?? {})) {
        if (/(^|\.)(password|api_key|credentials)$/.test(field) && JSON.stringify(rules).includes(SECRET)) fail(`the error on ${field} quotes the password`);
      }
    }
  }
}

function prototypesClean(): string | undefined {
  const o = Object.getOwnPropertyNames(Object.prototype).sort().join(',');
  if (o !== protoBefore) return `Object.prototype changed: ${o}`;
  if (Object.getOwnPropertyNames(Array.prototype).sort().join(',') !== arrayProtoBefore) return 'Array.prototype changed';
  const probe = {} as Record<string, unknown>;
  for (const k of ['polluted', 'isAdmin', 'k', 'x', 'nested']) if (probe[k] !== undefined) return `({}).${k} is ${String(probe[k])}`;
  return undefined;
}

beforeAll(async () => {
  ts = await startTestServer({ overrides: { api: { maxBodyBytes: 1_048_576 } } });
  agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  heal();
});
afterAll(async () => {
  agent?.destroy();
  await ts?.stop();
});

describe('the API over real HTTP survives mutated requests', () => {
  it(`${CASES} mutated bodies, paths and query strings (seed 0x${SEED.toString(16)})`, async () => {
    const r = mulberry32(SEED);
    const failures: string[] = [];
    const kinds = new Map<string, number>();
    const statuses = new Map<number, number>();
    const messages = new Map<string, number>();
    let clientErrors = 0;
    const started = performance.now();
    for (let i = 0; i < CASES; i++) {
      if (i % 50 === 0) heal();
      const route = pick(r, ROUTES);
      const b = mutateBody(r, route.kind, route.body());
      const p = r() < 0.35 ? mutatePath(r, route.path()) : { path: route.path(), what: '' };
      const headers: Record<string, string> = { 'X-Auth-Token': r() < 0.95 ? ids.token : pick(r, ['', 'forged', ids.token + 'x', '\u00e9']) };
      if (b.contentType) headers['Content-Type'] = b.contentType;
      const method = r() < 0.9 ? route.method : pick(r, ['PUT', 'POST', 'PATCH', 'DELETE', 'GET', 'BREW']);
      const a = await request(method, p.path, b.body, headers);
      const label = `case ${i} ${method} ${p.path.slice(0, 160)} [${route.kind}; ${b.what}; ${p.what}] body ${JSON.stringify(b.body?.toString('latin1').slice(0, 300))}`;
      if ('clientError' in a) { clientErrors++; continue; }
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      if (a.status >= 400 && typeof a.body?.message === 'string') messages.set(a.body.message, (messages.get(a.body.message) ?? 0) + 1);
      checkAnswer(method, route.kind, a, (why) => {
        kinds.set(why, (kinds.get(why) ?? 0) + 1);
        if ((kinds.get(why) ?? 0) <= 3 && failures.length < 40) failures.push(`${why}: ${label}\n    answer ${a.status} ${a.text.slice(0, 400)}`);
      });
      const dirty = prototypesClean();
      if (dirty) { failures.push(`${dirty} after ${label}`); break; }
      if (i % BATCH === BATCH - 1) {
        const h = await request('GET', '/health', undefined, {});
        if ('clientError' in h || h.status !== 200) failures.push(`/health failed after case ${i}`);
      }
    }
    // Still serving: a valid PATCH works and reads back.
    heal();
    const ok = await request('PATCH', `/v2/accounts/${ids.account}/users/${ids.user}`, Buffer.from(JSON.stringify({ data: { first_name: 'Still' } })), { 'X-Auth-Token': ids.token, 'Content-Type': 'application/json' });
    if ('clientError' in ok || ok.status !== 200 || ok.body?.data?.first_name !== 'Still') failures.push(`a valid PATCH after the fuzz failed: ${JSON.stringify(ok).slice(0, 300)}`);
    const summary = `seed=0x${SEED.toString(16)} cases=${CASES} ms=${Math.round(performance.now() - started)} clientErrors=${clientErrors} statuses ${[...statuses].sort((x, y) => x[0] - y[0]).map(([k, v]) => `${k}:${v}`).join(' ')}`
      + ` errors ${JSON.stringify(Object.fromEntries([...messages].sort((x, y) => y[1] - x[1])))}`;
    console.log(`[api-fuzz] ${summary}`);
    const msg = `${summary}\nreplay with FUZZ_SEED=${SEED}\nfailures by kind:\n${[...kinds].map(([k, n]) => `  ${n} × ${k}`).join('\n')}\nsamples:\n${failures.join('\n')}`;
    expect(failures, msg).toEqual([]);
    // The fuzz reached the handlers, not only the body reader.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(0);
    expect(messages.get('validation error') ?? 0).toBeGreaterThan(0);
  }, 120_000);
});
