// The shared conformance suite: the core SIP behaviour of a BLF notifier, written once and run against any engine
// over raw UDP at the server's SIP address (RFC 6665 notifier, RFC 4235 dialog package, RFC 3903 PUBLISH).
// conformance(name, start) registers a vitest describe block; `skip` turns it into a visible skip with a reason.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawPeer, randomTag, subscribeText, publishText, type RawMessage } from '../helpers/raw-sip.js';

export interface ConformanceTarget {
  /** Where the server takes SIP over UDP (for drachtio: drachtio-server's SIP address). */
  sipUdp: { host: string; port: number };
  stop(): Promise<void>;
}

export interface ConformanceOptions {
  /** When set, the suite is skipped and this reason printed. */
  skip?: string;
  /** Per-message wait; a real drachtio-server on another host may need more. */
  timeoutMs?: number;
}

const versionOf = (m: RawMessage): number | undefined => {
  const v = /<dialog-info\b[^>]*\bversion="(\d+)"/.exec(m.body)?.[1];
  return v === undefined ? undefined : Number(v);
};
const tagOf = (v: string | undefined): string | undefined => /;\s*tag=([^;\s>]+)\s*$/.exec(v?.replace(/<[^>]*>/, '') ?? '')?.[1];
const uriOf = (v: string | undefined): string => /<([^>]*)>/.exec(v ?? '')?.[1] ?? (v ?? '').split(';')[0]!.trim();

export function conformance(name: string, start: () => Promise<ConformanceTarget>, opts: ConformanceOptions = {}): void {
  if (opts.skip) console.log(`[conformance ${name}] skipped: ${opts.skip}`);
  const wait = opts.timeoutMs ?? 5000;

  describe.skipIf(opts.skip !== undefined)(`conformance: ${name}`, () => {
    let target: ConformanceTarget;
    const peers: RawPeer[] = [];
    let user = 0;
    const nextUser = () => `7${String(++user).padStart(3, '0')}${randomTag().slice(0, 4)}`;

    beforeAll(async () => { target = await start(); });
    afterAll(async () => {
      for (const p of peers) p.close();
      await target?.stop();
    });

    async function peer(): Promise<RawPeer> {
      const p = await RawPeer.open({ host: target.sipUdp.host, port: target.sipUdp.port });
      peers.push(p);
      return p;
    }

    /** SUBSCRIBE and wait for both the 2xx and the first NOTIFY of the dialog. */
    async function subscribe(p: RawPeer, presentity: string, expires = 600) {
      const callId = `${randomTag()}@127.0.0.1`;
      const fromTag = randomTag();
      const mark = p.received.length;
      const res = await p.request(subscribeText(p, { user: presentity, callId, fromTag, expires }), wait);
      const notify = await p.waitFor((m) => m.method === 'NOTIFY' && m.get('call-id') === callId, wait, mark);
      return { res, notify, callId, fromTag, toTag: tagOf(res.get('to')) };
    }

    it('answers SUBSCRIBE 200 (not 202) with Expires, Contact and a To-tag of its own', async () => {
      const p = await peer();
      const { res, fromTag } = await subscribe(p, nextUser(), 600);
      expect(res.status).toBe(200);
      const expires = Number(res.get('expires'));
      expect(expires).toBeGreaterThan(0);
      expect(expires).toBeLessThanOrEqual(600); // RFC 6665 §4.2.1.1: may shorten, never lengthen
      expect(res.get('contact')).toMatch(/^<?sips?:/);
      const toTag = tagOf(res.get('to'));
      expect(toTag).toBeTruthy();
      expect(toTag).not.toBe(fromTag);
    });

    it('sends the initial NOTIFY in the dialog, version 0, active with expires', async () => {
      const p = await peer();
      const presentity = nextUser();
      const { notify, fromTag, toTag } = await subscribe(p, presentity, 600);
      expect(notify.get('event')).toMatch(/^dialog\b/);
      expect(notify.get('subscription-state')).toMatch(/^active;\s*expires=\d+/);
      expect(tagOf(notify.get('from'))).toBe(toTag); // RFC 6665 §4.4.1: our tag from the 2xx
      expect(tagOf(notify.get('to'))).toBe(fromTag);
      expect(notify.startLine.split(' ')[1]).toBe(uriOf(p.contact()));
      expect(notify.get('contact')).toBeTruthy();
      expect(notify.get('content-type')).toMatch(/^application\/dialog-info\+xml/);
      expect(versionOf(notify)).toBe(0); // RFC 4235 §4.1: per subscription, from 0
      expect(notify.body).toContain(`entity="sip:${presentity}@example.test"`);
    });

    it('turns a PUBLISH into a NOTIFY with the next version and the published state', async () => {
      const watcher = await peer();
      const publisher = await peer();
      const presentity = nextUser();
      const { callId, notify: first } = await subscribe(watcher, presentity, 600);
      const mark = watcher.received.length;
      const pub = await publisher.request(publishText(publisher, { user: presentity, state: 'confirmed', expires: 600 }), wait);
      expect(pub.status).toBe(200);
      expect(pub.get('sip-etag')).toBeTruthy();
      const n = await watcher.waitFor((m) => m.method === 'NOTIFY' && m.get('call-id') === callId && /confirmed/.test(m.body), wait, mark);
      expect(versionOf(n)).toBe(versionOf(first)! + 1);
      expect(Number(/^(\d+)/.exec(n.get('cseq') ?? '')?.[1])).toBeGreaterThan(Number(/^(\d+)/.exec(first.get('cseq') ?? '')?.[1]));
    });

    it('refreshes in the dialog: 200 with a new Expires, same To-tag, and a NOTIFY with full state', async () => {
      const p = await peer();
      const presentity = nextUser();
      const { callId, fromTag, toTag, notify: first } = await subscribe(p, presentity, 600);
      const mark = p.received.length;
      const res = await p.request(subscribeText(p, { user: presentity, callId, fromTag, toTag, cseq: 2, expires: 300 }), wait);
      expect(res.status).toBe(200);
      expect(Number(res.get('expires'))).toBeGreaterThan(0);
      expect(Number(res.get('expires'))).toBeLessThanOrEqual(300);
      expect(tagOf(res.get('to'))).toBe(toTag);
      const n = await p.waitFor((m) => m.method === 'NOTIFY' && m.get('call-id') === callId, wait, mark);
      expect(n.get('subscription-state')).toMatch(/^active/);
      expect(versionOf(n)).toBe(versionOf(first)! + 1);
    });

    it('ends on Expires: 0 with 200 and a final NOTIFY "terminated"', async () => {
      const p = await peer();
      const presentity = nextUser();
      const { callId, fromTag, toTag } = await subscribe(p, presentity, 600);
      const mark = p.received.length;
      const res = await p.request(subscribeText(p, { user: presentity, callId, fromTag, toTag, cseq: 2, expires: 0 }), wait);
      expect(res.status).toBe(200);
      const n = await p.waitFor((m) => m.method === 'NOTIFY' && m.get('call-id') === callId, wait, mark);
      expect(n.get('subscription-state')).toMatch(/^terminated/);
      // and the dialog is gone: a refresh now gets 481
      const again = await p.request(subscribeText(p, { user: presentity, callId, fromTag, toTag, cseq: 3, expires: 600 }), wait);
      expect(again.status).toBe(481);
    });

    it('answers an unknown event package 489 with Allow-Events', async () => {
      const p = await peer();
      const res = await p.request(subscribeText(p, { user: nextUser(), event: 'no-such-package', expires: 600 }), wait);
      expect(res.status).toBe(489);
      expect(res.get('allow-events')).toMatch(/dialog/);
    });

    it('answers a too-short Expires 423 with Min-Expires', async () => {
      const p = await peer();
      const res = await p.request(subscribeText(p, { user: nextUser(), expires: 1 }), wait);
      expect(res.status).toBe(423);
      expect(Number(res.get('min-expires'))).toBeGreaterThan(1);
    });

    it('answers an in-dialog SUBSCRIBE for a dialog it does not know 481', async () => {
      const p = await peer();
      const res = await p.request(subscribeText(p, { user: nextUser(), toTag: randomTag(), expires: 600 }), wait);
      expect(res.status).toBe(481);
    });
  });
}
