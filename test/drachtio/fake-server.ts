// A stand-in for drachtio-server's control port on 127.0.0.1 that speaks the small part of the wire protocol the
// adapter exercises (drachtio-srf.md §4; drachtio-srf lib/wire-protocol.js and drachtio-agent.js _onMsg):
// framing `<bytes>#<payload>`, `authenticate`, `route`, `sip|txn|dialog` from the app with an echo, and
// `sip|network|...` events towards the app. It is NOT a SIP stack: it never touches UDP, and it echoes what the app
// sends with the few changes drachtio-server is documented to make (a To-tag on responses that lack one).
import { createServer, type Server, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';

export type FakeMode = 'speak' | 'drop' | 'silent' | 'refuse';

export interface AppFrame {
  msgId: string;
  type: string;
  tokens: string[];
  /** The SIP text after the first CRLF, when there is one. */
  sip?: string;
}

export class FakeDrachtioServer {
  mode: FakeMode = 'speak';
  hostports = 'udp/127.0.0.1:5070,tcp/127.0.0.1:5070';
  readonly frames: AppFrame[] = [];
  readonly sockets = new Set<Socket>();
  connections = 0;
  /** Dialog ids the "server" holds; `sip||<id>` for another id is answered NO (like ENODIALOG). */
  readonly dialogs = new Set<string>();
  /** How to answer an app request (in or out of dialog); default: echo, then a 200 from the network. */
  answerRequest: (frame: AppFrame) => { status: number; reason: string } | null = () => ({ status: 200, reason: 'OK' });
  /** A SIP side (fake-sip-bridge.ts) puts the app's messages on a real wire; it returns the text "as sent". */
  onAppResponse?: (sip: string, txnId: string) => string;
  onAppRequest?: (sip: string, appTxn: string, dialogId: string, proxy: string | undefined) => string;
  private server?: Server;
  private waiters: Array<{ pred: (f: AppFrame) => boolean; resolve: (f: AppFrame) => void }> = [];
  port = 0;

  constructor(readonly secret = 'cymru') {}

  async listen(): Promise<number> {
    const server = createServer((s) => this.onConnection(s));
    this.server = server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    this.port = (server.address() as { port: number }).port;
    return this.port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Drop every app connection (a drachtio-server restart, as the app sees it). */
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  waitFrame(pred: (f: AppFrame) => boolean, timeoutMs = 3000): Promise<AppFrame> {
    const found = this.frames.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (f: AppFrame) => { clearTimeout(t); resolve(f); } };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no matching frame; got: ${this.frames.map((f) => f.type + ' ' + f.tokens.join('|')).join(', ')}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Deliver a request from "the network" to the first connected app. */
  deliver(raw: string, meta: { protocol?: string; address?: string; port?: number; txnId?: string; dialogId?: string; receivedOn?: string } = {}): string {
    const s = [...this.sockets][0];
    if (!s) throw new Error('no app connected');
    const txnId = meta.txnId ?? randomUUID();
    const recv = meta.receivedOn ? `|${meta.receivedOn.replace(/:(\d+)$/, '|$1')}|` : '';
    this.write(s, `${randomUUID()}|sip|network|${Buffer.byteLength(raw)}|${meta.protocol ?? 'udp'}|${meta.address ?? '127.0.0.1'}|${meta.port ?? 40000}|12:00:00.000000|${txnId}|${meta.dialogId ?? ''}${recv}\r\n${raw}`);
    return txnId;
  }

  private write(s: Socket, payload: string): void {
    s.write(`${Buffer.byteLength(payload, 'utf8')}#${payload}`);
  }

  private onConnection(s: Socket): void {
    this.connections++;
    if (this.mode === 'drop') {
      s.destroy();
      return;
    }
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const hash = buf.indexOf('#');
        if (hash <= 0) return;
        const len = Number(buf.subarray(0, hash).toString());
        if (buf.length < hash + 1 + len) return;
        const payload = buf.subarray(hash + 1, hash + 1 + len).toString('utf8');
        buf = buf.subarray(hash + 1 + len);
        this.onFrame(s, payload);
      }
    });
  }

  private onFrame(s: Socket, payload: string): void {
    const crlf = payload.indexOf('\r\n');
    const lead = crlf >= 0 ? payload.slice(0, crlf) : payload;
    const [msgId = '', type = '', ...tokens] = lead.split('|');
    const frame: AppFrame = { msgId, type, tokens, sip: crlf >= 0 ? payload.slice(crlf + 2) : undefined };
    this.frames.push(frame);
    for (const w of [...this.waiters]) if (w.pred(frame)) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(frame); }
    if (this.mode === 'silent') return;
    if (type === 'authenticate') {
      if (this.mode === 'refuse' || tokens[0] !== this.secret) this.write(s, `${randomUUID()}|response|${msgId}|NO|authentication failed`);
      else this.write(s, `${randomUUID()}|response|${msgId}|OK|${this.hostports}|v0.9.2-fake|`);
    } else if (type === 'sip') this.onSip(s, frame);
  }

  private onSip(s: Socket, f: AppFrame): void {
    const [txnId = '', dialogId = ''] = f.tokens;
    let sip = f.sip ?? '';
    const isResponse = sip.startsWith('SIP/2.0');
    if (isResponse) {
      // drachtio-server keeps an app-supplied To-tag and adds its own only when there is none.
      sip = sip.replace(/^(to:[^\r\n]*)$/im, (line) => (/;\s*tag=/i.test(line) ? line : `${line};tag=drachtio-made`));
      const toTag = /^to:[^\r\n]*;\s*tag=([^;\s\r\n]+)/im.exec(sip)?.[1];
      const callId = /^call-id:\s*([^\r\n]+)/im.exec(sip)?.[1]?.trim();
      const fromTag = /^from:[^\r\n]*;\s*tag=([^;\s\r\n]+)/im.exec(sip)?.[1];
      const status = Number(sip.split(' ')[1]);
      const newDialog = status >= 200 && status < 300 && /^cseq:\s*\d+\s+SUBSCRIBE/im.test(sip) && callId && fromTag && toTag;
      const dlg = newDialog ? `${callId};from-tag=${fromTag}` : '';
      if (dlg) this.dialogs.add(dlg);
      if (this.onAppResponse) sip = this.onAppResponse(sip, txnId);
      this.write(s, `${randomUUID()}|response|${f.msgId}|OK|application|${Buffer.byteLength(sip)}|udp|127.0.0.1|5070|12:00:00.000000|${txnId}|${dlg}|Msg sent:|\r\n${sip}`);
      return;
    }
    if (dialogId && !this.dialogs.has(dialogId)) {
      this.write(s, `${randomUUID()}|response|${f.msgId}|NO|Server error: unable to find dialog for dialog id provided`);
      return;
    }
    const appTxn = randomUUID();
    if (this.onAppRequest) sip = this.onAppRequest(sip, appTxn, dialogId, f.tokens[2] || undefined);
    this.write(s, `${randomUUID()}|response|${f.msgId}|OK|application|${Buffer.byteLength(sip)}|udp|127.0.0.1|5070|12:00:00.000000|${appTxn}|${dialogId}|Msg sent:|\r\n${sip}`);
    if (/^subscription-state:\s*terminated/im.test(sip) && dialogId) this.dialogs.delete(dialogId);
    const answer = this.onAppRequest ? null : this.answerRequest(f);
    if (!answer) return;
    const get = (n: string) => new RegExp(`^${n}:\\s*([^\\r\\n]+)`, 'im').exec(sip)?.[1]?.trim() ?? '';
    const res = [`SIP/2.0 ${answer.status} ${answer.reason}`, 'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKfake', `From: ${get('from')}`, `To: ${get('to')}`,
      `Call-ID: ${get('call-id')}`, `CSeq: ${get('cseq')}`, 'Content-Length: 0', '', ''].join('\r\n');
    setImmediate(() => this.deliverResponse(res, appTxn, dialogId));
  }

  /** A response from "the network" to a request the app sent (transaction `appTxn`). */
  deliverResponse(raw: string, appTxn: string, dialogId: string, from = { address: '127.0.0.1', port: 40000 }): void {
    const s = [...this.sockets][0];
    if (!s) return;
    this.write(s, `${randomUUID()}|sip|network|${Buffer.byteLength(raw)}|udp|${from.address}|${from.port}|12:00:00.000001|${appTxn}|${dialogId}\r\n${raw}`);
  }
}
