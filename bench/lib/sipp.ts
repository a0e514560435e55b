// Bounded SIPp runs: every run has -m (calls), -l (concurrency) and -timeout (wall clock), and this side kills it
// if it outlives that by a grace period. Results come from sipp's own counters (-trace_stat, last line) and
// gettimeofday lines the scenarios log (-trace_logs).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync, openSync, closeSync, readSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from './proc.js';
import { track, checkNotAborted } from './children.js';

export const SIPP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'sipp');
export const SIPP_INSTALL = 'apt-get install -y sip-tester';

export function sippVersion(): string | undefined {
  const r = spawnSync('sipp', ['-v'], { encoding: 'utf8', timeout: 5000 });
  if (r.error) return undefined;
  const m = /SIPp v[\w.\-]+/.exec(`${r.stdout}${r.stderr}`);
  return m ? m[0] : 'sipp (unknown version)';
}

export type Transport = 'u1' | 't1';

/** SEQUENTIAL injection file: field0 = extension, field1 = watcher/publisher user. */
export function writeUsers(file: string, rows: Array<[string, string, ...string[]]>): void {
  writeFileSync(file, 'SEQUENTIAL\n' + rows.map((r) => `${r.join(';')}\n`).join(''));
}

/** The SIP-ETag publish.xml / publish_modify.xml logged with PUBLISH_200 (the last word of the line). */
export function loggedEtag(file: string): string | undefined {
  for (const { words: p } of logLines(file)) if (p[0] === 'PUBLISH_200' && p.length >= 6) return p[p.length - 1];
  return undefined;
}

export interface SippRun {
  scenario: string;            // file name in bench/sipp
  csv: string;
  target: string;              // host:port
  domain: string;
  transport: Transport;
  localPort: number;
  rate: number;                // calls per second (-r)
  calls: number;               // -m
  limit: number;               // -l
  timeoutS: number;            // -timeout
  recvTimeoutMs?: number;
  dir: string;                 // all files of this run go here
  logs?: boolean;              // -trace_logs into dir/logs.log
  extra?: string[];
}

export function sippArgs(r: SippRun): string[] {
  const args = [
    '-sf', join(SIPP_DIR, r.scenario), '-inf', r.csv, '-key', 'domain', r.domain, r.target,
    '-t', r.transport, '-i', '127.0.0.1', '-p', String(r.localPort),
    '-buff_size', '4194304', '-nostdin', '-trace_err', '-error_file', join(r.dir, 'errors.log'),
    '-r', String(r.rate), '-m', String(r.calls), '-l', String(r.limit),
    '-timeout', `${r.timeoutS}s`, '-timeout_error', '-recv_timeout', String(r.recvTimeoutMs ?? 5000),
    '-trace_stat', '-stf', join(r.dir, 'stat.csv'), '-fd', '1',
    '-trace_screen', '-screen_file', join(r.dir, 'screen.log'),
  ];
  if (r.logs) args.push('-trace_logs', '-log_file', join(r.dir, 'logs.log'));
  return [...args, ...(r.extra ?? [])];
}

export interface SippStats {
  rc: number | null;
  killed: boolean;
  successful: number;
  failed: number;
  retransmissions: number;
  elapsedS: number;
  created: number;
  callLengthMs?: number;
  rtdMs?: Record<string, number>;
  sippCpuS: number;
  wallS: number;
  raw: Record<string, string>;
  command: string;
}

/** "HH:MM:SS:uuuuuu" or "HH:MM:SS" → seconds. */
export function hmsToSeconds(x: string | undefined): number | undefined {
  if (!x) return undefined;
  const p = x.split(':').map(Number);
  if (p.length < 3 || p.some((n) => !Number.isFinite(n))) return undefined;
  return p[0]! * 3600 + p[1]! * 60 + p[2]! + (p.length > 3 ? p[3]! / 1e6 : 0);
}

export function lastStat(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  if (lines.length < 2) return {};
  const hdr = lines[0]!.split(';');
  const last = lines[lines.length - 1]!.split(';');
  const out: Record<string, string> = {};
  hdr.forEach((h, i) => { if (h) out[h] = last[i] ?? ''; });
  return out;
}

function num(x: string | undefined): number {
  const n = Number(x);
  return Number.isFinite(n) ? n : 0;
}

export interface SippHandle {
  child: ChildProcess;
  pid: number;
  command: string;
  done: Promise<SippStats>;
  kill(): void;
}

/** Start sipp in the background; `done` resolves when it exits (or is killed after timeoutS + grace). */
export function startSipp(r: SippRun, graceS = 15): SippHandle {
  checkNotAborted();
  mkdirSync(r.dir, { recursive: true });
  const args = sippArgs(r);
  const command = `sipp ${args.join(' ')}`;
  writeFileSync(join(r.dir, 'command.txt'), command + '\n');
  const out = openSync(join(r.dir, 'stdout.txt'), 'w');
  const child = spawn('sipp', args, { cwd: r.dir, stdio: ['ignore', out, out] });
  closeSync(out);
  track(child);
  const t0 = performance.now();
  let killed = false;
  let lastCpu = 0;
  // sipp's own CPU: sampled while it runs (a finished child's /proc entry is gone)
  const sampler = setInterval(() => { if (child.pid) lastCpu = cpuSeconds([child.pid]) || lastCpu; }, 250);
  const hard = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, (r.timeoutS + graceS) * 1000);
  const done = new Promise<SippStats>((resolve) => {
    child.once('error', () => { /* reported through exit */ });
    child.once('exit', (code) => {
      clearInterval(sampler);
      clearTimeout(hard);
      const wallS = (performance.now() - t0) / 1000;
      const raw = lastStat(join(r.dir, 'stat.csv'));
      const cl = hmsToSeconds(raw['CallLength(C)']);
      const stats: SippStats = {
        rc: code, killed,
        successful: num(raw['SuccessfulCall(C)']),
        failed: num(raw['FailedCall(C)']),
        retransmissions: num(raw['Retransmissions(C)']),
        elapsedS: hmsToSeconds(raw['ElapsedTime(C)']) ?? wallS,
        created: num(raw['TotalCallCreated']),
        callLengthMs: cl === undefined ? undefined : cl * 1000,
        rtdMs: rtdFromStat(raw),
        sippCpuS: lastCpu,
        wallS, raw, command,
      };
      writeFileSync(join(r.dir, 'sipp.json'), JSON.stringify({ ...stats, raw: undefined }, null, 1));
      resolve(stats);
    });
  });
  return { child, pid: child.pid ?? 0, command, done, kill: () => { killed = true; child.kill('SIGKILL'); } };
}

function rtdFromStat(raw: Record<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw)) {
    const m = /^ResponseTime(\w+)\(C\)$/.exec(k);
    const s = hmsToSeconds(v);
    if (m && s !== undefined) out[m[1]!] = s * 1000;
  }
  return out;
}

export function runSipp(r: SippRun): Promise<SippStats> {
  return startSipp(r).done;
}

/** Lines "<KEY> <sec> <usec> ..." of a -trace_logs file, as epoch seconds (float). */
export function logTimes(file: string, key: string): number[] {
  const out: number[] = [];
  for (const { words: p } of logLines(file)) if (p[0] === key && p.length >= 3) out.push(Number(p[1]) + Number(p[2]) / 1e6);
  return out;
}

/** The lines of a scenario's -trace_logs file, each with its words; none when sipp wrote no file. */
function logLines(file: string): Array<{ line: string; words: string[] }> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').map((line) => ({ line, words: line.trim().split(/\s+/) }));
}

/** The LogTail key of fanout_watcher.xml's "STATE <k> <s> <us> <call> <match>" lines of round k. */
export function stateKey(k: number): string {
  return `STATE ${k}`;
}

/** Times and body-check results of the STATE lines of round k (sipp prints its counter as 1 or 1.000000). */
export function stateLines(file: string, k: number): Array<{ t: number; matched: boolean }> {
  const out: Array<{ t: number; matched: boolean }> = [];
  for (const { line, words: p } of logLines(file)) {
    if (p[0] === 'STATE' && parseFloat(p[1] ?? '') === k && p.length >= 4) {
      out.push({ t: Number(p[2]) + Number(p[3]) / 1e6, matched: line.includes('confirmed') });
    }
  }
  return out;
}

/** Count lines starting with key, reading only what was appended since the last call (cheap polling). */
export class LogTail {
  private offset = 0;
  private partial = '';
  readonly counts = new Map<string, number>();
  constructor(private readonly file: string) {}
  poll(): void {
    if (!existsSync(this.file)) return;
    const size = statSync(this.file).size;
    if (size <= this.offset) return;
    const fd = openSync(this.file, 'r');
    const buf = Buffer.alloc(size - this.offset);
    readSync(fd, buf, 0, buf.length, this.offset);
    closeSync(fd);
    this.offset = size;
    const text = this.partial + buf.toString('utf8');
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const l of lines) {
      const words = l.trim().split(/\s+/, 2);
      // "STATE <k> ..." lines (fanout_watcher.xml) are counted per round k, as stateKey(k).
      const key = words[0] === 'STATE' ? stateKey(parseFloat(words[1] ?? '')) : words[0];
      if (key) this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    }
  }
  count(key: string): number {
    this.poll();
    return this.counts.get(key) ?? 0;
  }
}
