// An admin reset after a real call: watchers get an idle body with exactly one <dialog> and none of the ended
// call's call-id or tags (a made-up or stale Call-ID makes phones send a Replaces INVITE the PBX rejects).
import { describe, it, expect } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import { RawPeer, subscribeText, publishText } from '../helpers/raw-sip.js';

describe('reset after a call', () => {
  it('NOTIFYs idle without the call\'s call-id and tags', async () => {
    const srv = await startTestServer();
    const peer = await RawPeer.open({ port: srv.sip('udp').port });
    try {
      expect((await peer.request(subscribeText(peer, { user: '401', expires: 600 }))).status).toBe(200);
      await peer.waitFor((m) => m.method === 'NOTIFY', 5000, 0);
      expect((await peer.request(publishText(peer, { user: '401', state: 'confirmed' }))).status).toBe(200);
      const busy = await peer.waitFor((m) => m.method === 'NOTIFY' && m.body.includes('confirmed'), 5000, 0);
      expect(busy.body).toContain('call-id="call-1@pbx"');
      const mark = peer.received.length;
      const r = await srv.server.presence.reset('401@example.test');
      expect(r.notified).toBe(1);
      const idle = await peer.waitFor((m) => m.method === 'NOTIFY', 5000, mark);
      expect(idle.body).toContain('<state>terminated</state>');
      expect(idle.body.match(/<dialog /g)?.length).toBe(1);
      expect(idle.body).not.toContain('call-id=');
      expect(idle.body).not.toContain('local-tag=');
      expect(idle.body).not.toContain('call-1@pbx');
    } finally {
      peer.close();
      await srv.stop();
    }
  });
});
