// Shared bits of the drachtio adapter tests: a config pointing at a fake control port, a manual scheduler, polling.
import { loadConfig, type Config } from '../../src/config.js';
import type { Scheduler } from '../../src/sip/drachtio/connection.js';

export function drachtioConfig(port: number, drachtio: Partial<Config['sip']['drachtio']> = {}): Config {
  return loadConfig({
    env: {},
    overrides: {
      nodeId: 'test-node',
      log: { level: 'silent' },
      db: { file: ':memory:' },
      sip: { engine: 'drachtio', auth: false, drachtio: { host: '127.0.0.1', port, secret: 'cymru', reconnectMinMs: 20, reconnectMaxMs: 80, ...drachtio } },
      api: { address: '127.0.0.1', port: 0 },
    },
  });
}

/** Timers that only run when the test says so; `ms` tells retries from the auth guard. */
export class ManualScheduler implements Scheduler {
  private seq = 0;
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  readonly scheduled: number[] = [];
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { fn, ms });
    this.scheduled.push(ms);
    return id;
  }
  clearTimeout(h: unknown): void {
    this.pending.delete(h as number);
  }
  delays(except: number): number[] {
    return [...this.pending.values()].filter((t) => t.ms !== except).map((t) => t.ms);
  }
  /** Run every pending timer whose delay is not `except`; returns the delays run. */
  fire(except: number): number[] {
    const run: number[] = [];
    for (const [id, t] of [...this.pending]) {
      if (t.ms === except) continue;
      this.pending.delete(id);
      run.push(t.ms);
      t.fn();
    }
    return run;
  }
}

export async function until(cond: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
