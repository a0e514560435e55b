// WebSocket transport (RFC 7118): the client must offer the `sip` subprotocol (§4.1), each WebSocket message
// carries exactly one SIP message (§5.1), and Via says WS. Clients use `.invalid` hosts in Via and Contact, so the
// connection itself is the only way back to them (§5.2): it is a flow in the FlowTable.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import type { Logger } from '../../log.js';
import type { Flow } from '../port.js';
import type { FlowConnection, FlowTable } from './flows.js';
import { plainAddress, TCP_KEEPALIVE_MS } from './transport-tcp.js';

export const WS_SUBPROTOCOL = 'sip';

export interface WsTransportOptions {
  address: string;
  port: number;
  flows: FlowTable;
  maxMessageSize: number;
  logger: Logger;
  /** As for TCP: a WebSocket that sends no SIP message by then is closed. 0 disables. */
  firstMessageTimeoutMs: number;
  admit(remoteAddress: string): boolean;
  onMessage(data: Buffer, conn: FlowConnection): void;
  onClose(conn: FlowConnection): void;
}

class WsConnection implements FlowConnection {
  readonly outbound = false;
  constructor(readonly flow: Flow, readonly ws: WebSocket, private readonly backlog: number) {}

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(data: Buffer): boolean {
    if (!this.open) return false;
    // A client that stops reading is dropped rather than buffered without bound (as for TCP).
    if (this.ws.bufferedAmount > this.backlog) {
      this.ws.terminate();
      return false;
    }
    // SIP over WS is text (RFC 7118 §5.1 allows both; browsers expect text frames for UTF-8 SIP).
    this.ws.send(data, { binary: false });
    return true;
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1001);
    else this.ws.terminate();
  }
}

function offeredProtocols(req: http.IncomingMessage): string[] {
  const raw = req.headers['sec-websocket-protocol'];
  if (!raw) return [];
  return raw.split(',').map((p) => p.trim().toLowerCase()).filter(Boolean);
}

function refuse(socket: Duplex, status: number, reason: string): void {
  try {
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  } catch {
    // the peer is already gone
  }
  socket.destroy();
}

export class WsTransport {
  private http: http.Server | undefined;
  private wss: WebSocketServer | undefined;
  address: string;
  port: number;

  constructor(private readonly opts: WsTransportOptions) {
    this.address = opts.address;
    this.port = opts.port;
  }

  start(): Promise<{ address: string; port: number }> {
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.opts.maxMessageSize,
      clientTracking: true,
      handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
    });
    this.wss = wss;
    const server = http.createServer((_req, res) => {
      res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket' });
      res.end('SIP over WebSocket (RFC 7118): upgrade with subprotocol "sip"\n');
    });
    this.http = server;
    server.on('upgrade', (req, socket, head) => {
      socket.on('error', () => socket.destroy());
      const remoteAddress = plainAddress(req.socket.remoteAddress);
      if (!offeredProtocols(req).includes(WS_SUBPROTOCOL)) {
        this.opts.logger.debug({ transport: 'ws', remoteAddress }, 'WebSocket upgrade without subprotocol sip refused');
        refuse(socket, 400, 'Bad Request');
        return;
      }
      if (!this.opts.admit(remoteAddress)) {
        refuse(socket, 503, 'Service Unavailable');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws, req));
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.address, () => {
        server.off('error', reject);
        server.on('error', (err) => this.opts.logger.warn({ transport: 'ws', err: err.message }, 'WebSocket server error'));
        const a = server.address() as import('node:net').AddressInfo;
        this.address = a.address;
        this.port = a.port;
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  private attach(ws: WebSocket, req: http.IncomingMessage): void {
    const s = req.socket;
    const flow: Flow = {
      id: this.opts.flows.newConnectionId('ws'),
      transport: 'ws',
      localAddress: plainAddress(s.localAddress),
      localPort: s.localPort ?? 0,
      remoteAddress: plainAddress(s.remoteAddress),
      remotePort: s.remotePort ?? 0,
    };
    s.setKeepAlive(true, TCP_KEEPALIVE_MS);
    const conn = new WsConnection(flow, ws, 16 * this.opts.maxMessageSize);
    this.opts.flows.add(conn);
    let first = true;
    if (this.opts.firstMessageTimeoutMs > 0) {
      s.setTimeout(this.opts.firstMessageTimeoutMs, () => {
        this.opts.logger.debug({ transport: 'ws', flow: flow.id, remoteAddress: flow.remoteAddress }, 'WebSocket closed: no SIP message in time');
        ws.terminate();
      });
    }
    ws.on('message', (data: RawData) => {
      if (first) {
        first = false;
        s.setTimeout(0);
      }
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      this.opts.onMessage(buf, conn);
    });
    ws.on('error', (err) => this.opts.logger.debug({ transport: 'ws', flow: flow.id, err: err.message }, 'WebSocket error'));
    ws.once('close', () => {
      this.opts.flows.remove(flow.id);
      this.opts.onClose(conn);
    });
  }

  stopAccepting(): void {
    this.http?.close();
  }

  closeAll(): void {
    for (const ws of this.wss?.clients ?? []) ws.terminate();
    this.wss?.close();
    this.http?.closeAllConnections();
  }
}
