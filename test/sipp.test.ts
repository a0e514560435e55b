// Issue 2's SIPp run, with the bench's fan-out rounds: N watchers of one extension subscribe
// (bench/sipp/fanout_watcher.xml), the PBX publishes (bench/sipp/publish.xml) and then modifies that publication
// three times (bench/sipp/publish_modify.xml, SIP-If-Match); after each PUBLISH every watcher gets a NOTIFY whose
// body says "confirmed", and sipp counts zero failed calls (the un-SUBSCRIBE and final NOTIFY included). Skipped, with the apt-get line, when sipp is absent.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer, tempDbFile, type ChildServer } from './helpers/server.js';
import { sippVersion, startSipp, runSipp, writeUsers, LogTail, logTimes, loggedEtag, stateKey, stateLines, SIPP_INSTALL, type Transport } from '../bench/lib/sipp.js';
import { FANOUT_ROUNDS } from '../bench/lib/figures.js';
import { freePort } from '../bench/lib/ports.js';

const N = 50;
const haveSipp = sippVersion() !== undefined;
if (!haveSipp) console.warn(`test/sipp.test.ts skipped: sipp is not installed (${SIPP_INSTALL})`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

describe.skipIf(!haveSipp)(`SIPp: ${N} watchers, ${FANOUT_ROUNDS} PUBLISHes, all notified each time`, () => {
  let server: ChildServer;
  let db: ReturnType<typeof tempDbFile>;
  let work: string;

  beforeAll(async () => {
    db = tempDbFile();
    work = mkdtempSync(join(tmpdir(), 'lamplighter-sipp-'));
    server = await spawnServer({ dbFile: db.file });
  }, 30_000);

  afterAll(async () => {
    await server?.kill('SIGTERM');
    db?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  for (const transport of ['u1', 't1'] as Transport[]) {
    it(`over ${transport === 'u1' ? 'UDP' : 'TCP'}`, async () => {
      const port = transport === 'u1' ? server.sip.udp : server.sip.tcp;
      expect(port, 'the server logged its SIP port').toBeTypeOf('number');
      const target = `127.0.0.1:${port}`;
      const ext = `ci-${transport}-${process.pid}`;
      const wdir = join(work, `${transport}-watchers`);
      const pdir = join(work, `${transport}-publisher`);
      const rows: Array<[string, string]> = [];
      for (let i = 1; i <= N; i++) rows.push([ext, `${ext}-w${i}`]);
      writeUsers(join(work, `${transport}-w.csv`), rows);

      const watchers = startSipp({
        scenario: 'fanout_watcher.xml', csv: join(work, `${transport}-w.csv`), target, domain: 'example.test', transport,
        localPort: await freePort(), rate: 100, calls: N, limit: N, timeoutS: 40, recvTimeoutMs: 10_000, dir: wdir, logs: true,
      }, 5);
      try {
        const log = new LogTail(join(wdir, 'logs.log'));
        expect(await until(() => log.count('READY') >= N, 15_000), `all ${N} watchers got their initial NOTIFY`).toBe(true);

        // The bench's fan-out rounds: one PUBLISH after another, each once every watcher has its NOTIFY.
        const sentAt: number[] = [];
        for (let k = 1; k <= FANOUT_ROUNDS; k++) {
          // Round 1 publishes; the later rounds modify that publication with the SIP-ETag of the round before.
          const etag = k > 1 ? loggedEtag(join(`${pdir}${k - 1}`, 'logs.log')) : undefined;
          if (k > 1) expect(etag, `the 200 to PUBLISH ${k - 1} carried a SIP-ETag`).toMatch(/^\S+$/);
          const csv = join(work, `${transport}-p${k}.csv`);
          writeUsers(csv, etag === undefined ? [[ext, 'pbx']] : [[ext, etag, `r${k}`]]);
          const pub = await runSipp({
            scenario: etag === undefined ? 'publish.xml' : 'publish_modify.xml', csv, target, domain: 'example.test', transport,
            localPort: await freePort(), rate: 1, calls: 1, limit: 1, timeoutS: 15, recvTimeoutMs: 5000, dir: `${pdir}${k}`, logs: true,
          });
          expect(pub.successful, `PUBLISH ${k} got its 200`).toBe(1);
          expect(pub.failed).toBe(0);
          sentAt.push(logTimes(join(`${pdir}${k}`, 'logs.log'), 'PUBLISH_SENT')[0]!);
          expect(await until(() => log.count(stateKey(k)) >= N, 10_000), `all ${N} watchers got the NOTIFY after PUBLISH ${k}`).toBe(true);
        }

        const st = await watchers.done;
        expect(st.killed, 'sipp finished by itself').toBe(false);
        expect(st.failed, 'failed calls (sipp)').toBe(0);
        expect(st.successful).toBe(N);
        expect(st.rc).toBe(0);
        for (let k = 1; k <= FANOUT_ROUNDS; k++) {
          const lines = stateLines(join(wdir, 'logs.log'), k);
          expect(lines.filter((l) => l.matched).length, `round ${k}: NOTIFY bodies saying "confirmed"`).toBe(N);
          // the NOTIFYs of a round were caused by its PUBLISH: none before it was sent
          expect(Math.min(...lines.map((l) => l.t))).toBeGreaterThanOrEqual(sentAt[k - 1]!);
        }
      } finally {
        watchers.kill();
        await watchers.done;
      }
    }, 60_000);
  }
});
