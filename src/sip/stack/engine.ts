// The embedded SIP engine: UDP, TCP and WebSocket transports, the flow table, and RFC 3261 §17 non-INVITE
// transactions behind the SipEngine port. It parses what arrives, absorbs retransmissions, hands each new request
// to the TU once, builds responses from the request (§8.2.6), and sends in-dialog requests (NOTIFY) over the flow
// the dialog was made on, retransmitting over UDP until a final response or Timer F.
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Config } from '../../config.js';
import { redactSipText, type Logger } from '../../log.js';
import { methodLabel, type Metrics } from '../../metrics.js';
import type {
  DialogRequestSpec, Flow, ListeningAddress, RequestOutcome, ResponseSpec, ServerTransaction, SipEngine, Transport,
} from '../port.js';
import { header, headerAll, type HeaderMap, type SipMessage, type SipRequest, type SipResponse } from './message.js';
import { canAnswer, parseMessage, type ParseLimits } from './parser.js';
import { canonicalHeaderName, finish, safeUri, safeValue, serializeRequest, serializeResponse } from './serializer.js';
import { formatVia, isValidUri, parseCSeq, parseEvent, parseNameAddr, parseUri, parseVia, tagOf, viaBranch, type Via } from './headers.js';
import { reasonPhrase } from './reasons.js';
import { FlowTable, type FlowConnection } from './flows.js';
import { UdpTransport } from './transport-udp.js';
import { TcpTransport } from './transport-tcp.js';
import { WsTransport } from './transport-ws.js';
import { ServerTransactionTable, serverTransactionKey, type NonInviteServerTransaction } from './transaction-server.js';
import { ClientTransactionTable, clientTransactionKey, type NonInviteClientTransaction } from './transaction-client.js';
import { createTimers, ExpiryQueue, timerF, type SipTimers, type TimerHandle } from './timers.js';

export interface EmbeddedEngineOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  /** T1/T2/T4 and the scheduler; tests inject short values or fake timers. */
  timers?: Partial<SipTimers>;
}

/** Seconds a client is asked to wait when we shed load (RFC 3261 §20.33, Retry-After with a 503). */
const OVERLOAD_RETRY_AFTER_S = 5;
/** Longest stop() waits for client transactions in flight; further bounded by config.shutdownTimeoutMs / 2. */
const STOP_GRACE_MS = 2000;
/** At most one log line per limit kind in this interval, so a flood cannot flood the log as well. */
const LIMIT_LOG_INTERVAL_MS = 10_000;
const DEFAULT_SIP_PORT = 5060;

// Branch ids and tags take their bytes from a pool filled by one crypto.randomBytes call per 4 KiB: the same
// CSPRNG output, without a system call per NOTIFY in a fan-out burst.
let randomPool = Buffer.alloc(0);
let randomPoolAt = 0;
function randomHex(bytes: number): string {
  if (randomPoolAt + bytes > randomPool.length) {
    randomPool = randomBytes(4096);
    randomPoolAt = 0;
  }
  const hex = randomPool.toString('hex', randomPoolAt, randomPoolAt + bytes);
  randomPoolAt += bytes;
  return hex;
}

/** §8.1.1.7: the branch starts with the magic cookie; 128 random bits make collisions negligible. */
function newBranch(): string {
  return 'z9hG4bK' + randomHex(16);
}

/**
 * Bytes that completed UDP server transactions may hold while they wait out Timer J: room for 256 answers of the
 * largest message we take (sip.maxMessageSize; 16 MiB by default), and at least 4 MiB.
 */
export function completedTransactionBudget(config: Config): number {
  return Math.max(4 * 1024 * 1024, 256 * config.sip.maxMessageSize);
}

interface UdpTarget { kind: 'udp'; transport: UdpTransport; address: string; port: number }
interface ConnTarget { kind: 'conn'; conn: FlowConnection }
type Target = UdpTarget | ConnTarget | { kind: 'fail'; outcome: RequestOutcome };

const noFlow = (): { kind: 'fail'; outcome: RequestOutcome } => ({ kind: 'fail', outcome: { status: 408, reason: 'Request Timeout', local: 'no-flow' } });
const transportError = (): { kind: 'fail'; outcome: RequestOutcome } => ({ kind: 'fail', outcome: { status: 503, reason: 'Service Unavailable', local: 'transport-error' } });

/** RFC 3261 §19.1.1: IPv6 literals go in brackets in a hostport. */
function hostport(host: string, port: number): string {
  return (host.includes(':') && !host.startsWith('[') ? `[${host}]` : host) + ':' + port;
}

function stripBrackets(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

function isUnspecified(a: string): boolean {
  return a === '0.0.0.0' || a === '::' || a === '[::]';
}

function firstExternalIPv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const ni of list ?? []) {
      if (ni.family === 'IPv4' && !ni.internal) return ni.address;
    }
  }
  return undefined;
}

/** user@host of a SIP URI, lower-cased, for trace matching; undefined when there is no user part. */
function aorOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const m = /sips?:([^@;>?\s]+)@(\[[^\]]+\]|[^;>?:\s]+)/i.exec(value);
  return m ? `${m[1]}@${m[2]}`.toLowerCase() : undefined;
}

/**
 * A URI as a Request-URI: the headers component is not allowed there (RFC 3261 §19.1.1 table, §12.2.1.1 "stripping
 * any parameters that are not allowed in a Request-URI"). The user part may hold '?', so only look after the '@'.
 * Undefined when what is left is not a URI our own parser would take (whitespace, <>", no scheme).
 */
export function asRequestUri(uri: string): string | undefined {
  const colon = uri.indexOf(':');
  if (colon <= 0) return undefined;
  let out = uri;
  if (colon === 3 || colon === 4) {
    const scheme = uri.slice(0, colon).toLowerCase();
    if (scheme === 'sip' || scheme === 'sips') {
      const at = uri.indexOf('@', colon);
      const q = uri.indexOf('?', at === -1 ? colon : at);
      if (q !== -1) out = uri.slice(0, q);
    }
  }
  // isValidUri refuses controls, SP, <>" and anything our parser would not take; the Unicode spaces that \s
  // also covers are checked apart, only when there is a non-ASCII character at all.
  if (!isValidUri(out) || (NON_ASCII.test(out) && UNICODE_SPACE.test(out))) return undefined;
  return out;
}

const NON_ASCII = /[^\x00-\x7f]/;
const UNICODE_SPACE = /\s/;

function isCrlfOnly(b: Buffer): boolean {
  if (b.length > 8) return false;
  for (const c of b) if (c !== 0x0d && c !== 0x0a) return false;
  return true;
}

function toBuffer(b: Buffer | string | undefined): Buffer {
  if (b === undefined) return Buffer.alloc(0);
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
}

function appendHeader(h: HeaderMap, name: string, value: string): void {
  const k = name.toLowerCase();
  const cur = h.get(k);
  if (cur) cur.push(value);
  else h.set(k, [value]);
}

// A Via that formatVia(parseVia(v)) gives back unchanged: upper-case SIP/2.0/transport, one SP, a host and a port
// without leading zeros, lower-case parameter names with plain values, no whitespace. Most phones and SIPp send
// this form, and for it received/rport can be set in the text itself.
const CANONICAL_VIA = /^SIP\/2\.0\/[A-Z]+ (?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::[1-9][0-9]{0,4})?((?:;[a-z0-9.!%*_+`'~-]+(?:=[^\s;",=]*)?)*)$/;

/**
 * The top Via with received and/or rport set (RFC 3261 §18.2.1, RFC 3581 §4), written into the text: the same
 * string formatVia gives for the parsed Via with those parameters set, or undefined when the Via is not in the
 * canonical form (or repeats a parameter) and must go through parse and format.
 */
export function withReceived(v: string, received: string | undefined, rport: string | undefined): string | undefined {
  const m = CANONICAL_VIA.exec(v);
  if (m === null) return undefined;
  const params = m[1]!;
  const base = v.length - params.length;
  let out = v.slice(0, base);
  let sawReceived = false;
  const seen = new Set<string>();
  for (const piece of params.split(';')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const name = eq === -1 ? piece : piece.slice(0, eq);
    // A later duplicate wins in parseParams, and for-in puts index-like names first: leave those to formatVia.
    if (seen.has(name) || (name.charCodeAt(0) >= 0x30 && name.charCodeAt(0) <= 0x39)) return undefined;
    seen.add(name);
    if (name === 'received' && received !== undefined) {
      out += ';received=' + received;
      sawReceived = true;
    } else if (name === 'rport' && rport !== undefined) out += ';rport=' + rport;
    else out += ';' + piece;
  }
  if (received !== undefined && !sawReceived) out += ';received=' + received;
  return out;
}

/** What the TU holds for a request until it answers: the transaction, and the way back to the client. */
class EmbeddedServerTransaction implements ServerTransaction {
  private done = false;
  constructor(
    readonly request: SipRequest,
    readonly flow: Flow,
    readonly stx: NonInviteServerTransaction,
    readonly sendOnFlow: (data: Buffer) => boolean,
    private readonly engine: EmbeddedEngine,
  ) {}

  get responded(): boolean {
    return this.done;
  }

  respond(spec: ResponseSpec): void {
    if (this.done) return;
    if (this.engine.answer(this, spec)) this.done = true;
  }
}

/** What sendRequest derives from a dialog's remote target and route set (§12.2.1.1, §8.1.2). */
interface DialogRoute {
  requestUri: string;
  routes: readonly string[];
  nextHop: string;
}

/** Bound on the per-engine caches of values derived from strings of the dialogs (cleared when full). */
const DERIVED_CACHE_MAX = 1024;

/** A header name as given by the TU: its lower-case form (to compare) and its canonical spelling (to write). */
interface HeaderName { lower: string; canonical: string }
const headerNames = new Map<string, HeaderName>();
function headerName(name: string): HeaderName {
  let n = headerNames.get(name);
  if (n === undefined) {
    const lower = name.toLowerCase();
    n = { lower, canonical: canonicalHeaderName(lower) };
    if (headerNames.size >= DERIVED_CACHE_MAX) headerNames.clear();
    headerNames.set(name, n);
  }
  return n;
}

class EmbeddedEngine implements SipEngine {
  readonly kind = 'embedded' as const;
  private readonly config: Config;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly timers: SipTimers;
  private readonly limits: ParseLimits;
  private readonly flows = new FlowTable();
  private readonly serverTxs: ServerTransactionTable;
  private readonly clientTxs = new ClientTransactionTable();
  /** Client transactions waiting on a connection flow, failed when it closes (§17.1.4). */
  private readonly txByFlow = new Map<string, Set<NonInviteClientTransaction>>();
  /**
   * Requests handed to the TU and not yet answered. If the TU never answers, the slot is freed after Timer F's
   * span: the client has given up by then (§17.1.2.2).
   */
  private readonly pending: ExpiryQueue<EmbeddedServerTransaction>;
  /** The first Route of dialogs (a proxy's Record-Route): its URI and whether it is a strict router (§12.2.1.1). */
  private readonly firstRoutes = new Map<string, { uri: string | undefined; strict: boolean }>();
  /** Event header value -> the event package name for metrics.notifySent. */
  private readonly eventLabels = new Map<string, string>();
  /** `SIP/2.0/UDP host:port;rport;branch=` per transport, once the listeners are known. */
  private readonly viaPrefixes = new Map<Transport, string>();
  private readonly traceSet: Set<string>;
  private readonly limitLogAt = new Map<string, number>();
  /** TCP connection attempts in progress, by host:port. */
  private readonly connecting = new Map<string, Promise<FlowConnection | undefined>>();
  private udp: UdpTransport[] = [];
  private tcp: TcpTransport[] = [];
  private ws: WsTransport[] = [];
  private addrs: ListeningAddress[] = [];
  private handler: ((tx: ServerTransaction) => void) | undefined;
  private ready = false;
  private stopping = false;
  private stopped: Promise<void> | undefined;

  constructor(opts: EmbeddedEngineOptions) {
    this.config = opts.config;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.timers = createTimers(opts.timers);
    this.limits = { maxMessageSize: opts.config.sip.maxMessageSize, maxHeaders: opts.config.sip.maxHeaders };
    this.serverTxs = new ServerTransactionTable(completedTransactionBudget(opts.config));
    this.traceSet = new Set(opts.config.log.traceSip.map((s) => s.toLowerCase()));
    this.pending = new ExpiryQueue(this.timers.scheduler, timerF(this.timers), (f) => {
      this.logger.warn({ method: f.request.method, transport: f.flow.transport }, 'SIP request not answered in time; transaction dropped');
      f.stx.terminate();
    }, false);
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------

  async start(): Promise<ListeningAddress[]> {
    if (this.ready) return this.listening();
    const sip = this.config.sip;
    try {
      for (const l of sip.listen) {
        if (l.transport === 'udp') {
          const t = new UdpTransport({
            address: l.address, port: l.port, logger: this.logger, maxQueueDelayMs: sip.limits.maxQueueDelayMs,
            onDatagram: (data, ra, rp, tr) => this.onUdp(data, ra, rp, tr),
          });
          const a = await t.start();
          this.udp.push(t);
          this.addrs.push({ transport: 'udp', address: a.address, port: a.port });
        } else if (l.transport === 'tcp') {
          const t = new TcpTransport({
            address: l.address, port: l.port, flows: this.flows, limits: this.limits, logger: this.logger,
            firstMessageTimeoutMs: timerF(this.timers),
            admit: (ra) => this.admitConnection('tcp', ra),
            onMessage: (data, conn) => this.onMessage(data, conn.flow, conn),
            onFramingError: (conn, error) => {
              this.metrics.sipDropped.inc({ reason: 'framing' });
              this.logger.debug({ transport: 'tcp', flow: conn.flow.id, remoteAddress: conn.flow.remoteAddress, error }, 'SIP stream framing error, connection closed');
            },
            onClose: (conn) => this.onConnectionClosed(conn),
          });
          const a = await t.start();
          this.tcp.push(t);
          this.addrs.push({ transport: 'tcp', address: a.address, port: a.port });
        } else {
          const t = new WsTransport({
            address: l.address, port: l.port, flows: this.flows, maxMessageSize: sip.maxMessageSize, logger: this.logger,
            firstMessageTimeoutMs: timerF(this.timers),
            admit: (ra) => this.admitConnection('ws', ra),
            onMessage: (data, conn) => this.onMessage(data, conn.flow, conn),
            onClose: (conn) => this.onConnectionClosed(conn),
          });
          const a = await t.start();
          this.ws.push(t);
          this.addrs.push({ transport: 'ws', address: a.address, port: a.port });
        }
      }
    } catch (err) {
      await this.closeTransports();
      throw err;
    }
    this.ready = true;
    this.viaPrefixes.clear();
    return this.listening();
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.ready = false;
      for (const t of this.tcp) t.stopAccepting();
      for (const t of this.ws) t.stopAccepting();
      const inFlight = this.clientTxs.inFlight();
      if (inFlight.length > 0) {
        const grace = Math.min(STOP_GRACE_MS, Math.floor(this.config.shutdownTimeoutMs / 2));
        let handle: TimerHandle | undefined;
        await Promise.race([
          Promise.allSettled(inFlight.map((t) => t.outcome)),
          new Promise<void>((r) => { handle = this.timers.scheduler.setTimeout(r, grace); }),
        ]);
        if (handle !== undefined) this.timers.scheduler.clearTimeout(handle);
      }
      this.clientTxs.abortAll();
      this.serverTxs.clear();
      this.pending.clear();
      await this.closeTransports();
    })();
    return this.stopped;
  }

  private async closeTransports(): Promise<void> {
    for (const t of this.tcp) { t.stopAccepting(); t.closeAll(); }
    for (const t of this.ws) { t.stopAccepting(); t.closeAll(); }
    await Promise.all(this.udp.map((t) => t.close()));
  }

  isReady(): boolean {
    return this.ready;
  }

  listening(): ListeningAddress[] {
    return this.addrs.map((a) => ({ ...a }));
  }

  onRequest(handler: (tx: ServerTransaction) => void): void {
    this.handler = handler;
  }

  // ---- addresses -------------------------------------------------------------------------------------------

  /** The host a peer should use for us: sip.publicAddress, else the listen address, else a real interface. */
  private advertisedHost(listenAddress: string): string {
    if (this.config.sip.publicAddress) return this.config.sip.publicAddress;
    if (!isUnspecified(listenAddress)) return listenAddress;
    return firstExternalIPv4() ?? '127.0.0.1';
  }

  private listenerFor(t: Transport): { host: string; port: number } {
    const a = this.addrs.find((x) => x.transport === t);
    if (a) return { host: this.advertisedHost(a.address), port: a.port };
    const l = this.config.sip.listen.find((x) => x.transport === t) ?? this.config.sip.listen[0];
    return { host: this.advertisedHost(l?.address ?? '127.0.0.1'), port: l?.port || DEFAULT_SIP_PORT };
  }

  /** A connection flow is open while its TCP/WS connection is; a UDP flow has no connection to lose. */
  isFlowOpen(flowId: string): boolean {
    if (FlowTable.parseUdpFlowId(flowId) !== undefined) return true;
    return this.flows.get(flowId) !== undefined;
  }

  contactUri(transport: Transport): string {
    const { host, port } = this.listenerFor(transport);
    return `sip:${hostport(host, port)};transport=${transport}`;
  }

  // ---- connection limits (issue 4) ----------------------------------------------------------------------

  private admitConnection(transport: 'tcp' | 'ws', remoteAddress: string): boolean {
    if (this.stopping) return false;
    const lim = this.config.sip.limits;
    let limit: 'connectionsTotal' | 'connectionsPerSource' | undefined;
    if (this.flows.size >= lim.connectionsTotal) limit = 'connectionsTotal';
    else if (this.flows.connectionsFrom(remoteAddress) >= lim.connectionsPerSource) limit = 'connectionsPerSource';
    if (limit === undefined) return true;
    this.metrics.overload.inc({ limit });
    this.logLimit(limit, { transport, remoteAddress, limit: lim[limit] }, `${transport.toUpperCase()} connection refused: sip.limits.${limit} reached`);
    return false;
  }

  private logLimit(kind: string, fields: Record<string, unknown>, msg: string): void {
    const now = this.timers.scheduler.now();
    const last = this.limitLogAt.get(kind);
    if (last !== undefined && now - last < LIMIT_LOG_INTERVAL_MS) return;
    this.limitLogAt.set(kind, now);
    this.logger.warn(fields, msg);
  }

  /** 503 with Retry-After (RFC 3261 §21.5.4): we take no new work now; the client may try again later. */
  private refuseOverloaded(req: SipRequest, flow: Flow, sendOnFlow: (data: Buffer) => boolean): void {
    this.sendResponseOnce(this.buildResponse(req, { status: 503, headers: [['Retry-After', String(OVERLOAD_RETRY_AFTER_S)]] }), req, flow, sendOnFlow);
  }

  /** A request refused past one of the sip.limits: counted by limit, logged at most once per interval, 503. */
  private shed(req: SipRequest, flow: Flow, sendOnFlow: (data: Buffer) => boolean, limit: string, fields: Record<string, unknown>, msg: string): void {
    this.metrics.overload.inc({ limit });
    this.logLimit(limit, fields, msg);
    this.refuseOverloaded(req, flow, sendOnFlow);
  }

  // ---- tracing (issue 7) -----------------------------------------------------------------------------------

  private traced(remoteAddress: string, msg: SipMessage | undefined, extra?: SipRequest): boolean {
    if (this.traceSet.size === 0) return false;
    if (this.traceSet.has(remoteAddress.toLowerCase())) return true;
    for (const m of [msg, extra]) {
      if (!m) continue;
      const candidates = [header(m, 'from'), header(m, 'to')];
      if (m.kind === 'request') candidates.push(m.uri);
      for (const c of candidates) {
        const aor = aorOf(c);
        if (aor !== undefined && this.traceSet.has(aor)) return true;
      }
    }
    return false;
  }

  private trace(dir: 'in' | 'out', flow: { transport: Transport }, remote: string, data: Buffer): void {
    this.logger.info({ sip: dir, transport: flow.transport, remote, text: redactSipText(data.toString('utf8')) }, dir === 'in' ? 'SIP message in' : 'SIP message out');
  }

  // ---- incoming ----------------------------------------------------------------------------------------------

  private onUdp(data: Buffer, remoteAddress: string, remotePort: number, tr: UdpTransport): void {
    // Phones keep NAT bindings open with datagrams of bare CRLFs (or nothing): not SIP, not an error either.
    if (isCrlfOnly(data)) return;
    // The answers to a fan-out's NOTIFYs: matched to their transactions without a flow (nothing replies to them).
    if (data.length > 4 && data[0] === 0x53 && data[1] === 0x49 && data[2] === 0x50 && data[3] === 0x2f /* SIP/ */) {
      try {
        const r = parseMessage(data, this.limits, 'match');
        if (r.ok && r.message.kind === 'response') {
          this.receiveResponse(r.message, data, 'udp', remoteAddress, remotePort);
          return;
        }
      } catch (err) {
        this.metrics.sipDropped.inc({ reason: 'internal' });
        this.logger.error({ transport: 'udp', remoteAddress, err: (err as Error).message }, 'SIP message handling failed');
        return;
      }
    }
    // FlowTable.udpFlow, with the socket's half of the id made once.
    const flow: Flow = {
      id: tr.flowIdPrefix + remoteAddress + '|' + remotePort, transport: 'udp',
      localAddress: tr.address, localPort: tr.port, remoteAddress, remotePort,
    };
    this.onMessage(data, flow, undefined, tr);
  }

  /** One whole message from any transport. Never throws: the socket handlers must survive any input. */
  private onMessage(data: Buffer, flow: Flow, conn?: FlowConnection, udp?: UdpTransport): void {
    try {
      this.receive(data, flow, conn, udp);
    } catch (err) {
      this.metrics.sipDropped.inc({ reason: 'internal' });
      this.logger.error({ transport: flow.transport, remoteAddress: flow.remoteAddress, err: (err as Error).message }, 'SIP message handling failed');
    }
  }

  private receive(data: Buffer, flow: Flow, conn: FlowConnection | undefined, udp: UdpTransport | undefined): void {
    const r = parseMessage(data, this.limits, 'match');
    if (r.ok && r.message.kind === 'response') {
      this.receiveResponse(r.message, data, flow.transport, flow.remoteAddress, flow.remotePort);
      return;
    }
    const send = this.replyPath(flow, conn, udp);
    if (!r.ok) {
      if (this.traced(flow.remoteAddress, r.request)) this.trace('in', flow, hostport(flow.remoteAddress, flow.remotePort), data);
      if (r.request && canAnswer(r.request)) {
        // §8.2.2 / §21.4.1: answer what we can, with a reason phrase that says what was wrong.
        this.logger.debug({ transport: flow.transport, remoteAddress: flow.remoteAddress, error: r.error }, 'malformed SIP request answered');
        this.applyReceived(r.request, flow);
        const res = this.buildResponse(r.request, { status: r.status, reason: r.error });
        this.sendResponseOnce(res, r.request, flow, send);
      } else {
        this.metrics.sipDropped.inc({ reason: 'malformed' });
        this.logger.debug({ transport: flow.transport, remoteAddress: flow.remoteAddress, error: r.error }, 'unanswerable SIP message dropped');
      }
      return;
    }
    const msg = r.message as SipRequest;
    if (this.traced(flow.remoteAddress, msg)) this.trace('in', flow, hostport(flow.remoteAddress, flow.remotePort), data);
    this.receiveRequest(msg, flow, send, udp);
  }

  /**
   * Where responses to a request from this flow go (§18.2.2): the same connection, or the UDP source address.
   * False when the connection is gone.
   */
  private replyPath(flow: Flow, conn: FlowConnection | undefined, udp: UdpTransport | undefined): (data: Buffer) => boolean {
    if (conn) return (data) => conn.send(data);
    // Symmetric response routing (RFC 3581 §4) whether or not the client asked for rport: SIP.js and phones
    // behind NAT put unreachable sent-by values in Via, and the source address is the one that works.
    return (data) => {
      udp?.send(data, flow.remoteAddress, flow.remotePort);
      return udp !== undefined;
    };
  }

  /** §18.2.2: the connection closed before we answered; over TCP open one to received + the sent-by port. */
  private respondOverNewConnection(data: Buffer, req: SipRequest, flow: Flow): void {
    const tcp = this.tcp[0];
    const top = header(req, 'via');
    const via = top === undefined ? null : parseVia(top);
    if (flow.transport !== 'tcp' || !tcp || via === null) {
      this.metrics.sipDropped.inc({ reason: 'flow-closed' });
      this.logger.debug({ transport: flow.transport, flow: flow.id }, 'response not sent: connection closed');
      return;
    }
    const received = via.params.received;
    const address = typeof received === 'string' && received !== '' ? stripBrackets(received) : flow.remoteAddress;
    const port = via.port ?? DEFAULT_SIP_PORT;
    void this.connectTcp(address, port).then((c) => {
      if (c && c.send(data)) return;
      this.metrics.sipDropped.inc({ reason: 'flow-closed' });
      this.logger.debug({ transport: 'tcp', address, port }, 'response not sent: connection closed and reconnect failed');
    });
  }

  /** RFC 3261 §18.2.1 and RFC 3581 §4: record the source address in the top Via (parsed already when given). */
  private applyReceived(req: SipRequest, flow: Flow, parsed?: Via | null): void {
    const vias = req.headers.get('via');
    if (!vias || vias.length === 0) return;
    const via = parsed !== undefined ? parsed : parseVia(vias[0]!);
    if (via === null) return;
    const hasRport = Object.prototype.hasOwnProperty.call(via.params, 'rport');
    const setReceived = hasRport || stripBrackets(via.host).toLowerCase() !== flow.remoteAddress.toLowerCase();
    const setRport = hasRport && (via.params.rport === null || via.params.rport === '');
    if (!setReceived && !setRport) return;
    const rport = String(flow.remotePort);
    const quick = withReceived(vias[0]!, setReceived ? flow.remoteAddress : undefined, setRport ? rport : undefined);
    if (quick !== undefined) {
      vias[0] = quick;
      return;
    }
    // With rport, received is added even when it equals the sent-by (RFC 3581 §4).
    if (setReceived) via.params.received = flow.remoteAddress;
    if (setRport) via.params.rport = rport;
    vias[0] = formatVia(via);
  }

  private receiveRequest(req: SipRequest, flow: Flow, sendOnFlow: (data: Buffer) => boolean, udp?: UdpTransport): void {
    // The key comes from the Via as the client sent it, before received/rport are added.
    const top = header(req, 'via');
    const topVia = top === undefined ? null : parseVia(top);
    const key = serverTransactionKey(req, flow.id, topVia);
    if (key === undefined) {
      this.metrics.sipDropped.inc({ reason: 'malformed' });
      return;
    }
    // We run no INVITE transactions; an ACK (for a final response we sent to an INVITE) is never answered.
    if (req.method === 'ACK') return;
    const existing = this.serverTxs.get(key);
    if (existing) {
      // §17.2.2: the last response again (Proceeding, Completed), over the flow the copy came on, which is the
      // transaction's flow (the key holds the flow id); nothing in Trying.
      const again = existing.retransmission();
      if (again !== undefined) this.sendServerResponse(again, req, flow, sendOnFlow);
      return;
    }
    this.applyReceived(req, flow, topVia);
    this.metrics.sipRequests.inc({ method: methodLabel(req.method), transport: flow.transport });

    if (this.stopping || !this.handler) {
      this.refuseOverloaded(req, flow, sendOnFlow);
      return;
    }
    const max = this.config.sip.limits.maxPendingRequests;
    const maxClient = this.config.sip.limits.maxClientTransactions;
    if (this.clientTxs.inFlightCount >= maxClient) {
      // NOTIFYs waiting for answers (Timer E/F) are the queue that grows when watchers stop answering or we fall
      // behind: take no new work until it drains, rather than let memory grow with it.
      this.shed(req, flow, sendOnFlow, 'clientTransactions', { clientTransactions: this.clientTxs.inFlightCount, limit: maxClient }, 'SIP request shed with 503: sip.limits.maxClientTransactions reached');
      return;
    }
    if (udp !== undefined && udp.queueDelay.shedding && (req.method === 'SUBSCRIBE' || req.method === 'PUBLISH')
      && tagOf(header(req, 'to') ?? '') === undefined) {
      // The UDP receive queue is older than sip.limits.maxQueueDelayMs (overload.ts): refuse what would start new
      // work, so that the requests already accepted, in-dialog refreshes and un-SUBSCRIBEs, and the answers to our
      // NOTIFYs are read before their senders' Timer E fires again.
      this.shed(req, flow, sendOnFlow, 'queueDelay', { queueDelayMs: Math.round(udp.queueDelay.lastDelayMs), limit: this.config.sip.limits.maxQueueDelayMs }, 'SIP request shed with 503: UDP queue delay above sip.limits.maxQueueDelayMs');
      return;
    }
    if (this.pending.size >= max) {
      // Shed load before queues grow (issue 4): the TU is not asked and no transaction state is kept, so a flood
      // costs a parse and a 503 each; a retransmission of a shed request simply gets another chance.
      this.shed(req, flow, sendOnFlow, 'pending', { pending: this.pending.size, limit: max }, 'SIP request shed with 503: sip.limits.maxPendingRequests reached');
      return;
    }

    const stx = this.serverTxs.create({ key, reliable: flow.transport !== 'udp', timers: this.timers });
    const facade = new EmbeddedServerTransaction(req, flow, stx, sendOnFlow, this);
    this.pending.add(facade);
    try {
      this.handler(facade);
    } catch (err) {
      this.logger.error({ method: req.method, err: (err as Error).message }, 'SIP request handler failed');
      if (!facade.responded) facade.respond({ status: 500 });
    }
  }

  /** @internal The TU answers a request (EmbeddedServerTransaction.respond). True once the answer is final. */
  answer(f: EmbeddedServerTransaction, spec: ResponseSpec): boolean {
    const stx = f.stx;
    if (stx.state === 'completed' || stx.state === 'terminated') return true;
    const res = this.buildResponse(f.request, spec);
    const data = serializeResponse(res);
    stx.sendResponse(data, res.status);
    this.sendServerResponse(data, f.request, f.flow, f.sendOnFlow);
    this.metrics.sipResponses.inc({ method: methodLabel(f.request.method), status: String(res.status) });
    if (res.status < 200) return false;
    this.pending.delete(f);
    return true;
  }

  /**
   * A response of a server transaction, to the flow of its request. The transaction keeps only the bytes (for
   * Timer J, 32 s on UDP), not this way back, so that at thousands of requests a second it holds no closures
   * over flows and requests. Over TCP a closed connection gets a new one, to the Via's address (§18.2.2).
   */
  private sendServerResponse(data: Buffer, req: SipRequest, flow: Flow, sendOnFlow: (data: Buffer) => boolean): void {
    if (this.traceSet.size > 0 && this.traced(flow.remoteAddress, undefined, req)) this.trace('out', flow, hostport(flow.remoteAddress, flow.remotePort), data);
    if (!sendOnFlow(data) && flow.transport !== 'udp') this.respondOverNewConnection(data, req, flow);
  }

  /** A response outside any transaction (a 400 to a malformed request): sent once, nothing to absorb. */
  private sendResponseOnce(res: SipResponse, req: SipRequest, flow: Flow, send: (data: Buffer) => boolean): void {
    const data = serializeResponse(res);
    if (this.traced(flow.remoteAddress, undefined, req)) this.trace('out', flow, hostport(flow.remoteAddress, flow.remotePort), data);
    if (!send(data)) this.metrics.sipDropped.inc({ reason: 'flow-closed' });
    this.metrics.sipResponses.inc({ method: methodLabel(req.method), status: String(res.status) });
  }

  /** §8.2.6.2: Via (all values, in order), From, To (+ tag), Call-ID and CSeq come from the request. */
  private buildResponse(req: SipRequest, spec: ResponseSpec): SipResponse {
    const headers: HeaderMap = new Map();
    const vias = headerAll(req, 'via');
    if (vias.length > 0) headers.set('via', [...vias]);
    const from = header(req, 'from');
    if (from !== undefined) headers.set('from', [from]);
    const to = header(req, 'to');
    if (to !== undefined) {
      // §8.2.6.2: every response but 100 to a request without a To-tag carries one; the TU's (dialog-creating)
      // tag when it gave one, else a fresh one (our own 400s and 503s, and the TU's refusals).
      const tagged = spec.status > 100 && tagOf(to) === undefined ? `${to};tag=${spec.toTag ?? randomHex(8)}` : to;
      headers.set('to', [tagged]);
    }
    const callId = header(req, 'call-id');
    if (callId !== undefined) headers.set('call-id', [callId]);
    const cseq = header(req, 'cseq');
    if (cseq !== undefined) headers.set('cseq', [cseq]);
    for (const [name, value] of spec.headers ?? []) {
      const k = name.toLowerCase();
      if (k === 'content-length' || k === 'via' || k === 'from' || k === 'to' || k === 'call-id' || k === 'cseq') continue;
      appendHeader(headers, k, value);
    }
    return {
      kind: 'response', status: spec.status, reason: spec.reason || reasonPhrase(spec.status), version: 'SIP/2.0',
      headers, body: toBuffer(spec.body),
    };
  }

  /**
   * A response, parsed with the 'match' checks: what §17.1.3 matching needs (top Via branch, CSeq method). One
   * that matches no transaction is discarded (§18.1.2) after the full checks, so the drop is counted as malformed
   * or stray as before.
   */
  private receiveResponse(res: SipResponse, data: Buffer, transport: Transport, remoteAddress: string, remotePort: number): void {
    const top = header(res, 'via');
    const branch = top === undefined ? undefined : viaBranch(top);
    const cseq = header(res, 'cseq');
    const cs = cseq === undefined ? null : parseCSeq(cseq);
    const tx = branch !== undefined && cs !== null ? this.clientTxs.get(clientTransactionKey(branch, cs.method)) : undefined;
    if (tx) {
      if (this.traced(remoteAddress, res)) this.trace('in', { transport }, hostport(remoteAddress, remotePort), data);
      tx.receiveResponse(res);
      return;
    }
    const full = parseMessage(data, this.limits);
    if (!full.ok) {
      if (this.traced(remoteAddress, undefined)) this.trace('in', { transport }, hostport(remoteAddress, remotePort), data);
      this.metrics.sipDropped.inc({ reason: 'malformed' });
      this.logger.debug({ transport, remoteAddress, error: full.error }, 'unanswerable SIP message dropped');
      return;
    }
    if (this.traced(remoteAddress, res)) this.trace('in', { transport }, hostport(remoteAddress, remotePort), data);
    this.metrics.sipDropped.inc({ reason: 'stray-response' });
  }

  private onConnectionClosed(conn: FlowConnection): void {
    const set = this.txByFlow.get(conn.flow.id);
    if (!set) return;
    this.txByFlow.delete(conn.flow.id);
    for (const tx of set) tx.transportError();
  }

  // ---- outgoing requests -------------------------------------------------------------------------------------

  // The path of every NOTIFY of a fan-out: synchronous unless a name must be resolved or a TCP connection opened,
  // so a UDP NOTIFY to a known flow is built, sent and its transaction started in the sendRequest call itself.
  sendRequest(spec: DialogRequestSpec): Promise<RequestOutcome> {
    try {
      if (this.stopping) return Promise.resolve(transportError().outcome);
      const route = this.dialogRoute(spec);
      if (route === undefined) {
        // A remote target nobody could parse (taken from a hostile Contact): fail like a transport that cannot carry it.
        this.logger.debug({ method: spec.method }, 'SIP request not sent: unusable Request-URI');
        return Promise.resolve({ status: 503, reason: 'Unusable Request-URI', local: 'transport-error' });
      }
      const now = this.targetNow(spec, route.nextHop);
      if (now !== undefined) return now.kind === 'fail' ? Promise.resolve(now.outcome) : this.dispatch(spec, route, now);
      return this.resolveTarget(spec, route.nextHop).then(
        (target) => {
          if (target.kind === 'fail') return target.outcome;
          if (this.stopping) return transportError().outcome;
          return this.dispatch(spec, route, target);
        },
        (err: Error) => {
          this.logger.debug({ method: spec.method, err: err.message }, 'no route for SIP request');
          return transportError().outcome;
        },
      );
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * §12.2.1.1: a strict first route becomes the Request-URI and the remote target goes last in the Route set;
   * §8.1.2: the next hop is the first Route when there is one, else the Request-URI. Undefined when the
   * Request-URI is unusable.
   */
  private dialogRoute(spec: DialogRequestSpec): DialogRoute | undefined {
    let requestUri = spec.requestUri;
    let routes: readonly string[] = spec.routeSet;
    let nextHop = spec.requestUri;
    const first = routes[0];
    if (first !== undefined) {
      let fr = this.firstRoutes.get(first);
      if (fr === undefined) {
        const uri = parseNameAddr(first)?.uri;
        const u = uri === undefined ? null : parseUri(uri);
        fr = { uri, strict: u !== null && !Object.prototype.hasOwnProperty.call(u.params, 'lr') };
        if (this.firstRoutes.size >= DERIVED_CACHE_MAX) this.firstRoutes.clear();
        this.firstRoutes.set(first, fr);
      }
      if (fr.uri !== undefined) {
        nextHop = fr.uri;
        if (fr.strict) {
          requestUri = fr.uri;
          routes = [...routes.slice(1), `<${spec.requestUri}>`];
        }
      }
    }
    const wireUri = asRequestUri(requestUri);
    return wireUri === undefined ? undefined : { requestUri: wireUri, routes, nextHop };
  }

  /** Build, send and start the client transaction of an in-dialog request to a resolved target. */
  private dispatch(spec: DialogRequestSpec, route: DialogRoute, target: UdpTarget | ConnTarget): Promise<RequestOutcome> {
    const transport: Transport = target.kind === 'udp' ? 'udp' : target.conn.flow.transport;
    const branch = newBranch();
    const data = this.serializeDialogRequest(spec, route, this.viaPrefix(transport) + branch);
    const isNotify = spec.method === 'NOTIFY';
    const traced = this.traceSet.size > 0 && this.traceSetMatchesOut(target, spec, route);
    const tx = this.clientTxs.create({
      key: clientTransactionKey(branch, spec.method),
      request: data,
      reliable: transport !== 'udp',
      timers: this.timers,
      send: target.kind === 'udp'
        ? (d: Buffer, report?: (ok: boolean) => void) => {
            if (traced) this.trace('out', { transport }, hostport(target.address, target.port), d);
            target.transport.send(d, target.address, target.port, report);
            return undefined;
          }
        : (d: Buffer) => {
            if (traced) this.trace('out', { transport }, hostport(target.conn.flow.remoteAddress, target.conn.flow.remotePort), d);
            return target.conn.send(d);
          },
      ...(isNotify ? { onRetransmit: this.countNotifyRetransmission } : {}),
    });
    if (target.kind === 'conn') {
      const id = target.conn.flow.id;
      let set = this.txByFlow.get(id);
      if (!set) this.txByFlow.set(id, (set = new Set()));
      set.add(tx);
      void tx.outcome.then(() => {
        const s = this.txByFlow.get(id);
        s?.delete(tx);
        if (s && s.size === 0) this.txByFlow.delete(id);
      });
    }
    if (isNotify) this.metrics.notifySent.inc({ event: this.eventLabel(spec.headers) });
    tx.start();
    return tx.outcome;
  }

  private readonly countNotifyRetransmission = (): void => {
    this.metrics.notifyRetransmitted.inc();
  };

  /** Trace matching for an outgoing request (only called when log.traceSip is set). */
  private traceSetMatchesOut(target: UdpTarget | ConnTarget, spec: DialogRequestSpec, route: DialogRoute): boolean {
    const remoteAddress = target.kind === 'udp' ? target.address : target.conn.flow.remoteAddress;
    const headers: HeaderMap = new Map([['to', [spec.to]], ['from', [spec.from]]]);
    return this.traced(remoteAddress, { kind: 'request', method: spec.method, uri: route.requestUri, version: 'SIP/2.0', headers, body: Buffer.alloc(0) });
  }

  /** The package name of the first Event header, for the notifySent label ('unknown' when there is none). */
  private eventLabel(headers: ReadonlyArray<[string, string]>): string {
    for (const [name, value] of headers) {
      if (headerName(name).lower !== 'event') continue;
      let label = this.eventLabels.get(value);
      if (label === undefined) {
        label = parseEvent(value)?.name ?? 'unknown';
        if (this.eventLabels.size >= DERIVED_CACHE_MAX) this.eventLabels.clear();
        this.eventLabels.set(value, label);
      }
      return label;
    }
    return 'unknown';
  }

  /** `SIP/2.0/<T> host:port;rport;branch=` for our Via on a transport (§8.1.1.7, RFC 3581 §3). */
  private viaPrefix(transport: Transport): string {
    let v = this.viaPrefixes.get(transport);
    if (v === undefined) {
      const me = this.listenerFor(transport);
      v = `SIP/2.0/${transport.toUpperCase()} ${hostport(me.host, me.port)};rport;branch=`;
      if (this.ready) this.viaPrefixes.set(transport, v);
    }
    return v;
  }

  /**
   * The request's bytes, written straight from the spec: Via, Max-Forwards, Route, To, From, Call-ID, CSeq, then
   * the TU's headers in order (RFC 3261 §8.1.1), Content-Length last; the same bytes serializeRequest makes of
   * the equivalent header map. TU headers that would join one of ours, or repeat each other, take that path.
   */
  private serializeDialogRequest(spec: DialogRequestSpec, route: DialogRoute, via: string): Buffer {
    const extra = spec.headers;
    let grouped = false;
    for (let i = 0; i < extra.length && !grouped; i++) {
      const k = headerName(extra[i]![0]).lower;
      if (k === 'to' || k === 'from' || k === 'route' || k === 'max-forwards') grouped = true;
      for (let j = 0; j < i && !grouped; j++) if (headerName(extra[j]![0]).lower === k) grouped = true;
    }
    const body = toBuffer(spec.body);
    if (grouped) {
      const headers: HeaderMap = new Map();
      headers.set('via', [via]);
      headers.set('max-forwards', ['70']);
      if (route.routes.length > 0) headers.set('route', [...route.routes]);
      headers.set('to', [spec.to]);
      headers.set('from', [spec.from]);
      headers.set('call-id', [spec.callId]);
      headers.set('cseq', [`${spec.cseq} ${spec.method}`]);
      for (const [name, value] of extra) {
        const k = headerName(name).lower;
        if (k === 'content-length' || k === 'via' || k === 'cseq' || k === 'call-id') continue;
        appendHeader(headers, k, value);
      }
      return serializeRequest({ kind: 'request', method: spec.method, uri: route.requestUri, version: 'SIP/2.0', headers, body });
    }
    const method = safeValue(spec.method);
    let head = method + ' ' + safeUri(route.requestUri) + ' SIP/2.0\r\nVia: ' + safeValue(via) + '\r\nMax-Forwards: 70\r\n';
    for (const r of route.routes) head += 'Route: ' + safeValue(r) + '\r\n';
    head += 'To: ' + safeValue(spec.to) + '\r\nFrom: ' + safeValue(spec.from) + '\r\nCall-ID: ' + safeValue(spec.callId) +
      '\r\nCSeq: ' + spec.cseq + ' ' + method + '\r\n';
    for (const [name, value] of extra) {
      const n = headerName(name);
      const k = n.lower;
      if (k === 'content-length' || k === 'l' || k === 'via' || k === 'cseq' || k === 'call-id') continue;
      head += n.canonical + ': ' + safeValue(value) + '\r\n';
    }
    return finish(head, body);
  }

  /**
   * The target when it is known without waiting: the open flow (TCP/WS), the subscriber's source address or an
   * IP literal (UDP). Undefined when a name must be resolved or a connection opened (resolveTarget).
   */
  private targetNow(spec: DialogRequestSpec, nextHop: string): Target | undefined {
    if (spec.transport === 'tcp' || spec.transport === 'ws') {
      const conn = this.flows.get(spec.flowId);
      if (conn && conn.flow.transport === spec.transport) return { kind: 'conn', conn };
      if (spec.transport === 'ws') return noFlow(); // we cannot dial a browser
      return undefined;
    }
    const sock = this.udpSocketFor(spec.flowId);
    if (!sock) return transportError();
    if (spec.flowRemote && spec.flowRemote.port > 0) {
      return { kind: 'udp', transport: sock, address: spec.flowRemote.address, port: spec.flowRemote.port };
    }
    const dest = this.hopNow(nextHop);
    if (dest === undefined) return undefined;
    if (dest.kind !== 'fail') return { kind: 'udp', transport: sock, address: dest.address, port: dest.port };
    const flowAddr = spec.flowId !== undefined ? FlowTable.parseUdpFlowId(spec.flowId) : undefined;
    if (flowAddr) return { kind: 'udp', transport: sock, address: flowAddr.remoteAddress, port: flowAddr.remotePort };
    return dest;
  }

  /** UDP: the socket of the dialog's flow when we still have it, else the first UDP listener. */
  private udpSocketFor(flowId: string | undefined): UdpTransport | undefined {
    if (this.udp.length <= 1) return this.udp[0];
    const flowAddr = flowId !== undefined ? FlowTable.parseUdpFlowId(flowId) : undefined;
    return (flowAddr && this.udp.find((u) => u.port === flowAddr.localPort)) || this.udp[0];
  }

  /** §18.1.1 and RFC 5626 §5.3: the open flow first (TCP/WS), then the address of the next hop. */
  private async resolveTarget(spec: DialogRequestSpec, nextHop: string): Promise<Target> {
    if (spec.transport === 'tcp' || spec.transport === 'ws') {
      const conn = this.flows.get(spec.flowId);
      if (conn && conn.flow.transport === spec.transport) return { kind: 'conn', conn };
      if (spec.transport === 'ws') return noFlow(); // we cannot dial a browser
      const dest = await this.resolveHop(nextHop);
      if (dest.kind === 'fail') return dest;
      const conn2 = await this.connectTcp(dest.address, dest.port);
      return conn2 ? { kind: 'conn', conn: conn2 } : transportError();
    }
    // UDP: the socket of the dialog's flow when we still have it, else the first UDP listener.
    const flowAddr = spec.flowId !== undefined ? FlowTable.parseUdpFlowId(spec.flowId) : undefined;
    const sock = (flowAddr && this.udp.find((u) => u.port === flowAddr.localPort)) || this.udp[0];
    if (!sock) return transportError();
    if (spec.flowRemote && spec.flowRemote.port > 0) {
      return { kind: 'udp', transport: sock, address: spec.flowRemote.address, port: spec.flowRemote.port };
    }
    const dest = await this.resolveHop(nextHop);
    if (dest.kind !== 'fail') return { kind: 'udp', transport: sock, address: dest.address, port: dest.port };
    if (flowAddr) return { kind: 'udp', transport: sock, address: flowAddr.remoteAddress, port: flowAddr.remotePort };
    return dest;
  }

  /**
   * An open TCP connection to address:port, reused when there is one (§18.1.1); concurrent requests to the same
   * peer (a phone with 30 BLF keys after a restart) share one connection attempt instead of opening 30.
   */
  private connectTcp(address: string, port: number): Promise<FlowConnection | undefined> {
    const existing = this.flows.findTo('tcp', address, port);
    if (existing) return Promise.resolve(existing);
    const tcp = this.tcp[0];
    if (!tcp) return Promise.resolve(undefined);
    const key = hostport(address, port);
    let p = this.connecting.get(key);
    if (!p) {
      p = tcp.connect(address, port, timerF(this.timers)).then(
        (c) => c,
        (err: Error) => {
          this.logger.debug({ transport: 'tcp', address, port, err: err.message }, 'TCP connect for SIP request failed');
          return undefined;
        },
      ).finally(() => this.connecting.delete(key));
      this.connecting.set(key, p);
    }
    return p;
  }

  /** host:port of a SIP URI when it needs no lookup: an IP literal, or a failure; undefined for a name. */
  private hopNow(uri: string): { kind: 'addr'; address: string; port: number } | { kind: 'fail'; outcome: RequestOutcome } | undefined {
    const u = parseUri(uri);
    if (!u || (u.scheme !== 'sip' && u.scheme !== 'sips')) return noFlow();
    const host = stripBrackets(u.host);
    const port = u.port ?? DEFAULT_SIP_PORT;
    if (isIP(host) !== 0) return { kind: 'addr', address: host, port };
    if (/\.invalid\.?$/i.test(host) || host.toLowerCase() === 'invalid') return noFlow();
    return undefined;
  }

  /** host:port of a SIP URI: IP literals as they are, names through dns.lookup, `.invalid` never (RFC 6761 §6.4). */
  private async resolveHop(uri: string): Promise<{ kind: 'addr'; address: string; port: number } | { kind: 'fail'; outcome: RequestOutcome }> {
    const now = this.hopNow(uri);
    if (now !== undefined) return now;
    const u = parseUri(uri)!;
    const port = u.port ?? DEFAULT_SIP_PORT;
    try {
      const r = await lookup(stripBrackets(u.host));
      return { kind: 'addr', address: r.address, port };
    } catch {
      return transportError();
    }
  }
}

export function createEmbeddedEngine(opts: EmbeddedEngineOptions): SipEngine {
  return new EmbeddedEngine(opts);
}
