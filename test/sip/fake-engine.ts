// An in-memory SipEngine for testing the SIP faces without sockets: requests are injected as server transactions,
// NOTIFYs are captured with their spec, and the test decides each NOTIFY's outcome (or holds it).
import { randomBytes } from 'node:crypto';
import type { SipEngine, ServerTransaction, ResponseSpec, DialogRequestSpec, RequestOutcome, Flow, ListeningAddress, Transport } from '../../src/sip/port.js';
import type { SipRequest } from '../../src/sip/stack/message.js';

export interface SentRequest {
  spec: DialogRequestSpec;
  header(name: string): string | undefined;
  body: string;
  resolve(o: RequestOutcome): void;
}

export class FakeEngine implements SipEngine {
  readonly kind = 'embedded' as const;
  private handler?: (tx: ServerTransaction) => void;
  readonly sent: SentRequest[] = [];
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  /** Outcome for each NOTIFY; return null to hold it until the test resolves it. */
  answer: (spec: DialogRequestSpec) => RequestOutcome | null = () => ({ status: 200, reason: 'OK' });

  async start(): Promise<ListeningAddress[]> { return []; }
  async stop(): Promise<void> {}
  isReady(): boolean { return true; }
  listening(): ListeningAddress[] { return []; }
  onRequest(h: (tx: ServerTransaction) => void): void { this.handler = h; }
  contactUri(t: Transport): string { return `sip:lamplighter@127.0.0.1:5060;transport=${t}`; }

  sendRequest(spec: DialogRequestSpec): Promise<RequestOutcome> {
    return new Promise((resolve) => {
      const body = spec.body === undefined ? '' : spec.body.toString();
      const s: SentRequest = {
        spec, body, resolve,
        header: (n) => spec.headers.find(([k]) => k.toLowerCase() === n.toLowerCase())?.[1],
      };
      this.sent.push(s);
      for (const w of [...this.waiters]) if (this.sent.length >= w.n) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(); }
      const o = this.answer(spec);
      if (o) resolve(o);
    });
  }

  /** Wait until `n` NOTIFYs in all have been handed over. */
  async waitSent(n: number, timeoutMs = 2000): Promise<SentRequest> {
    if (this.sent.length < n) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`only ${this.sent.length} of ${n} NOTIFYs sent`)), timeoutMs);
        this.waiters.push({ n, resolve: () => { clearTimeout(t); resolve(); } });
      });
    }
    return this.sent[n - 1]!;
  }

  /** Inject a request; resolves with the response the face gave. */
  request(req: { method: string; uri: string; headers: Record<string, string | string[]>; body?: string }, flow: Partial<Flow> = {}): Promise<ResponseSpec> {
    const headers = new Map<string, string[]>();
    for (const [k, v] of Object.entries(req.headers)) headers.set(k.toLowerCase(), Array.isArray(v) ? v : [v]);
    const request: SipRequest = { kind: 'request', method: req.method, uri: req.uri, version: 'SIP/2.0', headers, body: Buffer.from(req.body ?? '', 'utf8') };
    const f: Flow = { id: 'udp:127.0.0.1:5062', transport: 'udp', localAddress: '127.0.0.1', localPort: 5060, remoteAddress: '127.0.0.1', remotePort: 5062, ...flow };
    return new Promise((resolve) => {
      let responded = false;
      const tx: ServerTransaction = {
        request, flow: f,
        get responded() { return responded; },
        respond(r) { if (responded) return; responded = true; resolve(r); },
      };
      this.handler!(tx);
    });
  }
}

export function tag(): string {
  return randomBytes(4).toString('hex');
}

export function hdr(r: ResponseSpec, name: string): string | undefined {
  return r.headers?.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
}

export function hdrAll(r: ResponseSpec, name: string): string[] {
  return (r.headers ?? []).filter(([k]) => k.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}
