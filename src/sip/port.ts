// The engine port: the narrow interface between the SIP faces of presence (src/sip/*.ts) and a SIP engine
// (the embedded one in src/sip/stack, or drachtio-srf in src/sip/drachtio). An engine receives requests and hands
// them over as server transactions, answers them, and sends requests inside a stored dialog (NOTIFY), reporting
// the final response. Everything else (dialogs, subscriptions, bodies) lives above this line.
import type { SipRequest, SipResponse, Transport } from './stack/message.js';

export type { Transport };

/** Where a request came from and how to reach that peer again over the same connection (RFC 5626 flows). */
export interface Flow {
  /** Stable id of the flow: for TCP/WS one connection, for UDP local socket + remote address. */
  id: string;
  transport: Transport;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

export interface ResponseSpec {
  status: number;
  /** Reason phrase; the engine supplies the standard one when absent. */
  reason?: string;
  /** To-tag to add when the request's To has none (RFC 3261 §8.2.6.2). */
  toTag?: string;
  /** Extra headers, in order. Via, From, To, Call-ID, CSeq and Content-Length are the engine's job. */
  headers?: Array<[string, string]>;
  body?: Buffer | string;
}

export interface ServerTransaction {
  readonly request: SipRequest;
  readonly flow: Flow;
  /** Send a final response. Later calls are ignored; retransmitted requests get the last response again. */
  respond(response: ResponseSpec): void;
  readonly responded: boolean;
}

/** An in-dialog request (NOTIFY) built from a stored dialog (RFC 3261 §12.2.1.1). */
export interface DialogRequestSpec {
  method: string;
  /** The remote target (the subscriber's Contact URI). */
  requestUri: string;
  callId: string;
  /** From header value with our tag, e.g. `<sip:201@example.com>;tag=abc`. */
  from: string;
  /** To header value with the subscriber's tag. */
  to: string;
  cseq: number;
  /** Route header values in the order they are to be sent (the Record-Route set, reversed for a UAS). */
  routeSet: string[];
  transport: Transport;
  /** The flow the dialog was created on; used when it is still open and the target cannot be reached directly. */
  flowId?: string;
  /** Last known source address of the subscriber, used for UDP when the target host is `.invalid` or NATed. */
  flowRemote?: { address: string; port: number };
  /** Event, Subscription-State, Content-Type, Contact and the like, in order. */
  headers: Array<[string, string]>;
  body?: Buffer | string;
}

export interface RequestOutcome {
  status: number;
  reason: string;
  response?: SipResponse;
  /** Set when the status was produced locally: Timer F fired, the transport failed, or no route to the flow. */
  local?: 'timeout' | 'transport-error' | 'no-flow';
}

export interface ListeningAddress {
  transport: Transport;
  address: string;
  port: number;
}

export interface SipEngine {
  readonly kind: 'embedded' | 'drachtio';
  start(): Promise<ListeningAddress[]>;
  /** Stop taking new requests, let transactions in flight finish (bounded), close sockets. */
  stop(): Promise<void>;
  /** True once listening (embedded) or connected to the drachtio-server. */
  isReady(): boolean;
  listening(): ListeningAddress[];
  onRequest(handler: (tx: ServerTransaction) => void): void;
  sendRequest(spec: DialogRequestSpec): Promise<RequestOutcome>;
  /** Our Contact URI as seen by a peer on this transport (uses sip.publicAddress when set). */
  contactUri(transport: Transport): string;
  /**
   * Optional: whether a connection flow (TCP/WS) is still open. The notifier uses it to replace the subscription
   * of a closed WebSocket as soon as the same watcher subscribes again (a browser reload), rather than after a
   * NOTIFY to it has failed. Engines that cannot tell leave it out.
   */
  isFlowOpen?(flowId: string): boolean;
}
