// End-to-end fuzzing of the SIP ports (issue 4, "Hostile input"; guide: "Fuzz what parses"). A whole server runs
// in this process on 127.0.0.1; a seeded mutator (test/fuzz/mutator.ts) breaks real messages (a Yealink SUBSCRIBE,
// an in-dialog SUBSCRIBE, PUBLISH dialog-info and PIDF, a NOTIFY 200, OPTIONS, compact forms, a SIP.js WS-style
// Via) and sends them over UDP, over one TCP connection (coalesced and split writes, reconnecting when the server
// drops the stream after a framing error, RFC 3261 §18.3) and over WebSocket (RFC 7118). Checked:
//   - every message the server sends parses as SIP, status 100-699; no 5xx except 503 with Retry-After and
//     500 "CSeq Out Of Order" (RFC 3261 §12.2.2); NOTIFYs it sends parse too (no header injection);
//   - every request the server's own parser can answer (RFC 3261 §8.2.6.2) gets an answer: resent alone at the
//     end if its answer was lost with a closed connection or a full socket buffer, it must then be answered;
//   - after each batch of 500 a fresh valid OPTIONS is answered 200 within 1 s, RSS grows < 200 MB;
//   - no error or "not answered in time" line in the server log, no message dropped as "internal";
//   - every subscription and publication row in the database reads back as well-formed dialog state.
// The in-process parser fuzz is test/stack/fuzz.test.ts; this file does not repeat it.
//   FUZZ_SOCKET_CASES=50000 FUZZ_SEED=123 npx vitest run test/fuzz/sip-socket-fuzz.test.ts
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket as TcpSocket } from 'node:net';
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { parseRaw, responseTo } from '../helpers/raw-sip.js';
import { LoopPeer, authenticated, authorization, parseChallenges, seed, subscribe } from '../security/helpers.js';
import { createLogger } from '../../src/log.js';
import { parseMessage, canAnswer, type ParseLimits } from '../../src/sip/stack/parser.js';
import { StreamFramer } from '../../src/sip/stack/framer.js';
import { serverTransactionKey } from '../../src/sip/stack/transaction-server.js';
import { header, type SipRequest } from '../../src/sip/stack/message.js';
import { isValidNameAddr, isValidUri, tagOf } from '../../src/sip/stack/headers.js';
import { installOutboundGuard, type OutboundGuard } from './guard.js';
import { SEED_NAMES, int, mulberry32, mutate, pick, seedMessage, show, type DialogRef, type MutationName, type PeerAddr, type Rand, type SeedName } from './mutator.js';
import { exposeGc } from '../../src/memory.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x1a3b5eed);
const UDP_CASES = Number(process.env.FUZZ_SOCKET_CASES ?? 5000);
const TCP_CASES = Math.max(100, Math.round(UDP_CASES * 0.5));
const WS_CASES = Math.max(50, Math.round(UDP_CASES * 0.1));
/** The auth-on run fuzzes the digest path with fewer cases (same mutator, credentials in every seed). */
const AUTH_SHARE = 0.3;
const BATCH = 500;
const HEALTH_TIMEOUT_MS = 1000;
/** RSS growth allowed (after a full GC). Long runs may raise it: freed native memory (Buffers) stays in the
 *  allocator's arenas, so RSS climbs slowly even when the heap does not (40k cases: heap 44 MB, RSS +239 MB). */
const RSS_BUDGET = Number(process.env.FUZZ_RSS_BUDGET_MB ?? 200) * 1024 * 1024;
/** What the JS heap and Buffers may hold at a checkpoint: the leak detector that allocator retention cannot fool. */
const HEAP_BUDGET = 200 * 1024 * 1024;
/** How long to wait for the last answers before the unanswered are resent one by one. */
const DRAIN_MS = 400;
/** A resent answerable request must be answered within this. */
const RESEND_TIMEOUT_MS = 1000;
const MAX_RESENDS = 400;
/** Resent requests in flight at once (each is still alone in its datagram, WS message or TCP connection). */
const RESEND_GROUP = 20;
const UDP_MAX_DATAGRAM = 65507;
const DOMAIN = 'fuzz.test';
const DEVICE = { username: 'fuzzer', password: 'fuzz-device-pw-1' };

interface Case {
  transport: 'udp' | 'tcp' | 'ws';
  index: number;
  seedName: SeedName;
  ops: MutationName[];
  buf: Buffer;
}

/** Parser errors an answer may inherit from the malformed request it answers (nothing about framing). */
const ECHOED_ERRORS = /^Bad (From|To|Via|CSeq|Contact)$/;
/** 5xx answers the RFCs ask for: 503 with Retry-After (RFC 3261 §21.5.4), 500 to a stale CSeq (§12.2.2), 505 to a
 *  wrong version (§21.5.7), 513 to an oversize message (§21.5.8). */
function rfc5xx(status: number, reason: string, hasRetryAfter: boolean): boolean {
  return (status === 503 && hasRetryAfter) || (status === 500 && reason === 'CSeq Out Of Order')
    || (status === 505 && reason === 'Version Not Supported') || (status === 513 && reason === 'Message Too Large');
}

const describeCase = (c: Case): string => `${c.transport} case ${c.index} (${c.seedName}; ${c.ops.join(',') || 'unmutated'}): ${show(c.buf)}`;
const norm = (s: string | undefined): string => (s ?? '').replace(/\s+/g, ' ').trim();

/** One run: a server, its log, the outbound guard, and what was seen. */
class FuzzRun {
  readonly failures: string[] = [];
  readonly statuses = new Map<number, number>();
  readonly expected = new Map<string, { c: Case; answered: boolean; parsed: boolean; lostWithConnection?: boolean }>();
  readonly recent: Case[] = [];
  /** Server transaction keys of the requests sent (cleared per transport: different flows, different sent-by). */
  readonly transactions = new Set<string>();
  readonly stats = { sent: 0, notSent: 0, notifies: 0, answers: 0, reconnects: 0, resent: 0, healthChecks: 0, maxHealthMs: 0, maxRssGrowthMb: 0, heapUsedMb: 0, arrayBuffersMb: 0 };
  /** Server log lines at warn and above, counted by level and message. */
  readonly logLines = new Map<string, { level: number; msg: string; n: number }>();
  /** 5xx answers by status and reason phrase. */
  readonly fiveXx = new Map<string, number>();
  rssBase = 0;
  limits!: ParseLimits;
  ts!: TestServer;
  health!: LoopPeer;
  dialogs: DialogRef[] = [];
  nonce: { nonce: string; realm: string; nc: number } | undefined;
  cseq = 100;

  constructor(readonly name: string, readonly auth: boolean, readonly rand: Rand, readonly guard: OutboundGuard) {}

  /** Failures by kind (the text before the first colon), with the first few samples of each. */
  private readonly failureKinds = new Map<string, number>();
  fail(what: string, c?: Case): void {
    const kind = what.split(':')[0]!.replace(/[0-9a-f]{8,}/g, 'ID').replace(/\d+/g, 'N').slice(0, 80);
    const n = (this.failureKinds.get(kind) ?? 0) + 1;
    this.failureKinds.set(kind, n);
    if (n <= 3 && this.failures.length < 60) this.failures.push(c ? `${what}\n    from ${describeCase(c)}` : what);
  }

  async start(): Promise<void> {
    const logs = this.logLines;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (!line) continue;
          try {
            const rec = JSON.parse(line) as { level: number; msg: string };
            const k = `${rec.level} ${rec.msg}`;
            const e = logs.get(k);
            if (e) e.n++;
            else if (logs.size < 500) logs.set(k, { level: rec.level, msg: rec.msg, n: 1 });
          } catch { /* not JSON */ }
        }
        cb();
      },
    });
    this.ts = await startTestServer({
      logger: createLogger('warn', sink),
      overrides: this.auth
        // A high failure threshold so the digest code, not the brute-force block, meets the fuzz (the block has its own test).
        ? { sip: { auth: true, limits: { authFailuresBeforeBlock: 1_000_000_000 } } }
        : {},
    });
    for (const t of ['udp', 'tcp', 'ws'] as const) this.guard.allowPorts.add(this.ts.sip(t).port);
    this.guard.allowPorts.add(this.ts.server.apiAddress.port);
    this.limits = { maxMessageSize: this.ts.server.config.sip.maxMessageSize, maxHeaders: this.ts.server.config.sip.maxHeaders };
    if (this.auth) seed(this.ts.server.db, [{ name: 'Fuzz', realm: DOMAIN, devices: [DEVICE] }]);
    this.health = await LoopPeer.open(this.ts.sip('udp').port);
    await this.healthCheck();
    gc();
    this.rssBase = process.memoryUsage().rss;
  }

  async stop(): Promise<void> {
    this.health?.close();
    await this.ts?.stop();
  }

  /** A subscription dialog to aim in-dialog SUBSCRIBEs at (RFC 6665 §4.1.2.2). */
  async makeDialog(peer: LoopPeer): Promise<DialogRef> {
    const callId = `dlg-${randomBytes(6).toString('hex')}`;
    const fromTag = randomBytes(4).toString('hex');
    const text = subscribe(peer, { user: '200', domain: DOMAIN, watcher: '10', callId, fromTag, expires: 3600 });
    const res = this.auth ? (await authenticated(peer, text, DEVICE)).final : await peer.request(text);
    expect(res.status, res.text).toBe(200);
    const toTag = tagOf(res.get('to')!)!;
    return { callId, fromTag, toTag, user: '200', watcher: '10' };
  }

  /** A fresh nonce for the auth run (one per batch; nonce counts go up within it, RFC 7616 §3.4). */
  async refreshNonce(): Promise<void> {
    if (!this.auth) return;
    const r = await this.health.request(subscribe(this.health, { user: '201', domain: DOMAIN, watcher: '11' }));
    const ch = parseChallenges(r).find((x) => x.algorithm === 'MD5');
    if (!ch) throw new Error(`no MD5 challenge: ${r.text}`);
    this.nonce = { nonce: ch.nonce, realm: ch.realm, nc: 0 };
  }

  /** Build one case: a seed for this peer, credentials when auth is on, then the mutations. */
  makeCase(transport: Case['transport'], index: number, peer: PeerAddr): Case {
    const r = this.rand;
    const seedName = pick(r, SEED_NAMES);
    const id = `${this.name[0]}${transport[0]}${index.toString(36)}x${int(r, 1 << 30).toString(36)}`;
    const ctx = { peer, domain: DOMAIN, id, n: int(r, 1000), dialog: this.dialogs.length ? pick(r, this.dialogs) : undefined, cseq: ++this.cseq };
    let text = seedMessage(seedName, ctx);
    if (this.auth && this.nonce && /^(SUBSCRIBE|PUBLISH) /.test(text)) {
      const [method, uri] = text.split(' ', 2) as [string, string];
      const a = authorization({ algorithm: 'MD5', username: DEVICE.username, realm: this.nonce.realm, password: DEVICE.password, nonce: this.nonce.nonce, uri, method, nc: ++this.nonce.nc });
      text = seedMessage(seedName, { ...ctx, authorization: a });
    }
    const m = mutate(r, Buffer.from(text, 'utf8'));
    const c: Case = { transport, index, seedName, ops: m.ops, buf: m.buf };
    this.recent.push(c);
    if (this.recent.length > 32) this.recent.shift();
    return c;
  }

  /** What the server will do with these exact bytes as one message: the key of the answer it owes, if any. */
  expectAnswer(c: Case, bytes: Buffer): string | undefined {
    const r = parseMessage(bytes, this.limits);
    let req: SipRequest | undefined;
    if (r.ok) req = r.message.kind === 'request' ? r.message : undefined;
    else if (r.request && canAnswer(r.request)) req = r.request;
    if (!req || req.method === 'ACK') return undefined;
    // A request that matches an earlier case's server transaction is a retransmission to the server (RFC 3261
    // §17.2.3): it gets the earlier answer, under the earlier Call-ID, or nothing. Only requests that parsed make
    // transactions; a 400 to a malformed one is sent once and kept nowhere.
    if (r.ok) {
      const txKey = serverTransactionKey(req);
      if (txKey !== undefined) {
        if (this.transactions.has(txKey)) return undefined;
        this.transactions.add(txKey);
      }
    }
    const key = `${norm(header(req, 'call-id'))}|${norm(header(req, 'cseq'))}`;
    // Two cases whose mutations left the same Call-ID and CSeq cannot be told apart: keep the first.
    if (!this.expected.has(key)) this.expected.set(key, { c: { ...c, buf: bytes }, answered: false, parsed: r.ok });
    return key;
  }

  /** Every message the server sends: check it, count it, answer its requests (NOTIFY) with a 200. */
  onServerMessage(bytes: Buffer, reply: (b: Buffer) => void): void {
    const text = bytes.toString('utf8');
    const startLine = text.slice(0, Math.max(0, text.indexOf('\r\n')));
    const parsed = parseMessage(bytes, { maxMessageSize: 1 << 22, maxHeaders: 10_000 });
    const raw = parseRaw(text);
    const key = `${norm(raw.get('call-id'))}|${norm(raw.get('cseq'))}`;
    const origin = this.expected.get(key);
    if (!parsed.ok) {
      // An answer to a malformed request copies its Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2), so it may
      // fail the same structural check; framing-level faults, or any fault in the answer to a request that parsed,
      // are the server's own.
      const echoed = /^SIP\/2\.0 [4-5]\d\d /.test(startLine) && ECHOED_ERRORS.test(parsed.error) && !(origin?.parsed ?? false);
      if (!echoed) this.fail(`server sent a message its own parser refuses (${parsed.error}): ${show(bytes)}`, origin?.c);
    }
    if (startLine.startsWith('SIP/')) {
      const m = /^SIP\/2\.0 ([1-6]\d\d) [^\r\n]*$/.exec(startLine);
      if (!m) {
        this.fail(`bad status line ${JSON.stringify(startLine)}`, origin?.c);
        return;
      }
      const status = Number(m[1]);
      this.stats.answers++;
      this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
      if (status >= 500) {
        const reason = startLine.slice(12);
        this.fiveXx.set(`${status} ${reason}`, (this.fiveXx.get(`${status} ${reason}`) ?? 0) + 1);
        if (!rfc5xx(status, reason, raw.get('retry-after') !== undefined)) this.fail(`server answered ${startLine}`, origin?.c ?? this.recent[this.recent.length - 1]);
      }
      if (origin) {
        origin.answered = true;
        // The bytes are only needed to resend what got no answer; answered cases are dropped at once so the
        // test's own memory does not count against the server's RSS budget.
        this.expected.delete(key);
      }
      return;
    }
    // A request from the server: a NOTIFY for a subscription some case made.
    this.stats.notifies++;
    if (raw.method !== 'NOTIFY') this.fail(`server sent an unexpected request: ${show(bytes, 200)}`);
    reply(Buffer.from(responseTo(raw, 200), 'utf8'));
  }

  async healthCheck(): Promise<void> {
    const t0 = performance.now();
    const callId = `health-${randomBytes(6).toString('hex')}`;
    const text = [
      `OPTIONS sip:${DOMAIN} SIP/2.0`, `Via: ${this.health.via()}`, 'Max-Forwards: 70', `From: <sip:health@${DOMAIN}>;tag=${randomBytes(4).toString('hex')}`,
      `To: <sip:${DOMAIN}>`, `Call-ID: ${callId}`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', '',
    ].join('\r\n');
    let status: number | undefined;
    try {
      status = (await this.health.request(text, HEALTH_TIMEOUT_MS)).status;
    } catch {
      status = undefined;
    }
    const ms = performance.now() - t0;
    this.stats.healthChecks++;
    this.stats.maxHealthMs = Math.max(this.stats.maxHealthMs, Math.round(ms));
    if (status !== 200 || ms > HEALTH_TIMEOUT_MS) this.fail(`a valid OPTIONS got ${status ?? 'no answer'} in ${Math.round(ms)} ms after ${this.stats.sent} cases`);
  }

  async checkpoint(): Promise<void> {
    await this.healthCheck();
    gc();
    const growth = process.memoryUsage().rss - this.rssBase;
    this.stats.maxRssGrowthMb = Math.max(this.stats.maxRssGrowthMb, Math.round(growth / 1048576));
    const mu = process.memoryUsage();
    this.stats.heapUsedMb = Math.round(mu.heapUsed / 1048576);
    this.stats.arrayBuffersMb = Math.round(mu.arrayBuffers / 1048576);
    if (mu.heapUsed + mu.arrayBuffers > HEAP_BUDGET) this.fail(`heap + Buffers hold ${Math.round((mu.heapUsed + mu.arrayBuffers) / 1048576)} MB after ${this.stats.sent} cases`);
    if (growth > RSS_BUDGET) this.fail(`RSS grew by ${Math.round(growth / 1048576)} MB after ${this.stats.sent} cases`);
    await this.refreshNonce();
  }

  /**
   * Resend, alone, each answerable request that got no answer; each must now be answered. Answers lost with a
   * closed connection or a full socket buffer (more of them on a loaded machine) come back; a request the server
   * never answers does not. Resent in groups, so a long run with many losses stays quick.
   */
  async resendUnanswered(send: (c: Case) => Promise<(() => void) | void>): Promise<void> {
    await sleep(DRAIN_MS);
    const missing = [...this.expected.values()].filter((e) => !e.answered);
    const cap = Math.max(MAX_RESENDS, Math.round(this.stats.sent * 0.05));
    if (missing.length > cap) {
      this.fail(`${missing.length} answerable requests got no answer (more than ${cap} to resend)`, missing[0]!.c);
      return;
    }
    for (let i = 0; i < missing.length; i += RESEND_GROUP) {
      const group = missing.slice(i, i + RESEND_GROUP);
      const cleanups: Array<() => void> = [];
      for (const e of group) {
        this.stats.resent++;
        const done = await send(e.c);
        if (done) cleanups.push(done);
        await tick();
      }
      const t0 = Date.now();
      while (group.some((e) => !e.answered) && Date.now() - t0 < RESEND_TIMEOUT_MS) await sleep(5);
      // Connections opened for resends close before the next group (sip.limits.connectionsPerSource counts them).
      for (const f of cleanups) f();
      for (const e of group) if (!e.answered) this.fail('an answerable request got no answer, even when resent alone', e.c);
    }
    this.expected.clear();
    this.transactions.clear();
  }

  /** Server-side signs of trouble that no answer shows: error log lines, TU time-outs, internal drops. */
  async checkServer(): Promise<void> {
    for (const l of this.logLines.values()) {
      if (l.level >= 50 || /not answered in time|handling failed|handler failed/.test(l.msg)) this.fail(`server log (${l.n}×): ${l.msg}`);
    }
    const dropped = await this.ts.server.metrics.registry.getSingleMetricAsString('lamplighter_sip_dropped_total').catch(() => '');
    const internal = /reason="internal"\} (\d+)/.exec(dropped);
    if (internal && Number(internal[1]) > 0) this.fail(`${internal[1]} SIP messages dropped with reason "internal" (a handler threw)`);
  }

  /** Every stored subscription and publication reads back as well-formed state (no garbage, no CR/LF/NUL). */
  checkDatabase(): void {
    const { config, db, presence } = this.ts.server;
    const bad = (s: unknown): boolean => typeof s === 'string' && /[\r\n\0]/.test(s);
    const rows = db.prepare('SELECT * FROM subscriptions').all() as Array<Record<string, unknown>>;
    for (const row of rows) {
      const why: string[] = [];
      // What goes back on the wire (URIs, tags, Call-ID, routes) and what the API shows (User-Agent) must be clean.
      for (const [k, v] of Object.entries(row)) {
        if (k === 'last_notify_body') continue;
        if (bad(v)) why.push(`${k} has CR/LF/NUL`);
      }
      const s = row as Record<string, any>;
      if (!['dialog', 'presence', 'message-summary'].includes(s.event)) why.push(`event ${s.event}`);
      if (typeof s.presentity !== 'string' || !s.presentity.endsWith(`@${s.domain}`) || s.presentity.length <= s.domain.length + 1) why.push('presentity');
      if (!isValidUri(s.watcher_uri)) why.push('watcher_uri');
      if (!s.call_id || /\s/.test(s.call_id)) why.push('call_id');
      if (!s.local_tag || !s.remote_tag) why.push('tags');
      if (!isValidNameAddr(s.local_uri) || tagOf(s.local_uri) !== s.local_tag) why.push('local_uri');
      if (!isValidNameAddr(s.remote_uri) || tagOf(s.remote_uri) !== s.remote_tag) why.push('remote_uri');
      if (!isValidUri(s.remote_target)) why.push('remote_target');
      let routes: unknown;
      try { routes = JSON.parse(s.route_set); } catch { routes = null; }
      if (!Array.isArray(routes) || !routes.every((x) => typeof x === 'string' && isValidNameAddr(x) && !bad(x))) why.push('route_set');
      for (const k of ['local_cseq', 'remote_cseq']) if (!Number.isInteger(s[k]) || s[k] < 0 || s[k] > 0xffffffff) why.push(k);
      if (!['udp', 'tcp', 'ws'].includes(s.transport)) why.push('transport');
      const sub = config.sip.subscription;
      if (!(s.expires >= sub.minExpires && s.expires <= sub.maxExpires)) why.push(`expires ${s.expires}`);
      if (!(s.expires_at > s.created_at)) why.push('expires_at');
      if (s.identity !== null) { try { JSON.parse(s.identity); } catch { why.push('identity'); } }
      if (this.auth && !(s.identity && JSON.parse(s.identity).username === DEVICE.username)) why.push('unauthenticated subscription stored');
      if (why.length) this.fail(`stored subscription ${s.id} is garbage (${why.join(', ')}): ${JSON.stringify(row).slice(0, 600)}`);
    }
    // The database and the live set agree once the group commit has run.
    const live = new Set([...presence.allSubscriptions()].map((x) => x.id));
    const stored = new Set(rows.map((x) => x.id as string));
    const onlyLive = [...live].filter((id) => !stored.has(id));
    const onlyStored = [...stored].filter((id) => !live.has(id));
    if (onlyLive.length || onlyStored.length) this.fail(`subscriptions in memory but not stored: ${onlyLive.length}, stored but not in memory: ${onlyStored.length}`);
    const pubs = db.prepare('SELECT * FROM publications').all() as Array<Record<string, any>>;
    for (const p of pubs) {
      const why: string[] = [];
      if (!p.etag || bad(p.etag)) why.push('etag');
      if (typeof p.presentity !== 'string' || !p.presentity.includes('@') || bad(p.presentity)) why.push('presentity');
      if (!['dialog', 'presence', 'message-summary'].includes(p.event)) why.push('event');
      if (!p.content_type || bad(p.content_type)) why.push('content_type');
      if (!Buffer.isBuffer(p.body) || p.body.length > config.sip.maxMessageSize) why.push('body');
      if (!(p.expires_at > p.created_at)) why.push('expires_at');
      if (why.length) this.fail(`stored publication ${p.etag} is garbage (${why.join(', ')})`);
    }
    this.rowCounts = { subscriptions: rows.length, publications: pubs.length };
  }

  rowCounts = { subscriptions: 0, publications: 0 };
  phaseMs: Record<string, number> = {};

  report(): string {
    const st = [...this.statuses.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}:${v}`).join(' ');
    const logs = [...this.logLines.values()].map((l) => `${l.n}× ${l.msg}`).join('; ');
    return `[${this.name}] seed=0x${SEED.toString(16)} ${JSON.stringify(this.stats)} rows=${JSON.stringify(this.rowCounts)} ms=${JSON.stringify(this.phaseMs)} statuses ${st}`
      + ` 5xx ${JSON.stringify(Object.fromEntries(this.fiveXx))}` + (logs ? ` server-warnings: ${logs.slice(0, 600)}` : '')
      + (this.guard.blocked.length ? ` outbound-blocked=${this.guard.blocked.length} (e.g. ${this.guard.blocked.slice(0, 3).join('; ')})` : '');
  }

  assertClean(): void {
    const kinds = [...this.failureKinds.entries()].map(([k, n]) => `  ${n} × ${k}`).join('\n');
    const msg = `${this.report()}\nreplay with FUZZ_SEED=${SEED}\nfailures by kind:\n${kinds}\nsamples:\n${this.failures.join('\n')}`;
    if (this.failures.length) console.error(msg);
    expect(this.failures, msg).toEqual([]);
  }
}

/** A full GC before each RSS reading, so the budget measures what is held, not garbage not yet collected. */
const gc = exposeGc();

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

// ---- transports ------------------------------------------------------------------------------------------------

/** Splits a TCP byte stream from the server into messages by Content-Length (naive on purpose: independent). */
class StreamSplitter {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer, out: (m: Buffer) => void): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      let s = 0;
      while (s + 1 < this.buf.length && this.buf[s] === 0x0d && this.buf[s + 1] === 0x0a) s += 2;
      if (s) this.buf = this.buf.subarray(s);
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.toString('latin1', 0, end);
      const cl = /\r\n(?:content-length|l)[ \t]*:[ \t]*(\d+)/i.exec(`\r\n${head}`);
      const total = end + 4 + (cl ? Number(cl[1]) : 0);
      if (this.buf.length < total) return;
      out(this.buf.subarray(0, total));
      this.buf = this.buf.subarray(total);
    }
  }
}

async function openUdp(run: FuzzRun): Promise<{ sock: UdpSocket; addr: PeerAddr; send(b: Buffer): Promise<boolean> }> {
  const sock = createSocket('udp4');
  const port = run.ts.sip('udp').port;
  sock.on('message', (b) => run.onServerMessage(b, (x) => sock.send(x, port, '127.0.0.1')));
  sock.on('error', () => {});
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  run.guard.allowPorts.add(sock.address().port);
  return {
    sock,
    addr: { host: '127.0.0.1', port: sock.address().port, transport: 'UDP' },
    send: (b) => new Promise((r) => {
      if (b.length > UDP_MAX_DATAGRAM) { r(false); return; }
      sock.send(b, port, '127.0.0.1', (err) => r(!err));
    }),
  };
}

interface TcpLink {
  sock: TcpSocket; closed: Promise<void>; isClosed: boolean; addr: PeerAddr; keys: string[];
  /** The server's framer run on the bytes we write: it says which messages the server will see. */
  framer: StreamFramer;
  /** Answers to the server's NOTIFYs, written between cases (never inside one) and through the mirror framer. */
  replies: Buffer[];
}

async function openTcp(run: FuzzRun): Promise<TcpLink> {
  const sock = connect({ port: run.ts.sip('tcp').port, host: '127.0.0.1', noDelay: true });
  await new Promise<void>((r, j) => { sock.once('connect', () => r()); sock.once('error', j); });
  const splitter = new StreamSplitter();
  const link: TcpLink = {
    sock, isClosed: false, framer: new StreamFramer(run.limits), keys: [], replies: [],
    addr: { host: '127.0.0.1', port: sock.localPort!, transport: 'TCP' },
    closed: new Promise<void>((r) => sock.once('close', () => { link.isClosed = true; r(); })),
  };
  sock.on('error', () => {});
  sock.on('data', (d) => splitter.push(d, (m) => run.onServerMessage(m, (x) => link.replies.push(x))));
  return link;
}

interface WsLink { ws: WebSocket; isClosed: boolean; closed: Promise<void>; addr: PeerAddr }

async function openWs(run: FuzzRun): Promise<WsLink> {
  const ws = new WebSocket(`ws://127.0.0.1:${run.ts.sip('ws').port}`, 'sip');
  await new Promise<void>((r, j) => { ws.once('open', () => r()); ws.once('error', j); });
  const link: WsLink = {
    ws, isClosed: false, addr: { host: 'df7jal23ls0d.invalid', port: 0, transport: 'WS' },
    closed: new Promise<void>((r) => ws.once('close', () => { link.isClosed = true; r(); })),
  };
  ws.on('error', () => {});
  ws.on('message', (d: Buffer) => run.onServerMessage(Buffer.from(d), (x) => { if (!link.isClosed) ws.send(x.toString('utf8')); }));
  return link;
}

// ---- the three drivers -----------------------------------------------------------------------------------------

async function fuzzUdp(run: FuzzRun, cases: number): Promise<void> {
  const udp = await openUdp(run);
  try {
    await run.refreshNonce();
    let bytesSinceYield = 0;
    for (let i = 0; i < cases; i++) {
      const c = run.makeCase('udp', i, udp.addr);
      if (await udp.send(c.buf)) {
        run.stats.sent++;
        run.expectAnswer(c, c.buf);
      } else run.stats.notSent++;
      // Pace so the kernel's socket buffer, not the server, is never what drops a datagram.
      bytesSinceYield += c.buf.length;
      if (bytesSinceYield > 32_768 || i % 16 === 15) { bytesSinceYield = 0; await tick(); }
      if (i % BATCH === BATCH - 1) await run.checkpoint();
    }
    await run.resendUnanswered(async (c) => { await udp.send(c.buf); });
  } finally {
    udp.sock.close();
  }
}

async function fuzzTcp(run: FuzzRun, cases: number): Promise<void> {
  let link = await openTcp(run);
  /** Write bytes as the server will frame them, noting the answers owed; false once the stream is broken. */
  const write = (bytes: Buffer, c: Case | undefined): boolean => {
    const out = link.framer.push(Buffer.from(bytes));
    for (const m of out.messages) {
      const key = c ? run.expectAnswer(c, m) : undefined;
      if (key) link.keys.push(key);
    }
    link.sock.write(bytes);
    return out.error === undefined;
  };
  /** After a framing error the server must close the stream (RFC 3261 §18.3); answers owed on it may be lost. */
  const reconnect = async (expectClose: boolean) => {
    if (expectClose) {
      await Promise.race([link.closed, sleep(1000)]);
      if (!link.isClosed) run.fail('server kept a TCP connection open after a framing error');
    }
    link.sock.destroy();
    for (const k of link.keys) { const e = run.expected.get(k); if (e) e.lostWithConnection = true; }
    run.stats.reconnects++;
    link = await openTcp(run);
  };
  try {
    await run.refreshNonce();
    let i = 0;
    while (i < cases) {
      // Answers to NOTIFYs first, between messages, as a real client would write them.
      let broken = false;
      for (const rep of link.replies.splice(0)) if (!link.isClosed && !broken) broken = !write(rep, undefined);
      // A group of 1-4 cases, written coalesced in one write or split into random pieces.
      const group: Case[] = [];
      for (let k = 1 + int(run.rand, 4); k > 0 && i < cases; k--) {
        group.push(run.makeCase('tcp', i, link.addr));
        i++;
        if (i % BATCH === 0) break;
      }
      // Coalesced: the whole group in one write, so one TCP segment carries several messages (and the tail of a
      // broken one runs into the next); otherwise one write per case, some of them split into pieces.
      const units: Case[] = run.rand() < 0.4 && group.length > 1
        ? [{ ...group[0]!, ops: group.flatMap((c) => [...c.ops, '|' as MutationName]), buf: Buffer.concat(group.map((c) => c.buf)) }]
        : group;
      for (const c of units) {
        if (broken || link.isClosed) break;
        const pieces: Buffer[] = [];
        if (run.rand() < 0.5) pieces.push(c.buf);
        else for (let at = 0; at < c.buf.length;) { const n = 1 + int(run.rand, pick(run.rand, [3, 40, 700, 5000])); pieces.push(c.buf.subarray(at, at + n)); at += n; }
        for (const p of pieces) {
          if (link.isClosed) break;
          run.stats.sent++;
          if (!write(p, c)) { broken = true; break; }
          if (pieces.length > 1) await tick();
        }
      }
      if (broken) await reconnect(true);
      else if (link.isClosed) await reconnect(false);
      // Half a message held by the server: sometimes wait for more, sometimes hang up as a client that gives up.
      else if (link.framer.buffered > 0 && run.rand() < 0.6) await reconnect(false);
      else await tick();
      if (i % BATCH === 0 || i >= cases) await run.checkpoint();
    }
    await run.resendUnanswered(async (c) => {
      const l = await openTcp(run);
      l.sock.write(c.buf);
      return () => l.sock.destroy();
    });
  } finally {
    link.sock.destroy();
  }
}

async function fuzzWs(run: FuzzRun, cases: number): Promise<void> {
  let link = await openWs(run);
  try {
    await run.refreshNonce();
    for (let i = 0; i < cases; i++) {
      if (link.isClosed) { run.stats.reconnects++; link = await openWs(run); }
      const c = run.makeCase('ws', i, link.addr);
      // Text frames where the bytes are UTF-8, binary otherwise (RFC 7118 §5.2 allows both).
      const asText = run.rand() < 0.5 && Buffer.from(c.buf.toString('utf8'), 'utf8').equals(c.buf);
      link.ws.send(asText ? c.buf.toString('utf8') : c.buf);
      run.stats.sent++;
      // ws closes with 1009 past maxPayload (the server's sip.maxMessageSize): no answer is owed then.
      if (c.buf.length <= run.limits.maxMessageSize) run.expectAnswer(c, c.buf);
      else await Promise.race([link.closed, sleep(1000)]);
      if (i % 8 === 7) await tick();
      if (i % BATCH === BATCH - 1) await run.checkpoint();
    }
    await run.resendUnanswered(async (c) => {
      if (link.isClosed) link = await openWs(run);
      link.ws.send(c.buf);
    });
  } finally {
    link.ws.terminate();
  }
}

async function fuzzRun(name: string, auth: boolean, scale: number, guard: OutboundGuard): Promise<FuzzRun> {
  const run = new FuzzRun(name, auth, mulberry32(SEED ^ (auth ? 0xa5a5 : 0)), guard);
  await run.start();
  try {
    // Two real dialogs so in-dialog seeds hit live subscriptions, not only 481s.
    const p = await LoopPeer.open(run.ts.sip('udp').port);
    run.dialogs = [await run.makeDialog(p), await run.makeDialog(p)];
    p.close();
    for (const [t, f, n] of [['udp', fuzzUdp, UDP_CASES], ['tcp', fuzzTcp, TCP_CASES], ['ws', fuzzWs, WS_CASES]] as const) {
      const t0 = performance.now();
      await f(run, Math.round(n * scale));
      run.phaseMs[t] = Math.round(performance.now() - t0);
    }
    await run.checkpoint();
    // Still serving real watchers: a valid SUBSCRIBE gets its 200 and the NOTIFY that follows it.
    const w = await LoopPeer.open(run.ts.sip('udp').port);
    const text = subscribe(w, { user: '299', domain: DOMAIN, watcher: '19', expires: 600 });
    const res = auth ? (await authenticated(w, text, DEVICE)).final : await w.request(text);
    if (res.status !== 200) run.fail(`a valid SUBSCRIBE after the fuzz got ${res.startLine}`);
    else await w.waitFor((m) => m.method === 'NOTIFY', 2000).catch(() => run.fail('no NOTIFY after the final valid SUBSCRIBE'));
    w.close();
    await sleep(50); // the group commit of the last turn
    run.checkDatabase();
    await run.checkServer();
  } finally {
    console.log(run.report());
    await run.stop();
  }
  return run;
}

let guard: OutboundGuard;
beforeAll(() => { guard = installOutboundGuard(); });
afterAll(() => guard?.uninstall());

describe('SIP over real sockets survives mutated messages', () => {
  it('the outbound guard is on (a fuzzed Contact cannot make the server reach beyond the test)', async () => {
    const { lookup } = await import('node:dns/promises');
    await expect(lookup('phone.example.com')).rejects.toThrow(/guard/);
    const s = connect({ host: '192.0.2.1', port: 5060 });
    await expect(new Promise((_r, j) => s.once('error', j))).rejects.toThrow(/guard/);
    guard.blocked.length = 0;
  });

  it(`auth off: ${UDP_CASES} UDP, ${TCP_CASES} TCP, ${WS_CASES} WS cases (seed 0x${SEED.toString(16)})`, async () => {
    const run = await fuzzRun('auth-off', false, 1, guard);
    run.assertClean();
    // The fuzz reached past the parser: some cases made subscriptions and were answered 200.
    expect(run.statuses.get(200) ?? 0).toBeGreaterThan(0);
    expect(run.stats.notifies).toBeGreaterThan(0);
  }, 120_000);

  it(`auth on: the digest path under the same mutations (${Math.round(UDP_CASES * AUTH_SHARE)} UDP cases and more)`, async () => {
    const run = await fuzzRun('auth-on', true, AUTH_SHARE, guard);
    run.assertClean();
    expect(run.statuses.get(401) ?? 0).toBeGreaterThan(0);
    expect(run.statuses.get(200) ?? 0).toBeGreaterThan(0);
  }, 120_000);
});
