// TCP transport (RFC 3261 §18.3): a byte stream framed by the StreamFramer (CRLFCRLF ends the headers, then exactly
// Content-Length bytes of body). CRLFCRLF keep-alive pings are answered with a CRLF pong (RFC 5626 §4.4.1). Every
// connection, accepted or opened by us for a NOTIFY, is a flow in the FlowTable.
import net from 'node:net';
import type { Logger } from '../../log.js';
import type { Flow } from '../port.js';
import { StreamFramer } from './framer.js';
import type { FlowConnection, FlowTable } from './flows.js';

const CRLF = Buffer.from('\r\n');

/**
 * A peer that stops reading must not make us buffer without bound: past this many unsent bytes (in messages of
 * at most sip.maxMessageSize) the connection is closed and its transactions fail as transport errors (§17.1.4).
 */
export function maxWriteBacklog(limits: StreamLimits): number {
  return 16 * limits.maxMessageSize;
}

/** TCP keep-alive probes on idle SIP connections, so a peer that vanished without a FIN leaves the flow table. */
export const TCP_KEEPALIVE_MS = 30_000;

export interface StreamLimits {
  maxMessageSize: number;
  maxHeaders: number;
}

export interface TcpTransportOptions {
  address: string;
  port: number;
  flows: FlowTable;
  limits: StreamLimits;
  logger: Logger;
  /**
   * An accepted connection that has not delivered one whole SIP message (nor a keep-alive) by then is closed:
   * phones send at once, a scanner or a slow-loris holding a connection slot does not. 0 disables.
   */
  firstMessageTimeoutMs: number;
  /** Decide whether a new connection from this source may stay open (connection caps, RFC 3261 has none). */
  admit(remoteAddress: string): boolean;
  onMessage(data: Buffer, conn: FlowConnection): void;
  onFramingError(conn: FlowConnection, error: string): void;
  onClose(conn: FlowConnection): void;
}

/** Node reports IPv4 peers on dual-stack sockets as ::ffff:a.b.c.d; the flow keeps the plain IPv4 form. */
export function plainAddress(a: string | undefined): string {
  if (!a) return '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

class TcpConnection implements FlowConnection {
  readonly framer: StreamFramer;
  private closed = false;
  private readonly backlog: number;
  onFirstMessage: (() => void) | undefined;

  constructor(readonly flow: Flow, readonly socket: net.Socket, limits: StreamLimits, readonly outbound: boolean) {
    this.framer = new StreamFramer(limits);
    this.backlog = maxWriteBacklog(limits);
  }

  get open(): boolean {
    return !this.closed && !this.socket.destroyed && this.socket.writable;
  }

  markClosed(): void {
    this.closed = true;
  }

  send(data: Buffer): boolean {
    if (!this.open) return false;
    if (this.socket.writableLength > this.backlog) {
      this.close();
      return false;
    }
    this.socket.write(data);
    return true;
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

export class TcpTransport {
  private server: net.Server | undefined;
  address: string;
  port: number;

  constructor(private readonly opts: TcpTransportOptions) {
    this.address = opts.address;
    this.port = opts.port;
  }

  start(): Promise<{ address: string; port: number }> {
    const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.address, () => {
        server.off('error', reject);
        server.on('error', (err) => this.opts.logger.warn({ transport: 'tcp', err: err.message }, 'TCP server error'));
        const a = server.address() as net.AddressInfo;
        this.address = a.address;
        this.port = a.port;
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  private accept(socket: net.Socket): void {
    const remoteAddress = plainAddress(socket.remoteAddress);
    if (!this.opts.admit(remoteAddress)) {
      socket.destroy();
      return;
    }
    const conn = this.attach(socket, false);
    if (this.opts.firstMessageTimeoutMs > 0) {
      socket.setTimeout(this.opts.firstMessageTimeoutMs, () => {
        this.opts.logger.debug({ transport: 'tcp', flow: conn.flow.id, remoteAddress }, 'TCP connection closed: no SIP message in time');
        conn.close();
      });
      conn.onFirstMessage = () => socket.setTimeout(0);
    }
  }

  private attach(socket: net.Socket, outbound: boolean): TcpConnection {
    const flow: Flow = {
      id: this.opts.flows.newConnectionId('tcp'),
      transport: 'tcp',
      localAddress: plainAddress(socket.localAddress),
      localPort: socket.localPort ?? 0,
      remoteAddress: plainAddress(socket.remoteAddress),
      remotePort: socket.remotePort ?? 0,
    };
    const conn = new TcpConnection(flow, socket, this.opts.limits, outbound);
    this.opts.flows.add(conn);
    socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    socket.on('data', (chunk: Buffer) => {
      if (!conn.open) return;
      let r: ReturnType<StreamFramer['push']>;
      try {
        r = conn.framer.push(chunk);
      } catch (err) {
        this.opts.onFramingError(conn, (err as Error).message);
        conn.close();
        return;
      }
      for (let i = 0; i < r.pings; i++) socket.write(CRLF);
      if ((r.pings > 0 || r.messages.length > 0) && conn.onFirstMessage) {
        conn.onFirstMessage();
        conn.onFirstMessage = undefined;
      }
      for (const m of r.messages) this.opts.onMessage(m, conn);
      if (r.error) {
        // The stream cannot be resynchronised after a framing error (§18.3): drop the connection.
        this.opts.onFramingError(conn, r.error);
        conn.close();
      }
    });
    socket.on('error', (err) => this.opts.logger.debug({ transport: 'tcp', flow: flow.id, err: err.message }, 'TCP connection error'));
    socket.once('close', () => {
      conn.markClosed();
      this.opts.flows.remove(flow.id);
      this.opts.onClose(conn);
    });
    return conn;
  }

  /** Open a connection for a request we send (§18.1.1). Rejects on connect error or after timeoutMs. */
  connect(host: string, port: number, timeoutMs: number): Promise<FlowConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('connect timeout'));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(this.attach(socket, true));
      });
    });
  }

  /** Stop accepting; existing connections stay until closeAll(). */
  stopAccepting(): void {
    this.server?.close();
  }

  closeAll(): void {
    for (const c of this.opts.flows.all()) {
      if (c instanceof TcpConnection) c.close();
    }
  }
}
