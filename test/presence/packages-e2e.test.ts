// The bodies through a real in-process server over loopback UDP: a PBX-style PUBLISH reaches a raw watcher's
// NOTIFY with its call-id, tags and identities intact and escaped, Content-Length in bytes; a hostile body is
// answered 400 with the package's reason and changes nothing.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawPeer, publishText, subscribeText, type RawMessage } from '../helpers/raw-sip.js';
import { parseDialogInfo } from '../../src/presence/packages/dialog.js';

let ts: TestServer;
beforeAll(async () => { ts = await startTestServer(); });
afterAll(async () => { await ts?.stop(); });

const domain = 'example.test';

function fsBody(user: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="5" state="full" entity="sip:${user}@${domain}">
  <dialog id="e2e-1" call-id="e2e-1@pbx" local-tag="LT" remote-tag="RT" direction="recipient">
    <state>early</state>
    <local><identity>sip:${user}@${domain}</identity><target uri="sip:${user}@${domain}"/></local>
    <remote><identity display="Zoë &lt;script&gt; &amp; &quot;Co&quot;">sip:100@${domain}</identity><target uri="sip:**${user}@${domain}"/></remote>
  </dialog>
</dialog-info>`;
}

const isNotify = (m: RawMessage) => m.method === 'NOTIFY';

describe('bodies end to end (PUBLISH → NOTIFY)', () => {
  it('passes a published ringing dialog through to the watcher, escaped, with a byte-exact Content-Length', async () => {
    const user = `e2e${Math.floor(Math.random() * 1e6)}`;
    const watcher = await RawPeer.open({ port: ts.sip('udp').port });
    const pbx = await RawPeer.open({ port: ts.sip('udp').port });
    try {
      const sub = await watcher.request(subscribeText(watcher, { user, domain, expires: 300 }));
      expect(sub.status).toBe(200);
      const first = await watcher.waitFor(isNotify, 5000, 0);
      expect(first.body).toContain('<state>terminated</state>');
      const n = watcher.received.length;

      const res = await pbx.request(publishText(pbx, { user, domain, body: fsBody(user) }));
      expect(res.status).toBe(200);
      const notify = await watcher.waitFor((m) => isNotify(m) && m.body.includes('<state>early</state>'), 5000, n);
      expect(notify.get('content-type')).toBe('application/dialog-info+xml');
      expect(Number(notify.get('content-length'))).toBe(Buffer.byteLength(notify.body, 'utf8'));
      expect(notify.body).not.toContain('<script>');
      const parsed = parseDialogInfo(notify.body);
      if (!parsed.ok) throw new Error(parsed.reason);
      expect(parsed.entity).toBe(`sip:${user}@${domain}`);
      expect(parsed.dialogs).toEqual([expect.objectContaining({
        id: 'e2e-1', callId: 'e2e-1@pbx', localTag: 'LT', remoteTag: 'RT', direction: 'recipient', state: 'early',
        remote: { identity: `sip:100@${domain}`, display: 'Zoë <script> & "Co"', target: `sip:**${user}@${domain}`, targetParams: [] },
      })]);
    } finally {
      watcher.close();
      pbx.close();
    }
  });

  it('answers a hostile body 400 with the reason and keeps the old state', async () => {
    const user = `e2e${Math.floor(Math.random() * 1e6)}`;
    const pbx = await RawPeer.open({ port: ts.sip('udp').port });
    try {
      const lol = '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><dialog-info>&b;</dialog-info>';
      const res = await pbx.request(publishText(pbx, { user, domain, body: lol }));
      expect(res.status).toBe(400);
      expect(res.startLine).toMatch(/DOCTYPE/);
      const deep = '<a>'.repeat(2000) + '</a>'.repeat(2000);
      const res2 = await pbx.request(publishText(pbx, { user, domain, body: deep }));
      expect(res2.status).toBe(400);
      expect(res2.startLine).toMatch(/nested too deeply/);
      const state = ts.server.presence.currentState(`${user}@${domain}`).find((s) => s.event === 'dialog');
      expect(state?.source).toBe('none');
    } finally {
      pbx.close();
    }
  });
});
