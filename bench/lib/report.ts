// The markdown the runner prints and saves (RESULTS.md): one table of figures against the issue's targets and
// Kamailio, then the details behind each figure, the machine and the command.
import { FANOUT_ROUNDS, type KneeResult, type FanoutResult, type ServerKind } from './figures.js';
import type { ScaleResult } from './scale.js';
import type { ParserResult } from './parser-bench.js';
import { summarize, fmt, fmtSummary, median, type Summary } from './stats.js';

export interface BenchResults {
  startedAt: string;
  outDir: string;
  finishedAt?: string;
  command: string;
  machine: { cpus: number; model: string; memGiB: number; kernel: string; node: string; sipp: string; kamailio?: string; commit: string };
  settings: { runs: number; stepS: number; rates: number[]; deadlineMin: number; warmupS?: number };
  kamailioNote?: string;
  servers: ServerKind[];
  parser?: ParserResult;
  rates: Array<{ server: ServerKind; scenario: string; transport: string; runs: KneeResult[]; ladderTop: number }>;
  fanouts: Array<{ server: ServerKind; watchers: number; runs: FanoutResult[] }>;
  scale: ScaleResult[];
}

const SCENARIO_LABEL: Record<string, string> = {
  subscribe: 'SUBSCRIBE + initial NOTIFY, clean rate',
  subscribe_unsubscribe: 'SUBSCRIBE + un-SUBSCRIBE, clean rate',
  publish: 'PUBLISH, clean rate',
};

type Better = 'higher' | 'lower';
interface Target { text: string; value: number; better: Better }

function rateTarget(scenario: string, transport: string): Target | undefined {
  if (transport !== 'u1') return undefined;
  if (scenario === 'subscribe' || scenario === 'publish') return { text: '≥ 4000/s', value: 4000, better: 'higher' };
  return undefined;
}

function mark(v: number | undefined, t: Target | undefined): string {
  if (v === undefined || !t) return '';
  const met = t.better === 'higher' ? v >= t.value : v <= t.value;
  if (met) return ' ✓';
  const by = t.better === 'higher' ? (1 - v / t.value) * 100 : (v / t.value - 1) * 100;
  return ` ✗ (${by.toFixed(0)} % ${t.better === 'higher' ? 'short' : 'over'})`;
}

function ratio(ours: number | undefined, theirs: number | undefined): string {
  if (ours === undefined || theirs === undefined || theirs === 0) return 'n/a';
  return `${(ours / theirs).toFixed(2)}×`;
}

interface Cell { s?: Summary; text: string; cpu?: number; mem?: number }

function rateCell(rs: BenchResults['rates'][number] | undefined): Cell {
  if (!rs || !rs.runs.length) return { text: 'not run' };
  const best = rs.runs.map((k) => (k.best ? k.best.rate : 0));
  const s = summarize(best);
  const lowest = Math.min(...rs.runs.flatMap((k) => k.steps.map((x) => x.rate)));
  const incomplete = rs.runs.some((k) => !k.complete);
  let text: string;
  if (s && s.median === 0) text = `< ${fmt(lowest)}/s`;
  else text = `${s && s.median >= rs.ladderTop ? '≥ ' : ''}${fmtSummary(s)}/s`;
  if (incomplete) text += ' (cut by deadline)';
  const bestSteps = rs.runs.map((k) => k.best).filter((x) => x !== undefined);
  return {
    s, text,
    cpu: median(bestSteps.map((b) => b.serverCpuCores)),
    mem: median(bestSteps.map((b) => b.memMiB).filter((x): x is number => x !== undefined)),
  };
}

function fanoutCell(f: BenchResults['fanouts'][number] | undefined, round: 'last' | 'cold' = 'last'): Cell {
  if (!f || !f.runs.length) return { text: 'not run' };
  const pick = (r: FanoutResult) => (round === 'cold' ? r.cold : r);
  const complete = f.runs.filter((r) => { const x = pick(r); return x !== undefined && x.notified >= r.watchers && x.lastMs !== undefined; });
  const s = summarize(complete.map((r) => pick(r)!.lastMs));
  let text = s ? fmtSummary(s, 1, ' ms') : 'FAIL';
  // Incomplete in the round shown: the last round's note, or how many the first round reached.
  const partial = f.runs.filter((r) => !((pick(r)?.notified ?? 0) >= r.watchers));
  const why = (r: FanoutResult) => (round === 'cold' ? `only ${r.cold?.notified ?? 0}/${r.watchers} notified` : r.note ?? `${r.notified}/${r.watchers}`);
  if (partial.length) text += ` (${partial.length}/${f.runs.length} runs incomplete: ${partial.map(why).join('; ')})`;
  return { s, text, cpu: median(f.runs.map((r) => r.serverCpuS)), mem: median(f.runs.map((r) => r.memMiB).filter((x): x is number => x !== undefined)) };
}

export function renderReport(r: BenchResults): string {
  const kinds = r.servers;
  const has = (k: ServerKind) => kinds.includes(k);
  const rows: string[][] = [];
  const header = ['figure', 'target', 'Lamplighter (median, range)', 'Kamailio (sqlite / mem)', 'ratio ours / Kamailio (sqlite / mem)', 'server CPU', 'RSS'];
  const kamailioPair = (a: string, b: string) => (has('kamailio-sqlite') || has('kamailio-mem') ? `${has('kamailio-sqlite') ? a : '–'} / ${has('kamailio-mem') ? b : '–'}` : 'not measured');
  const cpuText = (ours: number | undefined, ks: number | undefined, km: number | undefined, unit: string) =>
    `${fmt(ours, 2)}${unit}${has('kamailio-sqlite') || has('kamailio-mem') ? ` (K: ${fmt(ks, 2)} / ${fmt(km, 2)})` : ''}`;
  const memText = (ours: number | undefined, ks: number | undefined, km: number | undefined) =>
    `${fmt(ours)} MiB${has('kamailio-sqlite') || has('kamailio-mem') ? ` (K: ${fmt(ks)} / ${fmt(km)})` : ''}`;

  // parser
  if (r.parser) {
    const p = r.parser;
    const t: Target = { text: '≥ 200 000 messages/s', value: 200_000, better: 'higher' };
    const s = summarize(p.runs);
    rows.push(['parser + serializer (bench/parser.ts)', t.text, p.messagesPerSecond ? `${fmtSummary(s)} msg/s${mark(p.messagesPerSecond, t)}` : (p.note ?? 'n/a'), 'n/a', 'n/a', '1 core (in-process)', '–']);
  }

  // rates
  const combos: Array<[string, string]> = [];
  for (const x of r.rates) if (!combos.some(([s, t]) => s === x.scenario && t === x.transport)) combos.push([x.scenario, x.transport]);
  for (const [scenario, transport] of combos) {
    const find = (k: ServerKind) => r.rates.find((x) => x.server === k && x.scenario === scenario && x.transport === transport);
    const ours = rateCell(find('lamplighter'));
    const ks = rateCell(find('kamailio-sqlite'));
    const km = rateCell(find('kamailio-mem'));
    const t = rateTarget(scenario, transport);
    rows.push([
      `${SCENARIO_LABEL[scenario] ?? scenario}, ${transport === 't1' ? 'TCP' : 'UDP'}`,
      t?.text ?? '–',
      `${ours.text}${mark(ours.s?.median, t)}`,
      kamailioPair(ks.text, km.text),
      `${ratio(ours.s?.median, ks.s?.median || undefined)} / ${ratio(ours.s?.median, km.s?.median || undefined)}`,
      cpuText(ours.cpu, ks.cpu, km.cpu, ' cores'),
      memText(ours.mem, ks.mem, km.mem),
    ]);
  }

  // fan-out
  const ws = [...new Set(r.fanouts.map((f) => f.watchers))];
  for (const W of ws) {
    const find = (k: ServerKind) => r.fanouts.find((f) => f.server === k && f.watchers === W);
    const ours = fanoutCell(find('lamplighter'));
    const ks = fanoutCell(find('kamailio-sqlite'));
    const km = fanoutCell(find('kamailio-mem'));
    const t: Target | undefined = W === 1000 ? { text: '≤ 50 ms', value: 50, better: 'lower' } : W === 10000 ? { text: '≤ 500 ms', value: 500, better: 'lower' } : undefined;
    rows.push([
      `one PUBLISH → last NOTIFY, ${fmt(W)} watchers (UDP)`,
      t?.text ?? '–',
      `${ours.text}${mark(ours.s?.median, t)}`,
      kamailioPair(ks.text, km.text),
      `${ratio(ours.s?.median, ks.s?.median)} / ${ratio(ours.s?.median, km.s?.median)}`,
      cpuText(ours.cpu, ks.cpu, km.cpu, ' CPU-s'),
      memText(ours.mem, ks.mem, km.mem),
    ]);
    // The first fan-out after start, before the JIT has compiled the fan-out path: no target, shown for honesty.
    if (find('lamplighter')?.runs.some((x) => x.cold)) {
      const oc = fanoutCell(find('lamplighter'), 'cold');
      const kc = fanoutCell(find('kamailio-sqlite'), 'cold');
      const kmc = fanoutCell(find('kamailio-mem'), 'cold');
      rows.push([
        `the same, first fan-out after start (${fmt(W)} watchers)`,
        '–',
        oc.text,
        kamailioPair(kc.text, kmc.text),
        `${ratio(oc.s?.median, kc.s?.median)} / ${ratio(oc.s?.median, kmc.s?.median)}`,
        '–', '–',
      ]);
    }
  }

  // scale
  if (r.scale.length) {
    const sc = (k: ServerKind) => r.scale.find((x) => x.server === k);
    const L = sc('lamplighter'), KS = sc('kamailio-sqlite'), KM = sc('kamailio-mem');
    const n = fmt(L?.subscriptions ?? KS?.subscriptions ?? KM?.subscriptions);
    const made = (x: ScaleResult | undefined) => (x ? x.made.reduce((a, m) => a + m.ok, 0) : 0);
    const madeNote = (x: ScaleResult | undefined) => (x && x.made.length && made(x) < x.subscriptions ? ` (only ${fmt(made(x))} made)` : '');
    const tR: Target = { text: '≤ 300 MB', value: 300 * 1e6 / 2 ** 20, better: 'lower' };
    rows.push([`RSS with ${n} live subscriptions`, tR.text,
      L ? `${fmt(L.memMiB)} MiB${madeNote(L)}${mark(L.memMiB, tR)}${L.note ? ` (${L.note})` : ''}` : 'not run',
      kamailioPair(KS ? `${fmt(KS.memMiB)} MiB Pss${madeNote(KS)}` : 'not run', KM ? `${fmt(KM.memMiB)} MiB Pss${madeNote(KM)}` : 'not run'),
      `${ratio(L?.memMiB, KS?.memMiB)} / ${ratio(L?.memMiB, KM?.memMiB)}`, '–', '–']);
    const tS: Target = { text: '≤ 3 s', value: 3000, better: 'lower' };
    rows.push([`start to serving with ${n} subscriptions in the database`, tS.text,
      L?.restartMs !== undefined ? `${fmt(L.restartMs)} ms${mark(L.restartMs, tS)} (empty db: ${fmt(L.freshStartMs)} ms)` : (L?.note ?? 'not run'),
      kamailioPair(KS?.restartMs !== undefined ? `${fmt(KS.restartMs)} ms${/failed/.test(KS.note ?? '') ? ' (only with -M 512; the reference -M 32 does not start)' : ''}` : (KS?.note ? `FAIL: ${KS.note}` : 'n/a'), 'n/a (nothing survives)'),
      `${ratio(L?.restartMs, KS?.restartMs)} / n/a`, '–',
      L?.restartMemMiB !== undefined ? `${fmt(L.restartMemMiB)} MiB after restart` : '–']);
    const tP: Target = { text: '≤ 200 ms', value: 200, better: 'lower' };
    rows.push([`GET /v2/accounts/{A}/presence, ${fmt(r.scale.find((x) => x.server === 'lamplighter')?.made[0]?.ok ?? 10000)} subscriptions`, tP.text,
      L?.presenceMedianMs !== undefined ? `${fmtSummary(summarize(L.presenceMs ?? []), 1, ' ms')}${mark(L.presenceMedianMs, tP)} (${fmt(L.presenceSubscriptions)} listed)` : (L?.presenceNote ?? 'not run'),
      'n/a (no such API)', 'n/a', '–', '–']);
  }

  const table = [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((x) => `| ${x.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`),
  ].join('\n');

  const m = r.machine;
  const loads = [...r.rates.flatMap((x) => x.runs.flatMap((k) => k.steps.map((st) => st.load1))), ...r.fanouts.flatMap((f) => f.runs.map((x) => x.load1))]
    .filter((x): x is number => typeof x === 'number');
  const out: string[] = [];
  out.push('## Benchmark results', '');
  out.push(`Command: \`${r.command}\` (${r.settings.runs} run(s) per figure, ${r.settings.stepS} s per rate step after ${r.settings.warmupS ?? 0} s of warm-up on the same server), ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC, commit ${m.commit}.`);
  out.push(`Machine: ${m.cpus} × ${m.model}, ${m.memGiB.toFixed(0)} GiB, Linux ${m.kernel}, Node ${m.node}, ${m.sipp}${m.kamailio ? `, ${m.kamailio}` : ''}; sipp, the server and the runner share the same cores, UDP/TCP over 127.0.0.1${loads.length ? `; 1-min load average at the end of the steps ${fmt(Math.min(...loads), 1)}–${fmt(Math.max(...loads), 1)} (above ~1.5 other work shared the machine)` : ''}.`, '');
  out.push(table, '');
  out.push('Reading the table: a clean rate is the highest step of the ladder with every call successful, zero failed calls, zero retransmissions and the requested rate achieved (±5 %); "≥" means the top of the ladder was clean. ✓/✗ compare the median with the issue\'s target. Server CPU is Δ(utime+stime)/wall of the server\'s process tree during the run at the clean rate (1.00 = one core), or CPU-seconds for fan-out; RSS is Lamplighter\'s VmRSS, Kamailio\'s is Pss summed over its processes (its shared memory counted once). Kamailio "sqlite" is write-back SQLite (survives a restart), "mem" is memory-only. Fan-out is PUBLISH sent → last NOTIFY logged by the watchers, for the last of ' + FANOUT_ROUNDS + ' PUBLISHes on the same server (one publication, then three modifications of it, each sent once every watcher has the one before); the first of them, on a server that has just started, has its own row.');
  if (r.kamailioNote) out.push('', `Kamailio was not measured: ${r.kamailioNote}.`);

  // details
  out.push('', '### Details', '');
  for (const x of r.rates) {
    const runs = x.runs.map((k, i) => {
      const ff = k.firstFail ? `; ${fmt(k.firstFail.rate)}/s failed: ${k.firstFail.why}` : '';
      const b = k.best ? `clean at ${fmt(k.best.rate)}/s (server ${k.best.serverCpuCores.toFixed(2)} cores, sipp ${k.best.sippCpuCores.toFixed(2)}${k.best.rtdMs && Object.keys(k.best.rtdMs).length ? `, RTD ${Object.entries(k.best.rtdMs).filter(([n]) => !n.endsWith('StDev')).map(([n, v]) => `${n} ${v.toFixed(1)} ms`).join(', ')}` : ''})` : 'no clean step';
      return `run ${i + 1}: ${b}${ff}`;
    });
    out.push(`- ${x.server} ${x.scenario} ${x.transport === 't1' ? 'TCP' : 'UDP'}: ${runs.join(' | ')}`);
  }
  for (const f of r.fanouts) {
    const runs = f.runs.map((x, i) => `run ${i + 1}: ${x.ready}/${x.watchers} ready, ${x.notified} notified (${x.confirmed} confirmed), PUBLISH→200 ${fmt(x.publish200Ms, 1)}, first ${fmt(x.firstMs, 1)}, median ${fmt(x.medianMs, 1)}, p95 ${fmt(x.p95Ms, 1)}, last ${fmt(x.lastMs, 1)} ms${x.cold ? ` (first fan-out after start: last ${fmt(x.cold.lastMs, 1)} ms)` : ''}; watcher sipp ${x.watcherFailed} failed, ${x.watcherRetrans} retrans`);
    out.push(`- fan-out ${f.server} W=${f.watchers}: ${runs.join(' | ')}`);
  }
  for (const s of r.scale) {
    const made = s.made.map((x) => `${fmt(x.ok)} ok / ${fmt(x.failed)} failed in ${(x.ms / 1000).toFixed(1)} s (${fmt(x.ok / (x.ms / 1000))}/s, ${fmt(x.retransmissions)} retrans)`).join(' + ');
    out.push(`- scale ${s.server}: memory ${fmt(s.memAtOnceMiB)} MiB 2 s after the last SUBSCRIBE, ${fmt(s.memMiB)} MiB after the settle time (the table's figure); subscriptions made by bench/lib/sipclient.ts (UDP, window 400): ${made || 'none'}${s.presenceNote ? `; presence: ${s.presenceNote}` : ''}${s.note ? `; ${s.note}` : ''}`);
  }
  if (r.parser?.runs.length) out.push(`- parser (bench/parser.ts, parse of the message mix; each run is its own median of 5): ${r.parser.runs.map((x) => fmt(x)).join(', ')} messages/s${r.parser.last ? `; last run's JSON: \`${JSON.stringify(r.parser.last)}\`` : ''}`);
  out.push('', `Raw sipp stat/screen/error files, server logs and results.json are in ${r.outDir.replace(/[^,\s]*\/(bench-results\/)/g, '$1')}.`);
  return out.join('\n');
}
