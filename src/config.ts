// Configuration: config/default.json, then a file (command line `--config FILE` or LAMPLIGHTER_CONFIG),
// then environment variables for the settings operators change most. Validated once at start with zod, so every
// wrong value is reported with its path before anything listens.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();

const listenSchema = z.object({
  transport: z.enum(['udp', 'tcp', 'ws']),
  address: z.string().min(1),
  port,
}).strict();

const expirySchema = z.object({
  minExpires: positiveInt,
  maxExpires: positiveInt,
  defaultExpires: positiveInt,
}).strict().refine((e) => e.minExpires <= e.maxExpires, { message: 'minExpires must not exceed maxExpires' });

export const configSchema = z.object({
  nodeId: z.string(),
  log: z.object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    /** Source addresses (IP) or AORs (user@domain) whose SIP messages are logged in full. */
    traceSip: z.array(z.string()),
  }).strict(),
  db: z.object({ file: z.string().min(1), replyLogIntervalMs: z.number().int().min(0).max(60_000) }).strict(),
  sip: z.object({
    engine: z.enum(['embedded', 'drachtio']),
    listen: z.array(listenSchema),
    publicAddress: z.string(),
    maxMessageSize: z.number().int().min(1024).max(16 * 1024 * 1024),
    maxHeaders: z.number().int().min(10).max(10000),
    auth: z.boolean(),
    nonceTtl: positiveInt,
    trustedPublishers: z.array(z.string()),
    subscription: expirySchema,
    publication: expirySchema,
    notify: z.object({
      maxFailuresUdp: positiveInt,
      maxFailuresReliable: positiveInt,
      minIntervalMs: z.number().int().min(0),
      sendBatch: positiveInt,
    }).strict(),
    limits: z.object({
      subscriptionsPerWatcher: positiveInt,
      watchersPerPresentity: positiveInt,
      totalSubscriptions: positiveInt,
      publicationsPerAor: positiveInt,
      connectionsPerSource: positiveInt,
      connectionsTotal: positiveInt,
      authFailuresBeforeBlock: positiveInt,
      authBlockSeconds: positiveInt,
      maxPendingRequests: positiveInt,
      maxClientTransactions: positiveInt,
      /** UDP receive-queue delay above which new SUBSCRIBEs and PUBLISHes get 503 (src/sip/stack/overload.ts); 0 = off. */
      maxQueueDelayMs: z.number().int().min(0),
    }).strict(),
    drachtio: z.object({
      host: z.string().min(1),
      port,
      secret: z.string(),
      reconnectMinMs: positiveInt,
      reconnectMaxMs: positiveInt,
    }).strict(),
  }).strict(),
  api: z.object({
    address: z.string().min(1),
    port,
    tokenTtl: positiveInt,
    maxBodyBytes: positiveInt,
    cors: z.object({ enabled: z.boolean(), origins: z.array(z.string()) }).strict(),
  }).strict(),
  shutdownTimeoutMs: positiveInt,
  memory: z.object({ heapGrowingPercent: z.number().int().min(0).max(300), idleGc: z.boolean() }).strict(),
}).strict();

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

const here = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_CONFIG_FILE = join(here, '..', 'config', 'default.json');

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; arrays and scalars replace. */
export function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isObject(v) && isObject(base[k]) ? deepMerge(base[k] as Json, v) : v;
  }
  return out;
}

// Config files may carry line and block comments (config/example.jsonc documents every setting that way).
export function stripJsonComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function readJson(file: string): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read config file ${file}: ${(err as Error).message}`]);
  }
  try {
    const v: unknown = JSON.parse(stripJsonComments(text));
    if (!isObject(v)) throw new Error('top level is not an object');
    return v;
  } catch (err) {
    throw new ConfigError([`config file ${file} is not valid JSON: ${(err as Error).message}`]);
  }
}

function envInt(env: NodeJS.ProcessEnv, name: string, problems: string[]): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    problems.push(`${name}=${raw}: expected a port number 0..65535`);
    return undefined;
  }
  return n;
}

/** Environment overrides: LAMPLIGHTER_DB, _SIP_PORT (udp and tcp), _WS_PORT, _API_PORT, _SIP_AUTH, _LOG_LEVEL. */
function applyEnv(cfg: Json, env: NodeJS.ProcessEnv, problems: string[]): Json {
  const c = structuredClone(cfg) as any;
  if (env.LAMPLIGHTER_DB) c.db = { ...c.db, file: env.LAMPLIGHTER_DB };
  const sipPort = envInt(env, 'LAMPLIGHTER_SIP_PORT', problems);
  const wsPort = envInt(env, 'LAMPLIGHTER_WS_PORT', problems);
  if (Array.isArray(c.sip?.listen)) {
    for (const l of c.sip.listen) {
      if (sipPort !== undefined && (l.transport === 'udp' || l.transport === 'tcp')) l.port = sipPort;
      if (wsPort !== undefined && l.transport === 'ws') l.port = wsPort;
    }
  }
  const apiPort = envInt(env, 'LAMPLIGHTER_API_PORT', problems);
  if (apiPort !== undefined) c.api = { ...c.api, port: apiPort };
  if (env.LAMPLIGHTER_SIP_ADDRESS) {
    for (const l of c.sip?.listen ?? []) l.address = env.LAMPLIGHTER_SIP_ADDRESS;
  }
  if (env.LAMPLIGHTER_API_ADDRESS) c.api = { ...c.api, address: env.LAMPLIGHTER_API_ADDRESS };
  const auth = env.LAMPLIGHTER_SIP_AUTH;
  if (auth !== undefined && auth !== '') {
    if (/^(true|1|yes|on)$/i.test(auth)) c.sip.auth = true;
    else if (/^(false|0|no|off)$/i.test(auth)) c.sip.auth = false;
    else problems.push(`LAMPLIGHTER_SIP_AUTH=${auth}: expected true or false`);
  }
  if (env.LAMPLIGHTER_LOG_LEVEL) c.log = { ...c.log, level: env.LAMPLIGHTER_LOG_LEVEL };
  if (env.LAMPLIGHTER_NODE_ID) c.nodeId = env.LAMPLIGHTER_NODE_ID;
  if (env.LAMPLIGHTER_SIP_ENGINE) c.sip.engine = env.LAMPLIGHTER_SIP_ENGINE;
  return c;
}

export interface LoadOptions {
  /** A config file given on the command line; wins over LAMPLIGHTER_CONFIG. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Programmatic overrides (tests), applied last. */
  overrides?: Json;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  let raw = readJson(DEFAULT_CONFIG_FILE);
  const file = opts.file ?? (env.LAMPLIGHTER_CONFIG || undefined);
  if (file) raw = deepMerge(raw, readJson(file));
  raw = applyEnv(raw, env, problems);
  if (opts.overrides) raw = deepMerge(raw, opts.overrides);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${issue.path.join('.') || '(top)'}: ${issue.message}`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const cfg = parsed.data;
  if (!cfg.nodeId) cfg.nodeId = `${hostname()}-${randomBytes(3).toString('hex')}`;
  return cfg;
}
