// A small, fast UDP SIP subscriber for the scale figures: it makes tens of thousands of real RFC 6665
// subscriptions (SUBSCRIBE → 2xx, initial NOTIFY → 200) with a bounded window of transactions in flight, and
// keeps answering NOTIFYs while it is open. sipp would need a clean rate to do the same; a window adapts to
// whatever the server sustains, so the figure is about the state held, not about the rate.
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';

const CRLF = '\r\n';

interface Parsed {
  isRequest: boolean;
  method?: string;
  status?: number;
  headers: Array<[string, string]>;   // lower-case full names, in order
}

const COMPACT: Record<string, string> = { i: 'call-id', v: 'via', f: 'from', t: 'to', m: 'contact', l: 'content-length', o: 'event' };

function parse(buf: Buffer): Parsed | undefined {
  const text = buf.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = end >= 0 ? text.slice(0, end) : text;
  const lines = head.split(CRLF);
  const first = lines[0] ?? '';
  const headers: Array<[string, string]> = [];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!;
    if ((l.startsWith(' ') || l.startsWith('\t')) && headers.length) { // folded line (RFC 3261 §7.3.1)
      headers[headers.length - 1]![1] += ' ' + l.trim();
      continue;
    }
    const c = l.indexOf(':');
    if (c <= 0) continue;
    let name = l.slice(0, c).trim().toLowerCase();
    name = COMPACT[name] ?? name;
    headers.push([name, l.slice(c + 1).trim()]);
  }
  if (first.startsWith('SIP/2.0 ')) return { isRequest: false, status: Number(first.slice(8, 11)), headers };
  const sp = first.indexOf(' ');
  if (sp <= 0) return undefined;
  return { isRequest: true, method: first.slice(0, sp), headers };
}

function header(p: Parsed, name: string): string | undefined {
  for (const [n, v] of p.headers) if (n === name) return v;
  return undefined;
}

export interface SubscribeManyOptions {
  host: string;
  port: number;
  domain: string;
  count: number;
  extension(i: number): string;
  watcher(i: number): string;
  window?: number;          // transactions in flight (default 400)
  expires?: number;         // default 3600
  retransmitMs?: number;    // Timer A-like retransmit interval (default 500)
  maxTries?: number;        // default 7
  deadlineMs?: number;      // give up after this (default 300 000)
  event?: string;           // default dialog
}

export interface SubscribeManyResult {
  ok: number;
  failed: number;
  statuses: Record<string, number>;
  ms: number;
  retransmissions: number;
}

interface Pending {
  i: number;
  callId: string;
  branch: string;
  raw: Buffer;
  tries: number;
  sentAt: number;
  got2xx: boolean;
  gotNotify: boolean;
  done: boolean;
}

export class UdpSipClient {
  private readonly sock: Socket;
  private readonly run = randomBytes(4).toString('hex');
  private readonly byCallId = new Map<string, Pending>();
  private localPort = 0;
  /** Call-ID, tag and branch come from this counter, never from the caller's index: two batches must not collide. */
  private seq = 0;
  notifiesAnswered = 0;

  private constructor() {
    this.sock = createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
  }

  static async open(): Promise<UdpSipClient> {
    const c = new UdpSipClient();
    await new Promise<void>((r) => c.sock.bind(0, '127.0.0.1', () => r()));
    c.localPort = c.sock.address().port;
    c.sock.on('message', (m, rinfo) => c.onMessage(m, rinfo.address, rinfo.port));
    c.sock.on('error', () => { /* ICMP noise on loopback is not a result */ });
    return c;
  }

  private onResult?: (p: Pending) => void;
  private onFinal?: (p: Pending, status: number) => void;
  private optionsWaiters = new Map<string, (status: number) => void>();

  private onMessage(buf: Buffer, addr: string, port: number): void {
    const p = parse(buf);
    if (!p) return;
    const callId = header(p, 'call-id') ?? '';
    if (p.isRequest) {
      if (p.method === 'NOTIFY') {
        // 200 to every NOTIFY: copy Via (all), From, To, Call-ID, CSeq (RFC 3261 §8.2.6.2)
        const lines = ['SIP/2.0 200 OK'];
        for (const [n, v] of p.headers) {
          if (n === 'via') lines.push(`Via: ${v}`);
        }
        lines.push(`From: ${header(p, 'from')}`, `To: ${header(p, 'to')}`, `Call-ID: ${callId}`, `CSeq: ${header(p, 'cseq')}`, 'Content-Length: 0', '', '');
        this.sock.send(lines.join(CRLF), port, addr);
        this.notifiesAnswered++;
        const pend = this.byCallId.get(callId);
        if (pend && !pend.gotNotify) {
          pend.gotNotify = true;
          this.check(pend);
        }
      }
      return;
    }
    const status = p.status ?? 0;
    const cseq = header(p, 'cseq') ?? '';
    if (cseq.endsWith('OPTIONS')) {
      this.optionsWaiters.get(callId)?.(status);
      return;
    }
    const pend = this.byCallId.get(callId);
    if (!pend || pend.done || status < 200) return;
    if (status < 300) {
      pend.got2xx = true;
      this.check(pend);
    } else {
      this.onFinal?.(pend, status);
    }
  }

  private check(p: Pending): void {
    if (!p.done && p.got2xx && p.gotNotify) this.onResult?.(p);
  }

  private subscribeBytes(o: SubscribeManyOptions, i: number, n: number, callId: string, branch: string): Buffer {
    const ext = o.extension(i);
    const w = o.watcher(i);
    const lp = this.localPort;
    return Buffer.from([
      `SUBSCRIBE sip:${ext}@${o.domain} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${lp};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:${w}@${o.domain}>;tag=f${this.run}${n}`,
      `To: <sip:${ext}@${o.domain}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 SUBSCRIBE',
      `Contact: <sip:${w}@127.0.0.1:${lp}>`,
      `Event: ${o.event ?? 'dialog'}`,
      'Accept: application/dialog-info+xml',
      `Expires: ${o.expires ?? 3600}`,
      'User-Agent: lamplighter-bench',
      'Content-Length: 0', '', '',
    ].join(CRLF), 'latin1');
  }

  /** Make `count` subscriptions; resolves when all are done or failed (or the deadline passes). */
  subscribeMany(o: SubscribeManyOptions): Promise<SubscribeManyResult> {
    const window = o.window ?? 400;
    const rto = o.retransmitMs ?? 500;
    const maxTries = o.maxTries ?? 7;
    const t0 = performance.now();
    const deadline = t0 + (o.deadlineMs ?? 300_000);
    const inflight = new Set<Pending>();
    const statuses: Record<string, number> = {};
    let next = 0, ok = 0, failed = 0, retransmissions = 0;
    return new Promise((resolve) => {
      const finish = (p: Pending, good: boolean, why: string) => {
        if (p.done) return;
        p.done = true;
        inflight.delete(p);
        this.byCallId.delete(p.callId);
        if (good) ok++; else { failed++; statuses[why] = (statuses[why] ?? 0) + 1; }
        pump();
      };
      this.onResult = (p) => finish(p, true, '');
      this.onFinal = (p, st) => finish(p, false, String(st));
      let finished = false;
      const pump = () => {
        while (inflight.size < window && next < o.count) {
          const i = next++;
          const n = this.seq++;
          const callId = `b${this.run}-${n}@bench`;
          const branch = `z9hG4bK${this.run}x${n}`;
          const p: Pending = { i, callId, branch, raw: this.subscribeBytes(o, i, n, callId, branch), tries: 1, sentAt: performance.now(), got2xx: false, gotNotify: false, done: false };
          inflight.add(p);
          this.byCallId.set(callId, p);
          this.sock.send(p.raw, o.port, o.host);
        }
        if (!finished && next >= o.count && inflight.size === 0) done();
      };
      const timer = setInterval(() => {
        const now = performance.now();
        if (now > deadline) {
          for (const p of [...inflight]) finish(p, false, 'deadline');
          return;
        }
        for (const p of inflight) {
          if (now - p.sentAt < rto * Math.min(8, 2 ** (p.tries - 1))) continue;
          if (p.got2xx) {
            // accepted but the initial NOTIFY is late: wait for it (the server retransmits it), up to maxTries windows
            if (++p.tries > maxTries) finish(p, false, 'no-notify');
            else p.sentAt = now;
            continue;
          }
          if (p.tries >= maxTries) { finish(p, false, 'timeout'); continue; }
          p.tries++;
          p.sentAt = now;
          retransmissions++;
          this.sock.send(p.raw, o.port, o.host);
        }
      }, 50);
      const done = () => {
        finished = true;
        clearInterval(timer);
        this.onResult = undefined;
        this.onFinal = undefined;
        resolve({ ok, failed, statuses, ms: performance.now() - t0, retransmissions });
      };
      pump();
    });
  }

  /** OPTIONS every 20 ms until a final response (the server is serving SIP) or the deadline. */
  async optionsPing(host: string, port: number, timeoutMs: number): Promise<number | undefined> {
    const t0 = performance.now();
    for (let n = 0; performance.now() - t0 < timeoutMs; n++) {
      const callId = `o${this.run}-${this.seq++}@bench`;
      const msg = [
        `OPTIONS sip:${host}:${port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${this.localPort};branch=z9hG4bKo${this.run}x${callId.slice(1, callId.indexOf('@'))};rport`,
        'Max-Forwards: 70', `From: <sip:bench@127.0.0.1>;tag=o${n}`, `To: <sip:${host}:${port}>`,
        `Call-ID: ${callId}`, '1 OPTIONS'.replace(/^/, 'CSeq: '), 'Content-Length: 0', '', '',
      ].join(CRLF);
      const st = await new Promise<number | undefined>((resolve) => {
        const t = setTimeout(() => { this.optionsWaiters.delete(callId); resolve(undefined); }, 20);
        this.optionsWaiters.set(callId, (s) => { if (s >= 200) { clearTimeout(t); this.optionsWaiters.delete(callId); resolve(s); } });
        this.sock.send(msg, port, host);
      });
      if (st !== undefined) return performance.now() - t0;
    }
    return undefined;
  }

  close(): Promise<void> {
    return new Promise((r) => this.sock.close(() => r()));
  }
}
