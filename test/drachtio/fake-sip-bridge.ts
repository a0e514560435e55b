// A SIP side for the fake drachtio-server: a UDP socket on 127.0.0.1 that hands requests from test phones to the
// app (`sip|network|...`), and puts the app's responses and requests on the wire, filling in what drachtio-server
// fills in (Via, Max-Forwards; in a dialog also From, To, Call-ID, CSeq from the leg made by the SUBSCRIBE 2xx;
// the leg's CSeq starts at the SUBSCRIBE's, as drachtio's setupLegForIncomingRequest seeds it). It is a
// simulation for running the shared conformance suite through the drachtio adapter, not a SIP stack: no
// retransmissions, no TCP, no DNS.
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { FakeDrachtioServer } from './fake-server.js';

interface Leg { local: string; remote: string; callId: string; cseq: number; target: { address: string; port: number } }

const get = (sip: string, name: string) => new RegExp(`^${name}:[ \\t]*([^\\r\\n]*)$`, 'im').exec(sip)?.[1]?.trim();
const tag = (v: string | undefined) => /;\s*tag=([^;\s]+)\s*$/i.exec((v ?? '').replace(/<[^>]*>/, ''))?.[1];

function hostPort(uri: string): { address: string; port: number } | undefined {
  const m = /^(?:<)?sips?:(?:[^@]*@)?(\[[^\]]+\]|[^:;>]+)(?::(\d+))?/i.exec(uri.trim());
  return m ? { address: m[1]!, port: m[2] ? Number(m[2]) : 5060 } : undefined;
}

/** Insert headers after the start line and drop the ones the app may not set. */
function rewrite(sip: string, drop: string[], add: string[]): string {
  const end = sip.indexOf('\r\n\r\n');
  const head = sip.slice(0, end);
  const body = sip.slice(end + 4);
  const [start, ...lines] = head.split('\r\n');
  const kept = lines.filter((l) => !drop.includes(l.slice(0, l.indexOf(':')).trim().toLowerCase()));
  const len = Buffer.byteLength(body, 'utf8');
  return [start, ...add, ...kept.filter((l) => !/^content-length:/i.test(l)), `Content-Length: ${len}`].join('\r\n') + '\r\n\r\n' + body;
}

export class FakeSipBridge {
  readonly udp: Socket = createSocket('udp4');
  port = 0;
  private readonly sources = new Map<string, { address: string; port: number; vias: string[] }>();
  private readonly legs = new Map<string, Leg>();
  private readonly outgoing = new Map<string, { appTxn: string; dialogId: string }>();

  constructor(readonly drachtio: FakeDrachtioServer) {
    drachtio.onAppResponse = (sip, txnId) => this.sendResponse(sip, txnId);
    drachtio.onAppRequest = (sip, appTxn, dialogId, proxy) => this.sendRequest(sip, appTxn, dialogId, proxy);
    this.udp.on('message', (b, rinfo) => this.onDatagram(b.toString('utf8'), { address: rinfo.address, port: rinfo.port }));
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.udp.bind(0, '127.0.0.1', () => r()));
    this.port = this.udp.address().port;
    this.drachtio.hostports = `udp/127.0.0.1:${this.port}`;
    return this.port;
  }

  close(): void {
    this.udp.close();
  }

  private onDatagram(text: string, from: { address: string; port: number }): void {
    if (text.startsWith('SIP/2.0')) {
      const branch = /branch=([^;,\s]+)/.exec(get(text, 'via') ?? '')?.[1] ?? '';
      const o = this.outgoing.get(branch);
      if (!o) return;
      if (Number(text.split(' ')[1]) >= 200) this.outgoing.delete(branch);
      this.drachtio.deliverResponse(text, o.appTxn, o.dialogId, from);
      return;
    }
    const callId = get(text, 'call-id') ?? '';
    const fromTag = tag(get(text, 'from'));
    const dialogId = `${callId};from-tag=${fromTag}`;
    const inDialog = tag(get(text, 'to')) !== undefined && this.drachtio.dialogs.has(dialogId);
    const txnId = this.drachtio.deliver(text, { address: from.address, port: from.port, dialogId: inDialog ? dialogId : '' });
    const vias = text.split('\r\n\r\n')[0]!.split('\r\n').filter((l) => /^(via|v)\s*:/i.test(l)).map((l) => `Via: ${l.slice(l.indexOf(':') + 1).trim()}`);
    this.sources.set(txnId, { ...from, vias });
    if (/^SUBSCRIBE /.test(text) && !inDialog) {
      const target = hostPort(get(text, 'contact') ?? '') ?? from;
      this.legs.set(dialogId, { local: get(text, 'to') ?? '', remote: get(text, 'from') ?? '', callId, cseq: Number(/^(\d+)/.exec(get(text, 'cseq') ?? '0')?.[1]), target });
    }
  }

  private sendResponse(sip: string, txnId: string): string {
    const to = this.sources.get(txnId);
    if (!to) return sip;
    const status = Number(sip.split(' ')[1]);
    if (status >= 200) this.sources.delete(txnId);
    const callId = get(sip, 'call-id') ?? '';
    const leg = this.legs.get(`${callId};from-tag=${tag(get(sip, 'from'))}`);
    if (leg && status >= 200 && status < 300 && /SUBSCRIBE/i.test(get(sip, 'cseq') ?? '')) leg.local = get(sip, 'to') ?? leg.local;
    // drachtio-srf's Response carries no Via; sofia puts the request's Via set back (RFC 3261 §8.2.6.2).
    const out = rewrite(sip, ['via'], to.vias);
    this.udp.send(Buffer.from(out, 'utf8'), to.port, to.address);
    return out;
  }

  private sendRequest(sip: string, appTxn: string, dialogId: string, proxy: string | undefined): string {
    const branch = `z9hG4bK${randomBytes(6).toString('hex')}`;
    const method = sip.split(' ')[0]!;
    const uri = sip.split(' ')[1]!;
    const via = `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${branch};rport`;
    let out: string;
    let dest: { address: string; port: number } | undefined;
    const leg = dialogId ? this.legs.get(dialogId) : undefined;
    if (leg) {
      leg.cseq += 1;
      out = rewrite(sip, ['via', 'from', 'to', 'call-id', 'cseq', 'max-forwards', 'route'], [
        via, 'Max-Forwards: 70', `From: ${leg.local}`, `To: ${leg.remote}`, `Call-ID: ${leg.callId}`, `CSeq: ${leg.cseq} ${method}`,
      ]);
      dest = hostPort(uri) ?? leg.target;
    } else {
      out = rewrite(sip, ['via', 'max-forwards', 'route'], [via, 'Max-Forwards: 70']);
      dest = hostPort(proxy ?? uri);
    }
    this.outgoing.set(branch, { appTxn, dialogId });
    if (dest) this.udp.send(Buffer.from(out, 'utf8'), dest.port, dest.address);
    return out;
  }
}
