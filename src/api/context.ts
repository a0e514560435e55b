// What every route handler shares: the dependencies, the per-request state, and the reply helpers that wrap data
// in Crossbar's envelope. Handlers stay small: validate, call the directory or presence, reply.
import type { Context, Middleware } from 'koa';
import type Router from '@koa/router';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { PresenceService } from '../presence/service.js';
import type { Directory, AccountRecord, Json, PresenceReports } from '../store/directory.js';
import { DirectoryError } from '../store/directory.js';
import type { TokenInfo, TokenStore } from '../store/tokens.js';
import type { RequestEnvelope } from './body.js';
import { apiErrors, fieldError, successEnvelope, type EnvelopeMeta } from './envelope.js';
import type { SchemaName } from './validate.js';

export interface ApiLimits {
  /** Deepest JSON nesting accepted in a body. */
  maxJsonDepth: number;
  /** Listing page size when the client gives none, and the largest it may ask for. */
  defaultPageSize: number;
  maxPageSize: number;
  /** Most rows one `paginate=false` listing returns; past it the answer carries next_start_key after all. */
  maxUnpaginatedRows: number;
}

export interface ApiDeps {
  config: Config;
  presence: PresenceService;
  logger: Logger;
  metrics: Metrics;
  directory: Directory;
  tokens: TokenStore;
  reports: PresenceReports;
  limits: ApiLimits;
  now: () => number;
  isReady: () => boolean;
  node: string;
}

export interface ApiState {
  requestId: string;
  envelope?: RequestEnvelope;
  auth?: TokenInfo & { token: string };
  account?: AccountRecord;
}

export type ApiContext = Context & { state: ApiState; params: Record<string, string> };
export type ApiMiddleware = Middleware<ApiState>;

export interface RouteDoc {
  method: 'get' | 'put' | 'post' | 'patch' | 'delete';
  /** Koa path, `:param` style. */
  path: string;
  summary: string;
  tag: string;
  /** Needs X-Auth-Token (and, under /v2/accounts/{accountId}, reach over that account). */
  auth: boolean;
  requestSchema?: SchemaName;
  /** HTTP status on success. */
  success?: number;
  /** The answer is not a Crossbar envelope (health, metrics, OpenAPI, report download). */
  raw?: boolean;
}

/** Registers a route on the Koa router and records it for the OpenAPI document. */
export class RouteTable {
  readonly docs: RouteDoc[] = [];
  constructor(readonly router: Router) {}
  add(doc: RouteDoc, ...mw: ApiMiddleware[]): void {
    this.docs.push(doc);
    (this.router[doc.method] as (path: string, ...m: unknown[]) => unknown).call(this.router, doc.path, ...mw);
  }
}

export function meta(ctx: ApiContext, deps: ApiDeps): EnvelopeMeta {
  return { requestId: ctx.state.requestId, authToken: ctx.state.auth?.token ?? '', node: deps.node, now: deps.now() };
}

export function reply(ctx: ApiContext, deps: ApiDeps, data: unknown, opts: { status?: number; revision?: string; paging?: Record<string, unknown> } = {}): void {
  ctx.status = opts.status ?? 200;
  ctx.body = successEnvelope(meta(ctx, deps), data, { revision: opts.revision, paging: opts.paging });
}

/** The request's `data` as a document: an object, with Kazoo's private keys (`id`, `_id`, `_rev`, `pvt_*`) dropped. */
export function requestDoc(ctx: ApiContext): Json {
  const data = ctx.state.envelope?.data ?? {};
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw apiErrors.validation(fieldError('data', 'type', { message: 'Value did not match type(s): object', target: 'object' }));
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(data as Json)) {
    if (k === 'id' || k.startsWith('_') || k.startsWith('pvt_')) continue;
    out[k] = v;
  }
  return out;
}

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** PATCH semantics: objects merge key by key, anything else replaces, null removes the key. */
export function mergePatch(base: Json, patch: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (k === '__proto__') continue; // an own "__proto__" key from JSON.parse must not become a prototype here
    if (v === null) delete out[k];
    else if (isObj(v) && isObj(base[k])) out[k] = mergePatch(base[k] as Json, v);
    else out[k] = v;
  }
  return out;
}

/** A rule the directory enforces (uniqueness, references) as Kazoo's 400 field error. */
export function directoryCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof DirectoryError) {
      const detail: Record<string, unknown> = { message: err.message };
      if (err.detail !== undefined) detail.cause = err.detail;
      throw apiErrors.validation({ [err.field]: { [err.rule]: detail } });
    }
    throw err;
  }
}

const ID_RE = /^[0-9a-f]{32}$/;

/** A document id from the path: 32 lower-case hex, else 404 bad_identifier (it cannot name anything). */
export function idParam(ctx: ApiContext, name: string): string {
  const v = ctx.params[name] ?? '';
  if (!ID_RE.test(v)) throw apiErrors.badIdentifier(v.slice(0, 64));
  return v;
}

export interface Paging {
  pageSize: number;
  startKey?: string;
  /** `paginate=false` (Crossbar basics.md "Disabling Pagination"): every row, no pagination keys. */
  unpaginated: boolean;
}

const START_KEY_RE = /^[A-Za-z0-9_-]{1,128}$/;

function queryOne(ctx: ApiContext, name: string): string | undefined {
  const v = ctx.query[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Listing paging as Kazoo clients send it: page_size and start_key query parameters, or paginate=false, which
 * Monster UI sends for most listings. A start_key this server did not hand out is a 400, not a silent first page
 * (a client looping on next_start_key would never end).
 */
export function paging(ctx: ApiContext, deps: ApiDeps, isValidKey: (key: string) => boolean): Paging {
  const unpaginated = queryOne(ctx, 'paginate') === 'false';
  const raw = queryOne(ctx, 'page_size');
  let pageSize = unpaginated ? deps.limits.maxUnpaginatedRows : deps.limits.defaultPageSize;
  if (raw !== undefined && !unpaginated) {
    const n = Number(raw);
    if (!/^[0-9]+$/.test(raw) || !Number.isInteger(n)) {
      throw apiErrors.validation(fieldError('page_size', 'type', { message: 'Value did not match type(s): integer', target: 'integer' }));
    }
    if (n < 1) throw apiErrors.validation(fieldError('page_size', 'minimum', { message: 'Value must be at least 1', target: 1 }));
    if (n > deps.limits.maxPageSize) {
      throw apiErrors.validation(fieldError('page_size', 'maximum', { message: `Value must be at most ${deps.limits.maxPageSize}`, target: deps.limits.maxPageSize }));
    }
    pageSize = n;
  }
  const sk = queryOne(ctx, 'start_key');
  if (sk !== undefined && (!START_KEY_RE.test(sk) || !isValidKey(sk))) {
    throw apiErrors.validation(fieldError('start_key', 'invalid', { message: 'start_key is not one this server handed out' }));
  }
  return { pageSize, startKey: sk, unpaginated };
}
