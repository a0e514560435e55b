// The admin API: Kazoo Crossbar-compatible /v2 routes plus /health, /ready, /metrics. Small middleware, each doing
// one thing, composed here in order: request id + metrics + log line, error mapping to Crossbar's envelope, CORS
// (off unless config.api.cors.enabled), body reading with its limits, then the routes.
import Koa from 'koa';
import Router from '@koa/router';
import cors from '@koa/cors';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import type { Db } from '../store/db.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { PresenceService } from '../presence/service.js';
import { Directory, PresenceReports } from '../store/directory.js';
import { TokenStore } from '../store/tokens.js';
import { readBody, parseJson, unwrapEnvelope } from './body.js';
import { ApiError, apiErrors, encodeNode, errorEnvelope } from './envelope.js';
import { RouteTable, meta, type ApiContext, type ApiDeps, type ApiLimits, type ApiState } from './context.js';
import { registerSystemRoutes } from './routes/system.js';
import { registerAuthRoutes } from './routes/auth.js';
import { registerAccountRoutes } from './routes/accounts.js';
import { registerDirectoryRoutes } from './routes/directory.js';
import { registerPresenceRoutes } from './routes/presence.js';

export interface ApiOptions {
  config: Config; db: Db; presence: PresenceService; logger: Logger; metrics: Metrics; isReady: () => boolean;
  /** Clock (Unix ms) for token expiry and envelopes; tests inject one. */
  now?: () => number;
  /** Overrides of the built-in limits (DEFAULT_API_LIMITS). */
  limits?: Partial<ApiLimits>;
}

/** Limits not (yet) in config.api; named here so there is one place to change them. */
export const DEFAULT_API_LIMITS: ApiLimits = { maxJsonDepth: 32, defaultPageSize: 50, maxPageSize: 1000, maxUnpaginatedRows: 10_000 };

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const BODY_METHODS = new Set(['PUT', 'POST', 'PATCH', 'DELETE']);
const TUNNELED_VERBS = new Set(['PUT', 'PATCH', 'DELETE']);

export interface Api extends Koa<ApiState> {
  /** The routes served, for the OpenAPI test. */
  routes: RouteTable;
}

export function createApi(opts: ApiOptions): Koa {
  return buildApi(opts);
}

export function buildApi(opts: ApiOptions): Api {
  const now = opts.now ?? Date.now;
  const deps: ApiDeps = {
    config: opts.config,
    presence: opts.presence,
    logger: opts.logger,
    metrics: opts.metrics,
    directory: new Directory(opts.db, now),
    tokens: new TokenStore(opts.db, { ttlSeconds: opts.config.api.tokenTtl, now }),
    reports: new PresenceReports(opts.db, now),
    limits: { ...DEFAULT_API_LIMITS, ...opts.limits },
    now,
    isReady: opts.isReady,
    node: encodeNode(opts.config.nodeId),
  };
  const app = new Koa<ApiState>() as Api;
  app.proxy = false;
  app.silent = true; // errors are logged once, below, without stack traces

  // Request id, metrics and one debug line per request (path only: query strings may carry anything).
  app.use(async (c, next) => {
    const ctx = c as unknown as ApiContext;
    const started = performance.now();
    const given = ctx.get('X-Request-ID');
    ctx.state.requestId = REQUEST_ID_RE.test(given) ? given : randomBytes(16).toString('hex');
    ctx.set('X-Request-ID', ctx.state.requestId);
    try {
      await next();
    } finally {
      deps.metrics.apiRequests.inc({ method: ctx.method, status: String(ctx.status) });
      deps.logger.debug({ method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round((performance.now() - started) * 10) / 10, requestId: ctx.state.requestId }, 'api request');
    }
  });

  // CORS before the error mapper so error answers carry the headers too.
  if (opts.config.api.cors.enabled) {
    const allowed = opts.config.api.cors.origins;
    app.use(cors({
      origin: (ctx) => {
        const o = ctx.get('Origin');
        if (!o) return '';
        return allowed.length === 0 || allowed.includes('*') ? '*' : allowed.includes(o) ? o : '';
      },
      allowMethods: ['GET', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS'],
      allowHeaders: ['Content-Type', 'X-Auth-Token', 'X-Request-ID', 'Authorization'],
      exposeHeaders: ['X-Request-ID', 'X-Presence-Report'],
      maxAge: 600,
    }));
  }

  // Every error becomes Crossbar's error envelope; anything unexpected is a 500 with no detail in the body.
  app.use(async (c, next) => {
    const ctx = c as unknown as ApiContext;
    try {
      await next();
      if (ctx.body === undefined || ctx.body === null) {
        if (ctx.status === 404) throw apiErrors.notFound();
        // The router's allowedMethods set the status and the Allow header (RFC 9110 §15.5.6); add the envelope.
        if (ctx.status === 405 || ctx.status === 501) throw apiErrors.invalidMethod();
      }
    } catch (err) {
      const e = toApiError(err);
      if (e.status >= 500) deps.logger.error({ method: ctx.method, path: ctx.path, requestId: ctx.state.requestId, error: err instanceof Error ? err.message : String(err) }, 'api request failed');
      ctx.status = e.status;
      ctx.body = errorEnvelope(meta(ctx, deps), e);
      if (e.status === 413) ctx.set('Connection', 'close');
      const retryAfter = (e as ApiError & { retryAfter?: number }).retryAfter;
      if (retryAfter !== undefined) ctx.set('Retry-After', String(retryAfter));
    }
  });

  // Bodies: size limit, depth limit, JSON, envelope; Crossbar's `verb` tunnels PUT/PATCH/DELETE through POST.
  app.use(async (c, next) => {
    const ctx = c as unknown as ApiContext;
    if (BODY_METHODS.has(ctx.method)) {
      const raw = await readBody(ctx.req, opts.config.api.maxBodyBytes);
      ctx.state.envelope = unwrapEnvelope(parseJson(raw, deps.limits.maxJsonDepth));
      const q = ctx.query.verb;
      const verb = (ctx.state.envelope.verb ?? (typeof q === 'string' ? q : undefined))?.toUpperCase();
      if (ctx.method === 'POST' && verb && TUNNELED_VERBS.has(verb)) ctx.method = verb;
    }
    await next();
  });

  const router = new Router();
  const table = new RouteTable(router);
  registerSystemRoutes(table, deps);
  registerAuthRoutes(table, deps);
  registerAccountRoutes(table, deps);
  registerDirectoryRoutes(table, deps);
  registerPresenceRoutes(table, deps);
  app.use(router.routes() as unknown as Koa.Middleware<ApiState>);
  app.use(router.allowedMethods() as unknown as Koa.Middleware<ApiState>);
  app.routes = table;
  return app;
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const status = (err as { status?: unknown })?.status;
  if (status === 405 || status === 501) return apiErrors.invalidMethod();
  if (typeof status === 'number' && status >= 400 && status < 500 && (err as { expose?: boolean }).expose) {
    return new ApiError(status, 'error', { message: (err as Error).message });
  }
  return apiErrors.unspecified();
}
