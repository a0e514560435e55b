// Test harness for the embedded engine alone: a config on 127.0.0.1 with port 0, a fake scheduler that tests
// drive by hand, and raw UDP/TCP/WS peers that see exactly the bytes the engine writes.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket as TcpSocket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { WebSocket } from 'ws';
import { loadConfig, type Config } from '../../src/config.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { createEmbeddedEngine } from '../../src/sip/stack/engine.js';
import type { Scheduler, SipTimers, TimerHandle } from '../../src/sip/stack/timers.js';
import type { ListeningAddress, ServerTransaction, SipEngine, Transport } from '../../src/sip/port.js';
import { parseRaw, type RawMessage } from '../helpers/raw-sip.js';

export { parseRaw, type RawMessage };

export function engineConfig(overrides: Record<string, unknown> = {}): Config {
  const sip = (overrides.sip ?? {}) as Record<string, unknown>;
  return loadConfig({
    env: {},
    overrides: {
      ...overrides,
      log: { level: 'silent', traceSip: [], ...(overrides.log as object ?? {}) },
      sip: {
        listen: [
          { transport: 'udp', address: '127.0.0.1', port: 0 },
          { transport: 'tcp', address: '127.0.0.1', port: 0 },
          { transport: 'ws', address: '127.0.0.1', port: 0 },
        ],
        ...sip,
      },
    },
  });
}

/** A timer queue on a virtual clock; `advance` runs what falls due, in order. */
export class FakeScheduler implements Scheduler {
  private t = 0;
  private seq = 0;
  private queue: Array<{ id: number; at: number; fn: () => void }> = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.queue.push({ id, at: this.t + Math.max(0, ms), fn });
    return { id } as TimerHandle;
  }

  clearTimeout(h: TimerHandle): void {
    const id = (h as { id: number }).id;
    this.queue = this.queue.filter((e) => e.id !== id);
  }

  get pending(): number {
    return this.queue.length;
  }

  /** When the next timer is due, or undefined. */
  nextAt(): number | undefined {
    let min: number | undefined;
    for (const e of this.queue) if (min === undefined || e.at < min) min = e.at;
    return min;
  }

  /** Run every timer due up to now + ms (timers scheduled meanwhile included), then set the clock there. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = this.queue.filter((e) => e.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!next) break;
      this.queue.splice(this.queue.indexOf(next), 1);
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
}

/** Real time, unaffected by the engine's fake scheduler. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function until(pred: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export interface LogLine { level: number; msg: string; [k: string]: unknown }

/** A pino logger that keeps its lines, for the tests that read logs. */
export function memoryLogger(level = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  return { logger: pino({ level }, dest), lines };
}

export interface EngineUnderTest {
  engine: SipEngine;
  metrics: Metrics;
  config: Config;
  addr(t: Transport): ListeningAddress;
  /** Requests the handler saw, in order. */
  seen: ServerTransaction[];
  stop(): Promise<void>;
}

export type Handler = (tx: ServerTransaction) => void;

export const answer200: Handler = (tx) => tx.respond({ status: 200, toTag: 'srv1', headers: [['Expires', '600']] });

export async function startEngine(opts: {
  overrides?: Record<string, unknown>; timers?: Partial<SipTimers>; handler?: Handler; logger?: Logger;
} = {}): Promise<EngineUnderTest> {
  const config = engineConfig(opts.overrides);
  const metrics = createMetrics();
  const engine = createEmbeddedEngine({ config, logger: opts.logger ?? silentLogger, metrics, timers: opts.timers });
  const seen: ServerTransaction[] = [];
  const handler = opts.handler ?? answer200;
  engine.onRequest((tx) => { seen.push(tx); handler(tx); });
  const addrs = await engine.start();
  return {
    engine, metrics, config, seen,
    addr(t) {
      const a = addrs.find((x) => x.transport === t);
      if (!a) throw new Error(`no ${t} listener`);
      return a;
    },
    async stop() {
      await engine.stop();
      metrics.stop();
    },
  };
}

export async function counter(metrics: Metrics, name: keyof Metrics, labels: Record<string, string> = {}): Promise<number> {
  const m = metrics[name] as unknown as { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number> }> }> };
  const v = await m.get();
  return v.values.filter((x) => Object.entries(labels).every(([k, want]) => String(x.labels[k]) === want)).reduce((a, x) => a + x.value, 0);
}

export const tag = () => randomBytes(4).toString('hex');

export interface RequestOpts {
  method?: string;
  uri?: string;
  via?: string;
  branch?: string;
  callId?: string;
  cseq?: number;
  fromTag?: string;
  toTag?: string;
  extra?: string[];
  body?: string;
  user?: string;
}

/** A SUBSCRIBE (or other request) with every mandatory header; the Via is the peer's own unless given. */
export function requestText(viaDefault: string, o: RequestOpts = {}): string {
  const method = o.method ?? 'SUBSCRIBE';
  const body = o.body ?? '';
  const user = o.user ?? '201';
  return [
    `${method} ${o.uri ?? `sip:${user}@example.test`} SIP/2.0`,
    `Via: ${o.via ?? viaDefault}`,
    'Max-Forwards: 70',
    `From: <sip:watcher@example.test>;tag=${o.fromTag ?? 'ft1'}`,
    `To: <sip:${user}@example.test>${o.toTag ? `;tag=${o.toTag}` : ''}`,
    `Call-ID: ${o.callId ?? `${tag()}@test`}`,
    `CSeq: ${o.cseq ?? 1} ${method}`,
    'Event: dialog',
    'Contact: <sip:watcher@127.0.0.1>',
    ...(o.extra ?? []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

/** A raw UDP peer bound on 127.0.0.1:0 that records every datagram with the engine scheduler's clock. */
export class UdpPeer {
  readonly received: Array<{ msg: RawMessage; at: number; from: number }> = [];
  port = 0;
  private constructor(private readonly socket: UdpSocket, private readonly clock?: () => number) {}

  static async open(clock?: () => number): Promise<UdpPeer> {
    const s = createSocket('udp4');
    const p = new UdpPeer(s, clock);
    s.on('message', (b, r) => p.received.push({ msg: parseRaw(b.toString('utf8')), at: clock ? clock() : Date.now(), from: r.port }));
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    p.port = s.address().port;
    return p;
  }

  via(branch = `z9hG4bK${tag()}${tag()}`, sentBy = `127.0.0.1:${this.port}`, rport = true): string {
    return `SIP/2.0/UDP ${sentBy}${rport ? ';rport' : ''};branch=${branch}`;
  }

  send(text: string | Buffer, port: number): void {
    this.socket.send(typeof text === 'string' ? Buffer.from(text, 'utf8') : text, port, '127.0.0.1');
  }

  async next(pred: (m: RawMessage) => boolean = () => true, timeoutMs = 3000, from = 0): Promise<RawMessage> {
    let found: RawMessage | undefined;
    await until(() => (found = this.received.slice(from).find((r) => pred(r.msg))?.msg) !== undefined, timeoutMs, 'UDP message');
    return found!;
  }

  close(): void {
    this.socket.close();
  }
}

/** A raw TCP peer with a naive framer of its own (split on CRLFCRLF + Content-Length), also counting CRLF pongs. */
export class TcpPeer {
  readonly received: RawMessage[] = [];
  /** Every byte received, as text (for the keep-alive pong test). */
  raw = '';
  closed = false;
  private buf = '';
  private constructor(readonly socket: TcpSocket) {}

  static async open(port: number): Promise<TcpPeer> {
    const s = connect(port, '127.0.0.1');
    const p = new TcpPeer(s);
    s.on('data', (d) => { p.raw += d.toString('utf8'); p.buf += d.toString('utf8'); p.drain(); });
    s.on('close', () => { p.closed = true; });
    s.on('error', () => {});
    await new Promise<void>((r, j) => { s.once('connect', () => r()); s.once('error', j); });
    return p;
  }

  get port(): number {
    return this.socket.localPort ?? 0;
  }

  private drain(): void {
    for (;;) {
      while (this.buf.startsWith('\r\n')) this.buf = this.buf.slice(2);
      const sep = this.buf.indexOf('\r\n\r\n');
      if (sep < 0) return;
      const head = this.buf.slice(0, sep);
      const cl = /\r\n(?:content-length|l)\s*:\s*(\d+)/i.exec('\r\n' + head);
      const len = cl ? Number(cl[1]) : 0;
      const bodyBytes = Buffer.from(this.buf.slice(sep + 4), 'utf8');
      if (bodyBytes.length < len) return;
      this.buf = bodyBytes.subarray(len).toString('utf8');
      this.received.push(parseRaw(`${head}\r\n\r\n${bodyBytes.subarray(0, len).toString('utf8')}`));
    }
  }

  via(branch = `z9hG4bK${tag()}${tag()}`): string {
    return `SIP/2.0/TCP 127.0.0.1:${this.port};rport;branch=${branch}`;
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((r) => this.socket.write(data, () => r()));
  }

  async next(pred: (m: RawMessage) => boolean = () => true, timeoutMs = 3000, from = 0): Promise<RawMessage> {
    let found: RawMessage | undefined;
    await until(() => (found = this.received.slice(from).find(pred)) !== undefined, timeoutMs, 'TCP message');
    return found!;
  }

  close(): void {
    this.socket.destroy();
  }
}

export class WsPeer {
  readonly received: RawMessage[] = [];
  private constructor(readonly ws: WebSocket) {}

  static async open(port: number, protocols: string[] = ['sip']): Promise<WsPeer> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, protocols);
    const p = new WsPeer(ws);
    ws.on('message', (d) => p.received.push(parseRaw(d.toString())));
    await new Promise<void>((r, j) => { ws.once('open', () => r()); ws.once('error', j); ws.once('unexpected-response', (_req, res) => j(new Error(`HTTP ${res.statusCode}`))); });
    return p;
  }

  via(branch = `z9hG4bK${tag()}${tag()}`): string {
    return `SIP/2.0/WS ${tag()}.invalid;branch=${branch}`;
  }

  send(text: string): void {
    this.ws.send(text);
  }

  async next(pred: (m: RawMessage) => boolean = () => true, timeoutMs = 3000, from = 0): Promise<RawMessage> {
    let found: RawMessage | undefined;
    await until(() => (found = this.received.slice(from).find(pred)) !== undefined, timeoutMs, 'WS message');
    return found!;
  }

  close(): Promise<void> {
    return new Promise((r) => {
      if (this.ws.readyState === WebSocket.CLOSED) return r();
      this.ws.once('close', () => r());
      this.ws.close();
    });
  }
}

/** A 200 for a request the engine sent, built by the test (independent of the engine's serializer). */
export function okFor(req: RawMessage, status = 200, reason = 'OK'): string {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const v of req.all('via')) lines.push(`Via: ${v}`);
  lines.push(`From: ${req.get('from')}`, `To: ${req.get('to')}`, `Call-ID: ${req.get('call-id')}`, `CSeq: ${req.get('cseq')}`, 'Content-Length: 0', '', '');
  return lines.join('\r\n');
}

export function notifySpec(over: Partial<import('../../src/sip/port.js').DialogRequestSpec> = {}): import('../../src/sip/port.js').DialogRequestSpec {
  return {
    method: 'NOTIFY',
    requestUri: 'sip:watcher@127.0.0.1:5999',
    callId: `${tag()}@test`,
    from: '<sip:201@example.test>;tag=srv1',
    to: '<sip:watcher@example.test>;tag=ft1',
    cseq: 7,
    routeSet: [],
    transport: 'udp',
    headers: [['Event', 'dialog'], ['Subscription-State', 'active;expires=600'], ['Content-Type', 'application/dialog-info+xml']],
    body: '<dialog-info/>',
    ...over,
  };
}
