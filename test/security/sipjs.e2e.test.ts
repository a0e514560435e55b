// A real SIP client library (SIP.js, MD5 digest only) subscribing with a password over WebSocket: it must pick
// the MD5 challenge we offer after SHA-256 (RFC 8760 §2.4) and get its NOTIFYs; with a wrong password it gets none.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { seed } from './helpers.js';

const ACME = 'acme.test';
let ts: TestServer;
let SIP: typeof import('sip.js');

beforeAll(async () => {
  (globalThis as { WebSocket?: unknown }).WebSocket = (await import('ws')).WebSocket;
  SIP = await import('sip.js');
  ts = await startTestServer({ overrides: { sip: { auth: true } } });
  seed(ts.server.db, [{ name: 'Acme', realm: ACME, devices: [{ username: '100', password: 'sipjs-pw-100' }] }]);
});

afterAll(async () => {
  await ts?.stop();
});

async function trySubscribe(password: string): Promise<{ notified: string[]; states: string[] }> {
  const ws = ts.sip('ws');
  const ua = new SIP.UserAgent({
    uri: SIP.UserAgent.makeURI(`sip:100@${ACME}`)!,
    transportOptions: { server: `ws://127.0.0.1:${ws.port}` },
    authorizationUsername: '100',
    authorizationPassword: password,
    logLevel: 'error',
    logBuiltinEnabled: false,
  });
  const notified: string[] = [];
  const states: string[] = [];
  await ua.start();
  try {
    const subscriber = new SIP.Subscriber(ua, SIP.UserAgent.makeURI(`sip:201@${ACME}`)!, 'dialog', { expires: 120 });
    subscriber.delegate = {
      onNotify: (n) => {
        notified.push(n.request.body);
        void n.accept();
      },
    };
    subscriber.stateChange.addListener((s) => states.push(s));
    await subscriber.subscribe();
    const deadline = Date.now() + 3000;
    while (notified.length === 0 && !states.includes(SIP.SubscriptionState.Terminated) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    if (notified.length > 0) await subscriber.unsubscribe().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    await ua.stop();
  }
  return { notified, states };
}

describe('SIP.js with a password', () => {
  it('authenticates with MD5 over WebSocket and receives the dialog NOTIFY', async () => {
    const r = await trySubscribe('sipjs-pw-100');
    expect(r.notified.length).toBeGreaterThan(0);
    expect(r.notified[0]).toContain('urn:ietf:params:xml:ns:dialog-info');
    expect(r.states).toContain(SIP.SubscriptionState.Subscribed);
  });

  it('gets no subscription with a wrong password', async () => {
    const r = await trySubscribe('wrong-password');
    expect(r.notified).toHaveLength(0);
    expect(r.states).not.toContain(SIP.SubscriptionState.Subscribed);
    expect(ts.server.presence.listSubscriptions(ACME).filter((s) => s.transport === 'ws')).toHaveLength(0);
  });
});
