// The measurements: highest clean rate by stepping, fan-out from one PUBLISH to the last NOTIFY, and the scale
// figures. Each takes a factory that starts a fresh server, so every step starts from the same empty state
// (as the reference Kamailio runs did with start.sh fresh).
import { mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { freePort } from './ports.js';
import { CpuMeter, processTree, pssMiB, rssMiB, cpuSeconds } from './proc.js';
import { startSipp, runSipp, writeUsers, logTimes, loggedEtag, LogTail, stateKey, stateLines, type Transport, type SippStats } from './sipp.js';
import { median, percentile } from './stats.js';
import type { ServerUnderTest } from './servers.js';

export type ServerKind = 'lamplighter' | 'kamailio-sqlite' | 'kamailio-mem';
export type StartServer = (dir: string) => Promise<ServerUnderTest>;

export const DOMAIN = 'example.test';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Memory of a server: VmRSS for the single Lamplighter process, Pss summed over Kamailio's processes. */
export function serverMemMiB(s: ServerUnderTest): number | undefined {
  return s.name === 'lamplighter' ? rssMiB(s.pid) : pssMiB(processTree(s.pid));
}

export class Deadline {
  constructor(readonly at: number) {}
  leftS(): number { return (this.at - Date.now()) / 1000; }
  allows(seconds: number): boolean { return this.leftS() > seconds; }
}

// ---------------------------------------------------------------- rate steps

export interface StepResult {
  rate: number;
  pass: boolean;
  why: string;
  calls: number;
  successful: number;
  failed: number;
  retransmissions: number;
  achievedCps: number;
  serverCpuCores: number;
  sippCpuCores: number;
  memMiB?: number;
  rtdMs?: Record<string, number>;
  callLengthMs?: number;
  load1?: number;           // 1-min load average when the step ended (other work on the machine shows here)
  warmup?: { calls: number; failed: number; retransmissions: number };
  dir: string;
}

export interface StepOptions {
  scenario: string;
  transport: Transport;
  rate: number;
  durationS: number;
  /** Seconds of the same scenario (other users, at most 1 000/s) before the measured step, not counted. */
  warmupS?: number;
  dir: string;
}

export async function rateStep(start: StartServer, o: StepOptions): Promise<StepResult> {
  mkdirSync(o.dir, { recursive: true });
  const calls = Math.round(o.rate * o.durationS);
  const csv = join(o.dir, 'users.csv');
  const tag = `r${Date.now().toString(36)}`;
  const rows: Array<[string, string]> = [];
  for (let i = 1; i <= calls; i++) rows.push([`${tag}e${i}`, `${tag}w${i}`]);
  writeUsers(csv, rows);
  const server = await start(o.dir);
  let st: SippStats;
  let cpu: number;
  let mem: number | undefined;
  let warmup: SippStats | undefined;
  try {
    if (o.warmupS) {
      // A JIT runtime is slow for its first few thousand messages (V8 compiles the hot paths); the measured step
      // is steady state. Kamailio gets the same warm-up so both see the same traffic.
      const wrate = Math.min(o.rate, 1000);
      const wcalls = Math.round(wrate * o.warmupS);
      const wcsv = join(o.dir, 'warmup-users.csv');
      const wrows: Array<[string, string]> = [];
      for (let i = 1; i <= wcalls; i++) wrows.push([`${tag}we${i}`, `${tag}ww${i}`]);
      writeUsers(wcsv, wrows);
      warmup = await runSipp({
        scenario: o.scenario, csv: wcsv, target: server.sipTarget, domain: DOMAIN, transport: o.transport,
        localPort: await freePort(), rate: wrate, calls: wcalls, limit: Math.max(1000, 2 * wrate),
        timeoutS: o.warmupS + 20, recvTimeoutMs: 5000, dir: join(o.dir, 'warmup'),
      });
      await sleep(500);
    }
    const meter = new CpuMeter(server.pid);
    st = await runSipp({
      scenario: o.scenario, csv, target: server.sipTarget, domain: DOMAIN, transport: o.transport,
      localPort: await freePort(), rate: o.rate, calls, limit: Math.max(1000, 2 * o.rate),
      timeoutS: o.durationS + 30, recvTimeoutMs: 5000, dir: o.dir,
    });
    cpu = meter.cores();
    mem = serverMemMiB(server);
  } finally {
    await server.stop();
  }
  const achieved = st.elapsedS > 0 ? st.successful / st.elapsedS : 0;
  const why: string[] = [];
  if (st.killed) why.push('sipp killed at the hard timeout');
  if (st.rc !== 0) why.push(`sipp rc ${st.rc}`);
  if (st.failed) why.push(`${st.failed} failed`);
  if (st.retransmissions) why.push(`${st.retransmissions} retrans`);
  if (st.successful !== calls) why.push(`${st.successful}/${calls} ok`);
  // sipp's elapsed time includes the last call and its exit; 5 % covers that at 10 s steps
  if (achieved < 0.95 * o.rate) why.push(`achieved ${achieved.toFixed(0)}/s`);
  const res: StepResult = {
    rate: o.rate, pass: why.length === 0, why: why.join(', '), calls,
    successful: st.successful, failed: st.failed, retransmissions: st.retransmissions,
    achievedCps: Math.round(achieved), serverCpuCores: cpu, sippCpuCores: st.wallS > 0 ? st.sippCpuS / st.wallS : 0,
    memMiB: mem, rtdMs: st.rtdMs, callLengthMs: st.callLengthMs, load1: loadavg()[0], dir: o.dir,
    warmup: warmup ? { calls: warmup.created, failed: warmup.failed, retransmissions: warmup.retransmissions } : undefined,
  };
  writeFileSync(join(o.dir, 'step.json'), JSON.stringify(res, null, 1));
  return res;
}

export interface KneeResult {
  best?: StepResult;        // the highest clean step
  firstFail?: StepResult;   // the step above it that failed (what stopped the search)
  steps: StepResult[];
  bestIndex: number;        // index in rates, -1 = none clean
  complete: boolean;        // false when the deadline cut the search
}

/**
 * Highest clean rate on the ladder `rates`: start at startIndex; go up while clean, or down until clean.
 * A later run starts at the knee the previous one found, so it costs two or three steps.
 */
export async function kneeSearch(start: StartServer, o: Omit<StepOptions, 'rate' | 'dir'> & {
  rates: number[]; startIndex: number; dir: string; deadline: Deadline; log: (s: string) => void;
}): Promise<KneeResult> {
  const steps: StepResult[] = [];
  const cost = o.durationS + (o.warmupS ?? 0) + 25;
  const step = async (i: number) => {
    const r = await rateStep(start, { ...o, rate: o.rates[i]!, dir: join(o.dir, `rate-${o.rates[i]}`) });
    steps.push(r);
    o.log(`    ${o.scenario} ${o.transport} ${r.rate}/s: ${r.pass ? 'clean' : `FAIL (${r.why})`}, server ${r.serverCpuCores.toFixed(2)} cores, ${r.memMiB?.toFixed(0) ?? '?'} MiB`);
    return r;
  };
  let i = Math.max(0, Math.min(o.rates.length - 1, o.startIndex));
  if (!o.deadline.allows(cost)) return { steps, bestIndex: -1, complete: false };
  let r = await step(i);
  if (r.pass) {
    let best = r, bestIndex = i;
    while (i + 1 < o.rates.length) {
      if (!o.deadline.allows(cost)) return { best, steps, bestIndex, complete: false };
      r = await step(++i);
      if (!r.pass) return { best, firstFail: r, steps, bestIndex, complete: true };
      best = r; bestIndex = i;
    }
    return { best, steps, bestIndex, complete: true };
  }
  let firstFail = r;
  while (i > 0) {
    if (!o.deadline.allows(cost)) return { firstFail, steps, bestIndex: -1, complete: false };
    r = await step(--i);
    if (r.pass) return { best: r, firstFail, steps, bestIndex: i, complete: true };
    firstFail = r;
  }
  return { firstFail, steps, bestIndex: -1, complete: true };
}

// ---------------------------------------------------------------- fan-out

/**
 * PUBLISHes per fan-out run, as fanout_watcher.xml expects them (its loop logs STATE 1..4). Round 1 is the first
 * fan-out after the server started; the last is the figure, as the rate figures are taken after a warm-up: a
 * presence server fans out all day, and Node's JIT compiles the fan-out path only once it has run a little.
 */
export const FANOUT_ROUNDS = 4;

/** PUBLISH sent → the NOTIFYs of one round, as the watchers logged them (ms, gettimeofday on this host). */
export interface FanoutRound {
  publish200Ms?: number;
  firstMs?: number;
  medianMs?: number;
  p95Ms?: number;
  lastMs?: number;
  notified: number;
  confirmed: number;
}

export interface FanoutResult extends FanoutRound {
  watchers: number;
  ready: number;
  /** The first fan-out after the server started (round 1). */
  cold?: FanoutRound;
  serverCpuS: number;
  memMiB?: number;
  watcherFailed: number;
  watcherRetrans: number;
  publishOk: boolean;
  load1?: number;
  dir: string;
  note?: string;
}

/**
 * W sipp watchers (fanout_watcher.xml, one call each, all on one extension) subscribe; when every one logged
 * READY, FANOUT_ROUNDS PUBLISHes (publish.xml, then publish_modify.xml on the same publication; -m 1 each), each once every watcher has
 * logged the round before. The figure is the last round's PUBLISH sent → last STATE logged, both gettimeofday on
 * this host; round 1 is reported as `cold`. sipp holds 10 000 calls fine with -l W; the un-SUBSCRIBEs come 2–6 s
 * after the last round, spread out.
 */
export async function fanout(start: StartServer, o: { watchers: number; subRate: number; dir: string; transport?: Transport }): Promise<FanoutResult> {
  const W = o.watchers;
  const wdir = join(o.dir, 'watchers');
  mkdirSync(wdir, { recursive: true });
  const ext = `fan${Date.now().toString(36)}`;
  const rows: Array<[string, string]> = [];
  for (let i = 1; i <= W; i++) rows.push([ext, `${ext}w${i}`]);
  writeUsers(join(wdir, 'users.csv'), rows);
  const transport = o.transport ?? 'u1';
  const server = await start(o.dir);
  try {
    const subS = Math.ceil(W / o.subRate);
    const watchers = startSipp({
      scenario: 'fanout_watcher.xml', csv: join(wdir, 'users.csv'), target: server.sipTarget, domain: DOMAIN,
      transport, localPort: await freePort(), rate: o.subRate, calls: W, limit: W,
      timeoutS: subS + 100 + 30 * FANOUT_ROUNDS, recvTimeoutMs: 10_000, dir: wdir, logs: true,
    });
    const wlog = join(wdir, 'logs.log');
    const tail = new LogTail(wlog);
    const readyBy = performance.now() + (subS + 30) * 1000;
    let exitedEarly = false;
    watchers.done.then(() => { exitedEarly = true; });
    while (performance.now() < readyBy && tail.count('READY') < W && !exitedEarly) await sleep(100);
    const ready = tail.count('READY');
    await sleep(1000); // the last initial NOTIFY transactions settle
    const rounds: FanoutRound[] = [];
    let serverCpuS = 0;
    let publishOk = true;
    for (let k = 1; k <= FANOUT_ROUNDS && !exitedEarly; k++) {
      const pdir = join(o.dir, `publisher${k}`);
      mkdirSync(pdir, { recursive: true });
      // Round 1 publishes; the later rounds modify that publication (SIP-If-Match) with a new dialog id, so every
      // round changes the state and the presentity always has exactly one dialog.
      const etag = k > 1 ? loggedEtag(join(o.dir, `publisher${k - 1}`, 'logs.log')) : undefined;
      if (k > 1 && etag === undefined) { publishOk = false; break; }
      writeUsers(join(pdir, 'users.csv'), [etag === undefined ? [ext, 'pbx'] : [ext, etag, `${ext}r${k}`]]);
      const c0 = cpuSeconds(processTree(server.pid));
      const pub = await runSipp({
        scenario: etag === undefined ? 'publish.xml' : 'publish_modify.xml', csv: join(pdir, 'users.csv'), target: server.sipTarget, domain: DOMAIN, transport,
        localPort: await freePort(), rate: 1, calls: 1, limit: 1, timeoutS: 30, recvTimeoutMs: 10_000, dir: pdir, logs: true,
      });
      publishOk &&= pub.successful === 1;
      const allBy = performance.now() + 30_000;
      while (performance.now() < allBy && tail.count(stateKey(k)) < ready && !exitedEarly) await sleep(20);
      serverCpuS = cpuSeconds(processTree(server.pid)) - c0;
      rounds.push(roundTimes(stateLines(wlog, k), join(pdir, 'logs.log')));
      if (k < FANOUT_ROUNDS) await sleep(300); // the round's 200s are matched before the next PUBLISH
    }
    const memMiB = serverMemMiB(server);
    const wst = await watchers.done;
    const last = rounds[rounds.length - 1] ?? { notified: 0, confirmed: 0 };
    const res: FanoutResult = {
      ...last, watchers: W, ready, serverCpuS, memMiB, watcherFailed: wst.failed, watcherRetrans: wst.retransmissions,
      publishOk, load1: loadavg()[0], dir: o.dir,
    };
    if (rounds.length > 1) res.cold = rounds[0];
    if (ready < W) res.note = `only ${ready}/${W} watchers subscribed`;
    else if (rounds.length < FANOUT_ROUNDS) res.note = `only ${rounds.length}/${FANOUT_ROUNDS} rounds ran`;
    else if (last.notified < W) res.note = `only ${last.notified}/${W} notified`;
    writeFileSync(join(o.dir, 'fanout.json'), JSON.stringify(res, null, 1));
    return res;
  } finally {
    await server.stop();
  }
}

/** One round's figures from the watchers' STATE lines and the publisher's log. */
function roundTimes(lines: Array<{ t: number; matched: boolean }>, publisherLog: string): FanoutRound {
  const n = lines.map((l) => l.t).sort((a, b) => a - b);
  const sent = logTimes(publisherLog, 'PUBLISH_SENT')[0];
  const ok200 = logTimes(publisherLog, 'PUBLISH_200')[0];
  const r: FanoutRound = { notified: n.length, confirmed: lines.filter((l) => l.matched).length };
  if (sent !== undefined && n.length) {
    const ms = (t: number | undefined) => (t === undefined ? undefined : (t - sent) * 1000);
    r.publish200Ms = ms(ok200);
    r.firstMs = ms(n[0]);
    r.medianMs = ms(median(n));
    r.p95Ms = ms(percentile(n, 95));
    r.lastMs = ms(n[n.length - 1]);
  }
  return r;
}
