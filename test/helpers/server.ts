// Test helpers: run a real Lamplighter on 127.0.0.1 with ephemeral ports and a temporary database, either
// in this process (fast, shares the vitest worker) or as a child process (for crash and signal tests).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { loadConfig, type Config } from '../../src/config.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import type { ListeningAddress } from '../../src/sip/port.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function tempDbFile(): { file: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'lamplighter-test-'));
  return { file: join(dir, 'test.sqlite'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Loopback, port 0 everywhere, auth off unless the overrides say otherwise. */
export function testConfig(dbFile: string, overrides: Record<string, unknown> = {}): Config {
  return loadConfig({
    env: {},
    overrides: deepAssign({
      nodeId: 'test-node',
      log: { level: 'silent' },
      db: { file: dbFile },
      sip: {
        auth: false,
        listen: [
          { transport: 'udp', address: '127.0.0.1', port: 0 },
          { transport: 'tcp', address: '127.0.0.1', port: 0 },
          { transport: 'ws', address: '127.0.0.1', port: 0 },
        ],
      },
      api: { address: '127.0.0.1', port: 0 },
    }, overrides),
  });
}

function deepAssign(base: Record<string, any>, over: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && base[k] && typeof base[k] === 'object' && !Array.isArray(base[k])
      ? deepAssign(base[k], v) : v;
  }
  return out;
}

export interface TestServer {
  server: RunningServer;
  dbFile: string;
  sip(transport: 'udp' | 'tcp' | 'ws'): ListeningAddress;
  apiUrl: string;
  stop(): Promise<void>;
}

/** An in-process server. `dbFile` lets a test restart on the same database. */
export async function startTestServer(opts: { dbFile?: string; overrides?: Record<string, unknown>; logger?: Logger } = {}): Promise<TestServer> {
  const tmp = opts.dbFile ? undefined : tempDbFile();
  const dbFile = opts.dbFile ?? tmp!.file;
  const server = await startServer(testConfig(dbFile, opts.overrides), opts.logger ?? silentLogger);
  return {
    server,
    dbFile,
    sip(transport) {
      const a = server.sipAddresses.find((x) => x.transport === transport);
      if (!a) throw new Error(`no ${transport} listener`);
      return a;
    },
    apiUrl: `http://127.0.0.1:${server.apiAddress.port}`,
    async stop() {
      await server.stop();
      tmp?.cleanup();
    },
  };
}

export interface ChildServer {
  child: ChildProcess;
  pid: number;
  sip: Partial<Record<'udp' | 'tcp' | 'ws', number>>;
  apiPort: number;
  /** Every log line the child printed (parsed pino JSON). */
  logs: Array<Record<string, unknown>>;
  /** Raw stdout+stderr text. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Start `src/main.ts` as a child process on loopback. Ports are 0 unless given (fixed ports let a restarted
 * server keep the addresses its watchers know). Resolves when the child logs "ready".
 */
/** `entry`: a compiled main.js to run (what `npm start` runs); the default is src/main.ts through tsx. */
export async function spawnServer(opts: { dbFile: string; env?: Record<string, string>; sipPort?: number; wsPort?: number; apiPort?: number; timeoutMs?: number; entry?: string }): Promise<ChildServer> {
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    LAMPLIGHTER_DB: opts.dbFile,
    LAMPLIGHTER_SIP_ADDRESS: '127.0.0.1',
    LAMPLIGHTER_API_ADDRESS: '127.0.0.1',
    LAMPLIGHTER_SIP_PORT: String(opts.sipPort ?? 0),
    LAMPLIGHTER_WS_PORT: String(opts.wsPort ?? 0),
    LAMPLIGHTER_API_PORT: String(opts.apiPort ?? 0),
    LAMPLIGHTER_SIP_AUTH: 'false',
    LAMPLIGHTER_LOG_LEVEL: 'info',
    LAMPLIGHTER_NODE_ID: 'test-child',
    ...opts.env,
  };
  const args = opts.entry ? [opts.entry] : ['--import', 'tsx', join(ROOT, 'src', 'main.ts')];
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  let text = '';
  const sip: ChildServer['sip'] = {};
  let apiPort = 0;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not become ready in time:\n${text}`)), opts.timeoutMs ?? 20_000);
    const onLine = (line: string) => {
      text += line + '\n';
      let rec: Record<string, unknown>;
      try { rec = JSON.parse(line); } catch { return; }
      logs.push(rec);
      if (rec.transport === 'http' && typeof rec.port === 'number') apiPort = rec.port;
      else if ((rec.transport === 'udp' || rec.transport === 'tcp' || rec.transport === 'ws') && typeof rec.port === 'number' && rec.msg?.toString().startsWith('SIP listening')) sip[rec.transport] = rec.port;
      if (rec.msg === 'ready') { clearTimeout(timer); resolve(); }
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', (l) => { text += l + '\n'; });
    exited.then((e) => { clearTimeout(timer); reject(new Error(`server exited early (${e.code ?? e.signal}):\n${text}`)); });
  });
  try {
    await ready;
  } catch (err) {
    // A child that never became ready must not outlive the test.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  }
  return {
    child, pid: child.pid!, sip, apiPort, logs, exited,
    output: () => text,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
