// A raw SIP peer over UDP or TCP for tests: sends hand-written requests, collects everything it receives, and
// answers NOTIFYs 200 (or whatever the test says). Its parsing is deliberately naive and independent of the
// server's parser, so a server-side parser bug cannot hide behind a matching client-side one. It can bind to any
// loopback source address (127.0.0.2, ...), so the security tests' "attacker" and "watcher" are different
// sources to the server (test/security/helpers.ts exports it as LoopPeer).
import { createSocket, type Socket } from 'node:dgram';
import { connect, createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket as TcpSocket } from 'node:net';
import { randomBytes } from 'node:crypto';

export interface RawMessage {
  text: string;
  startLine: string;
  status?: number;
  method?: string;
  headers: Array<[string, string]>;
  body: string;
  get(name: string): string | undefined;
  all(name: string): string[];
}

const COMPACT: Record<string, string> = { v: 'via', f: 'from', t: 'to', i: 'call-id', m: 'contact', l: 'content-length', c: 'content-type', o: 'event', u: 'allow-events', k: 'supported', s: 'subject', e: 'content-encoding' };

export function parseRaw(text: string): RawMessage {
  const sep = text.indexOf('\r\n\r\n');
  const head = sep >= 0 ? text.slice(0, sep) : text;
  const body = sep >= 0 ? text.slice(sep + 4) : '';
  const lines = head.split('\r\n');
  const startLine = lines[0]!;
  const headers: Array<[string, string]> = [];
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i < 0) continue;
    let n = l.slice(0, i).trim().toLowerCase();
    n = COMPACT[n] ?? n;
    headers.push([n, l.slice(i + 1).trim()]);
  }
  const m = /^SIP\/2\.0 (\d{3})/.exec(startLine);
  return {
    text, startLine, headers, body,
    status: m ? Number(m[1]) : undefined,
    method: m ? undefined : startLine.split(' ')[0],
    get(name) { return headers.find(([k]) => k === name.toLowerCase())?.[1]; },
    all(name) { return headers.filter(([k]) => k === name.toLowerCase()).map(([, v]) => v); },
  };
}

export function randomTag(): string {
  return randomBytes(6).toString('hex');
}

export interface RawPeerOptions {
  transport?: 'udp' | 'tcp';
  /** How to answer an incoming request; default 200 for NOTIFY. Return null to stay silent. */
  answer?: (req: RawMessage) => number | null;
  /** UDP receive buffer to ask for (a burst's answers overflow the default ~200 KiB). */
  recvBufferBytes?: number;
  /** Source address to bind (default 127.0.0.1); the server is always reached on its own address. */
  localAddress?: string;
}

/**
 * RFC 3261 §18.3: a stream carries messages framed by Content-Length (in bytes), with CRLF keep-alives between.
 * `buf` is the stream so far as latin1 (one character per byte); returns the complete messages (as UTF-8 text)
 * and what is left for the next read.
 */
export function takeSipMessages(buf: string): { messages: string[]; rest: string } {
  const messages: string[] = [];
  for (;;) {
    while (buf.startsWith('\r\n')) buf = buf.slice(2);
    const sep = buf.indexOf('\r\n\r\n');
    if (sep < 0) break;
    const cl = /\r\n(?:content-length|l)\s*:\s*(\d+)/i.exec('\r\n' + buf.slice(0, sep));
    const end = sep + 4 + (cl ? Number(cl[1]) : 0);
    if (buf.length < end) break;
    messages.push(Buffer.from(buf.slice(0, end), 'latin1').toString('utf8'));
    buf = buf.slice(end);
  }
  return { messages, rest: buf };
}

/** A TCP listener standing for a phone's Contact (where a server must open a new connection): it answers every
 * request 200 and keeps what it received. */
export class ContactListener {
  readonly received: RawMessage[] = [];
  private readonly sockets: TcpSocket[] = [];
  private constructor(private readonly server: TcpServer, readonly port: number) {}

  static async open(): Promise<ContactListener> {
    let l: ContactListener | undefined;
    const server = createTcpServer((sock) => l?.onConnection(sock));
    const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
    l = new ContactListener(server, port);
    return l;
  }

  private onConnection(sock: TcpSocket): void {
    this.sockets.push(sock);
    let buf = '';
    sock.on('error', () => undefined);
    sock.on('data', (d) => {
      const r = takeSipMessages(buf + d.toString('latin1'));
      buf = r.rest;
      for (const text of r.messages) {
        const m = parseRaw(text);
        this.received.push(m);
        if (m.method && m.method !== 'ACK') sock.write(responseTo(m, 200));
      }
    });
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

export class RawPeer {
  readonly received: RawMessage[] = [];
  private waiters: Array<{ pred: (m: RawMessage) => boolean; resolve: (m: RawMessage) => void }> = [];
  private udp?: Socket;
  private tcp?: TcpSocket;
  /** TCP bytes not yet framed (latin1, see takeSipMessages). */
  private tcpBuf = '';
  localPort = 0;
  readonly transport: 'udp' | 'tcp';
  readonly localAddress: string;
  /** How to answer an incoming request (NOTIFY); null stays silent. A test may change it at any time. */
  answer: (req: RawMessage) => number | null;

  private constructor(readonly server: { host: string; port: number }, private readonly opts: RawPeerOptions) {
    this.transport = opts.transport ?? 'udp';
    this.localAddress = opts.localAddress ?? '127.0.0.1';
    this.answer = opts.answer ?? (() => 200);
  }

  /** `server` is the server's address, or only its port on 127.0.0.1. */
  static async open(server: { host?: string; port: number } | number, opts: RawPeerOptions = {}): Promise<RawPeer> {
    const to = typeof server === 'number' ? { port: server } : server;
    const p = new RawPeer({ host: to.host ?? '127.0.0.1', port: to.port }, opts);
    await p.init();
    return p;
  }

  get serverPort(): number {
    return this.server.port;
  }

  private async init(): Promise<void> {
    if (this.transport === 'udp') {
      const s = createSocket('udp4');
      this.udp = s;
      s.on('message', (b) => this.onText(b.toString('utf8')));
      await new Promise<void>((r) => s.bind(0, this.localAddress, () => r()));
      if (this.opts.recvBufferBytes) s.setRecvBufferSize(this.opts.recvBufferBytes);
      this.localPort = s.address().port;
    } else {
      const s = connect({ port: this.server.port, host: this.server.host, localAddress: this.localAddress });
      this.tcp = s;
      await new Promise<void>((r, j) => { s.once('connect', () => r()); s.once('error', j); });
      this.localPort = s.localPort!;
      s.on('data', (d) => { this.tcpBuf += d.toString('latin1'); this.drainTcp(); });
      s.on('error', () => {});
    }
  }

  private drainTcp(): void {
    const r = takeSipMessages(this.tcpBuf);
    this.tcpBuf = r.rest;
    for (const m of r.messages) this.onText(m);
  }

  private onText(text: string): void {
    const m = parseRaw(text);
    this.received.push(m);
    if (m.method && m.method !== 'ACK') {
      const code = this.answer(m);
      if (code !== null) this.sendRaw(responseTo(m, code));
    }
    for (const w of [...this.waiters]) {
      if (w.pred(m)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  }

  sendRaw(text: string | Buffer): void {
    const b = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
    if (this.udp) this.udp.send(b, this.server.port, this.server.host);
    else this.tcp!.write(b);
  }

  /** The same as sendRaw. */
  send(text: string | Buffer): void {
    this.sendRaw(text);
  }

  /** Wait for a message matching pred (also one already received and not yet consumed when `fromIndex` given). */
  waitFor(pred: (m: RawMessage) => boolean, timeoutMs = 5000, fromIndex?: number): Promise<RawMessage> {
    if (fromIndex !== undefined) {
      const found = this.received.slice(fromIndex).find(pred);
      if (found) return Promise.resolve(found);
    }
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (m: RawMessage) => { clearTimeout(t); resolve(m); } };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timeout waiting for message; received:\n${this.received.map((r) => r.startLine).join('\n')}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Send a request and wait for its final response (matched by Call-ID and CSeq). */
  async request(text: string, timeoutMs = 5000): Promise<RawMessage> {
    const req = parseRaw(text);
    const callId = req.get('call-id');
    const cseq = req.get('cseq');
    const p = this.waitFor((m) => m.status !== undefined && m.status >= 200 && m.get('call-id') === callId && m.get('cseq') === cseq, timeoutMs);
    this.sendRaw(text);
    return p;
  }

  via(branch = `z9hG4bK${randomBytes(8).toString('hex')}`): string {
    return `SIP/2.0/${this.transport.toUpperCase()} ${this.localAddress}:${this.localPort};rport;branch=${branch}`;
  }

  contact(user = 'watcher'): string {
    return `<sip:${user}@${this.localAddress}:${this.localPort}${this.transport === 'tcp' ? ';transport=tcp' : ''}>`;
  }

  close(): void {
    this.udp?.close();
    this.tcp?.destroy();
  }
}

export function responseTo(req: RawMessage, status: number, reason = status === 200 ? 'OK' : 'Error'): string {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const v of req.all('via')) lines.push(`Via: ${v}`);
  lines.push(`From: ${req.get('from')}`);
  const to = req.get('to') ?? '';
  lines.push(`To: ${/;tag=/.test(to) ? to : `${to};tag=${randomTag()}`}`);
  lines.push(`Call-ID: ${req.get('call-id')}`, `CSeq: ${req.get('cseq')}`, 'Content-Length: 0', '', '');
  return lines.join('\r\n');
}

export interface SubscribeOpts {
  user: string;
  domain?: string;
  event?: string;
  expires?: number;
  callId?: string;
  fromTag?: string;
  cseq?: number;
  toTag?: string;
  requestUri?: string;
  extra?: string[];
  watcher?: string;
}

/** A SUBSCRIBE as a phone would send it. */
export function subscribeText(peer: RawPeer, o: SubscribeOpts): string {
  const domain = o.domain ?? 'example.test';
  const watcher = o.watcher ?? 'watcher';
  const lines = [
    `SUBSCRIBE ${o.requestUri ?? `sip:${o.user}@${domain}`} SIP/2.0`,
    `Via: ${peer.via()}`,
    'Max-Forwards: 70',
    `From: <sip:${watcher}@${domain}>;tag=${o.fromTag ?? randomTag()}`,
    `To: <sip:${o.user}@${domain}>${o.toTag ? `;tag=${o.toTag}` : ''}`,
    `Call-ID: ${o.callId ?? `${randomTag()}@127.0.0.1`}`,
    `CSeq: ${o.cseq ?? 1} SUBSCRIBE`,
    `Contact: ${peer.contact(watcher)}`,
    `Event: ${o.event ?? 'dialog'}`,
    ...(o.event === undefined || o.event === 'dialog' ? ['Accept: application/dialog-info+xml'] : []),
    ...(o.expires !== undefined ? [`Expires: ${o.expires}`] : []),
    ...(o.extra ?? []),
    'Content-Length: 0',
    '', '',
  ];
  return lines.join('\r\n');
}

export function dialogInfoBody(entity: string, state: 'early' | 'confirmed' | 'terminated', callId = 'call-1@pbx'): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\r\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="${entity}">`
    + `<dialog id="${callId}" call-id="${callId}" local-tag="lt1" remote-tag="rt1" direction="recipient"><state>${state}</state></dialog></dialog-info>`;
}

/** A PUBLISH of dialog-info as a PBX would send it. */
export function publishText(peer: RawPeer, o: { user: string; domain?: string; state?: 'early' | 'confirmed' | 'terminated'; expires?: number; ifMatch?: string; body?: string | null; contentType?: string; event?: string }): string {
  const domain = o.domain ?? 'example.test';
  const body = o.body === null ? '' : (o.body ?? dialogInfoBody(`sip:${o.user}@${domain}`, o.state ?? 'confirmed'));
  const lines = [
    `PUBLISH sip:${o.user}@${domain} SIP/2.0`,
    `Via: ${peer.via()}`,
    'Max-Forwards: 70',
    `From: <sip:pbx@${domain}>;tag=${randomTag()}`,
    `To: <sip:${o.user}@${domain}>`,
    `Call-ID: ${randomTag()}@pbx`,
    'CSeq: 1 PUBLISH',
    `Event: ${o.event ?? 'dialog'}`,
    `Expires: ${o.expires ?? 600}`,
    ...(o.ifMatch ? [`SIP-If-Match: ${o.ifMatch}`] : []),
    ...(body ? [`Content-Type: ${o.contentType ?? 'application/dialog-info+xml'}`] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ];
  return lines.join('\r\n');
}
