// The whole Lamplighter server on the drachtio engine, against the fake control port: what the SIP faces send
// through drachtio-srf, and what holds across a Lamplighter restart and a drachtio-server restart.
import { afterEach, describe, expect, it } from 'vitest';
import { FakeDrachtioServer, type AppFrame } from './fake-server.js';
import { until } from './helpers.js';
import { tempDbFile, startTestServer, type TestServer } from '../helpers/server.js';

let fake: FakeDrachtioServer;
let servers: TestServer[] = [];
let tmp: ReturnType<typeof tempDbFile> | undefined;

afterEach(async () => {
  for (const s of servers) await s.stop().catch(() => undefined);
  servers = [];
  await fake?.close();
  tmp?.cleanup();
  tmp = undefined;
});

async function lamplighter(dbFile: string): Promise<TestServer> {
  const s = await startTestServer({
    dbFile,
    overrides: { sip: { engine: 'drachtio', drachtio: { host: '127.0.0.1', port: fake.port, secret: 'cymru', reconnectMinMs: 20, reconnectMaxMs: 80 } } },
  });
  servers.push(s);
  return s;
}

const CALL_ID = 'blf-1@192.0.2.7';
const DIALOG_ID = `${CALL_ID};from-tag=watcher1`;

function subscribe(o: { toTag?: string; cseq?: number; expires?: number } = {}): string {
  return [
    'SUBSCRIBE sip:201@example.test SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.7:40123;branch=z9hG4bK' + Math.random().toString(16).slice(2),
    'Max-Forwards: 70',
    'From: <sip:100@example.test>;tag=watcher1',
    `To: <sip:201@example.test>${o.toTag ? `;tag=${o.toTag}` : ''}`,
    `Call-ID: ${CALL_ID}`,
    `CSeq: ${o.cseq ?? 1} SUBSCRIBE`,
    'Contact: <sip:100@192.0.2.7:40123>',
    'Event: dialog',
    'Accept: application/dialog-info+xml',
    `Expires: ${o.expires ?? 600}`,
    'Content-Length: 0',
    '', '',
  ].join('\r\n');
}

function publish(state: 'confirmed' | 'early', dialog = 'd1'): string {
  const body = `<?xml version="1.0"?>\r\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:201@example.test"><dialog id="${dialog}" direction="recipient"><state>${state}</state></dialog></dialog-info>`;
  return [
    'PUBLISH sip:201@example.test SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK' + Math.random().toString(16).slice(2),
    'Max-Forwards: 70',
    'From: <sip:pbx@example.test>;tag=p1',
    'To: <sip:201@example.test>',
    `Call-ID: pub-${Math.random().toString(16).slice(2)}@pbx`,
    'CSeq: 1 PUBLISH',
    'Event: dialog',
    'Expires: 600',
    'Content-Type: application/dialog-info+xml',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

const isResponse = (txnId: string) => (f: AppFrame) => f.type === 'sip' && f.tokens[0] === txnId && (f.sip ?? '').startsWith('SIP/2.0');
const notifies = () => fake.frames.filter((f) => f.type === 'sip' && (f.sip ?? '').startsWith('NOTIFY'));
const header = (sip: string, name: string) => new RegExp(`^${name}:\\s*([^\\r\\n]*)$`, 'im').exec(sip)?.[1];

describe('Lamplighter on the drachtio engine (fake drachtio-server)', () => {
  it('subscribes, notifies in drachtio\'s dialog, refreshes and ends; ready follows the connection', async () => {
    fake = new FakeDrachtioServer();
    await fake.listen();
    tmp = tempDbFile();
    const s = await lamplighter(tmp.file);
    expect(s.server.engine.kind).toBe('drachtio');
    expect(s.server.engine.isReady()).toBe(true);
    await fake.waitFrame((f) => f.type === 'route' && f.tokens[0] === 'subscribe');

    const t1 = fake.deliver(subscribe(), { address: '192.0.2.7', port: 40123 });
    const r1 = (await fake.waitFrame(isResponse(t1))).sip!;
    expect(r1.split('\r\n')[0]).toBe('SIP/2.0 200 OK');
    expect(Number(header(r1, 'expires'))).toBeGreaterThan(0);
    expect(header(r1, 'contact')).toBe('<sip:127.0.0.1:5070>');
    const toTag = /;tag=([^;\s]+)$/.exec(header(r1, 'to') ?? '')?.[1];
    expect(toTag).toBeTruthy();
    expect(toTag).not.toBe('drachtio-made'); // the core's tag went through, drachtio did not make one

    await until(() => notifies().length === 1, 3000, 'initial NOTIFY');
    const n0 = notifies()[0]!;
    expect(n0.tokens).toEqual(['', DIALOG_ID]);
    expect(n0.sip!.split('\r\n')[0]).toBe('NOTIFY sip:100@192.0.2.7:40123 SIP/2.0');
    expect(header(n0.sip!, 'subscription-state')).toMatch(/^active;expires=\d+/);
    expect(header(n0.sip!, 'contact')).toBe('<sip:127.0.0.1:5070>');
    expect(n0.sip).toMatch(/version="0"/);

    const t2 = fake.deliver(subscribe({ toTag, cseq: 2, expires: 300 }), { dialogId: DIALOG_ID, address: '192.0.2.7', port: 40123 });
    const r2 = (await fake.waitFrame(isResponse(t2))).sip!;
    expect(r2.split('\r\n')[0]).toBe('SIP/2.0 200 OK');
    await until(() => notifies().length === 2, 3000, 'refresh NOTIFY');
    expect(notifies()[1]!.sip).toMatch(/version="1"/);

    const t3 = fake.deliver(subscribe({ toTag, cseq: 3, expires: 0 }), { dialogId: DIALOG_ID, address: '192.0.2.7', port: 40123 });
    expect((await fake.waitFrame(isResponse(t3))).sip!.split('\r\n')[0]).toBe('SIP/2.0 200 OK');
    await until(() => notifies().length === 3, 3000, 'final NOTIFY');
    const last = notifies()[2]!;
    expect(last.tokens).toEqual(['', DIALOG_ID]); // in the dialog, so drachtio-server can drop it
    expect(header(last.sip!, 'subscription-state')).toMatch(/^terminated/);
    await until(() => !fake.dialogs.has(DIALOG_ID), 3000, 'drachtio dialog cleared');

    fake.mode = 'drop';
    fake.dropAll();
    await until(() => !s.server.engine.isReady(), 3000, 'unready');
    const ready = await fetch(`${s.apiUrl}/ready`).then((r) => r.status).catch(() => 0);
    expect(ready === 0 || ready >= 500).toBe(true);
  });

  it('keeps notifying stored subscriptions in their dialogs after Lamplighter restarts, and statelessly after drachtio-server restarts', async () => {
    fake = new FakeDrachtioServer();
    await fake.listen();
    tmp = tempDbFile();
    const first = await lamplighter(tmp.file);
    const t1 = fake.deliver(subscribe(), { address: '192.0.2.7', port: 40123 });
    const toTag = /;tag=([^;\s]+)\s*$/m.exec(header((await fake.waitFrame(isResponse(t1))).sip!, 'to') ?? '')?.[1];
    await until(() => notifies().length === 1, 3000, 'initial NOTIFY');
    await first.stop();
    servers = servers.filter((x) => x !== first);

    // Lamplighter restarts; drachtio-server keeps its dialog.
    await lamplighter(tmp.file);
    fake.deliver(publish('confirmed'));
    await until(() => notifies().some((n) => /confirmed/.test(n.sip!)), 5000, 'NOTIFY after Lamplighter restart');
    const after = notifies().find((n) => /confirmed/.test(n.sip!))!;
    expect(after.tokens).toEqual(['', DIALOG_ID]);
    expect(after.sip).toMatch(/version="1"/);

    // drachtio-server restarts: its dialogs are gone; the NOTIFY goes stateless with the stored dialog headers.
    fake.dialogs.clear();
    const connections = fake.connections;
    fake.dropAll();
    await until(() => fake.connections > connections && fake.sockets.size === 1 && servers[0]!.server.engine.isReady(), 3000, 'reconnected');
    await fake.waitFrame((f) => f.type === 'route' && f.tokens[0] === 'publish' && fake.frames.indexOf(f) > fake.frames.map((x) => x.type).lastIndexOf('authenticate'));
    const before = notifies().length;
    fake.deliver(publish('early', 'd2'));
    await until(() => notifies().length >= before + 2, 5000, 'in-dialog try and stateless NOTIFY');
    const stateless = notifies().slice(before).find((n) => n.tokens[1] === '')!;
    expect(stateless).toBeDefined();
    expect(header(stateless.sip!, 'call-id')).toBe(CALL_ID);
    expect(header(stateless.sip!, 'from')).toBe(`<sip:201@example.test>;tag=${toTag}`);
    expect(header(stateless.sip!, 'to')).toBe('<sip:100@example.test>;tag=watcher1');
    expect(header(stateless.sip!, 'cseq')).toMatch(/^\d+ NOTIFY$/);
    expect(stateless.sip).toMatch(/version="2"/);
  });
});
