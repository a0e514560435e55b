// The idle collector (src/memory.ts): after a burst leaves garbage behind and the process goes quiet, full
// collections bring the heap back to what is live; while busy it never runs.
import { describe, it, expect, afterEach } from 'vitest';
import v8 from 'node:v8';
import { tuneMemory, type IdleCollector } from '../../src/memory.js';
import type { Logger } from '../../src/log.js';

type Collection = { obj: Record<string, number>; msg: string };

const collectors: IdleCollector[] = [];
afterEach(() => { while (collectors.length) collectors.pop()!.stop(); });

/** An idle collector checking every `checkMs`, with the debug lines it logs (one per collection). */
function collectorUnderTest(checkMs: number): Collection[] {
  const debug: Collection[] = [];
  const noop = () => undefined;
  const logger = { debug: (obj: Record<string, number>, msg: string) => debug.push({ obj, msg }), info: noop, warn: noop, error: noop, child: () => logger } as unknown as Logger;
  collectors.push(tuneMemory({ heapGrowingPercent: 0, idleGc: true, checkMs }, logger));
  return debug;
}

/** Keep the event loop busy for `ms`, running `step` each turn. */
async function busyFor(ms: number, step: () => void): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    step();
    await new Promise((r) => setImmediate(r));
  }
}

async function waitUntil(pred: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

describe('idle heap collection', () => {
  it('collects once the process is quiet after garbage was made, and frees it', async () => {
    const debug = collectorUnderTest(300);
    // ~80 MB of objects that survive long enough to be promoted, then die: what a burst of transactions leaves.
    let keep: object[][] = [];
    for (let i = 0; i < 40; i++) keep.push(Array.from({ length: 50_000 }, (_, j) => ({ j, s: `x${j}` })));
    await new Promise((r) => setTimeout(r, 50));
    const before = v8.getHeapStatistics().used_heap_size;
    keep = [];
    expect(keep).toHaveLength(0);
    await waitUntil(() => debug.length > 0, 5000);
    expect(debug[0]?.msg).toBe('idle heap collection');
    expect(debug[0]!.obj.afterMb).toBeLessThan(debug[0]!.obj.beforeMb - 40);
    expect(v8.getHeapStatistics().used_heap_size).toBeLessThan(before - 40 * 1024 * 1024);
  });

  it('after a busy spell, collects on the quiet checks that follow even when the heap does not grow (objects dying)', async () => {
    const debug = collectorUnderTest(200);
    // Busy: ~60 MB of objects made and kept, as a burst's server transactions are kept for Timer J.
    let keep: object[][] = [];
    await busyFor(700, () => {
      if (keep.length < 30) keep.push(Array.from({ length: 50_000 }, (_, j) => ({ j, s: `y${j}` })));
    });
    // Quiet: the first collections find them alive; then they die without the heap growing.
    await new Promise((r) => setTimeout(r, 500));
    const collectedWhileAlive = debug.length;
    // Still referenced here, so the collections so far could not free them.
    expect(keep.reduce((n, a) => n + a.length, 0)).toBe(30 * 50_000);
    expect(debug.every((d) => d.obj.afterMb > 40)).toBe(true);
    keep = [];
    expect(keep).toHaveLength(0);
    const freedThem = () => debug.slice(collectedWhileAlive).some((d) => d.obj.afterMb < d.obj.beforeMb - 30);
    await waitUntil(freedThem, 3000);
    expect(freedThem(), JSON.stringify(debug)).toBe(true);
  });

  it('does not collect while the event loop is busy', async () => {
    const debug = collectorUnderTest(200);
    let keep: object[][] = [];
    // Busy: the loop is never idle for long, and garbage keeps coming.
    await busyFor(1200, () => {
      keep.push(Array.from({ length: 20_000 }, (_, j) => ({ j })));
      if (keep.length > 30) keep = [];
    });
    expect(debug).toEqual([]);
  });
});
