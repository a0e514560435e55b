// Outbound guard for the fuzz tests. A mutated Contact, Record-Route or Via can name any host, and the server
// (in this process) may legitimately try to reach it: a NOTIFY whose TCP flow has closed is sent to the remote
// target (RFC 3261 §18.1.1), a response whose connection is gone goes to the Via's received/port (§18.2.2).
// Tests may only ever talk to 127.0.0.1, so while the guard is on, DNS look-ups of names and TCP connections to
// anything but the listed loopback ports fail at once, and each attempt is recorded.
import dns from 'node:dns';
import net from 'node:net';
import { syncBuiltinESMExports } from 'node:module';

export interface OutboundGuard {
  /** Ports on 127.0.0.1 a TCP connection may go to (the server's own listeners). */
  allowPorts: Set<number>;
  /** What was refused, as "dns <name>" or "tcp <host>:<port>". */
  blocked: string[];
  uninstall(): void;
}

type AnyFn = (...args: any[]) => any;

export function installOutboundGuard(): OutboundGuard {
  const guard: OutboundGuard = { allowPorts: new Set(), blocked: [], uninstall: () => {} };
  const origLookup = dns.promises.lookup as AnyFn;
  const origCbLookup = dns.lookup as AnyFn;
  const origConnect = net.Socket.prototype.connect as AnyFn;
  const record = (what: string) => { if (guard.blocked.length < 1000) guard.blocked.push(what); };
  const loopbackLiteral = (h: string) => h === '127.0.0.1' || h === '::1' || h === '::ffff:127.0.0.1';

  (dns.promises as { lookup: AnyFn }).lookup = async function guardedLookup(host: string, ...rest: unknown[]) {
    if (loopbackLiteral(String(host))) return origLookup.call(dns.promises, host, ...rest);
    record(`dns ${String(host).slice(0, 80)}`);
    throw Object.assign(new Error(`DNS look-up refused by the fuzz test's outbound guard`), { code: 'ENOTFOUND' });
  };
  (dns as { lookup: AnyFn }).lookup = function guardedCbLookup(host: string, ...rest: unknown[]) {
    if (loopbackLiteral(String(host))) return origCbLookup.call(dns, host, ...rest);
    record(`dns ${String(host).slice(0, 80)}`);
    const cb = rest[rest.length - 1] as AnyFn;
    const err = Object.assign(new Error('DNS look-up refused by the fuzz test\'s outbound guard'), { code: 'ENOTFOUND' });
    process.nextTick(() => cb(err));
    return undefined;
  };
  net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: any[]) {
    // net.connect() hands over its normalised [options, cb] array; direct calls pass (options|port, host?, cb?).
    const first = Array.isArray(args[0]) ? args[0][0] : args[0];
    const opts: { host?: string; port?: number | string; path?: string } = typeof first === 'object' && first !== null
      ? first : { port: first, host: typeof args[1] === 'string' ? args[1] : undefined };
    if (opts.path === undefined) {
      const host = opts.host ?? 'localhost';
      const port = Number(opts.port);
      if (!(loopbackLiteral(host) && guard.allowPorts.has(port))) {
        record(`tcp ${String(host).slice(0, 80)}:${port}`);
        process.nextTick(() => this.destroy(Object.assign(new Error('connection refused by the fuzz test\'s outbound guard'), { code: 'ECONNREFUSED' })));
        return this;
      }
    }
    return origConnect.apply(this, args);
  } as typeof net.Socket.prototype.connect;
  syncBuiltinESMExports();

  guard.uninstall = () => {
    (dns.promises as { lookup: AnyFn }).lookup = origLookup;
    (dns as { lookup: AnyFn }).lookup = origCbLookup;
    net.Socket.prototype.connect = origConnect as typeof net.Socket.prototype.connect;
    syncBuiltinESMExports();
  };
  return guard;
}
