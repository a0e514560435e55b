// The SIP face of presence: takes server transactions from the engine, applies the request checks every UAS
// makes (RFC 3261 §8.2), and hands SUBSCRIBE / PUBLISH / OPTIONS to their handlers. It listens to the presence hub
// and sends the NOTIFYs, restores stored state at start, and runs the expiry sweeper.
import type { Config } from '../config.js';
import type { Db, GroupCommit } from '../store/db.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { SipEngine, ServerTransaction } from './port.js';
import type { SipAuthenticator } from './auth/types.js';
import type { Presence } from '../presence/index.js';
import { header, headerAll } from './stack/message.js';
import { parseUInt, parseUri, tagOf } from './stack/headers.js';
import { randomToken } from '../presence/index.js';
import { ALLOW, ALLOWED_METHODS, type FaceContext } from './face-common.js';
import { FanoutTracker, Notifier } from './notify.js';
import { handleSubscribe } from './subscribe.js';
import { handlePublish } from './publish.js';
import { handleOptions } from './options.js';

export interface SipFace {
  /** Restore stored subscriptions and publications, send what expired while down, start the expiry sweeper. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface SipFaceOptions {
  engine: SipEngine;
  presence: Presence;
  auth: SipAuthenticator;
  config: Config;
  db: Db;
  commit: GroupCommit;
  logger: Logger;
  metrics: Metrics;
  /** How often expiries are checked; 1 s keeps `terminated;reason=timeout` within a second of the deadline. */
  sweepIntervalMs?: number;
}

const DEFAULT_SWEEP_MS = 1000;

export function createSipFace(opts: SipFaceOptions): SipFace {
  const { engine, presence, logger, metrics } = opts;
  const notifier = new Notifier({ engine, presence, config: opts.config, logger, metrics });
  const ctx: FaceContext = { engine, presence, auth: opts.auth, config: opts.config, logger, metrics, notifier };
  let started = false;
  let sweeper: NodeJS.Timeout | undefined;

  // The fan-out runs right after the current turn, so whatever caused the change (a PUBLISH, an API reset) is
  // answered first instead of waiting behind a thousand NOTIFYs being built.
  presence.onChange((change) => {
    if (presence.presentityCount(change.presentity) === 0) return;
    setImmediate(() => {
      const watchers = presence.watchers(change.presentity, change.event);
      if (watchers.length === 0) return;
      const tracker = new FanoutTracker(change.startedAt, metrics);
      const opts = { tracker };
      for (const sub of watchers) notifier.notify(sub, opts);
      tracker.done();
    });
  });

  engine.onRequest((raw) => {
    const tx = withToTag(raw);
    dispatch(ctx, tx, started).catch((err: unknown) => {
      logger.error({ method: tx.request.method, err: (err as Error).message }, 'request handler failed');
      if (!tx.responded) tx.respond({ status: 500, reason: 'Server Internal Error' });
    });
  });

  const sweep = () => {
    const now = presence.now();
    for (const sub of presence.expiredSubscriptions(now)) {
      // RFC 6665 §4.2.2: a subscription that runs out gets its final NOTIFY with reason=timeout.
      if (!notifier.terminating(sub)) notifier.notify(sub, { final: 'timeout' });
    }
    presence.sweepPublications(now);
  };

  return {
    async start() {
      const t0 = performance.now();
      const r = presence.restore();
      logger.info({ subscriptions: r.subscriptions, publications: r.publications, expiredSubscriptions: r.expiredSubscriptions.length,
        expiredPublications: r.expiredPublications, ms: Math.round(performance.now() - t0) }, 'presence state restored');
      for (const sub of r.expiredSubscriptions) notifier.notify(sub, { final: 'timeout' });
      // A WebSocket connection does not survive a restart, and a browser cannot be dialled (RFC 7118 §5).
      for (const sub of presence.allSubscriptions()) notifier.markUnreachable(sub);
      sweeper = setInterval(sweep, opts.sweepIntervalMs ?? DEFAULT_SWEEP_MS);
      sweeper.unref();
      started = true;
    },
    async stop() {
      started = false;
      if (sweeper) clearInterval(sweeper);
      sweeper = undefined;
      notifier.stop();
    },
  };
}

/**
 * RFC 3261 §8.2.6.2: a final response to a request whose To has no tag MUST add one. The 200 to a new SUBSCRIBE
 * carries the dialog's tag; every other answer (errors, PUBLISH, OPTIONS, the authenticator's 401) gets a fresh one.
 */
function withToTag(tx: ServerTransaction): ServerTransaction {
  if (tagOf(header(tx.request, 'to') ?? '') !== undefined) return tx;
  return {
    request: tx.request,
    flow: tx.flow,
    get responded() { return tx.responded; },
    respond(r) { tx.respond(r.toTag || r.status < 200 ? r : { ...r, toTag: randomToken(8) }); },
  };
}

async function dispatch(ctx: FaceContext, tx: ServerTransaction, started: boolean): Promise<void> {
  const req = tx.request;
  const method = req.method.toUpperCase();
  if (method === 'ACK') return; // no INVITE server transactions here; a stray ACK gets no answer (RFC 3261 §17.2.1)
  // sipRequests is counted by the engine (it sees retransmissions and sheds load before we do).
  if (!(ALLOWED_METHODS as readonly string[]).includes(method)) {
    tx.respond({ status: 405, reason: 'Method Not Allowed', headers: [['Allow', ALLOW]] });
    return;
  }
  if (!started) {
    tx.respond({ status: 503, reason: 'Starting', headers: [['Retry-After', '1']] });
    return;
  }
  const mf = header(req, 'max-forwards');
  if (mf !== undefined && parseUInt(mf) === 0) {
    tx.respond({ status: 483, reason: 'Too Many Hops' });
    return;
  }
  // RFC 3261 §8.2.2.1: only SIP URIs name presentities here.
  const uri = parseUri(req.uri);
  if (!uri || (uri.scheme !== 'sip' && uri.scheme !== 'sips')) {
    tx.respond({ status: 416, reason: 'Unsupported URI Scheme' });
    return;
  }
  // RFC 3261 §8.2.2.3: we support no extension a client may require.
  const required = headerAll(req, 'require').flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
  if (required.length > 0) {
    tx.respond({ status: 420, reason: 'Bad Extension', headers: [['Unsupported', required.join(', ')]] });
    return;
  }
  switch (method) {
    case 'SUBSCRIBE': return handleSubscribe(ctx, tx);
    case 'PUBLISH': return handlePublish(ctx, tx);
    case 'OPTIONS': return handleOptions(ctx, tx);
  }
}
