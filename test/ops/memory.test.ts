// The idle collector (src/memory.ts): after a burst leaves garbage behind and the process goes quiet, one full
// collection brings the heap back to what is live; while busy it never runs.
import { describe, it, expect } from 'vitest';
import v8 from 'node:v8';
import { tuneMemory } from '../../src/memory.js';
import type { Logger } from '../../src/log.js';

function recordingLogger(): { logger: Logger; debug: Array<{ obj: Record<string, number>; msg: string }> } {
  const debug: Array<{ obj: Record<string, number>; msg: string }> = [];
  const noop = () => undefined;
  const logger = { debug: (obj: Record<string, number>, msg: string) => debug.push({ obj, msg }), info: noop, warn: noop, error: noop, child: () => logger } as unknown as Logger;
  return { logger, debug };
}

describe('idle heap collection', () => {
  it('collects once the process is quiet after garbage was made, and frees it', async () => {
    const { logger, debug } = recordingLogger();
    const collector = tuneMemory({ heapGrowingPercent: 0, idleGc: true, checkMs: 300 }, logger);
    try {
      // ~80 MB of objects that survive long enough to be promoted, then die: what a burst of transactions leaves.
      let keep: object[][] = [];
      for (let i = 0; i < 40; i++) keep.push(Array.from({ length: 50_000 }, (_, j) => ({ j, s: `x${j}` })));
      await new Promise((r) => setTimeout(r, 50));
      const before = v8.getHeapStatistics().used_heap_size;
      keep = [];
      expect(keep).toHaveLength(0);
      const deadline = Date.now() + 5000;
      while (debug.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(debug[0]?.msg).toBe('idle heap collection');
      expect(debug[0]!.obj.afterMb).toBeLessThan(debug[0]!.obj.beforeMb - 40);
      expect(v8.getHeapStatistics().used_heap_size).toBeLessThan(before - 40 * 1024 * 1024);
    } finally {
      collector.stop();
    }
  });

  it('after a busy spell, collects on the quiet checks that follow even when the heap does not grow (objects dying)', async () => {
    const { logger, debug } = recordingLogger();
    const collector = tuneMemory({ heapGrowingPercent: 0, idleGc: true, checkMs: 200 }, logger);
    try {
      // Busy: ~60 MB of objects made and kept, as a burst's server transactions are kept for Timer J.
      let keep: object[][] = [];
      const until = Date.now() + 700;
      while (Date.now() < until) {
        if (keep.length < 30) keep.push(Array.from({ length: 50_000 }, (_, j) => ({ j, s: `y${j}` })));
        await new Promise((r) => setImmediate(r));
      }
      // Quiet: the first collections find them alive; then they die without the heap growing.
      await new Promise((r) => setTimeout(r, 500));
      const collectedWhileAlive = debug.length;
      // Still referenced here, so the collections so far could not free them.
      expect(keep.reduce((n, a) => n + a.length, 0)).toBe(30 * 50_000);
      expect(debug.every((d) => d.obj.afterMb > 40)).toBe(true);
      keep = [];
      expect(keep).toHaveLength(0);
      const deadline = Date.now() + 3000;
      while (!debug.slice(collectedWhileAlive).some((d) => d.obj.afterMb < d.obj.beforeMb - 30) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(debug.slice(collectedWhileAlive).some((d) => d.obj.afterMb < d.obj.beforeMb - 30), JSON.stringify(debug)).toBe(true);
    } finally {
      collector.stop();
    }
  });

  it('does not collect while the event loop is busy', async () => {
    const { logger, debug } = recordingLogger();
    const collector = tuneMemory({ heapGrowingPercent: 0, idleGc: true, checkMs: 200 }, logger);
    try {
      let keep: object[][] = [];
      const until = Date.now() + 1200;
      // Busy: the loop is never idle for long, and garbage keeps coming.
      while (Date.now() < until) {
        keep.push(Array.from({ length: 20_000 }, (_, j) => ({ j })));
        if (keep.length > 30) keep = [];
        await new Promise((r) => setImmediate(r));
      }
      expect(debug).toEqual([]);
    } finally {
      collector.stop();
    }
  });
});
