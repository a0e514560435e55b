// SIP.js 0.21 subscribers (UserAgent + Subscriber) against a real in-process server: over WebSocket (RFC 7118) and
// over UDP and TCP through a small custom transport (no port in Via/Contact, so the server must answer to the
// source and NOTIFY over the SUBSCRIBE's flow). They see the initial NOTIFY and those after PUBLISH changes; the
// final NOTIFY after unsubscribe is checked from the server side (SIP.js does not pass it to the delegate).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect as tcpConnect, type Socket as TcpSocket } from 'node:net';
import { WebSocket } from 'ws';
import { UserAgent, Subscriber, TransportState, type Transport } from 'sip.js';
import { EmitterImpl } from 'sip.js/lib/api/emitter.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawPeer, publishText } from '../helpers/raw-sip.js';
import type { DialogRequestSpec, RequestOutcome } from '../../src/sip/port.js';

(globalThis as any).WebSocket ??= WebSocket;

/** A SIP.js transport over a connected UDP socket or a TCP connection with Content-Length framing. */
class SocketTransport implements Transport {
  readonly protocol: string;
  state: TransportState = TransportState.Disconnected;
  readonly stateChange = new EmitterImpl<TransportState>();
  onConnect: (() => void) | undefined;
  onDisconnect: ((error?: Error) => void) | undefined;
  onMessage: ((message: string) => void) | undefined;
  private udp?: UdpSocket;
  private tcp?: TcpSocket;
  private buf = Buffer.alloc(0);

  constructor(_logger: unknown, private readonly options: { kind: 'udp' | 'tcp'; port: number }) {
    this.protocol = options.kind.toUpperCase();
  }

  private transition(s: TransportState): void {
    this.state = s;
    this.stateChange.emit(s);
  }

  async connect(): Promise<void> {
    this.transition(TransportState.Connecting);
    if (this.options.kind === 'udp') {
      const s = createSocket('udp4');
      this.udp = s;
      s.on('message', (b) => this.onMessage?.(b.toString('utf8')));
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      await new Promise<void>((r) => s.connect(this.options.port, '127.0.0.1', () => r()));
    } else {
      const s = tcpConnect(this.options.port, '127.0.0.1');
      this.tcp = s;
      await new Promise<void>((r, j) => { s.once('connect', () => r()); s.once('error', j); });
      s.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.drain(); });
      s.on('error', () => undefined);
    }
    this.transition(TransportState.Connected);
    this.onConnect?.();
  }

  private drain(): void {
    for (;;) {
      while (this.buf.length >= 2 && this.buf[0] === 0x0d && this.buf[1] === 0x0a) this.buf = this.buf.subarray(2);
      const sep = this.buf.indexOf('\r\n\r\n');
      if (sep < 0) return;
      const head = this.buf.subarray(0, sep).toString('utf8');
      const m = /\r\n(?:content-length|l)\s*:\s*(\d+)/i.exec('\r\n' + head);
      const len = m ? Number(m[1]) : 0;
      if (this.buf.length < sep + 4 + len) return;
      const msg = this.buf.subarray(0, sep + 4 + len).toString('utf8');
      this.buf = this.buf.subarray(sep + 4 + len);
      this.onMessage?.(msg);
    }
  }

  async send(message: string): Promise<void> {
    if (this.udp) this.udp.send(Buffer.from(message, 'utf8'));
    else this.tcp?.write(message);
  }

  async disconnect(): Promise<void> {
    this.transition(TransportState.Disconnecting);
    this.udp?.close();
    this.tcp?.destroy();
    this.udp = undefined;
    this.tcp = undefined;
    this.transition(TransportState.Disconnected);
    this.onDisconnect?.();
  }

  async dispose(): Promise<void> {
    if (this.state === TransportState.Connected) await this.disconnect();
  }

  isConnected(): boolean {
    return this.state === TransportState.Connected;
  }
}

let ts: TestServer;
const sent: Array<{ spec: DialogRequestSpec; outcome?: RequestOutcome }> = [];

beforeAll(async () => {
  ts = await startTestServer();
  // Watch the server hand NOTIFYs to its engine, with their outcomes (the final NOTIFY is only visible here).
  const engine = ts.server.engine;
  const original = engine.sendRequest.bind(engine);
  engine.sendRequest = async (spec) => {
    const rec: { spec: DialogRequestSpec; outcome?: RequestOutcome } = { spec };
    sent.push(rec);
    rec.outcome = await original(spec);
    return rec.outcome;
  };
});
afterAll(async () => { await ts?.stop(); });

async function until<T>(fn: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const hdr = (spec: DialogRequestSpec, name: string) => spec.headers.find(([k]) => k.toLowerCase() === name)?.[1];

for (const kind of ['ws', 'udp', 'tcp'] as const) {
  describe(`SIP.js subscriber over ${kind}`, () => {
    it('sees the initial NOTIFY, the NOTIFYs after PUBLISH changes, and gets a final NOTIFY on unsubscribe', async () => {
      const user = `${kind}-${Math.floor(Math.random() * 1e6)}`;
      const domain = 'example.test';
      const port = ts.sip(kind === 'ws' ? 'ws' : kind).port;
      const ua = new UserAgent({
        uri: UserAgent.makeURI(`sip:watcher-${kind}@${domain}`),
        logBuiltinEnabled: false,
        // SIP.js waits for Timer N (32 s) on stop when a subscription is still active; never let a failure hang here.
        gracefulShutdown: false,
        logLevel: 'error',
        ...(kind === 'ws'
          ? { transportOptions: { server: `ws://127.0.0.1:${port}` } }
          : { transportConstructor: SocketTransport as any, transportOptions: { kind, port }, contactParams: { transport: kind } }),
      });
      await ua.start();
      const notes: Array<{ cseq: number; state: string; version: number; body: string }> = [];
      const subscriber = new Subscriber(ua, UserAgent.makeURI(`sip:${user}@${domain}`)!, 'dialog', {
        expires: 120, extraHeaders: ['Accept: application/dialog-info+xml'],
      });
      subscriber.delegate = {
        onNotify: (n) => {
          const body = n.request.body;
          notes.push({
            cseq: n.request.cseq, state: n.request.getHeader('Subscription-State') ?? '', body,
            version: Number(/version="(\d+)"/.exec(body)?.[1] ?? NaN),
          });
          void n.accept();
        },
      };
      try {
        await subscriber.subscribe();
        await until(() => notes.length >= 1);
        const left = Number(/^active;expires=(\d+)$/.exec(notes[0]!.state)?.[1]);
        expect(left).toBeLessThanOrEqual(120);
        expect(left).toBeGreaterThan(110);
        expect(notes[0]!.version).toBe(0);
        expect(notes[0]!.body).toContain(`entity="sip:${user}@${domain}"`);

        const pbx = await RawPeer.open({ port: ts.sip('udp').port });
        try {
          expect((await pbx.request(publishText(pbx, { user, domain, state: 'early' }))).status).toBe(200);
          await until(() => notes.length >= 2);
          expect((await pbx.request(publishText(pbx, { user, domain, state: 'confirmed' }))).status).toBe(200);
          await until(() => notes.find((n) => n.body.includes('<state>confirmed</state>')));
        } finally {
          pbx.close();
        }
        expect(notes.some((n) => n.body.includes('<state>early</state>'))).toBe(true);
        expect(notes.length).toBeGreaterThanOrEqual(3);
        // CSeq and version go up by exactly one per NOTIFY of this subscription.
        for (let i = 1; i < notes.length; i++) {
          expect(notes[i]!.cseq).toBe(notes[i - 1]!.cseq + 1);
          expect(notes[i]!.version).toBe(notes[i - 1]!.version + 1);
        }
        const callId = sent.find((s) => s.spec.to.includes(`watcher-${kind}@`) && s.spec.from.includes(`${user}@`))?.spec.callId;
        expect(callId).toBeTruthy();

        await subscriber.unsubscribe();
        const final = await until(() => sent.find((s) => s.spec.callId === callId && hdr(s.spec, 'subscription-state')?.startsWith('terminated') && s.outcome));
        expect(hdr(final.spec, 'subscription-state')).toBe('terminated;reason=timeout');
        expect(final.outcome!.status).toBe(200);
        expect(final.spec.cseq).toBe(notes[notes.length - 1]!.cseq + 1);
        expect(ts.server.presence.listSubscriptions(domain, { user })).toHaveLength(0);
      } finally {
        await ua.stop();
      }
    });
  });
}
