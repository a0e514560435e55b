// STUB (replaced by the API work): health, readiness and metrics only.
import Koa from 'koa';
import Router from '@koa/router';
import type { Config } from '../config.js';
import type { Db } from '../store/db.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { PresenceService } from '../presence/service.js';

export interface ApiOptions { config: Config; db: Db; presence: PresenceService; logger: Logger; metrics: Metrics; isReady: () => boolean }

export function createApi(opts: ApiOptions): Koa {
  const app = new Koa();
  const router = new Router();
  router.get('/health', (ctx) => { ctx.body = { status: 'ok' }; });
  router.get('/ready', (ctx) => { const r = opts.isReady(); ctx.status = r ? 200 : 503; ctx.body = { ready: r }; });
  router.get('/metrics', async (ctx) => { ctx.type = opts.metrics.registry.contentType; ctx.body = await opts.metrics.registry.metrics(); });
  app.use(router.routes()).use(router.allowedMethods());
  return app;
}
