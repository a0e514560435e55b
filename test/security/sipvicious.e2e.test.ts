// Debian's sipvicious tools against a real server on 127.0.0.1, bounded in count and time (each under
// `timeout 60`). sipvicious 0.3.3 ignores its -b option (svcrack/svwar never pass it on), so the tools send from
// 127.0.0.1 and the real watcher binds 127.0.0.2: a different source to the server, so the scanners' back-off
// never touches it. The watcher keeps subscribing (with digest) the whole time and must be answered throughout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { LoopPeer, authenticated, seed, sleep, subscribe } from './helpers.js';

/** Debian names them svmap/svwar/svcrack; newer packagings prefix sipvicious_. */
function findTool(name: string): string | undefined {
  for (const candidate of [`sipvicious_${name}`, name]) {
    const r = spawnSync('sh', ['-c', `command -v ${candidate}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return undefined;
}

const tools = { svmap: findTool('svmap'), svwar: findTool('svwar'), svcrack: findTool('svcrack') };
const haveTools = Boolean(tools.svmap && tools.svwar && tools.svcrack && findTool('timeout'));
if (!haveTools) {
  // eslint-disable-next-line no-console
  console.warn('sipvicious tests SKIPPED: svmap/svwar/svcrack not found (apt-get install -y sipvicious)');
}

const ACME = 'acme.test';
const EXISTING = '150';
const PASSWORD = 'pw-0042';
const FAILURES = 10;

function run(bin: string, args: string[], seconds: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    // `timeout` bounds the run even if the tool never stops on its own (svcrack keeps retrying while answered).
    const child = spawn('timeout', ['-s', 'KILL', String(seconds), bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: workDir } });
    let output = '';
    child.stdout.on('data', (d) => { output += d.toString(); });
    child.stderr.on('data', (d) => { output += d.toString(); });
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** Rows of svwar's result table: `| 150 | reqauth |`. */
function found(output: string): Array<{ ext: string; auth: string }> {
  return [...output.matchAll(/^\|\s*(\d+)\s*\|\s*(\w+)\s*\|/gm)].map((m) => ({ ext: m[1]!, auth: m[2]! }));
}

let ts: TestServer;
let workDir: string;
let port: number;

describe.skipIf(!haveTools)('sipvicious against the server (skipped when sipvicious is not installed)', () => {
  let watcher: LoopPeer;
  let watching = true;
  const watchResults: Array<{ status: number; ms: number; error?: string }> = [];
  let watchLoop: Promise<void>;

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'lamplighter-sipvicious-'));
    ts = await startTestServer({ overrides: { sip: { auth: true, limits: { authFailuresBeforeBlock: FAILURES, authBlockSeconds: 60 } } } });
    port = ts.sip('udp').port;
    seed(ts.server.db, [{ name: 'Acme', realm: ACME, devices: [{ username: EXISTING, password: PASSWORD }, { username: '100', password: 'watcher-pw' }] }]);
    watcher = await LoopPeer.open(port, { localAddress: '127.0.0.2' });
    watchLoop = (async () => {
      while (watching) {
        const t0 = performance.now();
        try {
          // A fetch (Expires: 0) with credentials: a full authenticated round trip that stores nothing.
          const { final } = await authenticated(watcher, subscribe(watcher, { user: '201', domain: ACME, watcher: '100', expires: 0 }), { username: '100', password: 'watcher-pw' });
          watchResults.push({ status: final.status!, ms: performance.now() - t0 });
        } catch (err) {
          watchResults.push({ status: 0, ms: performance.now() - t0, error: (err as Error).message.slice(0, 200) });
        }
        await sleep(200);
      }
    })();
  });

  afterAll(async () => {
    watching = false;
    await watchLoop;
    watcher?.close();
    await ts?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('svmap finds the server (the scan really reaches it) and the server keeps answering', async () => {
    const r = await run(tools.svmap!, ['-P', '0', '-p', String(port), '127.0.0.1'], 60);
    expect(r.output).toContain(`127.0.0.1:${port}`);
  }, 70_000);

  it('svwar finds no extension over 100-199, whatever the method', async () => {
    for (const method of ['REGISTER', 'OPTIONS', 'SUBSCRIBE', 'PUBLISH', 'INVITE']) {
      const r = await run(tools.svwar!, ['-P', '0', '-p', String(port), '-e100-199', '-m', method, '--domain', ACME, '127.0.0.1'], 60);
      expect(r.output, `svwar -m ${method}`).not.toMatch(/No server response/);
      expect(found(r.output), `svwar -m ${method}`).toEqual([]);
    }
  }, 320_000);

  it('svwar --force cannot tell the existing extension from the others (PUBLISH is challenged before anything else)', async () => {
    const r = await run(tools.svwar!, ['-P', '0', '-p', String(port), '-e100-199', '--force', '-m', 'PUBLISH', '--domain', ACME, '127.0.0.1'], 60);
    const hits = found(r.output);
    // Either nothing stands out, or everything does alike: never just the real one.
    if (hits.length > 0) {
      expect(hits.length).toBe(100);
      expect(new Set(hits.map((h) => h.auth)).size).toBe(1);
    }
    expect(r.output).not.toMatch(/No server response/);
  }, 70_000);

  it('svcrack is throttled (the block kicks in) and finds nothing, even with the password in its list', async () => {
    const dict = join(workDir, 'passwords.txt');
    const words = Array.from({ length: 300 }, (_, i) => `pw-${String(i).padStart(4, '0')}`);
    expect(words).toContain(PASSWORD);
    writeFileSync(dict, `${words.join('\n')}\n`);
    const failures = async (reason: string) => {
      const text = await ts.server.metrics.registry.metrics();
      const m = new RegExp(`^lamplighter_auth_failures_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text);
      return m ? Number(m[1]) : 0;
    };
    const blockedBefore = await failures('blocked');
    for (const method of ['REGISTER', 'PUBLISH']) {
      const r = await run(tools.svcrack!, ['-P', '0', '-p', String(port), '-u', EXISTING, '-d', dict,
        '-m', method, '--domain', ACME, '--requesturi', `sip:${EXISTING}@${ACME}`, '127.0.0.1'], 15);
      expect(r.output, `svcrack -m ${method}`).not.toMatch(/The password for/);
      expect(r.output, `svcrack -m ${method}`).not.toContain(PASSWORD);
    }
    // PUBLISH reaches the digest check: the source got blocked after FAILURES attempts and was then answered 403.
    expect(await failures('blocked')).toBeGreaterThan(blockedBefore);
    const attempts = (await Promise.all(['uri', 'wrong_password', 'unknown_user', 'malformed', 'nonce', 'replay', 'realm'].map(failures))).reduce((a, b) => a + b, 0);
    expect(attempts).toBeLessThanOrEqual(FAILURES);
  }, 120_000);

  it('the real watcher was answered throughout', async () => {
    await sleep(300);
    expect(watchResults.length).toBeGreaterThan(10);
    expect(watchResults.filter((r) => r.status !== 200)).toEqual([]);
    const worst = Math.max(...watchResults.map((r) => r.ms));
    // eslint-disable-next-line no-console
    console.log(`watcher: ${watchResults.length} authenticated round trips during the scans, slowest ${worst.toFixed(1)} ms`);
  });
});
