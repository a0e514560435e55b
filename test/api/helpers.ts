// Test harness for the API alone: a real HTTP server on 127.0.0.1:0 over a temp database, with a recording fake
// PresenceService and an injectable clock. Integration tests with the whole server use test/helpers/server.ts.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildApi, type Api, type ApiOptions } from '../../src/api/app.js';
import { openDatabase, type Db } from '../../src/store/db.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { Directory } from '../../src/store/directory.js';
import { TokenStore } from '../../src/store/tokens.js';
import { tempDbFile, testConfig } from '../helpers/server.js';
import type { ManualDialogState, PresenceService, PresentityStateView, ResetResult, SubscriptionView } from '../../src/presence/service.js';

export class FakePresence implements PresenceService {
  subscriptions: SubscriptionView[] = [];
  states = new Map<string, PresentityStateView[]>();
  calls: Array<{ op: 'reset' | 'set'; presentity: string; state?: ManualDialogState }> = [];
  listSubscriptions(domain: string, filter?: { event?: string; user?: string }): SubscriptionView[] {
    return this.subscriptions.filter((s) => {
      const [user, dom] = s.presentity.split('@');
      return dom === domain && (!filter?.event || s.event === filter.event) && (!filter?.user || user === filter.user);
    });
  }
  currentState(presentity: string): PresentityStateView[] {
    return this.states.get(presentity) ?? [];
  }
  async reset(presentity: string): Promise<ResetResult> {
    this.calls.push({ op: 'reset', presentity });
    const snapshot = this.subscriptions.filter((s) => s.presentity === presentity);
    return { notified: snapshot.length, snapshot };
  }
  async setManualState(presentity: string, state: ManualDialogState): Promise<{ notified: number }> {
    this.calls.push({ op: 'set', presentity, state });
    return { notified: this.subscriptions.filter((s) => s.presentity === presentity).length };
  }
}

export interface ApiHarness {
  url: string;
  app: Api;
  db: Db;
  presence: FakePresence;
  metrics: Metrics;
  directory: Directory;
  tokens: TokenStore;
  clock: { now: number };
  /** fetch with the JSON body wrapped in `{data}` unless `raw` is given. */
  call(method: string, path: string, opts?: { token?: string; data?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; headers: Headers; body: any; text: string }>;
  /** An account with an API key, and a token for it. */
  account(name: string, realm: string, parentId?: string | null): Promise<{ id: string; apiKey: string; token: string }>;
  close(): Promise<void>;
}

export async function startApi(opts: { overrides?: Record<string, unknown>; logger?: Logger; limits?: ApiOptions['limits'] } = {}): Promise<ApiHarness> {
  const tmp = tempDbFile();
  const config = testConfig(tmp.file, opts.overrides);
  const db = openDatabase(tmp.file);
  const metrics = createMetrics();
  const presence = new FakePresence();
  const clock = { now: Date.UTC(2026, 0, 2, 3, 4, 5) };
  const app = buildApi({ config, db, presence, logger: opts.logger ?? silentLogger, metrics, isReady: () => true, now: () => clock.now, limits: opts.limits });
  const server: Server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const directory = new Directory(db, () => clock.now);
  const tokens = new TokenStore(db, { ttlSeconds: config.api.tokenTtl, now: () => clock.now });
  const h: ApiHarness = {
    url, app, db, presence, metrics, directory, tokens, clock,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      if (o.token) headers['X-Auth-Token'] = o.token;
      let body: string | undefined;
      if (o.raw !== undefined) body = o.raw;
      else if (o.data !== undefined) body = JSON.stringify({ data: o.data });
      if (body !== undefined) headers['Content-Type'] ??= 'application/json';
      const res = await fetch(url + path, { method, headers, body });
      const text = await res.text();
      let parsed: unknown;
      try { parsed = JSON.parse(text); } catch { parsed = undefined; }
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
    async account(name, realm, parentId = null) {
      const a = directory.createAccount({ name, realm }, parentId);
      const apiKey = tokens.issueApiKey(a.id);
      const r = await h.call('PUT', '/v2/api_auth', { data: { api_key: apiKey } });
      if (r.status !== 201) throw new Error(`api_auth failed: ${r.text}`);
      return { id: a.id, apiKey, token: r.body.auth_token as string };
    },
    async close() {
      await new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); });
      metrics.stop();
      db.close();
      tmp.cleanup();
    },
  };
  return h;
}
