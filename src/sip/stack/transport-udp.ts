// UDP transport (RFC 3261 §18): one datagram is one message. The socket is also the local end of every UDP flow
// that arrives on it, and the one NOTIFYs to those flows leave from.
import dgram from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import type { Logger } from '../../log.js';

/**
 * Socket buffers asked of the kernel (it caps them at net.core.rmem_max / wmem_max). A NOTIFY fan-out sends
 * thousands of datagrams in one turn and their 200s arrive while we are still sending; with the default ~200 KiB
 * the answers overflow the buffer and come back only as Timer E retransmissions.
 */
export const UDP_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

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

  constructor(private readonly opts: UdpTransportOptions) {
    this.address = opts.address;
    this.port = opts.port;
  }

  start(): Promise<{ address: string; port: number }> {
    this.v6 = isIPv6(this.opts.address);
    const socket = dgram.createSocket({ type: this.v6 ? 'udp6' : 'udp4', reuseAddr: false });
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
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  /** Send one datagram; resolves false on a local send error (the caller maps that to transport-error). */
  send(data: Buffer, address: string, port: number): Promise<boolean> {
    const socket = this.socket;
    if (!socket) return Promise.resolve(false);
    const to = this.v6 && isIPv4(address) ? `::ffff:${address}` : address;
    return new Promise((resolve) => {
      try {
        socket.send(data, port, to, (err) => {
          if (err) this.opts.logger.debug({ transport: 'udp', address, port, err: err.message }, 'UDP send failed');
          resolve(!err);
        });
      } catch (err) {
        this.opts.logger.debug({ transport: 'udp', address, port, err: (err as Error).message }, 'UDP send failed');
        resolve(false);
      }
    });
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
