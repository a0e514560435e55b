// Scale figures: memory with 100 000 live subscriptions, time from start to serving with them in the database,
// and GET /v2/accounts/{A}/presence with 10 000 of them in the account's realm. The subscriptions are real
// RFC 6665 dialogs made by UdpSipClient (SUBSCRIBE → 200, initial NOTIFY → 200).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { UdpSipClient, type SubscribeManyResult } from './sipclient.js';
import { startLamplighter, startKamailio, stopKamailio, sharedBenchDir, type KamailioMode } from './servers.js';
import { processTree, pssMiB, rssMiB } from './proc.js';
import { createAccount, apiToken, timePresence } from './api.js';
import { median } from './stats.js';
import { freePort } from './ports.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ScaleResult {
  server: string;
  subscriptions: number;
  made: SubscribeManyResult[];
  memMiB?: number;
  restartMs?: number;
  restartMemMiB?: number;
  presenceMs?: number[];
  presenceMedianMs?: number;
  presenceSubscriptions?: number;
  presenceNote?: string;
  freshStartMs?: number;
  note?: string;
}

export async function lamplighterScale(o: { dir: string; total: number; apiSubs: number; log: (s: string) => void }): Promise<ScaleResult> {
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
    res.memMiB = rssMiB(s.pid);
    await s.stop();
    s = await startLamplighter({ dbFile, logFile, ports, readyTimeoutMs: 120_000 });
    res.restartMs = s.startMs;
    await sleep(1000);
    res.restartMemMiB = rssMiB(s.pid);
    o.log(`    RSS ${res.memMiB?.toFixed(0)} MiB with ${a.ok + b.ok} subscriptions; restart to /ready ${res.restartMs.toFixed(0)} ms; RSS after restart ${res.restartMemMiB?.toFixed(0)} MiB`);
  } finally {
    await s.stop();
    await client.close();
  }
  writeFileSync(join(o.dir, 'scale.json'), JSON.stringify(res, null, 1));
  return res;
}

/** Kamailio with the same subscriptions; in sqlite mode also the restart (start.sh without fresh reloads them). */
export async function kamailioScale(mode: KamailioMode, o: { dir: string; total: number; log: (s: string) => void }): Promise<ScaleResult> {
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
    res.memMiB = pssMiB(processTree(k.pid));
    await stopKamailio(); // write-back mode flushes the subscriptions to SQLite here
    if (mode === 'sqlite') {
      // serving = answers OPTIONS; presence loads its subscriptions from the DB in mod_init, before listening
      const dir = sharedBenchDir()!;
      const child = spawn('sh', [join(dir, 'kamailio', 'start.sh')], { stdio: 'ignore' });
      const ping = await client.optionsPing('127.0.0.1', 5070, 60_000);
      await new Promise((r) => child.once('exit', r));
      res.restartMs = ping; // measured from right after the spawn
      const pid = Number(readFileSync('/tmp/kamailio-bench/kamailio.pid', 'utf8').trim());
      res.restartMemMiB = pssMiB(processTree(pid));
      o.log(`    kamailio-sqlite restart to serving ${res.restartMs?.toFixed(0)} ms`);
    }
  } finally {
    await stopKamailio();
    await client.close();
  }
  writeFileSync(join(o.dir, 'scale.json'), JSON.stringify(res, null, 1));
  return res;
}
