// The presence domain on its own (no SIP): composition of publications and manual state, one rendering per
// change shared by every watcher, change events, publication expiry, reset and restore from the store.
import { describe, it, expect, afterEach } from 'vitest';
import { openDatabase, GroupCommit, type Db } from '../../src/store/db.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { silentLogger } from '../../src/log.js';
import { Presence, normalizePresentity, type Subscription, type StateChange } from '../../src/presence/presence.js';
import { PACKAGES } from '../../src/presence/packages/index.js';
import { tempDbFile } from '../helpers/server.js';
import { dialogInfoBody } from '../helpers/raw-sip.js';

const cleanups: Array<() => void> = [];
afterEach(() => { while (cleanups.length) cleanups.pop()!(); });

function make(file?: string, clock = { t: 1_000_000 }) {
  let f = file;
  if (!f) { const tmp = tempDbFile(); f = tmp.file; cleanups.push(tmp.cleanup); }
  const db: Db = openDatabase(f);
  const commit = new GroupCommit(db);
  const metrics: Metrics = createMetrics();
  cleanups.unshift(() => { commit.flush(); metrics.stop(); db.close(); });
  const p = new Presence({ db, commit, logger: silentLogger, metrics, nodeId: 'n1', now: () => clock.t, packages: PACKAGES });
  const changes: StateChange[] = [];
  p.onChange((c) => changes.push(c));
  return { p, db, metrics, clock, changes, file: f };
}

let n = 0;
function sub(presentity: string, event: Subscription['event'] = 'dialog', expiresAt = 10_000_000): Subscription {
  n++;
  return {
    id: `s${n}`, event, eventId: null, presentity, domain: presentity.split('@')[1]!, watcherUri: `sip:w${n}@x`, callId: `c${n}`,
    localTag: `l${n}`, remoteTag: `r${n}`, localUri: `<sip:${presentity}>;tag=l${n}`, remoteUri: `<sip:w${n}@x>;tag=r${n}`,
    remoteTarget: `sip:w${n}@127.0.0.1:5062`, routeSet: [], localCseq: 0, remoteCseq: 1, notifyVersion: -1, accept: null,
    transport: 'udp', flowId: null, sourceAddress: '127.0.0.1', sourcePort: 5062, identity: null, expires: 3600, expiresAt,
    nodeId: 'n1', createdAt: 1, updatedAt: 1, lastNotifyCseq: 0, lastNotifyReply: 0, userAgent: null,
  };
}

const body = (state: 'early' | 'confirmed' | 'terminated', id = 'call-1@pbx') => Buffer.from(dialogInfoBody('sip:201@example.com', state, id));

describe('presence hub', () => {
  it('an untouched presentity renders the neutral idle state', () => {
    const { p } = make();
    const st = p.state('201@example.com', 'dialog');
    expect(st.composed.source).toBe('none');
    const xml = st.rendered.forVersion(0).toString();
    expect(xml).toContain('entity="sip:201@example.com"');
    expect(xml).toContain('<state>terminated</state>');
  });

  it('a publication changes the state once, emits one change, and the rendering is shared by every watcher', async () => {
    const { p, changes } = make();
    await p.addSubscription(sub('201@example.com'));
    await p.addSubscription(sub('201@example.com'));
    await p.publish({ presentity: '201@example.com', event: 'dialog', contentType: 'application/dialog-info+xml', body: body('early'), expires: 60 });
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ presentity: '201@example.com', event: 'dialog', cause: 'publish' });
    const a = p.state('201@example.com', 'dialog');
    const b = p.state('201@example.com', 'dialog');
    expect(a.rendered).toBe(b.rendered);
    expect(a.composed.summary).toBe('early');
    expect(a.rendered.forVersion(3).toString()).toContain('version="3"');
    expect(p.watchers('201@example.com', 'dialog')).toHaveLength(2);
    expect(p.watchers('201@example.com', 'presence')).toHaveLength(0);
  });

  it('composes live publications; removing one takes its part away', async () => {
    const { p, clock } = make();
    const first = await p.publish({ presentity: '201@example.com', event: 'dialog', contentType: 'application/dialog-info+xml', body: body('confirmed', 'a'), expires: 60 });
    clock.t += 1000;
    const second = await p.publish({ presentity: '201@example.com', event: 'dialog', contentType: 'application/dialog-info+xml', body: body('early', 'b'), expires: 60 });
    const both = p.state('201@example.com', 'dialog').rendered.forVersion(0).toString();
    expect(both).toContain('id="a"');
    expect(both).toContain('id="b"');
    await p.removePublication(first, 'removed');
    const one = p.state('201@example.com', 'dialog').rendered.forVersion(0).toString();
    expect(one).not.toContain('id="a"');
    expect(one).toContain('id="b"');
    expect(p.findPublication(second.etag, '201@example.com', 'dialog')).toBe(second);
    expect(p.findPublication(second.etag, '202@example.com', 'dialog')).toBeUndefined();
  });

  it('expired publications are swept: state recomposed, change emitted, row deleted, tag no longer matches', async () => {
    const { p, clock, changes, db } = make();
    const pub = await p.publish({ presentity: '201@example.com', event: 'dialog', contentType: 'application/dialog-info+xml', body: body('early'), expires: 60 });
    clock.t += 60_000;
    expect(p.findPublication(pub.etag, '201@example.com', 'dialog')).toBeUndefined();
    expect(p.sweepPublications()).toBe(1);
    expect(changes.at(-1)).toMatchObject({ cause: 'expire' });
    expect(p.state('201@example.com', 'dialog').composed.summary).not.toBe('early');
    await new Promise((r) => setImmediate(r));
    expect(db.prepare('SELECT count(*) FROM publications').pluck().get()).toBe(0);
  });

  it('reset clears dialog and presence publications and the manual state, keeps MWI, and reports the watchers before', async () => {
    const { p, changes } = make();
    await p.addSubscription(sub('201@example.com', 'dialog'));
    await p.addSubscription(sub('201@example.com', 'message-summary'));
    await p.publish({ presentity: '201@example.com', event: 'dialog', contentType: 'application/dialog-info+xml', body: body('confirmed'), expires: 60 });
    await p.publish({ presentity: '201@example.com', event: 'message-summary', contentType: 'application/simple-message-summary', body: Buffer.from('Messages-Waiting: yes\r\nVoice-Message: 2/0\r\n'), expires: 60 });
    await p.setManualState('201@example.com', 'early');
    changes.length = 0;
    const r = await p.reset('sip:201@Example.com');
    expect(r.notified).toBe(2);
    expect(r.snapshot.map((s) => s.event).sort()).toEqual(['dialog', 'message-summary']);
    expect(changes.map((c) => c.event).sort()).toEqual(['dialog', 'message-summary', 'presence']);
    const views = Object.fromEntries(p.currentState('201@example.com').map((v) => [v.event, v]));
    expect(views.dialog!.source).toBe('none');
    expect(views['message-summary']!.state).toBe('yes');
  });

  it('restore brings back subscriptions, publications and manual state; expired subscriptions are handed back', async () => {
    const clock = { t: 1_000_000 };
    const a = make(undefined, clock);
    await a.p.addSubscription(sub('201@example.com', 'dialog', 2_000_000));
    await a.p.addSubscription(sub('202@example.com', 'dialog', 1_500_000));
    await a.p.publish({ presentity: '201@example.com', event: 'dialog', contentType: 'application/dialog-info+xml', body: body('early'), expires: 3600 });
    await a.p.publish({ presentity: '202@example.com', event: 'dialog', contentType: 'application/dialog-info+xml', body: body('early'), expires: 60 });
    await a.p.setManualState('203@example.com', 'confirmed');
    clock.t = 1_600_000;
    const b = make(a.file, clock);
    const r = b.p.restore();
    expect(r.subscriptions).toBe(2);
    expect(r.publications).toBe(1);
    expect(r.expiredPublications).toBe(1);
    expect(r.expiredSubscriptions.map((s) => s.presentity)).toEqual(['202@example.com']);
    expect(b.p.state('201@example.com', 'dialog').composed.summary).toBe('early');
    expect(b.p.state('203@example.com', 'dialog').composed).toMatchObject({ summary: 'confirmed', source: 'manual' });
    // the expired publication of 202 is a change its watcher must hear about
    expect(b.changes.map((c) => [c.presentity, c.cause])).toEqual([['202@example.com', 'expire']]);
    expect((await b.metrics.subscriptions.get()).values.find((v) => v.labels.event === 'dialog' && v.labels.transport === 'udp')?.value).toBe(2);
  });

  it('a call whose publication ran out while down is reported ended under its own dialog id (RFC 4235 §4.3)', async () => {
    const clock = { t: 1_000_000 };
    const a = make(undefined, clock);
    await a.p.publish({ presentity: '201@example.com', event: 'dialog', contentType: 'application/dialog-info+xml', body: body('early', 'call-7@pbx'), expires: 60 });
    clock.t += 120_000;
    const b = make(a.file, clock);
    b.p.restore();
    expect(b.changes.map((c) => c.cause)).toEqual(['expire']);
    const xml = b.p.state('201@example.com', 'dialog').rendered.forVersion(0).toString();
    expect(xml).toMatch(/<dialog id="call-7@pbx"[^>]*>\s*<state>terminated<\/state>/);
    expect((await b.metrics.publications.get()).values.reduce((n, v) => n + v.value, 0)).toBe(0);
  });

  it('the entity is a URI: user parts that need it are %-escaped again, star codes stay as they are', () => {
    const { p } = make();
    const entity = (presentity: string) => /entity="([^"]*)"/.exec(p.state(presentity, 'dialog').rendered.forVersion(0).toString())![1];
    expect(entity('#100@example.com')).toBe('sip:%23100@example.com');
    expect(entity('a b@example.com')).toBe('sip:a%20b@example.com');
    expect(entity('ü1@example.com')).toBe('sip:%C3%BC1@example.com');
    expect(entity('*3101@example.com')).toBe('sip:*3101@example.com');
  });

  it('normalizes presentities from the API', () => {
    expect(normalizePresentity('sip:Alice@Example.COM')).toBe('alice@example.com');
    expect(normalizePresentity('*3101@example.com')).toBe('*3101@example.com');
  });
});
