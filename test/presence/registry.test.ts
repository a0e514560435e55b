// SubscriptionRegistry's indexes (by id, by dialog, by presentity and event, the limit counters) and the hub's
// cache of idle states, on their own: what the SUBSCRIBE path and the fan-out read from them.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SubscriptionRegistry, type Subscription } from '../../src/presence/subscriptions.js';
import { Hub, IDLE_STATES_KEPT } from '../../src/presence/hub.js';
import { PACKAGES } from '../../src/presence/packages/index.js';
import type { EventPackageName } from '../../src/presence/service.js';
import type { PublicationInput } from '../../src/presence/packages/types.js';

let n = 0;
function sub(o: Partial<Subscription> = {}): Subscription {
  n++;
  return {
    id: `s${n}`, event: 'dialog', eventId: null, presentity: '201@example.com', domain: 'example.com', watcherUri: `sip:w${n}@x`,
    callId: `c${n}`, localTag: `l${n}`, remoteTag: `r${n}`, localUri: '<sip:201@example.com>;tag=l', remoteUri: '<sip:w@x>;tag=r',
    remoteTarget: 'sip:w@127.0.0.1:5062', routeSet: [], localCseq: 0, remoteCseq: 1, notifyVersion: -1, accept: null,
    transport: 'udp', flowId: null, sourceAddress: '127.0.0.1', sourcePort: 5062, identity: null, expires: 3600, expiresAt: 1e12,
    nodeId: 'n1', createdAt: 1, updatedAt: 1, lastNotifyCseq: 0, lastNotifyReply: 0, userAgent: null, ...o,
  };
}

describe('SubscriptionRegistry', () => {
  it('finds a dialog by Call-ID and both tags, also when several subscriptions share the Call-ID', () => {
    const r = new SubscriptionRegistry();
    const a = sub({ callId: 'same@x', localTag: 'l1', remoteTag: 'r1' });
    const b = sub({ callId: 'same@x', localTag: 'l2', remoteTag: 'r1' });
    const c = sub({ callId: 'same@x', localTag: 'l3', remoteTag: 'r9' });
    for (const s of [a, b, c]) r.add(s);
    expect(r.findByDialog('same@x', 'l1', 'r1')).toBe(a);
    expect(r.findByDialog('same@x', 'l2', 'r1')).toBe(b);
    expect(r.findByDialog('same@x', 'l3', 'r9')).toBe(c);
    expect(r.findByDialog('same@x', 'l1', 'r9')).toBeUndefined();
    expect(r.findByDialog('other@x', 'l1', 'r1')).toBeUndefined();
    expect(r.withCallId('same@x')).toEqual([a, b, c]);
    expect(r.remove(b)).toBe(true);
    expect(r.findByDialog('same@x', 'l2', 'r1')).toBeUndefined();
    expect(r.remove(a)).toBe(true);
    expect(r.findByDialog('same@x', 'l3', 'r9')).toBe(c);
    expect(r.withCallId('same@x')).toEqual([c]);
    expect(r.remove(c)).toBe(true);
    expect(r.withCallId('same@x')).toEqual([]);
    expect(r.remove(c)).toBe(false);
  });

  it('a fan-out may remove subscriptions while it iterates the watchers it was given', () => {
    const r = new SubscriptionRegistry();
    const subs = [sub(), sub(), sub(), sub()];
    for (const s of subs) r.add(s);
    const seen: Subscription[] = [];
    for (const s of r.watchers('201@example.com', 'dialog')) {
      seen.push(s);
      r.remove(s);
    }
    expect(seen).toEqual(subs);
    expect(r.watchers('201@example.com', 'dialog')).toEqual([]);
    expect(r.presentityCount('201@example.com')).toBe(0);
  });

  it('keeps every index equal to a plain recount over random adds and removes (property)', () => {
    const presentities = ['201@a', '202@a', '201@b'];
    const events: EventPackageName[] = ['dialog', 'presence', 'message-summary'];
    const watcherUris = ['sip:w1@x', 'sip:w2@x', 'sip:w3@x'];
    const callIds = ['c1', 'c2', 'c3', 'c4'];
    const step = fc.oneof(
      fc.record({ add: fc.constant(true as const), p: fc.constantFrom(...presentities), e: fc.constantFrom(...events),
        w: fc.constantFrom(...watcherUris), c: fc.constantFrom(...callIds) }),
      fc.record({ add: fc.constant(false as const), at: fc.nat() }),
    );
    fc.assert(fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
      const r = new SubscriptionRegistry();
      const live: Subscription[] = [];
      for (const st of steps) {
        if (st.add) {
          const s = sub({ presentity: st.p, event: st.e, watcherUri: st.w, callId: st.c });
          r.add(s);
          live.push(s);
        } else if (live.length) {
          const [s] = live.splice(st.at % live.length, 1);
          expect(r.remove(s!)).toBe(true);
        }
        // Read the snapshot between changes too, so a stale one would show.
        r.watchers(presentities[0]!, 'dialog');
      }
      expect(r.size).toBe(live.length);
      for (const p of presentities) {
        expect(r.presentityCount(p)).toBe(live.filter((s) => s.presentity === p).length);
        for (const e of events) expect(new Set(r.watchers(p, e))).toEqual(new Set(live.filter((s) => s.presentity === p && s.event === e)));
      }
      for (const w of watcherUris) expect(r.watcherCount(w)).toBe(live.filter((s) => s.watcherUri === w).length);
      for (const s of live) {
        expect(r.get(s.id)).toBe(s);
        expect(r.findByDialog(s.callId, s.localTag, s.remoteTag)).toBe(s);
      }
      expect(new Set(r.all())).toEqual(new Set(live));
    }), { numRuns: 300 });
  });
});

describe('Hub: idle states', () => {
  const body = Buffer.from('<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:201@example.com">'
    + '<dialog id="d1" call-id="d1@pbx" direction="recipient"><state>confirmed</state></dialog></dialog-info>');

  function hub() {
    const pubs = new Map<string, PublicationInput[]>();
    const h = new Hub(PACKAGES, { publications: (p, e) => pubs.get(`${e} ${p}`) ?? [], manual: () => null });
    return { h, pubs };
  }

  it('an idle presentity is composed and rendered once, then served from the cache', () => {
    const { h } = hub();
    const a = h.state('201@example.com', 'dialog');
    expect(h.state('201@example.com', 'dialog')).toBe(a);
    expect(h.state('202@example.com', 'dialog')).not.toBe(a);
    expect(a.rendered.forVersion(3).toString()).toContain('entity="sip:201@example.com"');
    expect(h.state('202@example.com', 'dialog').rendered.forVersion(3).toString()).toContain('entity="sip:202@example.com"');
  });

  it('a publication that arrived but is not recomputed yet is not hidden by a cached idle state', () => {
    const { h, pubs } = hub();
    const idle = h.state('201@example.com', 'dialog');
    expect(idle.composed.summary).toBe('terminated');
    pubs.set('dialog 201@example.com', [{ etag: 'e1', contentType: 'application/dialog-info+xml', body, updatedAt: 1 }]);
    expect(h.state('201@example.com', 'dialog').composed.summary).toBe('confirmed');
    const after = h.recompute('201@example.com', 'dialog', 'publish', true);
    expect(h.state('201@example.com', 'dialog')).toBe(after);
    pubs.delete('dialog 201@example.com');
    // Composed once from something: the hub keeps that line of states (the ended call is reported, §4.3).
    const ended = h.recompute('201@example.com', 'dialog', 'expire', true);
    expect(h.state('201@example.com', 'dialog')).toBe(ended);
    expect(ended.rendered.forVersion(0).toString()).toContain('id="d1"');
  });

  it('the cache is bounded', () => {
    const { h } = hub();
    const first = h.state('u0@example.com', 'presence');
    for (let i = 1; i <= IDLE_STATES_KEPT; i++) h.state(`u${i}@example.com`, 'presence');
    // The cache started over once full: the first presentity is composed again (an equal state, a new object).
    const again = h.state('u0@example.com', 'presence');
    expect(again).not.toBe(first);
    expect(again.rendered.forVersion(0)).toEqual(first.rendered.forVersion(0));
  });
});

describe('ownBuffer', () => {
  it('copies bytes and strings into memory of their own', async () => {
    const { ownBuffer } = await import('../../src/presence/packages/common.js');
    const pooled = Buffer.from('<dialog-info/>');
    const a = ownBuffer(pooled);
    expect(a.equals(pooled)).toBe(true);
    expect(a.buffer).not.toBe(pooled.buffer);
    expect(a.byteOffset).toBe(0);
    expect(a.buffer.byteLength).toBe(a.length);
    const b = ownBuffer('Zoë 🎧 <&>');
    expect(b.toString('utf8')).toBe('Zoë 🎧 <&>');
    expect(b.buffer.byteLength).toBe(Buffer.byteLength('Zoë 🎧 <&>'));
    expect(ownBuffer('').length).toBe(0);
  });
});
