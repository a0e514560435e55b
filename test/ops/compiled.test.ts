// `npm start` builds with tsc and runs dist/main.js, not the sources through tsx: that build must compile and the
// compiled server must serve SIP and the API and stop cleanly.
import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { spawnServer, tempDbFile, type ChildServer } from '../helpers/server.js';
import { RawPeer } from '../helpers/raw-sip.js';

const ROOT = join(import.meta.dirname, '..', '..');
const cleanups: Array<() => unknown> = [];
afterAll(async () => { for (const c of cleanups.reverse()) await c(); });

describe('the compiled server (npm start)', () => {
  it('builds with npm run build, answers OPTIONS over UDP and /ready, and exits 0 on SIGTERM', async () => {
    const build = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(build.status, build.stdout + build.stderr).toBe(0);
    const tmp = tempDbFile();
    cleanups.push(tmp.cleanup);
    const srv: ChildServer = await spawnServer({ dbFile: tmp.file, entry: join(ROOT, 'dist', 'main.js'), env: { LAMPLIGHTER_LOG_LEVEL: 'debug' } });
    cleanups.push(() => srv.kill('SIGKILL'));
    expect(srv.child.spawnargs).toContain(join(ROOT, 'dist', 'main.js'));
    const ready = await fetch(`http://127.0.0.1:${srv.apiPort}/ready`);
    expect(ready.status).toBe(200);
    const peer = await RawPeer.open({ port: srv.sip.udp! });
    cleanups.push(() => peer.close());
    peer.sendRaw([
      `OPTIONS sip:lamplighter@127.0.0.1:${srv.sip.udp} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${peer.localPort};branch=z9hG4bK-compiled-1`,
      'Max-Forwards: 70', 'From: <sip:probe@example.test>;tag=p1', `To: <sip:lamplighter@127.0.0.1>`,
      'Call-ID: compiled-options@127.0.0.1', 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', '',
    ].join('\r\n'));
    const answer = await peer.waitFor((m) => m.status !== undefined);
    expect(answer.status).toBe(200);
    expect(answer.get('allow-events')).toContain('dialog');
    const { code } = await srv.kill('SIGTERM');
    expect(code).toBe(0);
    expect(srv.logs.some((l) => l.msg === 'stopped')).toBe(true);
  }, 150_000);
});
