// The SIP faces of presence against an in-memory engine: every answer of the notifier and the compositor, the
// NOTIFY contents and sequences, the one-in-flight rule, the failure policy, expiry and restart on the same db.
import { describe, it, expect, afterEach } from 'vitest';
import { openDatabase, GroupCommit, type Db } from '../../src/store/db.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { silentLogger } from '../../src/log.js';
import { Presence } from '../../src/presence/presence.js';
import { PACKAGES } from '../../src/presence/packages/index.js';
import { createSipFace, type SipFace } from '../../src/sip/index.js';
import { openAuthenticator } from '../../src/sip/auth/types.js';
import { testConfig, tempDbFile } from '../helpers/server.js';
import { dialogInfoBody } from '../helpers/raw-sip.js';
import { FakeEngine, hdr, hdrAll, tag } from './fake-engine.js';

interface H {
  engine: FakeEngine; presence: Presence; face: SipFace; db: Db; metrics: Metrics; clock: { t: number }; file: string;
  reopen(): Promise<H>;
}

const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => { while (stops.length) await stops.pop()!(); });

async function setup(overrides: Record<string, unknown> = {}, file?: string, clock = { t: 1_700_000_000_000 }): Promise<H> {
  let cleanup: (() => void) | undefined;
  if (!file) { const tmp = tempDbFile(); file = tmp.file; cleanup = tmp.cleanup; }
  const db = openDatabase(file);
  const commit = new GroupCommit(db);
  const config = testConfig(file, overrides);
  const metrics = createMetrics();
  const presence = new Presence({ db, commit, logger: silentLogger, metrics, nodeId: 'n1', now: () => clock.t, packages: PACKAGES, replyLogIntervalMs: 0 });
  const engine = new FakeEngine();
  const face = createSipFace({ engine, presence, auth: openAuthenticator, config, db, commit, logger: silentLogger, metrics, sweepIntervalMs: 10 });
  await face.start();
  let stopped = false;
  const stop = async () => { if (stopped) return; stopped = true; await face.stop(); presence.flush(); commit.flush(); metrics.stop(); db.close(); };
  stops.push(stop);
  if (cleanup) stops.unshift(cleanup);
  const h: H = {
    engine, presence, face, db, metrics, clock, file: file!,
    async reopen() { await stop(); return setup(overrides, file, clock); },
  };
  return h;
}

interface SubOpts { user?: string; domain?: string; event?: string | null; expires?: number; callId?: string; fromTag?: string; toTag?: string; cseq?: number; accept?: string | null; extra?: Record<string, string | string[]>; method?: string; uri?: string; watcher?: string }

function subscribe(h: H, o: SubOpts = {}, flow = {}) {
  const domain = o.domain ?? 'example.com';
  const headers: Record<string, string | string[]> = {
    via: 'SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK' + tag(),
    from: `<sip:${o.watcher ?? '100'}@${domain}>;tag=${o.fromTag ?? tag()}`,
    to: `<sip:${o.user ?? '201'}@${domain}>${o.toTag ? `;tag=${o.toTag}` : ''}`,
    'call-id': o.callId ?? `${tag()}@127.0.0.1`,
    cseq: `${o.cseq ?? 1} ${o.method ?? 'SUBSCRIBE'}`,
    contact: '<sip:100@127.0.0.1:5062>',
    'max-forwards': '70',
    ...(o.event === null ? {} : { event: o.event ?? 'dialog' }),
    ...(o.accept === null ? {} : { accept: o.accept ?? 'application/dialog-info+xml' }),
    ...(o.expires === undefined ? {} : { expires: String(o.expires) }),
    ...o.extra,
  };
  return h.engine.request({ method: o.method ?? 'SUBSCRIBE', uri: o.uri ?? `sip:${o.user ?? '201'}@${domain}`, headers }, flow);
}

async function subscribed(h: H, o: SubOpts = {}, flow = {}) {
  const callId = o.callId ?? `${tag()}@127.0.0.1`;
  const fromTag = o.fromTag ?? tag();
  const before = h.engine.sent.length;
  const r = await subscribe(h, { ...o, callId, fromTag }, flow);
  expect(r.status).toBe(200);
  const first = await h.engine.waitSent(before + 1);
  return { r, callId, fromTag, toTag: r.toTag!, first };
}

function publish(h: H, o: { user?: string; domain?: string; event?: string; expires?: number; ifMatch?: string; body?: string; contentType?: string | null; state?: 'early' | 'confirmed' | 'terminated' } = {}) {
  const domain = o.domain ?? 'example.com';
  const user = o.user ?? '201';
  const body = o.body ?? (o.ifMatch && !o.state ? '' : dialogInfoBody(`sip:${user}@${domain}`, o.state ?? 'confirmed'));
  return h.engine.request({
    method: 'PUBLISH', uri: `sip:${user}@${domain}`, body,
    headers: {
      via: 'SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK' + tag(), from: `<sip:pbx@${domain}>;tag=${tag()}`, to: `<sip:${user}@${domain}>`,
      'call-id': tag(), cseq: '1 PUBLISH', 'max-forwards': '70', event: o.event ?? 'dialog',
      ...(o.expires === undefined ? {} : { expires: String(o.expires) }),
      ...(o.ifMatch ? { 'sip-if-match': o.ifMatch } : {}),
      ...(body && o.contentType !== null ? { 'content-type': o.contentType ?? 'application/dialog-info+xml' } : {}),
    },
  });
}

function version(body: string): number {
  const m = /<dialog-info[^>]*\sversion="(\d+)"/.exec(body);
  if (!m) throw new Error(`no version in ${body}`);
  return Number(m[1]);
}

function row(h: H, id: string) {
  return h.db.prepare('SELECT * FROM subscriptions WHERE id = ?').get(id) as Record<string, any> | undefined;
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('SUBSCRIBE: accepting', () => {
  it('answers 200 with Expires, Contact, To-tag, Record-Route and Allow-Events, committed before the 200, then NOTIFYs', async () => {
    const h = await setup();
    let rowsAtResponse = -1;
    const rr = ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>'];
    const callId = 'c1@127.0.0.1';
    const r = await subscribe(h, { callId, fromTag: 'ft1', expires: 600, extra: { 'record-route': rr, 'user-agent': 'Yealink SIP-T46S' } }).then((res) => {
      rowsAtResponse = (h.db.prepare('SELECT count(*) FROM subscriptions').pluck().get() as number);
      return res;
    });
    expect(r.status).toBe(200);
    expect(rowsAtResponse).toBe(1);
    expect(r.toTag).toMatch(/^[0-9a-f]{16}$/);
    expect(hdr(r, 'expires')).toBe('600');
    expect(hdr(r, 'contact')).toBe('<sip:lamplighter@127.0.0.1:5060;transport=udp>');
    expect(hdrAll(r, 'record-route')).toEqual(rr);
    expect(hdr(r, 'allow-events')).toBe('dialog, presence, message-summary');

    const n = await h.engine.waitSent(1);
    expect(n.spec.method).toBe('NOTIFY');
    expect(n.spec.requestUri).toBe('sip:100@127.0.0.1:5062');
    expect(n.spec.callId).toBe(callId);
    expect(n.spec.from).toBe(`<sip:201@example.com>;tag=${r.toTag}`);
    expect(n.spec.to).toBe('<sip:100@example.com>;tag=ft1');
    expect(n.spec.cseq).toBe(1);
    expect(n.spec.routeSet).toEqual(rr);
    expect(n.spec.flowRemote).toEqual({ address: '127.0.0.1', port: 5062 });
    expect(n.spec.flowId).toBe('udp:127.0.0.1:5062');
    expect(n.header('event')).toBe('dialog');
    expect(n.header('subscription-state')).toBe('active;expires=600');
    expect(n.header('contact')).toBe('<sip:lamplighter@127.0.0.1:5060;transport=udp>');
    expect(n.header('content-type')).toBe('application/dialog-info+xml');
    expect(version(n.body)).toBe(0);
    expect(n.body).toContain('entity="sip:201@example.com"');
    expect(n.body).toContain('<dialog ');
    await tick();
    const stored = row(h, h.presence.listSubscriptions('example.com')[0]!.id)!;
    expect(stored).toMatchObject({ local_cseq: 1, notify_version: 0, last_notify_cseq: 1, last_notify_reply: 200, user_agent: 'Yealink SIP-T46S', route_set: JSON.stringify(rr) });
    expect(stored.last_notify_body).toBe(n.body);
  });

  it('grants the default when Expires is absent and clamps to maxExpires', async () => {
    const h = await setup({ sip: { subscription: { minExpires: 60, maxExpires: 1800, defaultExpires: 900 } } });
    expect(hdr(await subscribe(h), 'expires')).toBe('900');
    expect(hdr(await subscribe(h, { expires: 99999 }), 'expires')).toBe('1800');
  });

  it('a default above maxExpires is clamped too (SUBSCRIBE and PUBLISH)', async () => {
    const h = await setup({ sip: { subscription: { maxExpires: 1800 }, publication: { maxExpires: 1200 } } });
    expect(hdr(await subscribe(h), 'expires')).toBe('1800');
    const r = await h.engine.request({ method: 'PUBLISH', uri: 'sip:201@example.com', body: dialogInfoBody('sip:201@example.com', 'early'), headers: {
      from: `<sip:pbx@example.com>;tag=${tag()}`, to: '<sip:201@example.com>', 'call-id': tag(), cseq: '1 PUBLISH', event: 'dialog',
      'content-type': 'application/dialog-info+xml',
    } });
    expect(hdr(r, 'expires')).toBe('1200');
  });

  it('lower-cases the user part and keeps star codes; the presentity is user@domain of the R-URI', async () => {
    const h = await setup();
    await subscribed(h, { user: '*3101', domain: 'Example.COM' });
    await subscribed(h, { user: 'Alice', domain: 'example.com' });
    expect(h.presence.listSubscriptions('example.com').map((s) => s.presentity).sort()).toEqual(['*3101@example.com', 'alice@example.com']);
  });

  it('Event with id is kept and echoed in NOTIFY', async () => {
    const h = await setup();
    const { first } = await subscribed(h, { event: 'dialog;id=7' });
    expect(first.header('event')).toBe('dialog;id=7');
  });

  it('serves presence and message-summary with their own body types', async () => {
    const h = await setup();
    const p = await subscribed(h, { event: 'presence', accept: 'application/pidf+xml' });
    expect(p.first.header('content-type')).toBe('application/pidf+xml');
    const m = await subscribed(h, { event: 'message-summary', accept: null });
    expect(m.first.header('content-type')).toBe('application/simple-message-summary');
  });
});

describe('SUBSCRIBE: refusing', () => {
  it('489 with Allow-Events for a missing or unknown Event', async () => {
    const h = await setup();
    for (const event of [null, 'reg', 'dialogx']) {
      const r = await subscribe(h, { event });
      expect(r.status).toBe(489);
      expect(hdr(r, 'allow-events')).toBe('dialog, presence, message-summary');
    }
  });

  it('423 with Min-Expires below the minimum', async () => {
    const h = await setup();
    const r = await subscribe(h, { expires: 30 });
    expect(r.status).toBe(423);
    expect(hdr(r, 'min-expires')).toBe('60');
    expect(h.presence.subscriptionCount).toBe(0);
  });

  it('406 with Accept when Accept lacks the package type', async () => {
    const h = await setup();
    const r = await subscribe(h, { accept: 'application/pidf+xml' });
    expect(r.status).toBe(406);
    expect(hdr(r, 'accept')).toBe('application/dialog-info+xml');
    expect((await subscribe(h, { accept: 'application/*' })).status).toBe(200);
  });

  it('405 with Allow, 483, 416, 420 with Unsupported, and ACK ignored', async () => {
    const h = await setup();
    const r405 = await subscribe(h, { method: 'INVITE' });
    expect(r405.status).toBe(405);
    expect(hdr(r405, 'allow')).toBe('SUBSCRIBE, PUBLISH, OPTIONS');
    expect((await subscribe(h, { extra: { 'max-forwards': '0' } })).status).toBe(483);
    expect((await subscribe(h, { uri: 'tel:+15551234' })).status).toBe(416);
    const r420 = await subscribe(h, { extra: { require: 'eventlist, foo' } });
    expect(r420.status).toBe(420);
    expect(hdr(r420, 'unsupported')).toBe('eventlist, foo');
    let answered = false;
    void subscribe(h, { method: 'ACK' }).then(() => { answered = true; });
    await tick();
    expect(answered).toBe(false);
  });

  it('400 for a malformed Expires or a missing Contact, 404 for an R-URI without a user part', async () => {
    const h = await setup();
    const bad = await subscribe(h, { extra: { expires: 'soon' } });
    expect(bad.status).toBe(400);
    expect(bad.reason).toBe('Malformed Expires');
    const noContact = await h.engine.request({ method: 'SUBSCRIBE', uri: 'sip:201@example.com', headers: {
      from: `<sip:100@example.com>;tag=${tag()}`, to: '<sip:201@example.com>', 'call-id': tag(), cseq: '1 SUBSCRIBE', event: 'dialog',
    } });
    expect(noContact.status).toBe(400);
    expect((await subscribe(h, { uri: 'sip:example.com' })).status).toBe(404);
    expect(h.presence.subscriptionCount).toBe(0);
  });

  it('400 for a Record-Route that is not a SIP name-addr, or a Call-ID with spaces or controls; nothing stored', async () => {
    const h = await setup();
    for (const rr of ['a;a;a', '<sip:p.example.com;lr', '<tel:+1555>', 'sip:p.example.com;lr']) {
      const r = await subscribe(h, { extra: { 'record-route': rr } });
      expect(r.status, rr).toBe(400);
      expect(r.reason).toBe('Malformed Record-Route');
    }
    for (const callId of ['has space', 'nul\u0000x', 'a@b@c']) {
      expect((await subscribe(h, { callId })).status, callId).toBe(400);
    }
    expect(h.db.prepare('SELECT count(*) FROM subscriptions').pluck().get()).toBe(0);
  });

  it('482 for a merged request: the same Call-ID, From tag and CSeq again on another branch (RFC 3261 §8.2.2.2)', async () => {
    const h = await setup();
    const s = await subscribed(h, { cseq: 4 });
    const again = await subscribe(h, { callId: s.callId, fromTag: s.fromTag, cseq: 4 });
    expect(again.status).toBe(482);
    expect(h.presence.subscriptionCount).toBe(1);
    // A new CSeq from the same dialog-less client is a new request, not a merge.
    expect((await subscribe(h, { callId: s.callId, fromTag: s.fromTag, cseq: 5 })).status).toBe(200);
  });

  it('every final answer to a request without a To-tag carries one (RFC 3261 §8.2.6.2); in-dialog answers add none', async () => {
    const h = await setup();
    const answers = [
      await subscribe(h, { event: 'reg' }), await subscribe(h, { expires: 5 }), await subscribe(h, { method: 'OPTIONS', event: null }),
      await subscribe(h, { method: 'MESSAGE' }), await publish(h, { ifMatch: 'nope' }), await publish(h, { state: 'early' }),
    ];
    for (const r of answers) expect(r.toTag, String(r.status)).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set(answers.map((r) => r.toTag)).size).toBe(answers.length);
    expect((await subscribe(h, { toTag: 'abc', cseq: 3 })).toTag).toBeUndefined();
  });

  it('OPTIONS: 200 with Allow, Allow-Events and Accept', async () => {
    const h = await setup();
    const r = await subscribe(h, { method: 'OPTIONS', event: null });
    expect(r.status).toBe(200);
    expect(hdr(r, 'allow')).toBe('SUBSCRIBE, PUBLISH, OPTIONS');
    expect(hdr(r, 'allow-events')).toBe('dialog, presence, message-summary');
    expect(hdr(r, 'accept')).toContain('application/dialog-info+xml');
  });

  it('481 for an unknown dialog, 500 for a lower CSeq, 403 for another event id in the dialog', async () => {
    const h = await setup();
    expect((await subscribe(h, { toTag: 'nosuch', cseq: 2 })).status).toBe(481);
    const s = await subscribed(h, { cseq: 10 });
    expect((await subscribe(h, { callId: s.callId, fromTag: s.fromTag, toTag: s.toTag, cseq: 9 })).status).toBe(500);
    expect((await subscribe(h, { callId: s.callId, fromTag: s.fromTag, toTag: s.toTag, cseq: 11, event: 'dialog;id=2' })).status).toBe(403);
    expect((await subscribe(h, { callId: s.callId, fromTag: s.fromTag, toTag: s.toTag, cseq: 12, event: 'presence', accept: null })).status).toBe(489);
  });

  it('limits: 403 past subscriptionsPerWatcher, 503 + Retry-After past the totals, counted in metrics', async () => {
    const h = await setup({ sip: { limits: { subscriptionsPerWatcher: 2, watchersPerPresentity: 3, totalSubscriptions: 4 } } });
    await subscribed(h, { user: '201', watcher: 'w1' });
    await subscribed(h, { user: '202', watcher: 'w1' });
    expect((await subscribe(h, { user: '203', watcher: 'w1' })).status).toBe(403);
    await subscribed(h, { user: '301', watcher: 'w2' });
    await subscribed(h, { user: '301', watcher: 'w3' });
    const r = await subscribe(h, { user: '301', watcher: 'w4' });
    expect(r.status).toBe(503);
    expect(hdr(r, 'retry-after')).toMatch(/^\d+$/);
    const m = await h.metrics.overload.get();
    const byLimit = Object.fromEntries(m.values.map((v) => [v.labels.limit, v.value]));
    expect(byLimit).toEqual({ subscriptionsPerWatcher: 1, totalSubscriptions: 1 });
  });
});

describe('SUBSCRIBE: refresh, unsubscribe, fetch, expiry', () => {
  it('refresh: 200 with the new Expires and a NOTIFY with CSeq and version one up', async () => {
    const h = await setup();
    const s = await subscribed(h, { expires: 600 });
    h.clock.t += 100_000;
    const r = await subscribe(h, { callId: s.callId, fromTag: s.fromTag, toTag: s.toTag, cseq: 2, expires: 300 });
    expect(r.status).toBe(200);
    expect(hdr(r, 'expires')).toBe('300');
    const n = await h.engine.waitSent(2);
    expect(n.spec.cseq).toBe(2);
    expect(version(n.body)).toBe(1);
    expect(n.header('subscription-state')).toBe('active;expires=300');
  });

  it('Expires: 0 in the dialog: 200, one final NOTIFY terminated;reason=timeout, then gone from memory and disk', async () => {
    const h = await setup();
    const s = await subscribed(h);
    const id = h.presence.listSubscriptions('example.com')[0]!.id;
    const r = await subscribe(h, { callId: s.callId, fromTag: s.fromTag, toTag: s.toTag, cseq: 2, expires: 0 });
    expect(r.status).toBe(200);
    expect(hdr(r, 'expires')).toBe('0');
    const n = await h.engine.waitSent(2);
    expect(n.header('subscription-state')).toBe('terminated;reason=timeout');
    expect(n.spec.cseq).toBe(2);
    await tick();
    expect(h.presence.subscriptionCount).toBe(0);
    expect(row(h, id)).toBeUndefined();
    expect(h.engine.sent).toHaveLength(2);
    expect((await subscribe(h, { callId: s.callId, fromTag: s.fromTag, toTag: s.toTag, cseq: 3 })).status).toBe(481);
  });

  it('Expires: 0 outside a dialog is a fetch: 200, one terminated NOTIFY with the state, nothing stored', async () => {
    const h = await setup();
    await publish(h, { state: 'early' });
    const r = await subscribe(h, { expires: 0 });
    expect(r.status).toBe(200);
    expect(r.toTag).toBeTruthy();
    const n = await h.engine.waitSent(1);
    expect(n.header('subscription-state')).toBe('terminated;reason=timeout');
    expect(n.body).toContain('<state>early</state>');
    await tick();
    expect(h.presence.subscriptionCount).toBe(0);
    expect(h.db.prepare('SELECT count(*) FROM subscriptions').pluck().get()).toBe(0);
  });

  it('a subscription that runs out gets terminated;reason=timeout from the sweeper and is removed', async () => {
    const h = await setup();
    await subscribed(h, { expires: 60 });
    h.clock.t += 61_000;
    const n = await h.engine.waitSent(2);
    expect(n.header('subscription-state')).toBe('terminated;reason=timeout');
    await tick();
    expect(h.presence.subscriptionCount).toBe(0);
    expect(h.db.prepare('SELECT count(*) FROM subscriptions').pluck().get()).toBe(0);
  });
});

describe('NOTIFY after state changes', () => {
  it('PUBLISH changes reach every watcher with CSeq and version going up by one', async () => {
    const h = await setup();
    const a = await subscribed(h);
    const b = await subscribed(h, { watcher: '101' });
    expect((await publish(h, { state: 'early' })).status).toBe(200);
    await h.engine.waitSent(4);
    expect((await publish(h, { state: 'confirmed' })).status).toBe(200);
    await h.engine.waitSent(6);
    for (const w of [a, b]) {
      const mine = h.engine.sent.filter((s) => s.spec.callId === w.callId);
      expect(mine.map((s) => s.spec.cseq)).toEqual([1, 2, 3]);
      expect(mine.map((s) => version(s.body))).toEqual([0, 1, 2]);
      expect(mine[1]!.body).toContain('<state>early</state>');
      expect(mine[2]!.body).toContain('<state>confirmed</state>');
    }
    expect((await h.metrics.fanoutSeconds.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value).toBeGreaterThanOrEqual(2);
  });

  it('one NOTIFY in flight: changes meanwhile give exactly one more NOTIFY with the newest state', async () => {
    const h = await setup();
    await subscribed(h);
    const held: Array<(o: { status: number; reason: string }) => void> = [];
    h.engine.answer = () => null;
    await publish(h, { state: 'early' });
    const second = await h.engine.waitSent(2);
    held.push(second.resolve);
    await publish(h, { state: 'confirmed' });
    await publish(h, { state: 'terminated' });
    await publish(h, { state: 'early' });
    await tick();
    expect(h.engine.sent).toHaveLength(2);
    h.engine.answer = () => ({ status: 200, reason: 'OK' });
    held[0]!({ status: 200, reason: 'OK' });
    const third = await h.engine.waitSent(3);
    await tick();
    expect(h.engine.sent).toHaveLength(3);
    expect(third.body).toContain('<state>early</state>');
    expect(third.spec.cseq).toBe(3);
    expect(version(third.body)).toBe(2);
  });

  it('minIntervalMs merges a burst into one later NOTIFY', async () => {
    // Long enough that a loaded machine still fits both PUBLISHes inside one interval.
    const h = await setup({ sip: { notify: { minIntervalMs: 1500 } } });
    await subscribed(h);
    const t0 = performance.now();
    await publish(h, { state: 'early' });
    await publish(h, { state: 'confirmed' });
    await tick();
    expect(h.engine.sent).toHaveLength(1);
    const n = await h.engine.waitSent(2, 4000);
    expect(performance.now() - t0).toBeGreaterThan(1000);
    expect(n.body).toContain('<state>confirmed</state>');
    await new Promise((r) => setTimeout(r, 100));
    expect(h.engine.sent).toHaveLength(2);
  });
});

describe('NOTIFY fan-out pacing', () => {
  it('hands a large fan-out to the engine sip.notify.sendBatch at a time, letting the event loop run between batches', async () => {
    const h = await setup({ sip: { notify: { sendBatch: 10 } } });
    for (let i = 0; i < 25; i++) await subscribed(h, { watcher: `w${i}` });
    const before = h.engine.sent.length;
    // What the engine has been handed, seen from the event loop between two turns.
    const seen: number[] = [];
    let probing = true;
    const probe = () => { seen.push(h.engine.sent.length - before); if (probing) setImmediate(probe); };
    expect((await publish(h, { state: 'early' })).status).toBe(200);
    setImmediate(probe);
    await h.engine.waitSent(before + 25);
    await new Promise((r) => setImmediate(r));
    probing = false;
    const steps = [...new Set(seen)].filter((n) => n > 0);
    expect(steps).toEqual([10, 20, 25]);
    expect(h.engine.sent.slice(before).map((n) => version(n.body))).toEqual(Array(25).fill(1));
  });
});

describe('NOTIFY persistence and target refresh', () => {
  it('CSeq and version are on disk before each NOTIFY is handed to the engine', async () => {
    const h = await setup();
    const seen: Array<{ cseq: number; row: { local_cseq: number; notify_version: number } }> = [];
    h.engine.answer = (spec) => {
      const r = h.db.prepare('SELECT local_cseq, notify_version FROM subscriptions WHERE call_id = ?').get(spec.callId) as { local_cseq: number; notify_version: number };
      seen.push({ cseq: spec.cseq, row: r });
      return { status: 200, reason: 'OK' };
    };
    await subscribed(h);
    await publish(h, { state: 'early' });
    await h.engine.waitSent(2);
    expect(seen).toEqual([{ cseq: 1, row: { local_cseq: 1, notify_version: 0 } }, { cseq: 2, row: { local_cseq: 2, notify_version: 1 } }]);
  });

  it('a refresh is a target refresh: new Contact and flow are used for the next NOTIFY and stored', async () => {
    const h = await setup();
    const s = await subscribed(h);
    const r = await subscribe(h, { callId: s.callId, fromTag: s.fromTag, toTag: s.toTag, cseq: 2, extra: { contact: '<sip:100@10.9.9.9:5070>' } },
      { id: 'udp:127.0.0.1:5060:10.9.9.9:5070', remoteAddress: '10.9.9.9', remotePort: 5070 });
    expect(r.status).toBe(200);
    const n = await h.engine.waitSent(2);
    expect(n.spec.requestUri).toBe('sip:100@10.9.9.9:5070');
    expect(n.spec.flowRemote).toEqual({ address: '10.9.9.9', port: 5070 });
    await tick();
    expect(h.db.prepare('SELECT remote_target, source_address, source_port, remote_cseq FROM subscriptions').get())
      .toEqual({ remote_target: 'sip:100@10.9.9.9:5070', source_address: '10.9.9.9', source_port: 5070, remote_cseq: 2 });
  });
});

describe('NOTIFY failure policy', () => {
  it('a 481 removes the subscription at once (memory and db)', async () => {
    const h = await setup();
    h.engine.answer = () => ({ status: 481, reason: 'Call/Transaction Does Not Exist' });
    await subscribe(h);
    await h.engine.waitSent(1);
    await tick();
    expect(h.presence.subscriptionCount).toBe(0);
    expect(h.db.prepare('SELECT count(*) FROM subscriptions').pluck().get()).toBe(0);
    expect((await h.metrics.notifyFailed.get()).values.find((v) => v.labels.cause === '481')?.value).toBe(1);
  });

  it('UDP timeouts remove it after maxFailuresUdp consecutive failures; TCP after maxFailuresReliable', async () => {
    const h = await setup({ sip: { notify: { maxFailuresUdp: 3, maxFailuresReliable: 1 } } });
    h.engine.answer = () => ({ status: 408, reason: 'Request Timeout', local: 'timeout' });
    await subscribe(h);
    await h.engine.waitSent(1);
    await publish(h, { state: 'early' });
    await h.engine.waitSent(2);
    await tick();
    expect(h.presence.subscriptionCount).toBe(1);
    await publish(h, { state: 'confirmed' });
    await h.engine.waitSent(3);
    await tick();
    expect(h.presence.subscriptionCount).toBe(0);
    await subscribe(h, { user: '202' }, { transport: 'tcp', id: 'tcp:1' });
    await h.engine.waitSent(4);
    await tick();
    expect(h.presence.subscriptionCount).toBe(0);
  });

  it('a success in between resets the failure count', async () => {
    const h = await setup();
    let n = 0;
    h.engine.answer = () => (++n % 2 === 0 ? { status: 200, reason: 'OK' } : { status: 408, reason: 'Request Timeout', local: 'timeout' });
    await subscribe(h);
    for (let i = 0; i < 5; i++) { await publish(h, { state: i % 2 ? 'early' : 'confirmed' }); await h.engine.waitSent(i + 2); await tick(); }
    expect(h.presence.subscriptionCount).toBe(1);
  });

  it('a NOTIFY failed by the engine during shutdown does not remove the subscription', async () => {
    const h = await setup();
    h.engine.answer = () => null;
    await subscribe(h, {}, { transport: 'tcp', id: 'tcp:9' });
    const held = await h.engine.waitSent(1);
    await h.face.stop();
    held.resolve({ status: 503, reason: 'Stopping', local: 'transport-error' });
    await tick();
    expect(h.presence.subscriptionCount).toBe(1);
    expect(h.db.prepare('SELECT count(*) FROM subscriptions').pluck().get()).toBe(1);
  });

  it('a WebSocket flow that is gone (no-flow) keeps the subscription', async () => {
    const h = await setup();
    h.engine.answer = () => ({ status: 430, reason: 'Flow Failed', local: 'no-flow' });
    await subscribe(h, {}, { transport: 'ws', id: 'ws:1' });
    await h.engine.waitSent(1);
    await publish(h, { state: 'early' });
    await h.engine.waitSent(2);
    await tick();
    expect(h.presence.subscriptionCount).toBe(1);
    expect(h.presence.listSubscriptions('example.com')[0]!.lastNotify.reply).toBe(430);
  });
});

describe('WebSocket watchers that cannot be reached', () => {
  it('are replaced when the same watcher subscribes again; a reachable tab keeps its subscription', async () => {
    const h = await setup();
    await subscribed(h, {}, { transport: 'ws', id: 'ws:tab1' });
    await subscribed(h, {}, { transport: 'ws', id: 'ws:tab2' });
    h.engine.answer = (spec) => (spec.flowId === 'ws:tab1' ? { status: 430, reason: 'Flow Failed', local: 'no-flow' } : { status: 200, reason: 'OK' });
    await publish(h, { state: 'early' });
    await h.engine.waitSent(4);
    await tick();
    expect(h.presence.subscriptionCount).toBe(2);
    await subscribed(h, {}, { transport: 'ws', id: 'ws:tab3' });
    await tick();
    const flows = [...h.presence.allSubscriptions()].map((s) => s.flowId).sort();
    expect(flows).toEqual(['ws:tab2', 'ws:tab3']);
  });

  it('with an engine that reports closed flows, a reload replaces the old subscription before any NOTIFY failed', async () => {
    const h = await setup();
    const open = new Set(['ws:reload1', 'ws:other']);
    (h.engine as { isFlowOpen?: (id: string) => boolean }).isFlowOpen = (id) => open.has(id);
    await subscribed(h, {}, { transport: 'ws', id: 'ws:reload1' });
    await subscribed(h, { watcher: '555' }, { transport: 'ws', id: 'ws:other' });
    open.delete('ws:reload1');
    open.add('ws:reload2');
    await subscribed(h, {}, { transport: 'ws', id: 'ws:reload2' });
    await tick();
    expect([...h.presence.allSubscriptions()].map((s) => s.flowId).sort()).toEqual(['ws:other', 'ws:reload2']);
  });

  it('after a restart, a re-subscribe over a new WebSocket replaces the old subscription', async () => {
    const h = await setup();
    await subscribed(h, {}, { transport: 'ws', id: 'ws:old' });
    await tick();
    const h2 = await h.reopen();
    await subscribed(h2, {}, { transport: 'ws', id: 'ws:new' });
    await tick();
    expect([...h2.presence.allSubscriptions()].map((s) => s.flowId)).toEqual(['ws:new']);
    expect(h2.db.prepare('SELECT flow_id FROM subscriptions').pluck().all()).toEqual(['ws:new']);
  });
});

describe('PUBLISH', () => {
  it('initial 200 with a new SIP-ETag and Expires; refresh, modify and remove each with the right answer', async () => {
    const h = await setup();
    await subscribed(h);
    const p1 = await publish(h, { state: 'early', expires: 120 });
    expect(p1.status).toBe(200);
    const e1 = hdr(p1, 'sip-etag')!;
    expect(e1).toMatch(/^[0-9a-f]{32}$/);
    expect(hdr(p1, 'expires')).toBe('120');
    await h.engine.waitSent(2);
    const refresh = await publish(h, { ifMatch: e1, expires: 300 });
    expect(refresh.status).toBe(200);
    const e2 = hdr(refresh, 'sip-etag')!;
    expect(e2).not.toBe(e1);
    expect(hdr(refresh, 'expires')).toBe('300');
    expect((await publish(h, { ifMatch: e1 })).status).toBe(412);
    await tick();
    expect(h.engine.sent).toHaveLength(2); // a refresh changes no state
    const modify = await publish(h, { ifMatch: e2, state: 'confirmed' });
    expect(modify.status).toBe(200);
    const e3 = hdr(modify, 'sip-etag')!;
    expect((await h.engine.waitSent(3)).body).toContain('<state>confirmed</state>');
    const remove = await publish(h, { ifMatch: e3, expires: 0 });
    expect(remove.status).toBe(200);
    const last = await h.engine.waitSent(4);
    expect(last.body).not.toContain('<state>confirmed</state>');
    expect(h.db.prepare('SELECT count(*) FROM publications').pluck().get()).toBe(0);
    const kinds = Object.fromEntries((await h.metrics.publishes.get()).values.map((v) => [v.labels.kind, v.value]));
    expect(kinds).toEqual({ initial: 1, refresh: 1, modify: 1, remove: 1 });
  });

  it('412 for an unknown tag, 400 without a body, 415 with Accept, 400 for an invalid body, 423, 489', async () => {
    const h = await setup();
    expect((await publish(h, { ifMatch: 'nosuch' })).status).toBe(412);
    expect((await publish(h, { body: '', contentType: null })).status).toBe(400);
    const r415 = await publish(h, { contentType: 'text/plain' });
    expect(r415.status).toBe(415);
    expect(hdr(r415, 'accept')).toBe('application/dialog-info+xml');
    const bad = await publish(h, { body: '<dialog-info' });
    expect(bad.status).toBe(400);
    expect(bad.reason).toMatch(/^Bad Body/);
    const r423 = await publish(h, { expires: 5 });
    expect(r423.status).toBe(423);
    expect(hdr(r423, 'min-expires')).toBe('60');
    expect((await publish(h, { event: 'reg' })).status).toBe(489);
    expect(h.db.prepare('SELECT count(*) FROM publications').pluck().get()).toBe(0);
  });

  it('an expired publication is gone (412) and its watchers are notified', async () => {
    const h = await setup();
    await subscribed(h);
    const p = await publish(h, { state: 'early', expires: 60 });
    await h.engine.waitSent(2);
    h.clock.t += 61_000;
    const n = await h.engine.waitSent(3);
    expect(n.body).not.toContain('<state>early</state>');
    expect((await publish(h, { ifMatch: hdr(p, 'sip-etag')! })).status).toBe(412);
  });

  it('publicationsPerAor: 503 with Retry-After past the cap', async () => {
    const h = await setup({ sip: { limits: { publicationsPerAor: 1 } } });
    expect((await publish(h)).status).toBe(200);
    const r = await publish(h);
    expect(r.status).toBe(503);
    expect(hdr(r, 'retry-after')).toBeTruthy();
  });
});

describe('restart on the same database', () => {
  it('the next change NOTIFYs the watcher in its old dialog with CSeq and version still going up', async () => {
    const h = await setup();
    const s = await subscribed(h, { expires: 3600 });
    await publish(h, { state: 'early', expires: 3600 });
    await h.engine.waitSent(2);
    await tick();
    const h2 = await h.reopen();
    expect(h2.presence.subscriptionCount).toBe(1);
    await publish(h2, { state: 'confirmed' });
    const n = await h2.engine.waitSent(1);
    expect(n.spec.callId).toBe(s.callId);
    expect(n.spec.from).toContain(`tag=${s.toTag}`);
    expect(n.spec.to).toContain(`tag=${s.fromTag}`);
    expect(n.spec.cseq).toBe(3);
    expect(version(n.body)).toBe(2);
    expect(n.spec.flowRemote).toEqual({ address: '127.0.0.1', port: 5062 });
    // the publication from before the restart is still part of the state
    expect(h2.presence.currentState('201@example.com').find((v) => v.event === 'dialog')!.source).toBe('publication');
  });

  it('subscriptions that expired while down get their terminated NOTIFY at start and are deleted', async () => {
    const h = await setup();
    await subscribed(h, { expires: 60 });
    await tick();
    await h.face.stop();
    h.clock.t += 120_000;
    const h2 = await h.reopen();
    const n = await h2.engine.waitSent(1);
    expect(n.header('subscription-state')).toBe('terminated;reason=timeout');
    expect(n.spec.cseq).toBe(2);
    await tick();
    expect(h2.db.prepare('SELECT count(*) FROM subscriptions').pluck().get()).toBe(0);
  });
});

describe('PresenceService for the API', () => {
  it('setManualState notifies and survives a restart; reset clears it, keeps MWI and NOTIFYs all three events', async () => {
    const h = await setup();
    await subscribed(h);
    await subscribed(h, { event: 'presence', accept: null });
    await subscribed(h, { event: 'message-summary', accept: null });
    expect((await h.presence.setManualState('201@example.com', 'early')).notified).toBe(2);
    await h.engine.waitSent(5);
    expect(h.engine.sent.slice(3).some((s) => s.body.includes('<state>early</state>'))).toBe(true);
    await tick();
    const h2 = await h.reopen();
    expect(h2.presence.currentState('201@example.com').find((v) => v.event === 'dialog')).toMatchObject({ state: 'early', source: 'manual' });
    const res = await h2.presence.reset('201@example.com');
    expect(res.notified).toBe(3);
    expect(res.snapshot.map((s) => s.event).sort()).toEqual(['dialog', 'message-summary', 'presence']);
    await h2.engine.waitSent(3);
    expect(h2.presence.currentState('201@example.com').find((v) => v.event === 'dialog')!.source).not.toBe('manual');
    expect(h2.db.prepare('SELECT count(*) FROM manual_states').pluck().get()).toBe(0);
  });

  it('lastNotify describes the last answered NOTIFY (CSeq, answer and body together) while the next is in flight', async () => {
    const h = await setup();
    const s = await subscribed(h);
    await tick();
    h.engine.answer = () => null;
    await publish(h, { state: 'early' });
    const held = await h.engine.waitSent(2);
    await tick();
    const [v] = h.presence.listSubscriptions('example.com');
    expect(v!.lastNotify).toEqual({ body: s.first.body, reply: 200, sequence: 1 });
    expect(v!.version).toBe(1);
    held.resolve({ status: 486, reason: 'Busy Here' });
    await tick();
    const [w] = h.presence.listSubscriptions('example.com');
    expect(w!.lastNotify).toEqual({ body: held.body, reply: 486, sequence: 2 });
  });

  it('listSubscriptions filters by domain, event and user and shows the last NOTIFY', async () => {
    const h = await setup();
    await subscribed(h, { user: '201' });
    await subscribed(h, { user: '202', event: 'presence', accept: null });
    await subscribed(h, { user: '201', domain: 'other.com' });
    await tick();
    expect(h.presence.listSubscriptions('example.com')).toHaveLength(2);
    expect(h.presence.listSubscriptions('example.com', { event: 'presence' }).map((s) => s.presentity)).toEqual(['202@example.com']);
    const [v] = h.presence.listSubscriptions('example.com', { user: '201' });
    expect(v).toMatchObject({ event: 'dialog', watcher: 'sip:100@example.com', transport: 'udp', nodeId: 'n1', version: 0, contact: 'sip:100@127.0.0.1:5062' });
    expect(v!.lastNotify.reply).toBe(200);
    expect(v!.lastNotify.sequence).toBe(1);
    expect(v!.lastNotify.body).toContain('dialog-info');
  });
});
