// The servers under test, both as child processes on 127.0.0.1: Lamplighter (node dist/main.js, what `npm start`
// runs, built by the runner first; on a temp database, ports chosen here) and the reference Kamailio (started and stopped by the shared start.sh/stop.sh
// on 127.0.0.1:5070). Both are ended by their own PID only.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, mkdirSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import { track, checkNotAborted } from './children.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Compile the server as `npm start` does (tsc into dist/); the bench measures that, not the tsx loader. */
export function buildLamplighter(): string | undefined {
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, encoding: 'utf8' });
  return r.status === 0 ? undefined : `build failed (npm run build): ${(r.stdout + r.stderr).trim().split('\n').slice(0, 5).join(' | ')}`;
}

export interface ServerUnderTest {
  name: string;
  pid: number;
  sipTarget: string;       // host:port for sipp
  sipPort: number;
  apiPort?: number;
  /** ms from spawn to serving (/ready 200 for Lamplighter, start.sh done for Kamailio). */
  startMs: number;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LamplighterOptions {
  dbFile: string;
  logFile: string;
  ports?: { sip: number; ws: number; api: number };
  readyTimeoutMs?: number;
  nodeArgs?: string[];      // e.g. ['--cpu-prof', '--cpu-prof-dir=...'] for profiling
  env?: Record<string, string>;
}

export async function startLamplighter(o: LamplighterOptions): Promise<ServerUnderTest & { ports: { sip: number; ws: number; api: number } }> {
  checkNotAborted();
  const ports = o.ports ?? { sip: await freePort(), ws: await freePort(), api: await freePort() };
  mkdirSync(dirname(o.logFile), { recursive: true });
  const out = openSync(o.logFile, 'a');
  const t0 = performance.now();
  const child: ChildProcess = spawn(process.execPath, [...(o.nodeArgs ?? []), join(ROOT, 'dist', 'main.js')], {
    cwd: ROOT,
    stdio: ['ignore', out, out],
    env: {
      ...process.env,
      LAMPLIGHTER_DB: o.dbFile,
      LAMPLIGHTER_SIP_ADDRESS: '127.0.0.1',
      LAMPLIGHTER_API_ADDRESS: '127.0.0.1',
      LAMPLIGHTER_SIP_PORT: String(ports.sip),
      LAMPLIGHTER_WS_PORT: String(ports.ws),
      LAMPLIGHTER_API_PORT: String(ports.api),
      LAMPLIGHTER_SIP_AUTH: 'false',
      LAMPLIGHTER_LOG_LEVEL: 'warn',
      LAMPLIGHTER_NODE_ID: 'bench',
      ...o.env,
    },
  });
  closeSync(out);
  track(child);
  let exited: { code: number | null; signal: string | null } | undefined;
  const exitP = new Promise<void>((r) => child.once('exit', (code, signal) => { exited = { code, signal }; r(); }));
  const deadline = t0 + (o.readyTimeoutMs ?? 60_000);
  let startMs = -1;
  while (performance.now() < deadline && !exited) {
    try {
      const res = await fetch(`http://127.0.0.1:${ports.api}/ready`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) { startMs = performance.now() - t0; break; }
    } catch { /* not listening yet */ }
    await sleep(20);
  }
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 15_000);
      await exitP;
      clearTimeout(t);
    }
  };
  if (startMs < 0) {
    await stop();
    const tail = existsSync(o.logFile) ? readFileSync(o.logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
    throw new Error(`Lamplighter did not become ready (${exited ? `exited ${exited.code ?? exited.signal}` : 'timeout'}); log tail:\n${tail}`);
  }
  return { name: 'lamplighter', pid: child.pid!, sipTarget: `127.0.0.1:${ports.sip}`, sipPort: ports.sip, apiPort: ports.api, startMs, stop, ports };
}

// ---------------------------------------------------------------- Kamailio

export type KamailioMode = 'sqlite' | 'mem';
export const KAMAILIO_INSTALL = 'apt-get install -y kamailio kamailio-presence-modules kamailio-sqlite-modules sqlite3';
const KAMAILIO_RUN = '/tmp/kamailio-bench';

export function sharedBenchDir(): string | undefined {
  const dir = process.env.BENCH_SHARED ? resolve(process.env.BENCH_SHARED) : resolve(ROOT, '..', 'shared', 'bench');
  return existsSync(join(dir, 'kamailio', 'start.sh')) ? dir : undefined;
}

/** Why Kamailio cannot be measured here, or undefined when it can. */
export function kamailioMissing(): string | undefined {
  if (!sharedBenchDir()) return `no reference Kamailio setup (set BENCH_SHARED to the folder holding kamailio/start.sh; default ../shared/bench)`;
  for (const bin of ['kamailio', 'sqlite3']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed: ${KAMAILIO_INSTALL}`;
  }
  if (!existsSync('/usr/share/kamailio/db_sqlite/presence-create.sql')) return `kamailio-sqlite-modules is not installed: ${KAMAILIO_INSTALL}`;
  const mods = spawnSync('sh', ['-c', 'ls /usr/lib/*/kamailio/modules/presence_dialoginfo.so /usr/lib/kamailio/modules/presence_dialoginfo.so 2>/dev/null']);
  if (!String(mods.stdout).trim()) return `kamailio-presence-modules is not installed: ${KAMAILIO_INSTALL}`;
  return undefined;
}

export function kamailioVersion(): string {
  const r = spawnSync('kamailio', ['-v'], { encoding: 'utf8' });
  return /kamailio [\d.]+/.exec(r.stdout ?? '')?.[0] ?? 'kamailio';
}

/**
 * The shared scripts run in their own session (detached): Kamailio, when it fails during start-up, signals its
 * whole process group, and that must not be this runner.
 */
export function runShared(script: 'start.sh' | 'stop.sh', args: string[], timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
  const dir = sharedBenchDir();
  if (!dir) return Promise.resolve({ code: 1, out: 'no shared bench folder' });
  return new Promise((resolveRun) => {
    const child = spawn('sh', [join(dir, 'kamailio', script), ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => { out += d; });
    child.stderr!.on('data', (d) => { out += d; });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => { clearTimeout(t); resolveRun({ code, out }); });
  });
}

/** start.sh fresh [-A MEMONLY]; fresh = a new empty SQLite database (reload = keep the stored state). */
export async function startKamailio(mode: KamailioMode, opts: { fresh?: boolean; extraArgs?: string[] } = {}): Promise<ServerUnderTest> {
  checkNotAborted();
  if (existsSync(join(KAMAILIO_RUN, 'kamailio.pid'))) await stopKamailio();
  const args: string[] = [];
  if (opts.fresh !== false) args.push('fresh');
  if (mode === 'mem') args.push('-A', 'MEMONLY');
  args.push(...(opts.extraArgs ?? []));
  const t0 = performance.now();
  const r = await runShared('start.sh', args);
  try {
    checkNotAborted();
  } catch (err) {
    await stopKamailio();
    throw err;
  }
  if (r.code !== 0) throw new Error(`kamailio start failed: ${r.out.trim().split('\n').slice(-3).join(' / ')}`.slice(0, 600));
  const pid = Number(readFileSync(join(KAMAILIO_RUN, 'kamailio.pid'), 'utf8').trim());
  const startMs = performance.now() - t0; // includes start.sh's fixed 2 s wait
  return { name: `kamailio-${mode}`, pid, sipTarget: '127.0.0.1:5070', sipPort: 5070, startMs, stop: stopKamailio };
}

export async function stopKamailio(): Promise<void> {
  if (!sharedBenchDir() || !existsSync(join(KAMAILIO_RUN, 'kamailio.pid'))) return;
  await runShared('stop.sh', [], 30_000);
}
