// The drachtio engine end to end through real drachtio-srf, against a fake control port on 127.0.0.1: a request
// in from "the network" → ServerTransaction → the `sip|txn|` response on the wire; sendRequest → the `sip||dialog`
// (or stateless) request on the wire → RequestOutcome; the connection going away and coming back.
import { afterEach, describe, expect, it } from 'vitest';
import { createDrachtioEngine } from '../../src/sip/drachtio/engine.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { silentLogger } from '../../src/log.js';
import type { DialogRequestSpec, ServerTransaction, SipEngine } from '../../src/sip/port.js';
import { FakeDrachtioServer } from './fake-server.js';
import { drachtioConfig, until } from './helpers.js';

let fake: FakeDrachtioServer;
let engine: SipEngine | undefined;
let metrics: Metrics | undefined;

afterEach(async () => {
  await engine?.stop();
  engine = undefined;
  metrics?.stop();
  await fake?.close();
});

const SUBSCRIBE = (o: { callId?: string; toTag?: string; cseq?: number } = {}) => [
  'SUBSCRIBE sip:201@example.test SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.7:40123;branch=z9hG4bK1;rport=40123',
  'From: <sip:100@example.test>;tag=watcher1',
  `To: <sip:201@example.test>${o.toTag ? `;tag=${o.toTag}` : ''}`,
  `Call-ID: ${o.callId ?? 'c1@192.0.2.7'}`,
  `CSeq: ${o.cseq ?? 1} SUBSCRIBE`,
  'Contact: <sip:100@192.0.2.7:40123>',
  'Event: dialog',
  'Expires: 600',
  'Content-Length: 0',
  '', '',
].join('\r\n');

const NOTIFY: DialogRequestSpec = {
  method: 'NOTIFY',
  requestUri: 'sip:100@192.0.2.7:40123',
  callId: 'c1@192.0.2.7',
  from: '<sip:201@example.test>;tag=ourtag',
  to: '<sip:100@example.test>;tag=watcher1',
  cseq: 3,
  routeSet: [],
  transport: 'udp',
  flowRemote: { address: '192.0.2.7', port: 40123 },
  headers: [['Event', 'dialog'], ['Subscription-State', 'active;expires=600'], ['Content-Type', 'application/dialog-info+xml'], ['Contact', '<sip:127.0.0.1:5070>']],
  body: '<?xml version="1.0"?><dialog-info version="0"/>',
};

async function startEngine(limits = {}): Promise<{ txs: ServerTransaction[] }> {
  fake = new FakeDrachtioServer();
  const port = await fake.listen();
  metrics = createMetrics();
  engine = createDrachtioEngine({ config: drachtioConfig(port), logger: silentLogger, metrics, limits });
  const txs: ServerTransaction[] = [];
  engine.onRequest((tx) => txs.push(tx));
  const addrs = await engine.start();
  expect(addrs).toEqual([{ transport: 'udp', address: '127.0.0.1', port: 5070 }, { transport: 'tcp', address: '127.0.0.1', port: 5070 }]);
  return { txs };
}

describe('drachtio engine', () => {
  it('connects, authenticates with the secret and routes SUBSCRIBE, PUBLISH, OPTIONS', async () => {
    await startEngine();
    expect(engine!.isReady()).toBe(true);
    expect(engine!.kind).toBe('drachtio');
    await fake.waitFrame((f) => f.type === 'authenticate' && f.tokens[0] === 'cymru');
    for (const m of ['subscribe', 'publish', 'options']) await fake.waitFrame((f) => f.type === 'route' && f.tokens[0] === m);
    expect(engine!.contactUri('udp')).toBe('sip:127.0.0.1:5070');
    expect(engine!.contactUri('tcp')).toBe('sip:127.0.0.1:5070;transport=tcp');
    expect(engine!.contactUri('ws')).toBe('sip:127.0.0.1:5070;transport=ws');
  });

  it('hands a SUBSCRIBE to the core and sends its 200 with our To-tag, Expires and Contact', async () => {
    const { txs } = await startEngine();
    const txnId = fake.deliver(SUBSCRIBE(), { address: '192.0.2.7', port: 40123 });
    await until(() => txs.length === 1, 3000, 'transaction');
    const tx = txs[0]!;
    expect(tx.request.method).toBe('SUBSCRIBE');
    expect(tx.request.headers.get('event')).toEqual(['dialog']);
    expect(tx.flow).toMatchObject({ transport: 'udp', remoteAddress: '192.0.2.7', remotePort: 40123, localAddress: '127.0.0.1', localPort: 5070 });
    tx.respond({ status: 200, toTag: 'ourtag', headers: [['Expires', '600'], ['Contact', `<${engine!.contactUri('udp')}>`]] });
    expect(tx.responded).toBe(true);
    tx.respond({ status: 500 }); // ignored
    const f = await fake.waitFrame((x) => x.type === 'sip' && x.tokens[0] === txnId);
    expect(f.sip!.split('\r\n')[0]).toBe('SIP/2.0 200 OK');
    expect(f.sip).toMatch(/^to: <sip:201@example\.test>;tag=ourtag$/im);
    // drachtio-srf's SipMessage#set lower-cases the names; drachtio-server re-serializes headers anyway.
    expect(f.sip).toMatch(/^expires: 600$/im);
    expect(f.sip).toMatch(/^contact: <sip:127\.0\.0\.1:5070>$/im);
    expect(f.sip).not.toMatch(/202/);
    expect(fake.frames.filter((x) => x.type === 'sip' && x.tokens[0] === txnId)).toHaveLength(1);
    // drachtio-server now holds the dialog for that SUBSCRIBE
    await until(() => fake.dialogs.has('c1@192.0.2.7;from-tag=watcher1'), 3000, 'dialog');
  });

  it('delivers in-dialog SUBSCRIBEs (refresh, unsubscribe) to the core too: no Srf dialog swallows them', async () => {
    const { txs } = await startEngine();
    fake.deliver(SUBSCRIBE({ toTag: 'ourtag', cseq: 2 }), { dialogId: 'c1@192.0.2.7;from-tag=watcher1' });
    await until(() => txs.length === 1);
    expect(txs[0]!.request.headers.get('to')).toEqual(['<sip:201@example.test>;tag=ourtag']);
    txs[0]!.respond({ status: 481, reason: 'Subscription Does Not Exist' });
    const f = await fake.waitFrame((x) => x.type === 'sip' && (x.sip ?? '').startsWith('SIP/2.0 481'));
    expect(f.sip!.split('\r\n')[0]).toBe('SIP/2.0 481 Subscription Does Not Exist');
  });

  it('sends repeated headers (two WWW-Authenticate challenges) as separate lines, never comma-folded', async () => {
    const { txs } = await startEngine();
    const txnId = fake.deliver(SUBSCRIBE());
    await until(() => txs.length === 1);
    txs[0]!.respond({ status: 401, reason: 'Unauthorized', toTag: 't401', headers: [
      ['WWW-Authenticate', 'Digest realm="example.test", nonce="n1", algorithm=SHA-256, qop="auth"'],
      ['WWW-Authenticate', 'Digest realm="example.test", nonce="n1", algorithm=MD5, qop="auth"'],
    ] });
    const f = await fake.waitFrame((x) => x.type === 'sip' && x.tokens[0] === txnId);
    const lines = f.sip!.split('\r\n').filter((l) => /^www-authenticate:/i.test(l));
    expect(lines).toEqual([
      'www-authenticate: Digest realm="example.test", nonce="n1", algorithm=SHA-256, qop="auth"',
      'WWW-Authenticate: Digest realm="example.test", nonce="n1", algorithm=MD5, qop="auth"',
    ]);
  });

  it('answers 500 when the core throws, and counts requests and responses', async () => {
    await startEngine();
    engine!.onRequest(() => { throw new Error('boom'); });
    fake.deliver(SUBSCRIBE());
    const f = await fake.waitFrame((x) => x.type === 'sip' && (x.sip ?? '').startsWith('SIP/2.0 500'));
    expect(f).toBeDefined();
    const text = await metrics!.registry.metrics();
    expect(text).toMatch(/lamplighter_sip_requests_total\{method="SUBSCRIBE",transport="udp"\} 1/);
    expect(text).toMatch(/lamplighter_sip_responses_total\{method="SUBSCRIBE",status="500"\} 1/);
  });

  it('sends NOTIFY inside the dialog drachtio-server holds, by its id, and reports the final response', async () => {
    await startEngine();
    fake.dialogs.add('c1@192.0.2.7;from-tag=watcher1');
    const outcome = await engine!.sendRequest(NOTIFY);
    expect(outcome.status).toBe(200);
    expect(outcome.local).toBeUndefined();
    expect(outcome.response?.status).toBe(200);
    expect(outcome.response?.headers.get('via')).toEqual(['SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKfake']);
    const f = await fake.waitFrame((x) => x.type === 'sip' && (x.sip ?? '').startsWith('NOTIFY'));
    expect(f.tokens).toEqual(['', 'c1@192.0.2.7;from-tag=watcher1']);
    expect(f.sip!.split('\r\n')[0]).toBe('NOTIFY sip:100@192.0.2.7:40123 SIP/2.0');
    expect(f.sip).toMatch(/^Subscription-State: active;expires=600$/m);
    expect(f.sip).toMatch(/^Contact: <sip:127\.0\.0\.1:5070>$/m);
    expect(f.sip).not.toMatch(/^From:/m); // drachtio fills the dialog headers from its leg
    expect(f.sip!.endsWith('<dialog-info version="0"/>')).toBe(true);
    expect(await metrics!.registry.metrics()).toMatch(/lamplighter_notify_sent_total\{event="dialog"\} 1/);
  });

  it('falls back to a stateless NOTIFY with explicit From/To/Call-ID/CSeq when drachtio-server lost the dialog', async () => {
    await startEngine();
    fake.answerRequest = () => ({ status: 481, reason: 'Call/Transaction Does Not Exist' });
    const outcome = await engine!.sendRequest(NOTIFY);
    expect([outcome.status, outcome.reason]).toEqual([481, 'Call/Transaction Does Not Exist']);
    const sent = fake.frames.filter((x) => x.type === 'sip' && (x.sip ?? '').startsWith('NOTIFY'));
    expect(sent.map((x) => x.tokens)).toEqual([['', 'c1@192.0.2.7;from-tag=watcher1'], ['', '']]);
    const s = sent[1]!.sip!;
    expect(s).toMatch(/^From: <sip:201@example\.test>;tag=ourtag$/m);
    expect(s).toMatch(/^To: <sip:100@example\.test>;tag=watcher1$/m);
    expect(s).toMatch(/^Call-ID: c1@192\.0\.2\.7$/m);
    expect(s).toMatch(/^CSeq: 3 NOTIFY$/m);
  });

  it('reports a NOTIFY that never gets a final response as a local timeout', async () => {
    await startEngine({ requestTimeoutMs: 150 });
    fake.dialogs.add('c1@192.0.2.7;from-tag=watcher1');
    fake.answerRequest = () => null;
    const outcome = await engine!.sendRequest(NOTIFY);
    expect(outcome).toEqual({ status: 408, reason: 'Request Timeout', local: 'timeout' });
  });

  it('ends a NOTIFY in flight as no-flow when the connection drops before its answer', async () => {
    await startEngine();
    fake.dialogs.add('c1@192.0.2.7;from-tag=watcher1');
    fake.answerRequest = () => null;
    const pending = engine!.sendRequest(NOTIFY);
    await fake.waitFrame((x) => x.type === 'sip' && (x.sip ?? '').startsWith('NOTIFY'));
    fake.mode = 'drop';
    fake.dropAll();
    expect(await pending).toEqual({ status: 503, reason: 'drachtio-server not connected', local: 'no-flow' });
  });

  it('goes unready when the connection drops, reconnects with back-off, and a NOTIFY sent meanwhile waits for it', async () => {
    await startEngine({ disconnectedWaitMs: 3000 });
    fake.dialogs.add('c1@192.0.2.7;from-tag=watcher1');
    fake.mode = 'drop';
    fake.dropAll();
    await until(() => !engine!.isReady(), 3000, 'unready');
    const pending = engine!.sendRequest(NOTIFY);
    await until(() => fake.connections >= 3, 3000, 'retries');
    expect(engine!.isReady()).toBe(false);
    fake.mode = 'speak';
    const outcome = await pending;
    expect(outcome.status).toBe(200);
    expect(engine!.isReady()).toBe(true);
    expect(engine!.listening()).toHaveLength(2);
  });

  it('fails a NOTIFY as no-flow (subscription kept) when the connection stays down', async () => {
    await startEngine({ disconnectedWaitMs: 100 });
    fake.mode = 'drop';
    fake.dropAll();
    await until(() => !engine!.isReady(), 3000, 'unready');
    expect(await engine!.sendRequest(NOTIFY)).toEqual({ status: 503, reason: 'drachtio-server not connected', local: 'no-flow' });
  });

  it('start() resolves unready when no drachtio-server answers, and becomes ready when one appears', async () => {
    fake = new FakeDrachtioServer();
    fake.mode = 'drop';
    const port = await fake.listen();
    metrics = createMetrics();
    engine = createDrachtioEngine({ config: drachtioConfig(port), logger: silentLogger, metrics });
    expect(await engine.start()).toEqual([]);
    expect(engine.isReady()).toBe(false);
    fake.mode = 'speak';
    await until(() => engine!.isReady(), 3000, 'ready');
    const before = fake.connections;
    await engine.stop();
    expect(engine.isReady()).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    expect(fake.connections).toBe(before);
  });
});
