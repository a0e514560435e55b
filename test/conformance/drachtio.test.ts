// The conformance suite on the drachtio engine, against a real drachtio-server. Runs only when
//   DRACHTIO_HOST, DRACHTIO_PORT, DRACHTIO_SECRET  (its control port, e.g. 127.0.0.1 9022 cymru) and
//   DRACHTIO_SIP                                   (its SIP UDP address, "host:port", e.g. 127.0.0.1:5060)
// are set; otherwise it prints "skipped: no drachtio-server". The raw test peers bind 127.0.0.1, so the
// drachtio-server must run on this machine (it sends the NOTIFYs to the peers' Contact).
import { conformance } from './conformance.js';

const { DRACHTIO_HOST, DRACHTIO_PORT, DRACHTIO_SECRET, DRACHTIO_SIP } = process.env;
const configured = Boolean(DRACHTIO_HOST && DRACHTIO_PORT && DRACHTIO_SECRET);

function sipAddress(): { host: string; port: number } {
  const m = /^(?:sip:|udp\/)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec((DRACHTIO_SIP ?? '').trim());
  if (!m) throw new Error(`DRACHTIO_SIP=${DRACHTIO_SIP ?? ''}: expected host:port of drachtio-server's SIP UDP listener`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 5060 };
}

conformance('drachtio', async () => {
  const { startTestServer } = await import('../helpers/server.js');
  const ts = await startTestServer({
    overrides: {
      sip: {
        engine: 'drachtio',
        drachtio: { host: DRACHTIO_HOST, port: Number(DRACHTIO_PORT), secret: DRACHTIO_SECRET, reconnectMinMs: 200, reconnectMaxMs: 2000 },
      },
    },
  });
  if (!ts.server.engine.isReady()) {
    await ts.stop();
    throw new Error(`drachtio-server at ${DRACHTIO_HOST}:${DRACHTIO_PORT} did not accept the connection (secret?)`);
  }
  return { sipUdp: sipAddress(), stop: () => ts.stop() };
}, {
  skip: configured
    ? (DRACHTIO_SIP ? undefined : 'no drachtio-server SIP address (set DRACHTIO_SIP=host:port)')
    : 'no drachtio-server (set DRACHTIO_HOST, DRACHTIO_PORT, DRACHTIO_SECRET and DRACHTIO_SIP to run it)',
  timeoutMs: 8000,
});
