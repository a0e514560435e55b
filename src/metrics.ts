// Prometheus metrics (prom-client), one registry per server instance so tests can run several servers in one process.
// Every layer gets the Metrics object from the composition root and only increments what it owns.
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Methods that get their own metric label; any other token (RFC 3261 §25.1 allows any) is counted as "other". */
const KNOWN_METHODS = new Set([
  'ACK', 'BYE', 'CANCEL', 'INFO', 'INVITE', 'MESSAGE', 'NOTIFY', 'OPTIONS', 'PRACK', 'PUBLISH', 'REFER', 'REGISTER',
  'SUBSCRIBE', 'UPDATE',
]);

/**
 * The `method` label of the SIP metrics: a scanner flipping bytes in the method must not mint a new Prometheus
 * series per request (each one lives in the registry and in every /metrics answer forever).
 */
export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'other';
}

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'lamplighter_process_' });
  const m = {
    registry,
    sipRequests: new Counter({ name: 'lamplighter_sip_requests_total', help: 'SIP requests received, by method and transport', labelNames: ['method', 'transport'] as const, registers: [registry] }),
    sipResponses: new Counter({ name: 'lamplighter_sip_responses_total', help: 'SIP responses sent, by method and status', labelNames: ['method', 'status'] as const, registers: [registry] }),
    sipDropped: new Counter({ name: 'lamplighter_sip_dropped_total', help: 'SIP messages dropped without an answer, by reason', labelNames: ['reason'] as const, registers: [registry] }),
    notifySent: new Counter({ name: 'lamplighter_notify_sent_total', help: 'NOTIFY requests sent (first transmissions)', labelNames: ['event'] as const, registers: [registry] }),
    notifyRetransmitted: new Counter({ name: 'lamplighter_notify_retransmitted_total', help: 'NOTIFY retransmissions (Timer E)', registers: [registry] }),
    notifyFailed: new Counter({ name: 'lamplighter_notify_failed_total', help: 'NOTIFYs that failed, by cause', labelNames: ['cause'] as const, registers: [registry] }),
    subscriptions: new Gauge({ name: 'lamplighter_subscriptions', help: 'Live subscriptions by event and transport', labelNames: ['event', 'transport'] as const, registers: [registry] }),
    publications: new Gauge({ name: 'lamplighter_publications', help: 'Live publications by event', labelNames: ['event'] as const, registers: [registry] }),
    publishes: new Counter({ name: 'lamplighter_publish_total', help: 'PUBLISH requests accepted, by kind (initial, refresh, modify, remove)', labelNames: ['kind'] as const, registers: [registry] }),
    fanoutSeconds: new Histogram({ name: 'lamplighter_fanout_seconds', help: 'State change (PUBLISH or API) to last NOTIFY sent', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] }),
    commitSeconds: new Histogram({ name: 'lamplighter_sqlite_commit_seconds', help: 'SQLite group-commit transaction duration', buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5], registers: [registry] }),
    authFailures: new Counter({ name: 'lamplighter_auth_failures_total', help: 'Failed SIP digest authentications, by reason', labelNames: ['reason'] as const, registers: [registry] }),
    overload: new Counter({ name: 'lamplighter_overload_rejections_total', help: 'Requests shed with 503 under overload or past a limit', labelNames: ['limit'] as const, registers: [registry] }),
    drachtioConnected: new Gauge({ name: 'lamplighter_drachtio_connected', help: '1 while connected to the drachtio-server (sip.engine drachtio)', registers: [registry] }),
    apiRequests: new Counter({ name: 'lamplighter_api_requests_total', help: 'HTTP API requests by method and status', labelNames: ['method', 'status'] as const, registers: [registry] }),
  };
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  new Gauge({
    name: 'lamplighter_event_loop_lag_seconds', help: 'Event-loop delay (p99 since last scrape)', registers: [registry],
    collect() { this.set(loop.percentile(99) / 1e9); loop.reset(); },
  });
  return { ...m, stop: () => loop.disable() };
}

export type Metrics = ReturnType<typeof createMetrics>;
