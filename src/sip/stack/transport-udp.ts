// UDP transport (RFC 3261 §18): one datagram is one message. The socket is also the local end of every UDP flow
// that arrives on it, and the one NOTIFYs to those flows leave from.
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import type { Logger } from '../../log.js';
import { PROBE_INTERVAL_MS, QueueDelayGate } from './overload.js';

/** A queue-delay probe: 16 random bytes of this socket's own, then performance.now() at sending (float64). */
const PROBE_TOKEN_BYTES = 16;
const PROBE_BYTES = PROBE_TOKEN_BYTES + 8;

/**
 * Socket buffers asked of the kernel (it caps them at net.core.rmem_max / wmem_max). A NOTIFY fan-out sends
 * thousands of datagrams in one turn and their 200s arrive while we are still sending; with the default ~200 KiB
 * the answers overflow the buffer and come back only as Timer E retransmissions.
 */
export const UDP_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * dgram resolves every destination through dns.lookup, which answers even an IP literal a tick later with a
 * callback and async bookkeeping per datagram. Our destinations are nearly always literals (the source address of
 * the flow, RFC 3581 §4): answer those at once, so a send is one synchronous call; names still go to dns.lookup.
 */
function lookupLiteral(hostname: string, options: number | LookupOneOptions, callback: LookupCallback): void {
  const family = isIP(hostname);
  if (family !== 0) {
    callback(null, hostname, family);
    return;
  }
  dnsLookup(hostname, options as LookupOneOptions, callback);
}

export interface UdpTransportOptions {
  address: string;
  port: number;
  logger: Logger;
  /** Every datagram; the parser applies sip.maxMessageSize (and answers 513 when it can, RFC 3261 §21.5.14). */
  onDatagram(data: Buffer, remoteAddress: string, remotePort: number, transport: UdpTransport): void;
  /** sip.limits.maxQueueDelayMs (see overload.ts); 0 turns the probe off. */
  maxQueueDelayMs?: number;
}

export class UdpTransport {
  private socket: dgram.Socket | undefined;
  private v6 = false;
  address: string;
  port: number;
  private idPrefix: string | undefined;
  /** Whether requests that start new work should be shed now (overload.ts). */
  readonly queueDelay: QueueDelayGate;
  private probe: { socket: dgram.Socket; address: string; port: number; token: Buffer; timer: NodeJS.Timeout } | undefined;

  constructor(private readonly opts: UdpTransportOptions) {
    this.address = opts.address;
    this.port = opts.port;
    this.queueDelay = new QueueDelayGate(opts.maxQueueDelayMs ?? 0);
  }

  start(): Promise<{ address: string; port: number }> {
    this.v6 = isIPv6(this.opts.address);
    const socket = dgram.createSocket({ type: this.v6 ? 'udp6' : 'udp4', reuseAddr: false, lookup: lookupLiteral as never });
    this.socket = socket;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.socket = undefined;
        try { socket.close(); } catch { /* never bound */ }
        reject(err);
      };
      socket.once('error', onError);
      socket.bind(this.opts.port, this.opts.address, () => {
        socket.off('error', onError);
        for (const set of [(n: number) => socket.setRecvBufferSize(n), (n: number) => socket.setSendBufferSize(n)]) {
          try { set(UDP_SOCKET_BUFFER_BYTES); } catch { /* not permitted here: the default buffers still work */ }
        }
        // After bind, errors (e.g. ICMP port unreachable surfacing as send errors) must never crash the server.
        socket.on('error', (err) => this.opts.logger.warn({ transport: 'udp', err: err.message }, 'UDP socket error'));
        // A dual-stack (udp6 on ::) socket reports IPv4 peers as ::ffff:a.b.c.d; flows and Via keep the plain form.
        socket.on('message', (msg, rinfo) => {
          const p = this.probe;
          if (p !== undefined && rinfo.port === p.port && msg.length === PROBE_BYTES && rinfo.address === p.address
            && msg.compare(p.token, 0, PROBE_TOKEN_BYTES, 0, PROBE_TOKEN_BYTES) === 0) {
            this.queueDelay.observe(performance.now() - msg.readDoubleLE(PROBE_TOKEN_BYTES));
            return;
          }
          const a = rinfo.address;
          this.opts.onDatagram(msg, a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a, rinfo.port, this);
        });
        const a = socket.address();
        this.address = a.address;
        this.port = a.port;
        this.idPrefix = undefined;
        if ((this.opts.maxQueueDelayMs ?? 0) > 0) this.startProbe();
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  /** `udp|<local address>|<local port>|`: the socket's half of the id of every UDP flow on it (FlowTable.udpFlowId). */
  get flowIdPrefix(): string {
    return (this.idPrefix ??= `udp|${this.address}|${this.port}|`);
  }

  /**
   * Send one datagram. `done`, when given, learns whether the local send succeeded (false on a send error, which
   * the caller maps to transport-error, RFC 3261 §17.1.4); without it nothing is allocated to wait for the answer:
   * responses and retransmissions, whose failure changes nothing, are sent that way.
   */
  send(data: Buffer, address: string, port: number, done?: (ok: boolean) => void): void {
    const socket = this.socket;
    if (!socket) {
      done?.(false);
      return;
    }
    const to = this.v6 && isIPv4(address) ? `::ffff:${address}` : address;
    try {
      if (done === undefined) socket.send(data, port, to);
      else {
        socket.send(data, port, to, (err) => {
          if (err) this.opts.logger.debug({ transport: 'udp', address, port, err: err.message }, 'UDP send failed');
          done(!err);
        });
      }
    } catch (err) {
      this.opts.logger.debug({ transport: 'udp', address, port, err: (err as Error).message }, 'UDP send failed');
      done?.(false);
    }
  }

  /**
   * The probe socket sends from the listening address (loopback when that is a wildcard) to the listening socket;
   * a datagram is taken as a probe only from that address and port and with this socket's random token, so
   * nobody else can make us shed.
   */
  private startProbe(): void {
    const wildcard = this.address === '0.0.0.0' || this.address === '::';
    const to = wildcard ? (this.v6 ? '::1' : '127.0.0.1') : this.address;
    const socket = dgram.createSocket({ type: isIPv6(to) ? 'udp6' : 'udp4', lookup: lookupLiteral as never });
    socket.on('error', (err) => this.opts.logger.debug({ transport: 'udp', err: err.message }, 'queue-delay probe socket error'));
    socket.bind(0, to, () => {
      if (this.socket === undefined) {
        socket.close();
        return;
      }
      const token = randomBytes(PROBE_TOKEN_BYTES);
      const dest = this.port;
      const timer = setInterval(() => {
        const msg = Buffer.allocUnsafe(PROBE_BYTES);
        token.copy(msg, 0);
        msg.writeDoubleLE(performance.now(), PROBE_TOKEN_BYTES);
        try { socket.send(msg, dest, to); } catch { /* closing */ }
      }, PROBE_INTERVAL_MS);
      timer.unref();
      const a = socket.address();
      // The listening socket of a dual-stack udp6 sees an IPv4 probe as ::ffff:a.b.c.d.
      const seenAs = this.v6 && isIPv4(a.address) ? `::ffff:${a.address}` : a.address;
      this.probe = { socket, address: seenAs, port: a.port, token, timer };
    });
  }

  close(): Promise<void> {
    const probe = this.probe;
    this.probe = undefined;
    if (probe) {
      clearInterval(probe.timer);
      try { probe.socket.close(); } catch { /* already closed */ }
    }
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
