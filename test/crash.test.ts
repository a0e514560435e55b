// The crash test (issue 2): subscriptions over UDP and TCP, the server killed with SIGKILL, started again on the
// same database and ports; a PUBLISH then reaches every watcher in its OLD dialog with CSeq and version still
// going up. UDP watchers are reached at their stored source address, TCP ones by a new connection to their
// Contact. A subscription that ran out while the server was down gets terminated;reason=timeout at start, and
// one that runs out while it is up gets it from the sweeper.
import { describe, it, expect, afterAll } from 'vitest';
import { createServer as createTcpServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import { spawnServer, tempDbFile, type ChildServer } from './helpers/server.js';
import { RawPeer, ContactListener, subscribeText, publishText, parseRaw, responseTo, randomTag, type RawMessage } from './helpers/raw-sip.js';

/**
 * A port free on both UDP and TCP (the server binds both to LAMPLIGHTER_SIP_PORT), picked below the kernel's
 * ephemeral range so that no test binding port 0 can be handed it while the server is down between the runs.
 */
async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const srv = createTcpServer();
    const tcpOk = await new Promise<boolean>((r) => { srv.once('error', () => r(false)); srv.listen(port, '127.0.0.1', () => r(true)); });
    if (!tcpOk) continue;
    await new Promise((r) => srv.close(r));
    const udp = createSocket('udp4');
    const ok = await new Promise<boolean>((r) => { udp.once('error', () => r(false)); udp.bind(port, '127.0.0.1', () => r(true)); });
    if (ok) { await new Promise<void>((r) => udp.close(() => r())); return port; }
  }
  throw new Error('no free port');
}

async function until<T>(fn: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cseqOf = (m: RawMessage) => Number(m.get('cseq')!.split(' ')[0]);
const versionOf = (m: RawMessage) => Number(/<dialog-info[^>]*\sversion="(\d+)"/.exec(m.body)![1]);
const toTagOf = (m: RawMessage) => /;tag=([^;>\s]+)/.exec(m.get('to')!)![1]!;

const children: ChildServer[] = [];
const closers: Array<() => void> = [];
afterAll(async () => {
  for (const c of children) await c.kill('SIGKILL');
  for (const c of closers) c();
});

describe('kill -9 and restart on the same database', () => {
  it('every acknowledged watcher gets the next NOTIFY in its old dialog; expiries are honoured', async () => {
    const tmp = tempDbFile();
    closers.push(tmp.cleanup);
    const cfgFile = join(dirname(tmp.file), 'crash-config.json');
    writeFileSync(cfgFile, JSON.stringify({ sip: { subscription: { minExpires: 1, maxExpires: 3600, defaultExpires: 3600 } } }));
    const sipPort = await freePort();
    const wsPort = await freePort();
    const env = { LAMPLIGHTER_CONFIG: cfgFile };
    const first = await spawnServer({ dbFile: tmp.file, sipPort, wsPort, env });
    children.push(first);
    const server = { port: sipPort };
    const domain = 'crash.test';

    const udp = await RawPeer.open(server, { transport: 'udp' });
    closers.push(() => udp.close());
    const tcp = await RawPeer.open(server, { transport: 'tcp' });
    closers.push(() => tcp.close());
    const contact = await ContactListener.open();
    closers.push(() => contact.close());

    // Two UDP watchers and one TCP watcher of 201; one short UDP subscription that will run out while down.
    const dialogs: Array<{ name: string; callId: string; fromTag: string; toTag?: string }> = [
      { name: 'udp-a', callId: `${randomTag()}@udp`, fromTag: randomTag() },
      { name: 'udp-b', callId: `${randomTag()}@udp`, fromTag: randomTag() },
      { name: 'tcp', callId: `${randomTag()}@tcp`, fromTag: randomTag() },
    ];
    for (const d of dialogs) {
      const peer = d.name === 'tcp' ? tcp : udp;
      let text = subscribeText(peer, { user: '201', domain, callId: d.callId, fromTag: d.fromTag, expires: 3600, watcher: d.name });
      if (d.name === 'tcp') text = text.replace(/^Contact: .*$/m, `Contact: <sip:${d.name}@127.0.0.1:${contact.port};transport=tcp>`);
      const ok = await peer.request(text);
      expect(ok.status).toBe(200);
      d.toTag = toTagOf(ok);
    }
    // A WebSocket watcher (RFC 7118): after the restart nobody can reach it, so it is kept, not dropped.
    const wsCall = `${randomTag()}@ws`;
    const ws = new WebSocket(`ws://127.0.0.1:${wsPort}`, 'sip');
    closers.push(() => ws.terminate());
    await new Promise<void>((r, j) => { ws.once('open', () => r()); ws.once('error', j); });
    const wsIn: RawMessage[] = [];
    ws.on('message', (d) => {
      const m = parseRaw(d.toString());
      wsIn.push(m);
      if (m.method) ws.send(responseTo(m, 200));
    });
    ws.send([
      'SUBSCRIBE sip:201@crash.test SIP/2.0', `Via: SIP/2.0/WS ${randomTag()}.invalid;branch=z9hG4bK${randomTag()}`, 'Max-Forwards: 70',
      `From: <sip:ws@crash.test>;tag=${randomTag()}`, '<sip:201@crash.test>'.replace(/^/, 'To: '), `Call-ID: ${wsCall}`, 'CSeq: 1 SUBSCRIBE',
      `Contact: <sip:ws@${randomTag()}.invalid;transport=ws>`, 'Event: dialog', 'Expires: 3600', 'Content-Length: 0', '', '',
    ].join('\r\n'));
    expect((await until(() => wsIn.find((m) => m.status !== undefined), 5000, 'WS 200')).status).toBe(200);
    await until(() => wsIn.find((m) => m.method === 'NOTIFY'), 5000, 'WS initial NOTIFY');

    const shortCall = `${randomTag()}@udp`;
    const SHORT = 5;
    const shortAt = Date.now();
    expect((await udp.request(subscribeText(udp, { user: '202', domain, callId: shortCall, expires: SHORT, watcher: 'short' }))).status).toBe(200);

    // Before the crash: initial NOTIFY (CSeq n, version 0) and one after a PUBLISH (n+1, version 1).
    const pbx = await RawPeer.open(server, { transport: 'udp' });
    closers.push(() => pbx.close());
    expect((await pbx.request(publishText(pbx, { user: '201', domain, state: 'early', expires: 3600 }))).status).toBe(200);
    const before = new Map<string, RawMessage>();
    for (const d of dialogs) {
      const peer = d.name === 'tcp' ? tcp : udp;
      before.set(d.name, await peer.waitFor((m) => m.method === 'NOTIFY' && m.get('call-id') === d.callId && m.body.includes('<state>early</state>'), 5000, 0));
    }

    const killed = await first.kill('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    expect(Date.now() - shortAt, 'killed before the short subscription ran out').toBeLessThan(SHORT * 1000);
    // the short subscription runs out while the server is down
    await new Promise((r) => setTimeout(r, Math.max(0, shortAt + SHORT * 1000 + 300 - Date.now())));
    const udpSeen = udp.received.length;

    const second = await spawnServer({ dbFile: tmp.file, sipPort, wsPort, env });
    children.push(second);

    // The one that ran out while down: its terminated NOTIFY at start, then its row is gone.
    const term = await udp.waitFor((m) => m.method === 'NOTIFY' && m.get('call-id') === shortCall, 5000, udpSeen);
    expect(term.get('subscription-state')).toBe('terminated;reason=timeout');

    expect((await pbx.request(publishText(pbx, { user: '201', domain, state: 'confirmed', expires: 3600 }))).status).toBe(200);
    for (const d of dialogs) {
      const prev = before.get(d.name)!;
      const after = d.name === 'tcp'
        ? await until(() => contact.received.find((m) => m.method === 'NOTIFY' && m.get('call-id') === d.callId && m.body.includes('<state>confirmed</state>')), 8000, 'TCP NOTIFY after restart')
        : await udp.waitFor((m) => m.method === 'NOTIFY' && m.get('call-id') === d.callId && m.body.includes('<state>confirmed</state>'), 8000, udpSeen);
      // The old dialog: same Call-ID, our tag in From, the watcher's tag in To.
      expect(after.get('from')).toContain(`tag=${d.toTag}`);
      expect(after.get('to')).toContain(`tag=${d.fromTag}`);
      expect(after.startLine).toMatch(new RegExp(`^NOTIFY sip:${d.name}@127\\.0\\.0\\.1:`));
      expect(cseqOf(after)).toBe(cseqOf(prev) + 1);
      expect(versionOf(after)).toBe(versionOf(prev) + 1);
      expect(after.get('subscription-state')).toMatch(/^active;expires=\d+$/);
    }

    const db = new Database(tmp.file, { readonly: true });
    try {
      const rows = db.prepare('SELECT call_id, local_cseq, notify_version, transport FROM subscriptions WHERE presentity = ?').all('201@crash.test') as Array<{ call_id: string; local_cseq: number; notify_version: number; transport: string }>;
      expect(rows).toHaveLength(4);
      expect(rows.filter((r) => r.transport === 'ws').map((r) => r.call_id)).toEqual([wsCall]);
      for (const r of rows) expect(r.notify_version).toBe(2);
      expect(db.prepare('SELECT count(*) FROM subscriptions WHERE call_id = ?').pluck().get(shortCall)).toBe(0);
    } finally {
      db.close();
    }

    // Running out while up: the sweeper sends terminated;reason=timeout.
    const live = `${randomTag()}@udp`;
    const seen = udp.received.length;
    expect((await udp.request(subscribeText(udp, { user: '203', domain, callId: live, expires: 1, watcher: 'live' }))).status).toBe(200);
    const end = await udp.waitFor((m) => m.method === 'NOTIFY' && m.get('call-id') === live && /^terminated/.test(m.get('subscription-state') ?? ''), 5000, seen);
    expect(end.get('subscription-state')).toBe('terminated;reason=timeout');
    await second.kill('SIGTERM');
  }, 60_000);
});
