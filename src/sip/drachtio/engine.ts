// The engine port done with drachtio-srf against a drachtio-server (sip.engine = "drachtio"). drachtio-server owns
// the SIP sockets, transactions and retransmissions; this adapter maps its requests to ServerTransactions and sends
// NOTIFYs from the stored dialog state. Design choices, each because of a pitfall in drachtio-srf.md:
// - No srf.createUAS and no Srf Dialog objects: createUAS forces 202 and Srf dialogs swallow in-dialog requests
//   (refreshes, unsubscribes) before any middleware, and dialog.notify() is broken in 5.0.29. Without Srf dialogs
//   every SUBSCRIBE, initial or in-dialog, reaches our handler, so auth and the 481/489/423 rules are the core's.
// - NOTIFY goes out with srf.request: first in the dialog drachtio-server created for our 2xx (`stackDialogId`,
//   computed from Call-ID and the subscriber's tag, so it also works after Lamplighter restarts), and when
//   drachtio-server no longer holds that dialog (it restarted) as a stateless request with explicit From, To,
//   Call-ID (see mapping.ts statelessRequestCall for what drachtio keeps and what it rewrites).
// - The connection is ours to keep up (connection.ts); isReady() is false while it is down, and NOTIFYs sent
//   meanwhile wait for the reconnect (bounded), then fail as 'no-flow' so the subscription is kept.
import type { Config } from '../../config.js';
import type { Logger } from '../../log.js';
import { methodLabel, type Metrics } from '../../metrics.js';
import type { DialogRequestSpec, ListeningAddress, RequestOutcome, ResponseSpec, ServerTransaction, SipEngine, Transport } from '../port.js';
import type { SipRequest } from '../stack/message.js';
import { DrachtioConnection, type Scheduler } from './connection.js';
import { flowOf, inDialogRequestCall, responseCall, statelessRequestCall, tagOf, toSipRequest, toSipResponse, type RequestCall } from './mapping.js';
import { loadSrf, type DrachtioRequest, type DrachtioResponse, type DrachtioSentRequest, type SrfInstance } from './types.js';

/** Methods we ask drachtio-server to route to us (`route|<method>`); others never reach this app. */
export const ROUTED_METHODS = ['subscribe', 'publish', 'options'] as const;

/** Named limits of this engine that are not (yet) in config.sip.drachtio. */
export const DRACHTIO_DEFAULTS = {
  /** An attempt that opened TCP but got no authenticate answer in this time is dropped. */
  authTimeoutMs: 10_000,
  /** Control-connection keep-alive ping (drachtio-srf allows 5 s .. 300 s). */
  pingIntervalMs: 15_000,
  /** Final-response guard for a NOTIFY: Timer F (64·T1 = 32 s, RFC 3261 §17.1.2.2) plus drachtio's own latency. */
  requestTimeoutMs: 40_000,
  /** How long a NOTIFY waits for a lost connection to come back before it fails as a local timeout. */
  disconnectedWaitMs: 10_000,
  /** stop(): how long to wait for responses still in flight. */
  drainMs: 2_000,
};

export interface DrachtioEngineOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  /** Tests inject a scheduler and an Srf factory; production uses real timers and drachtio-srf. */
  scheduler?: Scheduler;
  createSrf?: () => SrfInstance;
  limits?: Partial<typeof DRACHTIO_DEFAULTS>;
}

const notConnected = (): RequestOutcome => ({ status: 503, reason: 'drachtio-server not connected', local: 'no-flow' });

export function createDrachtioEngine(opts: DrachtioEngineOptions): SipEngine {
  return new DrachtioEngine(opts);
}

class DrachtioEngine implements SipEngine {
  readonly kind = 'drachtio' as const;
  private handler?: (tx: ServerTransaction) => void;
  private readonly conn: DrachtioConnection;
  private readonly limits: typeof DRACHTIO_DEFAULTS;
  /** Requests handed to drachtio-server and not answered yet; a lost connection ends them as 'no-flow'. */
  private readonly pending = new Set<() => void>();
  private readonly logger: Logger;
  private accepting = true;
  private inFlight = 0;
  private waitingForConnection = 0;

  constructor(private readonly opts: DrachtioEngineOptions) {
    const d = opts.config.sip.drachtio;
    this.logger = opts.logger;
    this.limits = { ...DRACHTIO_DEFAULTS, ...opts.limits };
    const Srf = opts.createSrf ? undefined : loadSrf();
    this.conn = new DrachtioConnection({
      host: d.host,
      port: d.port,
      secret: d.secret,
      reconnectMinMs: d.reconnectMinMs,
      reconnectMaxMs: Math.max(d.reconnectMinMs, d.reconnectMaxMs),
      authTimeoutMs: this.limits.authTimeoutMs,
      pingIntervalMs: this.limits.pingIntervalMs,
      createSrf: opts.createSrf ?? (() => new Srf!()),
      setup: (srf) => this.setup(srf),
      scheduler: opts.scheduler,
      logger: opts.logger,
    });
    this.conn.onState = (s) => {
      this.logger.debug({ state: s }, 'drachtio: state');
      opts.metrics.drachtioConnected.set(s === 'connected' ? 1 : 0);
      // Their answers would have come over the connection that is gone.
      if (s !== 'connected' && s !== 'connecting') for (const abort of [...this.pending]) abort();
    };
  }

  async start(): Promise<ListeningAddress[]> {
    await this.conn.start();
    if (!this.conn.connected) {
      this.logger.warn({ host: this.opts.config.sip.drachtio.host, port: this.opts.config.sip.drachtio.port },
        'drachtio: drachtio-server not reachable yet; not ready, retrying in the background');
    }
    return this.listening();
  }

  async stop(): Promise<void> {
    this.accepting = false;
    // Requests in flight can only finish while connected; those waiting for a reconnect fail at conn.stop().
    const until = Date.now() + this.limits.drainMs;
    while (this.inFlight > this.waitingForConnection && this.isReady() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    this.conn.stop();
  }

  isReady(): boolean {
    return this.conn.state === 'connected';
  }

  listening(): ListeningAddress[] {
    return this.conn.lastHostports.map((a) => ({ ...a }));
  }

  onRequest(handler: (tx: ServerTransaction) => void): void {
    this.handler = handler;
  }

  /** sip.publicAddress when set, else drachtio-server's own SIP address for that transport (the 'connect'
   *  hostports). WS falls back to TCP's address when drachtio has no ws listener (we cannot know its path). */
  contactUri(transport: Transport): string {
    const hp = this.conn.lastHostports;
    const a = hp.find((x) => x.transport === transport) ?? (transport === 'ws' ? hp.find((x) => x.transport === 'tcp') : undefined) ?? hp[0];
    const pub = this.opts.config.sip.publicAddress;
    const host = pub || a?.address || this.opts.config.sip.drachtio.host;
    const port = a?.port ?? 5060;
    const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
    return `sip:${bracketed}:${port}${transport === 'udp' ? '' : `;transport=${transport}`}`;
  }

  private setup(srf: SrfInstance): void {
    const handle = (req: DrachtioRequest, res: DrachtioResponse) => this.onDrachtioRequest(req, res);
    for (const m of ROUTED_METHODS) srf.use(m, handle);
  }

  private onDrachtioRequest(req: DrachtioRequest, res: DrachtioResponse): void {
    const request = toSipRequest(req);
    const flow = flowOf(req, this.conn.lastHostports);
    if (!request) {
      this.opts.metrics.sipDropped.inc({ reason: 'parse' });
      this.send(res, req.method, { status: 400, reason: 'Bad Request' }, undefined);
      return;
    }
    this.opts.metrics.sipRequests.inc({ method: methodLabel(request.method), transport: flow.transport });
    if (!this.accepting || !this.handler) {
      this.send(res, request.method, { status: 503, reason: 'Service Unavailable', headers: [['Retry-After', '5']] }, request);
      return;
    }
    let responded = false;
    const tx: ServerTransaction = {
      request,
      flow,
      get responded() { return responded; },
      respond: (spec: ResponseSpec) => {
        if (responded) return;
        if (spec.status >= 200) responded = true;
        this.send(res, request.method, spec, request);
      },
    };
    try {
      this.handler(tx);
    } catch (err) {
      this.logger.error({ err: (err as Error).message, method: request.method }, 'drachtio: request handler threw');
      if (!responded) tx.respond({ status: 500, reason: 'Server Internal Error' });
    }
  }

  private send(res: DrachtioResponse, method: string, spec: ResponseSpec, request: SipRequest | undefined): void {
    const call = request ? responseCall(spec, request) : { status: spec.status, reason: spec.reason, opts: {} };
    // Response#send throws on a status sip-status does not list; send the class code with our phrase instead.
    let status = call.status;
    if (!Number.isInteger(status) || status < 100 || status > 699) status = 500;
    const wantTag = spec.toTag;
    const onSent = (err: unknown, sent?: { get(n: string): string | undefined }) => {
      if (err) {
        this.logger.warn({ method, status, err: err instanceof Error ? err.message : String(err) }, 'drachtio: response not sent');
        return;
      }
      const sentTag = tagOf(sent?.get('to'));
      if (wantTag && sentTag && sentTag !== wantTag && request && tagOf(request.headers.get('to')?.[0]) === undefined) {
        // Refutes the To-tag assumption in mapping.ts responseCall: the core's stored tag would not match the wire.
        this.logger.error({ method, wantTag, sentTag }, 'drachtio: drachtio-server replaced our To-tag; in-dialog requests will not match');
      }
    };
    try {
      res.send(status, call.reason, call.opts, onSent);
    } catch {
      try {
        res.send(Math.floor(status / 100) * 100, call.reason, call.opts, onSent);
      } catch (err) {
        this.logger.error({ method, status, err: (err as Error).message }, 'drachtio: cannot send response');
        return;
      }
    }
    this.opts.metrics.sipResponses.inc({ method: methodLabel(method), status: String(status) });
  }

  async sendRequest(spec: DialogRequestSpec): Promise<RequestOutcome> {
    this.inFlight++;
    try {
      if (this.conn.state !== 'connected') {
        // 'no-flow': the path to the watcher is down, which says nothing about the watcher, so the core keeps the
        // subscription (its failure policy would remove it after a few failures during a long outage).
        if (this.waitingForConnection >= this.opts.config.sip.limits.maxPendingRequests) return notConnected();
        this.waitingForConnection++;
        const ok = await this.conn.waitConnected(this.limits.disconnectedWaitMs).finally(() => { this.waitingForConnection--; });
        if (!ok) return notConnected();
      }
      const inDialog = inDialogRequestCall(spec);
      if (inDialog) {
        const first = await this.requestOnce(inDialog);
        // ENODIALOG: drachtio-server does not hold the dialog (it restarted, or it already ended it).
        if (first.kind !== 'no-dialog') return first.outcome;
        this.logger.debug({ callId: spec.callId, method: spec.method }, 'drachtio: dialog unknown to drachtio-server, sending stateless');
      }
      const stateless = await this.requestOnce(statelessRequestCall(spec));
      return stateless.kind === 'no-dialog'
        ? { status: 481, reason: 'Call/Transaction Does Not Exist', local: 'no-flow' }
        : stateless.outcome;
    } finally {
      this.inFlight--;
    }
  }

  private requestOnce(call: RequestCall): Promise<{ kind: 'done'; outcome: RequestOutcome } | { kind: 'no-dialog' }> {
    const srf = this.conn.connected?.srf;
    if (!srf) return Promise.resolve({ kind: 'done', outcome: notConnected() });
    return new Promise((resolve) => {
      let settled = false;
      const abort = () => finish({ kind: 'done', outcome: notConnected() });
      const finish = (r: { kind: 'done'; outcome: RequestOutcome } | { kind: 'no-dialog' }) => {
        if (settled) return;
        settled = true;
        this.clearTimer(guard);
        this.pending.delete(abort);
        resolve(r);
      };
      this.pending.add(abort);
      const guard = this.setTimer(() => finish({ kind: 'done', outcome: { status: 408, reason: 'Request Timeout', local: 'timeout' } }), this.limits.requestTimeoutMs);
      try {
        srf.request(call.uri, call.opts, (err, sent?: DrachtioSentRequest) => {
          if (err) {
            if (err.code === 'ENODIALOG' || /unable to find dialog/i.test(err.message)) return finish({ kind: 'no-dialog' });
            this.logger.warn({ method: call.opts.method, err: err.message }, 'drachtio: drachtio-server refused to send the request');
            return finish({ kind: 'done', outcome: { status: 503, reason: 'Service Unavailable', local: 'transport-error' } });
          }
          if (call.opts.method === 'NOTIFY') this.opts.metrics.notifySent.inc({ event: eventName(call) });
          sent?.on('response', (r) => {
            if (r.status < 200) return;
            finish({ kind: 'done', outcome: { status: r.status, reason: r.reason ?? '', response: toSipResponse(r) } });
          });
        });
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'drachtio: srf.request threw');
        finish({ kind: 'done', outcome: { status: 503, reason: 'Service Unavailable', local: 'transport-error' } });
      }
    });
  }

  private setTimer(fn: () => void, ms: number): unknown {
    return (this.opts.scheduler ?? { setTimeout: (f: () => void, m: number) => setTimeout(f, m) }).setTimeout(fn, ms);
  }

  private clearTimer(h: unknown): void {
    if (this.opts.scheduler) this.opts.scheduler.clearTimeout(h);
    else clearTimeout(h as NodeJS.Timeout);
  }
}

function eventName(call: RequestCall): string {
  const h = call.opts.headers ?? {};
  const key = Object.keys(h).find((k) => k.toLowerCase() === 'event' || k === 'o');
  return key ? (h[key] ?? '').split(';')[0]!.trim() : '';
}
