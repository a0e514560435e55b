// Scale figures: memory with 100 000 live subscriptions, time from start to serving with them in the database,
// and GET /v2/accounts/{A}/presence with 10 000 of them in the account's realm. The subscriptions are real
// RFC 6665 dialogs made by UdpSipClient (SUBSCRIBE → 200, initial NOTIFY → 200).
import { join } from 'node:path';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { UdpSipClient, type SubscribeManyResult } from './sipclient.js';
import { startLamplighter, startKamailio, stopKamailio, runShared, type KamailioMode } from './servers.js';
import { processTree, pssMiB, rssMiB } from './proc.js';
import { createAccount, apiToken, timePresence } from './api.js';
import { median } from './stats.js';
import { freePort } from './ports.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const readLog = () => { try { return readFileSync('/tmp/kamailio-bench/kamailio.log', 'utf8'); } catch { return ''; } };

export interface ScaleResult {
  server: string;
  subscriptions: number;
  made: SubscribeManyResult[];
  memMiB?: number;          // after the settle time: transactions done (RFC 3261 §17.2.2 Timer J = 64*T1 = 32 s), GC'd
  memAtOnceMiB?: number;    // 2 s after the last subscription
  restartMs?: number;
  restartMemMiB?: number;
  presenceMs?: number[];
  presenceMedianMs?: number;
  presenceSubscriptions?: number;
  presenceNote?: string;
  freshStartMs?: number;
  note?: string;
}

export async function lamplighterScale(o: { dir: string; total: number; apiSubs: number; settleS: number; log: (s: string) => void }): Promise<ScaleResult> {
  mkdirSync(o.dir, { recursive: true });
  const dbFile = join(o.dir, 'scale.sqlite');
  const logFile = join(o.dir, 'server.log');
  const res: ScaleResult = { server: 'lamplighter', subscriptions: o.total, made: [] };
  const realm = 'bench.test';
  const account = createAccount(dbFile, realm);
  if (typeof account === 'string') res.presenceNote = account;
  const ports = { sip: await freePort(), ws: await freePort(), api: await freePort() };
  let s = await startLamplighter({ dbFile, logFile, ports });
  res.freshStartMs = s.startMs;
  const client = await UdpSipClient.open();
  try {
    // 10 000 in the account's realm: 1 000 extensions with 10 watchers each (a BLF-heavy office)
    const a = await client.subscribeMany({ host: '127.0.0.1', port: s.sipPort, domain: realm, count: o.apiSubs,
      extension: (i) => `${1000 + (i % 1000)}`, watcher: (i) => `phone${i}` });
    res.made.push(a);
    o.log(`    ${a.ok}/${o.apiSubs} subscriptions in ${realm} in ${(a.ms / 1000).toFixed(1)} s (${a.failed} failed)`);
    if (typeof account !== 'string') {
      try {
        const token = await apiToken(s.apiPort!, account.apiKey);
        const t = await timePresence(s.apiPort!, account.id, token, 5);
        res.presenceMs = t.ms;
        res.presenceMedianMs = median(t.ms);
        res.presenceSubscriptions = t.subscriptions;
        if (t.status !== 200) res.presenceNote = `GET presence answered ${t.status}`;
        o.log(`    GET presence: ${t.status}, ${t.bytes} bytes, ${t.subscriptions} subscriptions, median ${res.presenceMedianMs?.toFixed(1)} ms`);
      } catch (err) {
        res.presenceNote = `n/a: API not ready (${(err as Error).message})`;
      }
    }
    const b = await client.subscribeMany({ host: '127.0.0.1', port: s.sipPort, domain: 'example.test', count: o.total - o.apiSubs,
      extension: (i) => `ext${i % 20000}`, watcher: (i) => `w${i}` });
    res.made.push(b);
    o.log(`    ${b.ok}/${o.total - o.apiSubs} more in ${(b.ms / 1000).toFixed(1)} s (${b.failed} failed, ${b.retransmissions} retrans)`);
    await sleep(2000);
    res.memAtOnceMiB = rssMiB(s.pid);
    await sleep(o.settleS * 1000);
    res.memMiB = rssMiB(s.pid);
    await s.stop();
    s = await startLamplighter({ dbFile, logFile, ports, readyTimeoutMs: 120_000 });
    res.restartMs = s.startMs;
    await sleep(1000);
    res.restartMemMiB = rssMiB(s.pid);
    o.log(`    RSS ${res.memAtOnceMiB?.toFixed(0)} MiB at once, ${res.memMiB?.toFixed(0)} MiB after ${o.settleS} s, with ${a.ok + b.ok} subscriptions; restart to /ready ${res.restartMs.toFixed(0)} ms; RSS after restart ${res.restartMemMiB?.toFixed(0)} MiB`);
  } finally {
    await s.stop();
    await client.close();
  }
  writeFileSync(join(o.dir, 'scale.json'), JSON.stringify(res, null, 1));
  return res;
}

/** Kamailio with the same subscriptions; in sqlite mode also the restart (start.sh without fresh reloads them). */
export async function kamailioScale(mode: KamailioMode, o: { dir: string; total: number; settleS: number; log: (s: string) => void }): Promise<ScaleResult> {
  mkdirSync(o.dir, { recursive: true });
  const res: ScaleResult = { server: `kamailio-${mode}`, subscriptions: o.total, made: [] };
  const k = await startKamailio(mode, { fresh: true });
  const client = await UdpSipClient.open();
  try {
    const a = await client.subscribeMany({ host: '127.0.0.1', port: 5070, domain: 'example.test', count: o.total,
      extension: (i) => `ext${i % 20000}`, watcher: (i) => `w${i}` });
    res.made.push(a);
    o.log(`    kamailio-${mode}: ${a.ok}/${o.total} subscriptions in ${(a.ms / 1000).toFixed(1)} s (${a.failed} failed)`);
    await sleep(2000);
    res.memAtOnceMiB = pssMiB(processTree(k.pid));
    await sleep(o.settleS * 1000);
    res.memMiB = pssMiB(processTree(k.pid));
    o.log(`    Pss ${res.memAtOnceMiB?.toFixed(0)} MiB at once, ${res.memMiB?.toFixed(0)} MiB after ${o.settleS} s`);
    await stopKamailio(); // write-back mode flushes the subscriptions to SQLite here
    if (mode === 'sqlite') {
      // Restart on the same database: with the reference settings (-M 32 MiB private memory per process) first,
      // then with more private memory if that does not start. Serving = answers OPTIONS (presence restores its
      // subscriptions in mod_init, before the listeners serve).
      const notes: string[] = [];
      for (const extraArgs of [[], ['-M', '512']]) {
        const started = runShared('start.sh', extraArgs);
        const ping = await client.optionsPing('127.0.0.1', 5070, 30_000);
        const r = await started;
        const label = extraArgs.length ? extraArgs.join(' ') : 'reference -M 32';
        if (r.code === 0 && ping !== undefined) {
          res.restartMs = ping; // measured from right after the spawn
          const pid = Number(readFileSync('/tmp/kamailio-bench/kamailio.pid', 'utf8').trim());
          res.restartMemMiB = pssMiB(processTree(pid));
          notes.push(`restart (${label}) serving after ${ping.toFixed(0)} ms`);
          break;
        }
        const why = /no private memory left/.test(readLog()) ? 'db_sqlite: no private memory left while restoring subscriptions' : r.out.trim().split('\n').slice(-1)[0];
        notes.push(`restart (${label}) failed: ${why}`);
        await stopKamailio();
      }
      res.note = notes.join('; ');
      o.log(`    kamailio-sqlite ${res.note}`);
    }
  } finally {
    await stopKamailio();
    await client.close();
  }
  writeFileSync(join(o.dir, 'scale.json'), JSON.stringify(res, null, 1));
  return res;
}
