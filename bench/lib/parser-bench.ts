// The parser/serializer micro-benchmark is bench/parser.ts (written with the parser). The runner only runs it and
// reads its figure: a JSON line with messagesPerSecond (or msgsPerSec), else the last "N msg(s)/s" or
// "N messages/s" it prints.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './servers.js';
import { median } from './stats.js';

export interface ParserResult { messagesPerSecond?: number; runs: number[]; note?: string; last?: Record<string, unknown> }

export function extractRate(out: string): number | undefined {
  return extract(out).rate;
}

function extract(out: string): { rate?: number; json?: Record<string, unknown> } {
  let rate: number | undefined;
  let json: Record<string, unknown> | undefined;
  for (const line of out.split('\n')) {
    const t = line.trim();
    if (t.startsWith('{')) {
      try {
        const j = JSON.parse(t) as Record<string, unknown>;
        const v = j.messagesPerSecond ?? j.msgsPerSec ?? j.messages_per_second;
        if (typeof v === 'number') { rate = v; json = j; }
        continue;
      } catch { /* not JSON */ }
    }
    const m = /([\d][\d\s_,.]*)\s*(?:msgs?|messages)\s*\/\s*s/i.exec(t);
    if (m) {
      const n = Number(m[1]!.replace(/[\s_,]/g, ''));
      if (Number.isFinite(n) && n > 0) rate = n;
    }
  }
  return { rate, json };
}

export function runParserBench(outDir: string, runs: number): ParserResult {
  const file = join(ROOT, 'bench', 'parser.ts');
  if (!existsSync(file)) return { runs: [], note: 'n/a: bench/parser.ts not written yet' };
  const rs: number[] = [];
  let last: Record<string, unknown> | undefined;
  let output = '';
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 });
    output += `--- run ${i + 1} (exit ${r.status})\n${r.stdout ?? ''}${r.stderr ?? ''}\n`;
    const v = r.status === 0 ? extract(r.stdout ?? '') : {};
    if (v.rate !== undefined) rs.push(v.rate);
    if (v.json) last = v.json;
  }
  writeFileSync(join(outDir, 'parser.txt'), output);
  if (!rs.length) return { runs: [], note: 'n/a: bench/parser.ts gave no messages/s figure (see parser.txt)' };
  return { messagesPerSecond: median(rs), runs: rs, last };
}
