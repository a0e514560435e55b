// The conformance suite on the embedded engine: always runs (in-process server, ports 0 on 127.0.0.1).
import { conformance } from './conformance.js';

conformance('embedded', async () => {
  // Imported here so a half-built server fails this suite, not the collection of the drachtio one.
  const { startTestServer } = await import('../helpers/server.js');
  const ts = await startTestServer();
  const udp = ts.sip('udp');
  return { sipUdp: { host: '127.0.0.1', port: udp.port }, stop: () => ts.stop() };
});
