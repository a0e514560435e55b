// Medians and ranges over repeated runs, and the number formats of the table.
export function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: number[], q: number): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.round((q / 100) * (s.length - 1)))];
}

export interface Summary { median: number; min: number; max: number; n: number }

export function summarize(xs: Array<number | undefined>): Summary | undefined {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  if (!v.length) return undefined;
  return { median: median(v)!, min: Math.min(...v), max: Math.max(...v), n: v.length };
}

export function fmt(x: number | undefined, digits = 0): string {
  if (x === undefined || !Number.isFinite(x)) return 'n/a';
  return x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }).replace(/,/g, ' ');
}

/** "4 000 (2 000–6 000)" or just the value when all runs agree or there is one run. */
export function fmtSummary(s: Summary | undefined, digits = 0, unit = ''): string {
  if (!s) return 'n/a';
  const m = `${fmt(s.median, digits)}${unit}`;
  return s.n > 1 && s.min !== s.max ? `${m} (${fmt(s.min, digits)}–${fmt(s.max, digits)})` : m;
}
