// Issue 7: /ready is false until the SIP engine listens or is connected to its drachtio-server; /health is true
// as soon as the process serves HTTP. Uses the drachtio engine against a stand-in control port that first refuses
// the app, then accepts it.
import { describe, it, expect } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import { FakeDrachtioServer } from '../drachtio/fake-server.js';

async function waitFor(pred: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await pred()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

describe('/ready follows the engine', () => {
  it('is 503 while the drachtio-server refuses us, 200 once connected; /health is 200 throughout', async () => {
    const fake = new FakeDrachtioServer();
    fake.mode = 'refuse';
    const port = await fake.listen();
    const srv = await startTestServer({
      overrides: { sip: { engine: 'drachtio', drachtio: { host: '127.0.0.1', port, secret: fake.secret, reconnectMinMs: 50, reconnectMaxMs: 200 } } },
    });
    try {
      expect((await fetch(`${srv.apiUrl}/health`)).status).toBe(200);
      const notReady = await fetch(`${srv.apiUrl}/ready`);
      expect(notReady.status).toBe(503);
      expect(await (await fetch(`${srv.apiUrl}/metrics`)).text()).toMatch(/^lamplighter_drachtio_connected 0$/m);
      fake.mode = 'speak';
      const became = await waitFor(async () => (await fetch(`${srv.apiUrl}/ready`)).status === 200, 5000);
      expect(became).toBe(true);
      expect((await fetch(`${srv.apiUrl}/health`)).status).toBe(200);
      expect(await (await fetch(`${srv.apiUrl}/metrics`)).text()).toMatch(/^lamplighter_drachtio_connected 1$/m);
    } finally {
      await srv.stop();
      await fake.close();
    }
  });
});
