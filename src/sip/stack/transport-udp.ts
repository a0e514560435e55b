// UDP transport (RFC 3261 §18): one datagram is one message. The socket is also the local end of every UDP flow
// that arrives on it, and the one NOTIFYs to those flows leave from.
import dgram from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import type { Logger } from '../../log.js';

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
}

export class UdpTransport {
  private socket: dgram.Socket | undefined;
  private v6 = false;
  address: string;
  port: number;
  private idPrefix: string | undefined;

  constructor(private readonly opts: UdpTransportOptions) {
    this.address = opts.address;
    this.port = opts.port;
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
          const a = rinfo.address;
          this.opts.onDatagram(msg, a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a, rinfo.port, this);
        });
        const a = socket.address();
        this.address = a.address;
        this.port = a.port;
        this.idPrefix = undefined;
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

  close(): Promise<void> {
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
