// Server cost from /proc: CPU as Δ(utime+stime) of a process and its descendants, memory as VmRSS (one process)
// or the sum of Pss over a process tree (Kamailio's children share one shm segment, so summing RSS would count
// it once per child).
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch { /* Linux default */ }
export const CLK_TCK = clkTck;

interface StatLine { ppid: number; ticks: number }

function readStat(pid: number): StatLine | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: split after the last ')'
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined;
  }
}

/** pid and all its descendants (walks /proc once). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const p = Number(name);
    if (!Number.isInteger(p)) continue;
    const st = readStat(p);
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(p);
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU seconds (user+system) used so far by these processes. */
export function cpuSeconds(pids: number[]): number {
  let t = 0;
  for (const p of pids) t += readStat(p)?.ticks ?? 0;
  return t / CLK_TCK;
}

function statusField(pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** VmRSS of one process in MiB. */
export function rssMiB(pid: number): number | undefined {
  const kb = statusField(pid, 'VmRSS');
  return kb === undefined ? undefined : kb / 1024;
}

/** Sum of Pss over processes in MiB (shared pages split between their users). */
export function pssMiB(pids: number[]): number | undefined {
  let kb = 0;
  let any = false;
  for (const p of pids) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      if (m) { kb += Number(m[1]); any = true; }
    } catch { /* gone */ }
  }
  return any ? kb / 1024 : undefined;
}

/** A CPU meter over a process tree; the tree is re-read at each sample so short-lived children count. */
export class CpuMeter {
  private readonly t0 = performance.now();
  private readonly c0: number;
  constructor(private readonly pid: number) {
    this.c0 = cpuSeconds(processTree(pid));
  }
  /** Cores used since construction (1.0 = one core busy). */
  cores(): number {
    const wall = (performance.now() - this.t0) / 1000;
    return wall > 0 ? (cpuSeconds(processTree(this.pid)) - this.c0) / wall : 0;
  }
  cpuSeconds(): number {
    return cpuSeconds(processTree(this.pid)) - this.c0;
  }
}
