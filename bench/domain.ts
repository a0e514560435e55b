// Micro-bench of the presence domain on the SUBSCRIBE and PUBLISH paths, without SIP or SQLite:
//  - publish: the bench/sipp/publish.xml load (500 extensions, each accumulating ~46 live dialog publications), as
//    handlePublish + Presence.publish do it: validate the body, add the publication, recompose the presentity;
//  - subscribe: what newSubscription asks of the domain (merged-request scan, the three limit checks, add) plus the
//    initial NOTIFY body of an unpublished presentity (Hub.state → rendered → forVersion);
//  - memory: bytes per subscription held by SubscriptionRegistry and its records, 100 000 built like subscribe.ts
//    builds them (strings cut from a SUBSCRIBE's header text, then detached).
// Run: node --expose-gc --import tsx bench/domain.ts [publish|subscribe|memory|all]
import { PACKAGES } from '../src/presence/packages/index.js';
import { Hub } from '../src/presence/hub.js';
import { PublicationRegistry, type Publication } from '../src/presence/publications.js';
import { SubscriptionRegistry, type Subscription } from '../src/presence/subscriptions.js';
import type { EventPackageName } from '../src/presence/service.js';
import type { PublicationInput } from '../src/presence/packages/types.js';
import { detachString } from '../src/sip/stack/headers.js';
import { ownString } from '../src/sip/face-common.js';

const what = process.argv[2] ?? 'all';
const gc = (globalThis as { gc?: () => void }).gc;

function dialogBody(ext: string, n: number): Buffer {
  // The body publish.xml sends (one confirmed dialog with identities and targets).
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:${ext}@example.test">
<dialog id="b1-${n}" call-id="bc1-${n}@bench" local-tag="l${n}" remote-tag="r${n}" direction="recipient">
<state>confirmed</state>
<remote><identity>sip:caller@example.test</identity><target uri="sip:caller@example.test"/></remote>
<local><identity>sip:${ext}@example.test</identity><target uri="sip:${ext}@example.test"/></local>
</dialog>
</dialog-info>
`);
}

/** CPU time of this process in ns (user + system): on a shared machine, wall time counts the others too. */
function cpuNow(): bigint {
  const u = process.cpuUsage();
  return BigInt(u.user + u.system) * 1000n;
}

function report(label: string, n: number, ns: bigint): void {
  const us = Number(ns) / 1e3 / n;
  console.log(`${label.padEnd(52)} ${us.toFixed(2).padStart(8)} µs CPU/op  (${n} ops)`);
}

function benchPublish(direct: boolean): void {
  const pubs = new PublicationRegistry();
  const toInput = (p: Publication): PublicationInput => ({ etag: p.etag, contentType: p.contentType, body: p.body, updatedAt: p.updatedAt });
  const hub = new Hub(PACKAGES, {
    // presence.ts maps the records to new input objects on every composition; `direct` passes the records.
    publications: direct ? (presentity, event) => pubs.of(presentity, event) : (presentity, event) => pubs.of(presentity, event).map(toInput),
    manual: () => null,
  });
  const pkg = PACKAGES.dialog;
  const EXT = 500, PER = 46;
  const run = (round: number): bigint => {
    let t = 1_000_000 + round * 1e7;
    const t0 = cpuNow();
    for (let k = 0; k < PER; k++) {
      for (let e = 0; e < EXT; e++) {
        const ext = String(100000 + e);
        const presentity = `${ext}@example.test`;
        // The SIP face copies the request's body once; the package validates that copy (its parse is memoised).
        const wire = dialogBody(ext, k * EXT + e);
        const body = Buffer.from(wire);
        if (pkg.validate(body, 'application/dialog-info+xml') !== null) throw new Error('bench body refused');
        const p: Publication = {
          etag: `r${round}e${e}k${k}`, presentity, event: 'dialog', expiresAt: t + 600_000,
          contentType: 'application/dialog-info+xml', body, createdAt: t, updatedAt: t++,
        };
        pubs.add(p);
        hub.recompute(presentity, 'dialog', 'publish');
      }
    }
    const dt = cpuNow() - t0;
    for (const p of [...pubs.all()]) pubs.remove(p);
    return dt;
  };
  run(0); // warm-up
  report(`publish: validate + add + recompose (~46 pubs/AOR)${direct ? ', records as inputs' : ''}`, EXT * PER, run(1));
}

/** Header text of a SUBSCRIBE as the parser leaves it: every value a slice of one head string. */
function subscribeHead(i: number): { head: string; from: string; to: string; callId: string; contact: string; fromTag: string; watcher: string; presentity: string } {
  const ext = String(100000 + (i % 5000));
  const w = `w${i}`;
  const head = `SUBSCRIBE sip:${ext}@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-${i}-1;rport\r\n`
    + `Max-Forwards: 70\r\nFrom: <sip:${w}@example.test>;tag=ls4242x${i}\r\nTo: <sip:${ext}@example.test>\r\n`
    + `Call-ID: ${i}-4242@127.0.0.1\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:${w}@127.0.0.1:5070;transport=UDP>\r\n`
    + 'Event: dialog\r\nAccept: application/dialog-info+xml\r\nExpires: 600\r\nUser-Agent: lamplighter-bench\r\nContent-Length: 0\r\n';
  const cut = (name: string): string => {
    const a = head.indexOf(`${name}: `) + name.length + 2;
    return head.slice(a, head.indexOf('\r\n', a));
  };
  const from = cut('From');
  const to = cut('To');
  const contact = cut('Contact');
  return {
    head, from, to, callId: cut('Call-ID'), contact: contact.slice(1, -1), fromTag: from.slice(from.indexOf('tag=') + 4),
    watcher: from.slice(1, from.indexOf('>')), presentity: `${ext}@example.test`,
  };
}

let tokenN = 0;
const token = (bytes: number): string => (tokenN++).toString(16).padStart(bytes * 2, '0');

/** Built as subscribe.ts builds it: `own` now (flat copies, shared flow strings), `detach` as it did before. */
function record(i: number, style: 'own' | 'detach' = 'own'): Subscription {
  const h = subscribeHead(i);
  const localTag = token(8);
  const now = 1_000_000 + i;
  // The engine hands over a fresh flow id and address string with every request.
  const flowId = ['udp', '127.0.0.1', '36756', '127.0.0.1', String(5070 + (i % 1))].join('|');
  const address = ['127', '0', '0', '1'].join('.');
  if (style === 'detach') {
    return {
      id: token(12), event: 'dialog', eventId: null, presentity: detachString(h.presentity), domain: 'example.test',
      watcherUri: detachString(h.watcher), callId: detachString(h.callId), localTag, remoteTag: detachString(h.fromTag),
      localUri: `${detachString(h.to)};tag=${localTag}`, remoteUri: detachString(h.from), remoteTarget: detachString(h.contact),
      routeSet: [], localCseq: 0, remoteCseq: 1, notifyVersion: -1, accept: 'application/dialog-info+xml', transport: 'udp',
      flowId, sourceAddress: address, sourcePort: 5070, identity: '{"kind":"anonymous"}', expires: 600,
      expiresAt: now + 600_000, nodeId: 'node-1', createdAt: now, updatedAt: now, lastNotifyCseq: 0, lastNotifyReply: 0,
      userAgent: 'lamplighter-bench',
    };
  }
  return {
    seq: undefined, id: token(12), event: 'dialog', eventId: null, presentity: shared(h.presentity), domain: 'example.test',
    watcherUri: ownString(h.watcher), callId: ownString(h.callId), localTag, remoteTag: ownString(h.fromTag),
    localUri: ownString(`${h.to};tag=${localTag}`), remoteUri: ownString(h.from), remoteTarget: ownString(h.contact),
    routeSet: NO_ROUTE, localCseq: 0, remoteCseq: 1, notifyVersion: -1, accept: 'application/dialog-info+xml', transport: 'udp',
    flowId: shared(flowId), sourceAddress: shared(address), sourcePort: 5070, identity: '{"kind":"anonymous"}', expires: 600,
    expiresAt: now + 600_000, nodeId: 'node-1', createdAt: now, updatedAt: now, lastNotifyCseq: 0, lastNotifyReply: 0,
    userAgent: 'lamplighter-bench',
  };
}
const NO_ROUTE: string[] = [];
const sharedStrings = new Map<string, string>();
/** As subscribe.ts shares a presentity (with its other watchers) and a flow's strings. */
function shared(v: string): string {
  let hit = sharedStrings.get(v);
  if (hit === undefined) sharedStrings.set(v, (hit = ownString(v)));
  return hit;
}

function benchSubscribe(): void {
  const hub = new Hub(PACKAGES, { publications: () => [], manual: () => null });
  const N = 23_000;
  const run = (): bigint => {
    const reg = new SubscriptionRegistry();
    const subs = Array.from({ length: N }, (_, i) => record(i));
    let bytes = 0;
    const t0 = cpuNow();
    for (const s of subs) {
      // What newSubscription asks before accepting (RFC 3261 §8.2.2.2 merged requests, the limits)...
      for (const old of reg.watchers(s.presentity, s.event)) if (old.callId === s.callId && old.remoteTag === s.remoteTag) throw new Error('merged');
      if (reg.size > 1e9 || reg.presentityCount(s.presentity) > 1e9 || reg.watcherCount(s.watcherUri) > 1e9) throw new Error('limit');
      reg.add(s);
      // ...and the initial NOTIFY's body (nothing published: the idle state).
      bytes += hub.state(s.presentity, s.event as EventPackageName).rendered.forVersion(0).length;
    }
    const dt = cpuNow() - t0;
    if (bytes === 0) throw new Error('no body');
    return dt;
  };
  run();
  report('subscribe: checks + add + idle NOTIFY body (5000 AORs)', N, run());
}

function benchMemory(): void {
  if (!gc) {
    console.log('memory: run with node --expose-gc');
    return;
  }
  const N = 100_000;
  const measure = (label: string, build: () => unknown): void => {
    gc(); gc();
    const before = process.memoryUsage().heapUsed;
    const kept = build();
    gc(); gc();
    const after = process.memoryUsage().heapUsed;
    console.log(`${label.padEnd(52)} ${((after - before) / N).toFixed(0).padStart(8)} bytes/subscription`);
    if (kept === null) console.log('unreachable');
  };
  // The store gives each record its seq after the INSERT: a record that did not declare it changes shape then.
  let records: Subscription[] = [];
  measure('records, as subscribe.ts built them before', () => {
    records = Array.from({ length: N }, (_, i) => record(i, 'detach'));
    for (const r of records) r.seq = 1;
    return records;
  });
  records = [];
  measure('records, as subscribe.ts builds them now', () => {
    records = Array.from({ length: N }, (_, i) => record(i));
    for (const r of records) r.seq = 1;
    return records;
  });
  const reg = new SubscriptionRegistry();
  measure('SubscriptionRegistry indexes (records excluded)', () => { for (const s of records) reg.add(s); return reg; });
  if (reg.size !== N) throw new Error('size');
}

if (what === 'publish' || what === 'all') { benchPublish(false); benchPublish(true); }
if (what === 'subscribe' || what === 'all') benchSubscribe();
if (what === 'memory' || what === 'all') benchMemory();
