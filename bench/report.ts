// Re-render the markdown report from one or more results.json files (e.g. two partial runs of `npm run bench`
// that together cover every figure): npx tsx bench/report.ts bench-results/A/results.json bench-results/B/results.json [--save]
// --save writes bench/RESULTS.md; --notes FILE appends a hand-written section (what the profiles show).
// Figures are taken from the first file that has them.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderReport, type BenchResults } from './lib/report.js';
import { ROOT } from './lib/servers.js';

const args = process.argv.slice(2);
const save = args.includes('--save');
const notesAt = args.indexOf('--notes');
const notes = notesAt >= 0 ? readFileSync(args[notesAt + 1]!, 'utf8') : '';
const files = args.filter((a, i) => !a.startsWith('--') && (notesAt < 0 || i !== notesAt + 1));
if (!files.length) {
  process.stderr.write('usage: tsx bench/report.ts results.json [more results.json] [--save]\n');
  process.exit(2);
}
const all = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as BenchResults);
const base: BenchResults = { ...all[0]!, rates: [], fanouts: [], scale: [], parser: undefined };
base.command = all.map((r) => r.command).join('` then `');
base.outDir = all.map((r) => r.outDir).join(', ');
base.servers = [...new Set(all.flatMap((r) => r.servers))];
for (const r of all) {
  base.parser ??= r.parser;
  for (const x of r.rates) if (!base.rates.some((y) => y.server === x.server && y.scenario === x.scenario && y.transport === x.transport)) base.rates.push(x);
  for (const x of r.fanouts) if (!base.fanouts.some((y) => y.server === x.server && y.watchers === x.watchers)) base.fanouts.push(x);
  for (const x of r.scale) if (!base.scale.some((y) => y.server === x.server)) base.scale.push(x);
}
const order = ['subscribe', 'publish', 'subscribe_unsubscribe'];
base.rates.sort((a, b) => order.indexOf(a.scenario) - order.indexOf(b.scenario) || b.transport.localeCompare(a.transport));
const report = renderReport(base) + (notes ? `\n\n${notes.trim()}` : '');
if (save) writeFileSync(join(ROOT, 'bench', 'RESULTS.md'), report + '\n');
process.stdout.write(report + '\n');
