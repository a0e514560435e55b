// The connection to drachtio-server's control port, kept up with our own back-off.
//
// drachtio-srf can reconnect by itself (wire-protocol.js, 150 ms × 1.7 per attempt), but its schedule is not
// ours and a failed authentication is never retried. So every attempt uses a fresh Srf, connected with
// `reconnect.maxAttempts: 1` (which makes _onConnectionGone give up at once), and this class schedules the next
// attempt: reconnectMinMs, doubling up to reconnectMaxMs, back to reconnectMinMs after a successful
// authentication. Srf.connect() returns the app object, not a Promise: we resolve on its 'connect' event
// (err, hostports, serverVersion, localHostports) and treat 'close' as the end of an attempt or a connection.
// Every state change is logged; isReady() is true only while authenticated.
import type { Logger } from '../../log.js';
import type { ListeningAddress } from '../port.js';
import { parseHostports } from './mapping.js';
import type { SrfInstance } from './types.js';

export interface Scheduler {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realScheduler: Scheduler = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'stopped';

export interface ConnectionOptions {
  host: string;
  port: number;
  secret: string;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Give up on an attempt that opened TCP but never authenticated (a silent or wrong peer). */
  authTimeoutMs: number;
  /** drachtio-srf accepts 5000..300000 (wire-protocol.js _evalPingOpts). */
  pingIntervalMs: number;
  createSrf: () => SrfInstance;
  /** Register the request handlers on a fresh Srf (before connect, so `route|<method>` goes out on auth). */
  setup: (srf: SrfInstance) => void;
  scheduler?: Scheduler;
  logger: Logger;
}

export interface Connected {
  srf: SrfInstance;
  hostports: ListeningAddress[];
  rawHostports: string;
  serverVersion?: string;
}

export class DrachtioConnection {
  private stateValue: ConnectionState = 'idle';
  private current?: Connected;
  private attemptSrf?: SrfInstance;
  private attempt = 0;
  private failures = 0;
  private nextDelay: number;
  private retryTimer?: unknown;
  private authTimer?: unknown;
  private readonly scheduler: Scheduler;
  private readonly firstOutcome: Array<() => void> = [];
  private readonly connectWaiters: Array<() => void> = [];
  /** Called on every change, after the state is updated. */
  onState?: (state: ConnectionState) => void;

  constructor(private readonly opts: ConnectionOptions) {
    this.scheduler = opts.scheduler ?? realScheduler;
    this.nextDelay = opts.reconnectMinMs;
  }

  get state(): ConnectionState { return this.stateValue; }
  get connected(): Connected | undefined { return this.stateValue === 'connected' ? this.current : undefined; }
  /** The last hostports we saw; kept while disconnected so contactUri() still answers. */
  get lastHostports(): ListeningAddress[] { return this.current?.hostports ?? []; }
  /** The delay the next failed attempt will wait (exposed for tests and logs). */
  get pendingDelayMs(): number { return this.nextDelay; }

  /** Start connecting; resolves after the first attempt's outcome (connected or failed), never rejects. */
  start(): Promise<void> {
    if (this.stateValue !== 'idle') return Promise.resolve();
    const p = new Promise<void>((r) => this.firstOutcome.push(r));
    this.connect();
    return p;
  }

  /** Resolves when connected (now or later), or after `ms`; true when connected. */
  waitConnected(ms: number): Promise<boolean> {
    if (this.stateValue === 'connected') return Promise.resolve(true);
    if (this.stateValue === 'stopped') return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = () => { this.scheduler.clearTimeout(t); resolve(this.stateValue === 'connected'); };
      const t = this.scheduler.setTimeout(() => {
        const i = this.connectWaiters.indexOf(done);
        if (i >= 0) this.connectWaiters.splice(i, 1);
        resolve(false);
      }, ms);
      this.connectWaiters.push(done);
    });
  }

  stop(): void {
    if (this.stateValue === 'stopped') return;
    this.setState('stopped');
    if (this.retryTimer !== undefined) this.scheduler.clearTimeout(this.retryTimer);
    if (this.authTimer !== undefined) this.scheduler.clearTimeout(this.authTimer);
    this.retryTimer = this.authTimer = undefined;
    for (const srf of new Set([this.attemptSrf, this.current?.srf])) if (srf) safeDisconnect(srf);
    this.attemptSrf = undefined;
    this.settleFirst();
    for (const w of this.connectWaiters.splice(0)) w();
  }

  private setState(s: ConnectionState): void {
    if (this.stateValue === s) return;
    this.stateValue = s;
    this.onState?.(s);
  }

  private settleFirst(): void {
    for (const r of this.firstOutcome.splice(0)) r();
  }

  private connect(): void {
    if (this.stateValue === 'stopped') return;
    const id = ++this.attempt;
    this.setState('connecting');
    const { host, port, logger } = this.opts;
    logger.info({ host, port, attempt: id }, 'drachtio: connecting');
    let srf: SrfInstance;
    try {
      srf = this.opts.createSrf();
      this.opts.setup(srf);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'drachtio: cannot create the drachtio-srf client');
      this.failed(id, 'setup');
      return;
    }
    this.attemptSrf = srf;
    let authenticated = false;
    const live = () => id === this.attempt && this.stateValue !== 'stopped';

    // Errors are re-emitted on the Srf object and throw when nobody listens (drachtio-srf.md §3).
    srf.on('error', (...args: unknown[]) => {
      const err = args[0] as Error | undefined;
      if (live()) logger.debug({ err: err?.message }, 'drachtio: socket error');
      // The 'close' that follows a socket error ends the attempt; if it never comes, the auth timer does.
    });
    srf.on('connect', (err, hostports, serverVersion) => {
      if (!live()) { safeDisconnect(srf); return; }
      if (err) {
        logger.error({ host, port }, 'drachtio: authentication refused by drachtio-server (check sip.drachtio.secret)');
        safeDisconnect(srf);
        this.failed(id, 'auth');
        return;
      }
      authenticated = true;
      if (this.authTimer !== undefined) this.scheduler.clearTimeout(this.authTimer);
      this.authTimer = undefined;
      this.current = { srf, hostports: parseHostports(hostports), rawHostports: hostports ?? '', serverVersion };
      this.failures = 0;
      this.nextDelay = this.opts.reconnectMinMs;
      this.setState('connected');
      logger.info({ host, port, hostports, serverVersion }, 'drachtio: connected');
      this.settleFirst();
      for (const w of this.connectWaiters.splice(0)) w();
    });
    srf.on('close', () => {
      if (!live()) return;
      if (authenticated) {
        logger.warn({ host, port }, 'drachtio: connection to drachtio-server lost; subscriptions are kept, NOTIFYs wait for the reconnect');
        this.failed(id, 'lost');
      } else {
        this.failed(id, 'connect');
      }
    });
    this.authTimer = this.scheduler.setTimeout(() => {
      this.authTimer = undefined;
      if (!live() || authenticated) return;
      logger.warn({ host, port, ms: this.opts.authTimeoutMs }, 'drachtio: no authentication answer in time');
      safeDisconnect(srf);
      this.failed(id, 'auth-timeout');
    }, this.opts.authTimeoutMs);
    try {
      // enablePing: srf pings servers >= v0.8.2 every pingIntervalMs, so an idle control connection keeps traffic
      // flowing and a vanished peer surfaces as a socket error once TCP gives up on the unacknowledged ping
      // (minutes) instead of after the hours of TCP keep-alive. srf does not time out missing pongs itself.
      srf.connect({ host, port, secret: this.opts.secret, reconnect: { maxAttempts: 1 }, enablePing: true, pingInterval: this.opts.pingIntervalMs });
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'drachtio: connect() threw');
      this.failed(id, 'connect');
    }
  }

  /** End attempt `id` and schedule the next one with back-off. */
  private failed(id: number, why: string): void {
    if (id !== this.attempt || this.stateValue === 'stopped') return;
    this.attempt++; // late events of this attempt are now stale
    if (this.authTimer !== undefined) this.scheduler.clearTimeout(this.authTimer);
    this.authTimer = undefined;
    this.attemptSrf = undefined;
    const wasConnected = why === 'lost';
    if (!wasConnected) this.failures++;
    const delay = this.nextDelay;
    this.nextDelay = Math.min(delay * 2, this.opts.reconnectMaxMs);
    this.setState('waiting');
    this.opts.logger[wasConnected ? 'warn' : 'info'](
      { host: this.opts.host, port: this.opts.port, reason: why, failures: this.failures, delayMs: delay },
      `drachtio: not connected (${why}); next attempt in ${delay} ms`,
    );
    this.settleFirst();
    this.retryTimer = this.scheduler.setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }
}

/** srf.disconnect() asserts on a missing socket (drachtio-agent.js _getDefaultSocket); closing is best effort. */
function safeDisconnect(srf: SrfInstance): void {
  try {
    srf.disconnect();
  } catch {
    // no socket yet or already gone
  }
}
