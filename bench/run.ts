// `npm run bench`: Lamplighter against the reference Kamailio, same SIPp scenarios, same machine, same run.
// It installs nothing: without sipp it says what to apt-get and stops; without Kamailio it measures Lamplighter
// alone and says how to get the comparison. Every sipp run is bounded (-m, -l, -timeout, and a kill after a
// grace period) and the whole run has a deadline. Raw results go to bench-results/<timestamp>/ (gitignored).
import { Command } from 'commander';
import { mkdirSync, writeFileSync, appendFileSync, existsSync, rmSync, readdirSync, copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { cpus, totalmem, release } from 'node:os';
import { sippVersion, SIPP_INSTALL, type Transport } from './lib/sipp.js';
import { ROOT, buildLamplighter, startLamplighter, startKamailio, stopKamailio, kamailioMissing, kamailioVersion, KAMAILIO_INSTALL, type ServerUnderTest } from './lib/servers.js';
import { kneeSearch, fanout, Deadline, type ServerKind, type StartServer, type KneeResult, type FanoutResult } from './lib/figures.js';
import { lamplighterScale, kamailioScale, type ScaleResult } from './lib/scale.js';
import { runParserBench, type ParserResult } from './lib/parser-bench.js';
import { renderReport, type BenchResults } from './lib/report.js';
import { killTracked, abortAll } from './lib/children.js';

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);

const program = new Command()
  .name('bench')
  .description('Lamplighter benchmark (SIPp), with Kamailio as the yardstick when it is installed')
  .option('--runs <n>', 'runs per figure; the table shows medians and ranges', '3')
  .option('--quick', 'one short run of every figure (5 s steps, 1 run)')
  .option('--step <seconds>', 'seconds per rate step', '10')
  .option('--rates <list>', 'the rate ladder (calls/s)', '100,250,500,1000,2000,3000,4000,5000,6000,8000,10000,12000,16000,20000')
  .option('--warmup <seconds>', 'seconds of the same scenario before each measured rate step (JIT warm-up; 0 = cold)', '4')
  .option('--start-rate <r>', 'first step of the first run (later runs start at the knee found)', '1000')
  .option('--only <list>', 'figures to run: parser,rate,fanout,scale', 'parser,rate,fanout,scale')
  .option('--scenarios <list>', 'rate scenarios', 'subscribe,subscribe_unsubscribe,publish')
  .option('--transports <list>', 'udp,tcp', 'udp,tcp')
  .option('--watchers <list>', 'fan-out sizes', '1000,10000')
  .option('--servers <list>', 'lamplighter,kamailio-sqlite,kamailio-mem', 'lamplighter,kamailio-sqlite,kamailio-mem')
  .option('--scale-subs <n>', 'live subscriptions for the RSS and restart figures', '100000')
  .option('--settle <seconds>', 'wait before the RSS reading (server transactions end after Timer J = 32 s; then one idle check of memory.idleGc, 5 s)', '40')
  .option('--api-subs <n>', 'subscriptions in the account for the GET presence figure', '10000')
  .option('--deadline <minutes>', 'the whole run stops starting new steps after this', '150')
  .option('--out <dir>', 'results folder (default bench-results/<timestamp>)')
  .option('--save', 'also write the report to bench/RESULTS.md')
  .option('--profile', 'run Lamplighter under node --cpu-prof (profiles land in each step folder)');

interface Opts {
  warmup: string;
  runs: string; quick?: boolean; step: string; rates: string; startRate: string; only: string; scenarios: string;
  transports: string; watchers: string; servers: string; scaleSubs: string; apiSubs: string; settle: string; deadline: string;
  out?: string; save?: boolean; profile?: boolean;
}

async function main(): Promise<number> {
  const o = program.parse(process.argv).opts<Opts>();
  const sipp = sippVersion();
  if (!sipp) {
    process.stderr.write(`sipp is not installed. Install it with:\n  ${SIPP_INSTALL}\n`);
    return 2;
  }
  const runs = o.quick ? 1 : Math.max(1, Number(o.runs));
  const stepS = o.quick ? 5 : Math.max(2, Number(o.step));
  const deadlineMin = o.quick && o.deadline === '150' ? 40 : Number(o.deadline);
  const deadline = new Deadline(Date.now() + deadlineMin * 60_000);
  const rates = list(o.rates).map(Number).filter((n) => n > 0).sort((a, b) => a - b);
  const only = new Set(list(o.only));
  // Later figures keep their share of the deadline: rate steps stop early enough for fan-out and scale to run.
  const totalMs = deadlineMin * 60_000;
  const scaleReserve = only.has('scale') ? Math.min(0.2 * totalMs, (o.quick ? 4 : 7) * 60_000) : 0;
  const fanoutReserve = only.has('fanout') ? Math.min(0.2 * totalMs, (o.quick ? 3 : 8) * 60_000) : 0;
  const fanoutDeadline = new Deadline(deadline.at - scaleReserve);
  const rateDeadline = new Deadline(deadline.at - scaleReserve - fanoutReserve);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const outDir = resolve(o.out ?? join(ROOT, 'bench-results', stamp));
  mkdirSync(outDir, { recursive: true });
  const logFile = join(outDir, 'log.txt');
  const log = (s: string) => {
    const line = `${new Date().toISOString().slice(11, 19)} ${s}`;
    process.stderr.write(line + '\n');
    appendFileSync(logFile, line + '\n');
  };

  let servers = list(o.servers) as ServerKind[];
  const kMissing = kamailioMissing();
  if (kMissing && servers.some((s) => s.startsWith('kamailio'))) {
    log(`Kamailio comparison skipped: ${kMissing}`);
    log(`  to get it: ${KAMAILIO_INSTALL} (and the reference setup in ../shared/bench or $BENCH_SHARED)`);
    servers = servers.filter((s) => !s.startsWith('kamailio'));
  }

  if (servers.includes('lamplighter')) {
    const failed = buildLamplighter();
    if (failed) {
      log(failed);
      process.exit(1);
    }
  }

  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  const results: BenchResults = {
    startedAt: new Date().toISOString(),
    outDir,
    command: `npm run bench --${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`.replace(/ --$/, ''),
    machine: {
      cpus: cpus().length, model: cpus()[0]?.model ?? '?', memGiB: totalmem() / 2 ** 30, kernel: release(),
      node: process.version, sipp, kamailio: kMissing ? undefined : kamailioVersion(), commit,
    },
    settings: { runs, stepS, rates, deadlineMin, warmupS: Number(o.warmup) },
    kamailioNote: kMissing,
    servers, parser: undefined, rates: [], fanouts: [], scale: [],
  };
  log(`results in ${outDir}; ${runs} run(s), ${stepS} s steps, deadline ${deadlineMin} min; servers: ${servers.join(', ')}`);

  const starter = (kind: ServerKind): StartServer => {
    if (kind === 'lamplighter') {
      return async (dir: string): Promise<ServerUnderTest> => {
        const dbFile = join(dir, 'lamplighter.sqlite');
        const s = await startLamplighter({
          dbFile, logFile: join(dir, 'server.log'),
          nodeArgs: o.profile ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${dir}`] : [],
        });
        return {
          ...s,
          async stop() {
            await s.stop();
            // the databases of rate steps are large and not looked at again
            for (const f of readdirSync(dir)) if (f.startsWith('lamplighter.sqlite')) rmSync(join(dir, f), { force: true });
          },
        };
      };
    }
    return () => startKamailio(kind === 'kamailio-mem' ? 'mem' : 'sqlite', { fresh: true });
  };

  const save = () => writeFileSync(join(outDir, 'results.json'), JSON.stringify(results, null, 1));
  try {
    // ---------------------------------------------------------------- parser micro-benchmark
    if (only.has('parser')) {
      log('parser micro-benchmark (bench/parser.ts)');
      const p: ParserResult = runParserBench(outDir, o.quick ? 1 : runs);
      results.parser = p;
      log(p.messagesPerSecond ? `  ${Math.round(p.messagesPerSecond)} messages/s` : `  ${p.note}`);
      save();
    }

    // ---------------------------------------------------------------- clean rates
    if (only.has('rate')) {
      const transports = list(o.transports).map((t) => (t === 'tcp' ? 't1' : 'u1')) as Transport[];
      for (const scenario of list(o.scenarios)) {
        for (const transport of transports) {
          for (const kind of servers) {
            const series: KneeResult[] = [];
            let startIndex = Math.max(0, rates.findIndex((r) => r >= Number(o.startRate)));
            for (let run = 1; run <= runs; run++) {
              if (!rateDeadline.allows(stepS + 25)) { log('  deadline for rate steps reached, they stop here'); break; }
              log(`rate: ${kind} ${scenario} ${transport} run ${run}/${runs}`);
              const k = await kneeSearch(starter(kind), {
                scenario: `${scenario}.xml`, transport, durationS: stepS, warmupS: Number(o.warmup), rates, startIndex, deadline: rateDeadline, log,
                dir: join(outDir, 'rate', kind, `${scenario}-${transport}`, `run${run}`),
              });
              series.push(k);
              if (k.bestIndex >= 0) startIndex = k.bestIndex;
              else if (k.steps.length) startIndex = 0;
            }
            results.rates.push({ server: kind, scenario, transport, runs: series, ladderTop: rates[rates.length - 1]! });
            save();
          }
        }
      }
    }

    // ---------------------------------------------------------------- fan-out
    if (only.has('fanout')) {
      for (const W of list(o.watchers).map(Number)) {
        for (const kind of servers) {
          const rs: FanoutResult[] = [];
          for (let run = 1; run <= runs; run++) {
            if (!fanoutDeadline.allows(W / 500 + 40)) { log('  deadline for fan-out reached, it stops here'); break; }
            log(`fan-out: ${kind} W=${W} run ${run}/${runs}`);
            const r = await fanout(starter(kind), { watchers: W, subRate: Math.min(1000, Math.max(200, W / 4)), dir: join(outDir, 'fanout', kind, `W${W}`, `run${run}`) });
            log(`    ready ${r.ready}/${W}, notified ${r.notified} (${r.confirmed} confirmed), PUBLISH→200 ${r.publish200Ms?.toFixed(1)} ms, →first ${r.firstMs?.toFixed(1)}, →median ${r.medianMs?.toFixed(1)}, →last ${r.lastMs?.toFixed(1)} ms, server ${r.serverCpuS.toFixed(2)} CPU-s${r.note ? `; ${r.note}` : ''}`);
            rs.push(r);
          }
          results.fanouts.push({ server: kind, watchers: W, runs: rs });
          save();
        }
      }
    }

    // ---------------------------------------------------------------- scale
    if (only.has('scale')) {
      const total = o.quick ? Math.min(100_000, Number(o.scaleSubs)) : Number(o.scaleSubs);
      const apiSubs = Number(o.apiSubs);
      for (const kind of servers) {
        if (!deadline.allows(120)) { log('  deadline reached, scale figures stop here'); break; }
        log(`scale: ${kind}, ${total} subscriptions`);
        const dir = join(outDir, 'scale', kind);
        let r: ScaleResult;
        try {
          r = kind === 'lamplighter'
            ? await lamplighterScale({ dir, total, apiSubs, settleS: Number(o.settle), log })
            : await kamailioScale(kind === 'kamailio-mem' ? 'mem' : 'sqlite', { dir, total, settleS: Number(o.settle), log });
        } catch (err) {
          log(`    failed: ${(err as Error).message.split('\n')[0]}`);
          r = { server: kind, subscriptions: total, made: [], note: (err as Error).message.split('\n')[0] };
        }
        results.scale.push(r);
        save();
      }
    }
  } finally {
    if (servers.some((s) => s.startsWith('kamailio'))) await stopKamailio();
  }

  results.finishedAt = new Date().toISOString();
  save();
  const report = renderReport(results);
  writeFileSync(join(outDir, 'RESULTS.md'), report);
  if (o.save) copyFileSync(join(outDir, 'RESULTS.md'), join(ROOT, 'bench', 'RESULTS.md'));
  process.stdout.write('\n' + report + '\n');
  log(`raw results: ${outDir}${o.save ? '; bench/RESULTS.md updated' : ''}`);
  return 0;
}

let exiting = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (exiting) return;
    exiting = true;
    process.stderr.write(`\n${sig}: ending the servers and sipp runs this bench started, then exiting\n`);
    abortAll();
    stopKamailio().finally(() => process.exit(130));
  });
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`bench failed: ${(err as Error).message}\n`);
  killTracked();
  if (existsSync('/tmp/kamailio-bench/kamailio.pid')) void stopKamailio();
  process.exit(1);
});
