// The conformance suite through the drachtio adapter and real drachtio-srf, with a SIMULATED drachtio-server
// (test/drachtio/fake-server.ts + fake-sip-bridge.ts: the wire protocol plus a UDP side that does what
// drachtio-server is documented to do). It checks the adapter and the core together on every machine; it does
// not replace the run against a real drachtio-server (drachtio.test.ts).
import { conformance } from './conformance.js';
import { FakeDrachtioServer } from '../drachtio/fake-server.js';
import { FakeSipBridge } from '../drachtio/fake-sip-bridge.js';

conformance('drachtio (simulated drachtio-server)', async () => {
  const fake = new FakeDrachtioServer();
  const controlPort = await fake.listen();
  const bridge = new FakeSipBridge(fake);
  const sipPort = await bridge.listen();
  const { startTestServer } = await import('../helpers/server.js');
  const ts = await startTestServer({
    overrides: { sip: { engine: 'drachtio', drachtio: { host: '127.0.0.1', port: controlPort, secret: 'cymru', reconnectMinMs: 20, reconnectMaxMs: 200 } } },
  });
  return {
    sipUdp: { host: '127.0.0.1', port: sipPort },
    async stop() {
      await ts.stop();
      bridge.close();
      await fake.close();
    },
  };
});
