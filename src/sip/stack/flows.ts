// The flow table (RFC 5626 §3, RFC 3261 §18.2.2): every connection (TCP, WS) is a flow with an id, and every UDP
// (local socket, remote address) pair is one too. Responses and in-dialog requests go back over the flow the
// request came on, which is the only way to reach WebSocket clients (`.invalid` hosts, RFC 7118 §5) and NATed
// phones. Connection flows carry a per-process boot id, so a flow id stored before a restart never matches a new
// connection that happens to get the same sequence number.
import { randomBytes } from 'node:crypto';
import type { Flow, Transport } from '../port.js';

/** One open connection (TCP or WS) the engine can write SIP messages to. */
export interface FlowConnection {
  readonly flow: Flow;
  /** Write one SIP message; false when the connection is gone. */
  send(data: Buffer): boolean;
  close(): void;
  readonly open: boolean;
  /** True when we opened it (an outbound TCP connection for a NOTIFY). */
  readonly outbound: boolean;
}

export interface UdpFlowAddress {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

const SEP = '|';

export class FlowTable {
  private readonly connections = new Map<string, FlowConnection>();
  private readonly perSource = new Map<string, number>();
  /** transport|address|port -> ids of the connections to that remote end, for reuse without a scan. */
  private readonly byRemote = new Map<string, Set<string>>();
  private seq = 0;
  readonly bootId: string;

  constructor(bootId: string = randomBytes(4).toString('hex')) {
    this.bootId = bootId;
  }

  /** Id for a new connection flow: transport, boot id, sequence number. */
  newConnectionId(transport: Exclude<Transport, 'udp'>): string {
    this.seq += 1;
    return `${transport}${SEP}${this.bootId}${SEP}${this.seq}`;
  }

  /** A UDP flow is the pair (local socket, remote address); its id encodes both so it survives a restart. */
  static udpFlowId(a: UdpFlowAddress): string {
    return ['udp', a.localAddress, a.localPort, a.remoteAddress, a.remotePort].join(SEP);
  }

  static parseUdpFlowId(id: string): UdpFlowAddress | undefined {
    const p = id.split(SEP);
    if (p.length !== 5 || p[0] !== 'udp') return undefined;
    const localPort = Number(p[2]);
    const remotePort = Number(p[4]);
    if (!Number.isInteger(localPort) || !Number.isInteger(remotePort) || remotePort <= 0 || remotePort > 65535) return undefined;
    return { localAddress: p[1]!, localPort, remoteAddress: p[3]!, remotePort };
  }

  static udpFlow(a: UdpFlowAddress): Flow {
    return { id: FlowTable.udpFlowId(a), transport: 'udp', ...a };
  }

  private static remoteKey(transport: Transport, address: string, port: number): string {
    return `${transport}${SEP}${address}${SEP}${port}`;
  }

  add(conn: FlowConnection): void {
    const f = conn.flow;
    this.connections.set(f.id, conn);
    const src = f.remoteAddress;
    this.perSource.set(src, (this.perSource.get(src) ?? 0) + 1);
    const rk = FlowTable.remoteKey(f.transport, f.remoteAddress, f.remotePort);
    let ids = this.byRemote.get(rk);
    if (!ids) this.byRemote.set(rk, (ids = new Set()));
    ids.add(f.id);
  }

  remove(id: string): void {
    const conn = this.connections.get(id);
    if (!conn) return;
    this.connections.delete(id);
    const f = conn.flow;
    const rk = FlowTable.remoteKey(f.transport, f.remoteAddress, f.remotePort);
    const ids = this.byRemote.get(rk);
    ids?.delete(id);
    if (ids && ids.size === 0) this.byRemote.delete(rk);
    const src = conn.flow.remoteAddress;
    const n = (this.perSource.get(src) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(src);
    else this.perSource.set(src, n);
  }

  /** The open connection of a flow id, or undefined (unknown id, closed, or a UDP flow). */
  get(id: string | undefined): FlowConnection | undefined {
    if (id === undefined) return undefined;
    const c = this.connections.get(id);
    return c && c.open ? c : undefined;
  }

  /** An open connection to remote address:port on a transport (reuse for RFC 3261 §18.1.1 / §18.2.2). */
  findTo(transport: Transport, remoteAddress: string, remotePort: number): FlowConnection | undefined {
    const ids = this.byRemote.get(FlowTable.remoteKey(transport, remoteAddress, remotePort));
    if (!ids) return undefined;
    for (const id of ids) {
      const c = this.connections.get(id);
      if (c && c.open) return c;
    }
    return undefined;
  }

  connectionsFrom(remoteAddress: string): number {
    return this.perSource.get(remoteAddress) ?? 0;
  }

  get size(): number {
    return this.connections.size;
  }

  all(): FlowConnection[] {
    return [...this.connections.values()];
  }
}
