// The composition root as a function, so tests and main.ts build the same server: config → store → engine →
// presence → SIP faces → API. Nothing below this file knows which engine runs.
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { openDatabase, GroupCommit, type Db } from './store/db.js';
import { createMetrics, type Metrics } from './metrics.js';
import type { SipEngine, ListeningAddress } from './sip/port.js';
import { createEmbeddedEngine } from './sip/stack/engine.js';
import { createDrachtioEngine } from './sip/drachtio/engine.js';
import { createPresence, type Presence } from './presence/index.js';
import { createSipFace, type SipFace } from './sip/index.js';
import { createAuthenticator } from './sip/auth/index.js';
import { createApi } from './api/app.js';

export interface RunningServer {
  config: Config;
  db: Db;
  engine: SipEngine;
  presence: Presence;
  sip: SipFace;
  metrics: Metrics;
  sipAddresses: ListeningAddress[];
  apiAddress: { address: string; port: number };
  stop(): Promise<void>;
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const metrics = createMetrics();
  const db = openDatabase(config.db.file);
  const commit = new GroupCommit(db);
  commit.onCommit = (ms) => metrics.commitSeconds.observe(ms / 1000);

  const engineLogger = logger.child({ component: 'sip' });
  const engine: SipEngine = config.sip.engine === 'drachtio'
    ? createDrachtioEngine({ config, logger: engineLogger, metrics })
    : createEmbeddedEngine({ config, logger: engineLogger, metrics });

  const presence = createPresence({ db, commit, logger: logger.child({ component: 'presence' }), metrics, nodeId: config.nodeId,
    replyLogIntervalMs: config.db.replyLogIntervalMs });
  if (!config.sip.auth) {
    logger.warn('SIP authentication is OFF (sip.auth=false): every domain is served and anyone may SUBSCRIBE and PUBLISH. Use this only in a lab.');
  }
  const auth = createAuthenticator({ config, db, logger: logger.child({ component: 'auth' }), metrics });
  const sip = createSipFace({ engine, presence, auth, config, db, commit, logger: engineLogger, metrics });

  // The API listens first so /ready can answer false until the engine is up.
  let ready = false;
  const app = createApi({ config, db, presence, logger: logger.child({ component: 'api' }), metrics, isReady: () => ready && engine.isReady() });
  const http: HttpServer = await new Promise((resolve, reject) => {
    const s = app.listen(config.api.port, config.api.address, () => resolve(s));
    s.once('error', reject);
    // Slow clients (slowloris) must not hold sockets: bounded time for headers and for a whole request.
    s.headersTimeout = 10_000;
    s.requestTimeout = 30_000;
  });
  const apiInfo = http.address() as AddressInfo;
  logger.info({ transport: 'http', address: apiInfo.address, port: apiInfo.port }, `API listening on http://${apiInfo.address}:${apiInfo.port}`);

  const sipAddresses = await engine.start();
  for (const a of sipAddresses) logger.info({ transport: a.transport, address: a.address, port: a.port }, `SIP listening on ${a.transport}:${a.address}:${a.port}`);
  await sip.start();
  ready = true;
  logger.info({ nodeId: config.nodeId, db: config.db.file }, 'ready');

  let stopping: Promise<void> | undefined;
  return {
    config, db, engine, presence, sip, metrics, sipAddresses,
    apiAddress: { address: apiInfo.address, port: apiInfo.port },
    stop() {
      stopping ??= (async () => {
        ready = false;
        await sip.stop();
        await engine.stop();
        await new Promise<void>((r) => { http.close(() => r()); http.closeAllConnections(); });
        presence.flush();
        commit.flush();
        metrics.stop();
        db.close();
      })();
      return stopping;
    },
  };
}
