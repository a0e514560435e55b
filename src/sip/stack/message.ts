// The SIP message model shared by the parser, the transports, the transactions and the SIP faces of presence.
// Header names are stored lower-cased in their full form (compact forms such as `o` are mapped to `event` by the
// parser, RFC 3261 §7.3.3, RFC 6665 §8.4). Via, Contact, Route and Record-Route values are split on top-level
// commas, so each array element is one value (RFC 3261 §7.3.1); every other header keeps one element per line.

export type Transport = 'udp' | 'tcp' | 'ws';

export type HeaderMap = Map<string, string[]>;

export interface SipRequest {
  kind: 'request';
  method: string;
  /** Request-URI exactly as received. */
  uri: string;
  version: string;
  headers: HeaderMap;
  /** Exactly Content-Length bytes (or the rest of the datagram when Content-Length is absent on UDP). */
  body: Buffer;
}

export interface SipResponse {
  kind: 'response';
  status: number;
  reason: string;
  version: string;
  headers: HeaderMap;
  body: Buffer;
}

export type SipMessage = SipRequest | SipResponse;

/** First value of a header, or undefined. `name` is the full lower-case name. */
export function header(msg: { headers: HeaderMap }, name: string): string | undefined {
  const v = msg.headers.get(name);
  return v === undefined ? undefined : v[0];
}

/** All values of a header (already split on commas for the multi-value headers). */
export function headerAll(msg: { headers: HeaderMap }, name: string): string[] {
  return msg.headers.get(name) ?? [];
}
