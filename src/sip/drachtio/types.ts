// Local, strict declarations of the parts of drachtio-srf 5.0.x that the adapter uses. The package's own
// lib/@types/index.d.ts is thin and partly wrong (connect() typed as a Promise, no srf.subscribe/publish, a
// Dialog without id), so we do not import it: loadSrf() requires the CommonJS module and casts it to these shapes.
// Every shape below was read from drachtio-srf 5.0.29 lib/*.js; the file and function are named where it matters.
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';

/** lib/sip-parser/message.js: headers is an object of lower-cased full names (compact forms i m e l c f s k t v
 *  expanded; `o` and `u` are NOT), several lines of one header joined with ','. `raw` is the text as received. */
export interface DrachtioSipMessage {
  method?: string;
  uri?: string;
  status?: number;
  reason?: string;
  version?: string;
  headers: Record<string, string>;
  /** Cut by JS characters, not bytes (parser.js parseMessage): do not trust it for non-ASCII bodies. */
  body?: string;
  raw?: string;
  get(name: string): string | undefined;
  has(name: string): boolean;
}

/** lib/request.js, fields set by `set meta` from the wire tokens of a `sip|network|...` message. */
export interface DrachtioRequest extends EventEmitter {
  readonly method: string;
  readonly uri: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly msg: DrachtioSipMessage;
  /** The SIP text as drachtio-server delivered it (SipMessage.raw). */
  readonly raw?: string;
  /** 'network' for requests from the wire. */
  readonly source?: string;
  readonly source_address: string;
  readonly source_port: number;
  /** 'udp' | 'tcp' | 'tls' | 'ws' | 'wss' as drachtio-server reports it. */
  readonly protocol: string;
  readonly stackTxnId: string;
  /** `Call-ID;from-tag=<UAC tag>` when the request arrived inside a dialog drachtio-server holds, else ''. */
  readonly stackDialogId?: string;
  /** `recvAddr:recvPort`, the local SIP address it arrived on (newer servers only). */
  readonly receivedOn?: string;
  get(name: string): string | undefined;
  has(name: string): boolean;
}

export interface DrachtioSendOptions {
  /** Header name → value, written verbatim (names are not normalized by SipMessage(options)). */
  headers?: Record<string, string>;
  body?: string;
}

/** lib/response.js send(status, [reason], [opts], [cb(err, sentMsg)]). `cb` gets the echo of the response as
 *  drachtio-server put it on the wire (with its To-tag and Contact). */
export interface DrachtioResponse extends EventEmitter {
  readonly finalResponseSent: boolean;
  send(status: number, reason: string | undefined, opts: DrachtioSendOptions, cb?: (err: unknown, sent?: DrachtioSipMessage) => void): void;
}

export type DrachtioNext = (err?: unknown) => void;
export type DrachtioMiddleware = (req: DrachtioRequest, res: DrachtioResponse, next: DrachtioNext) => void;

/** srf.request(uri, opts, cb): `stackDialogId` sends `sip||<dialogId>` (in-dialog, drachtio-agent.js _makeRequest);
 *  `proxy` is the outbound-proxy/route URL (the optional 4th token of the `sip|` wire command). */
export interface DrachtioRequestOptions {
  method: string;
  headers?: Record<string, string>;
  body?: string;
  stackDialogId?: string;
  proxy?: string;
}

/** The request object srf.request hands back: the echo of what was sent; its 'response' events carry answers. */
export interface DrachtioSentRequest extends EventEmitter {
  readonly msg: DrachtioSipMessage;
  readonly stackTxnId: string;
  on(event: 'response', listener: (res: DrachtioIncomingResponse) => void): this;
}

export interface DrachtioIncomingResponse {
  readonly status: number;
  readonly reason: string;
  readonly msg: DrachtioSipMessage;
  get(name: string): string | undefined;
}

/** srf.connect options (drachtio-agent.js connect, wire-protocol.js connect). */
export interface DrachtioConnectOptions {
  host: string;
  port: number;
  secret: string;
  /** wire-protocol.js `_onConnectionGone`: with maxAttempts 1 srf never reconnects by itself. */
  reconnect?: { maxAttempts?: number; retryMaxDelay?: number | null; connectTimeout?: number };
  enablePing?: boolean;
  pingInterval?: number;
}

/** The Srf instance, as far as we use it. 'connect' arrives as (err, hostports, serverVersion, localHostports). */
export interface SrfInstance extends EventEmitter {
  /** Returns the internal app, NOT a Promise (proto.js app.connect). */
  connect(opts: DrachtioConnectOptions): unknown;
  use(method: string, fn: DrachtioMiddleware): unknown;
  use(fn: DrachtioMiddleware): unknown;
  request(uri: string, opts: DrachtioRequestOptions, cb: (err: (Error & { code?: string }) | null, req?: DrachtioSentRequest) => void): unknown;
  disconnect(): void;
  on(event: 'connect', listener: (err: Error | null, hostports?: string, serverVersion?: string, localHostports?: string) => void): this;
  on(event: 'error' | 'close' | 'reconnecting', listener: (...args: unknown[]) => void): this;
}

export interface SrfClass {
  new (tags?: string | string[]): SrfInstance;
  /** lib/sip-parser/message.js, usable without a server (used by the tests). */
  readonly SipMessage: new (raw?: string | Record<string, unknown>) => DrachtioSipMessage;
  readonly SipRequest: new (msg?: DrachtioSipMessage, meta?: Record<string, unknown>) => DrachtioRequest;
}

let cached: SrfClass | undefined;

/** drachtio-srf is CommonJS; require it through createRequire so its shipped typings never enter the build. */
export function loadSrf(): SrfClass {
  cached ??= createRequire(import.meta.url)('drachtio-srf') as SrfClass;
  return cached;
}
