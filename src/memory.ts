// Keeping the process near the memory it really uses. A SUBSCRIBE burst leaves a lot behind in V8's old generation:
// each UDP server transaction lives 32 s (RFC 3261 §17.2.2 Timer J), long enough to be promoted, and dies after.
// V8 grows the old generation up to 4x after each full collection, and a server that goes quiet after the burst
// allocates nothing, so nothing triggers the next collection: measured after 100 000 SUBSCRIBEs, 500 MB of heap
// (~140 MB of it live) and 700 MB RSS were still there a minute later. Two process-wide measures:
// - a smaller heap growing factor (V8 --heap-growing-percent), so full collections come sooner during a burst;
// - a full collection when the process has been quiet for a while and the heap has grown well past what was live
//   after the last one (a few tens of ms, once, after a burst; never under load).
import v8 from 'node:v8';
import { performance } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';
import type { Logger } from './log.js';

export interface MemoryOptions {
  /** V8 heap growing factor in percent (1 + p/100) after each full collection; 0 = V8's own (up to 300). */
  heapGrowingPercent: number;
  /** Collect when idle (see tuneMemory). */
  idleGc: boolean;
  /** How often the idle collector looks (ms); tests shorten it. */
  checkMs?: number;
}

/** How often the idle collector looks, by default. */
const CHECK_MS = 5_000;
/** Event-loop utilisation below which the process counts as quiet (SIP at a few requests a second is ~1 %). */
const QUIET_UTILISATION = 0.05;
/** A collection is worth it when the heap grew this much since the last one, or the last one freed this much. */
const WORTH_BYTES = 16 * 1024 * 1024;
/**
 * Quiet checks after a busy one that collect in any case: what a burst leaves dies over the next 32 s (Timer J) and
 * dead objects do not grow the heap, so growth alone would miss them. 8 checks of 5 s cover Timer J.
 */
const AFTER_BUSY_CHECKS = 8;

export interface IdleCollector {
  stop(): void;
}

/**
 * Apply the heap settings and start the idle collector. Call once, at process start (main.ts).
 *
 * While the process is quiet, the collector collects on each of the AFTER_BUSY_CHECKS checks that follow a busy one
 * (after a burst, what it left behind dies over the next 32 s, Timer J, so one collection right after it is not
 * enough), and otherwise when the heap grew by WORTH_BYTES since the last collection or the last one still freed
 * that much. Each one is a full mark-compact of a heap of a few hundred MB (tens of ms); never under load.
 */
export function tuneMemory(o: MemoryOptions, logger: Logger): IdleCollector {
  if (o.heapGrowingPercent > 0) v8.setFlagsFromString(`--heap-growing-percent=${o.heapGrowingPercent}`);
  if (!o.idleGc) return { stop() {} };
  const gc = exposeGc();
  let liveAfterGc = v8.getHeapStatistics().used_heap_size;
  let lastFreed = 0;
  let afterBusy = 0;
  let elu = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, elu).utilization;
    elu = now;
    const used = v8.getHeapStatistics().used_heap_size;
    if (busy >= QUIET_UTILISATION) {
      afterBusy = AFTER_BUSY_CHECKS;
      return;
    }
    if (afterBusy > 0) afterBusy--;
    else if (used - liveAfterGc < WORTH_BYTES && lastFreed < WORTH_BYTES) return;
    const t = performance.now();
    gc();
    const after = v8.getHeapStatistics().used_heap_size;
    lastFreed = used - after;
    liveAfterGc = after;
    logger.debug({ beforeMb: mb(used), afterMb: mb(after), ms: Math.round(performance.now() - t) }, 'idle heap collection');
  }, o.checkMs ?? CHECK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** V8's gc() without starting node with --expose-gc: the flag, then the function from a fresh context. */
export function exposeGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return existing;
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function mb(bytes: number): number {
  return Math.round(bytes / (1024 * 1024));
}
