// Issue 7: SIGTERM during a SIPp load loses no acknowledged subscription and exits 0; a backup taken while the
// server runs restores into a server that NOTIFYs the same watchers in their old dialogs.
import { describe, it, expect } from 'vitest';
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { spawnServer, startTestServer, tempDbFile, ROOT } from '../helpers/server.js';
import { RawPeer, subscribeText, publishText } from '../helpers/raw-sip.js';

const hasSipp = (() => { try { execFileSync('sh', ['-c', 'command -v sipp'], { stdio: 'ignore' }); return true; } catch { return false; } })();
if (!hasSipp) console.log('skipped: sipp not installed (apt-get install sip-tester)');

describe.skipIf(!hasSipp)('SIGTERM under SIPp load', () => {
  it('exits 0 and keeps every subscription that got a 200', async () => {
    const db = tempDbFile();
    const dir = mkdtempSync(join(tmpdir(), 'lamplighter-sigterm-'));
    const csv = join(dir, 'users.csv');
    writeFileSync(csv, `SEQUENTIAL\n${Array.from({ length: 4000 }, (_, i) => `${1000 + i};w${i}`).join('\n')}\n`);
    const srv = await spawnServer({ dbFile: db.file });
    const msgFile = join(dir, 'messages.log');
    const sipp = spawn('sipp', [
      '-sf', join(ROOT, 'bench', 'sipp', 'subscribe.xml'), '-inf', csv, '-key', 'domain', 'example.test',
      `127.0.0.1:${srv.sip.udp}`, '-t', 'u1', '-i', '127.0.0.1', '-p', '0',
      '-r', '400', '-m', '4000', '-l', '4000', '-timeout', '20s', '-recv_timeout', '3000', '-nostdin',
      '-trace_msg', '-message_file', msgFile,
    ], { cwd: dir, stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 2500));
      const exit = await srv.kill('SIGTERM');
      expect(exit.code).toBe(0);
    } finally {
      sipp.kill('SIGKILL');
      await new Promise((r) => sipp.once('exit', r));
    }
    // Every Call-ID that SIPp saw a 200 for must be in the database.
    const log = readFileSync(msgFile, 'latin1');
    const acked = new Set<string>();
    for (const block of log.split(/-{10,}/)) {
      if (!/^SIP\/2\.0 200/m.test(block) || !/^CSeq:\s*1 SUBSCRIBE/mi.test(block)) continue;
      const m = /^Call-ID:\s*(\S+)/mi.exec(block);
      if (m) acked.add(m[1]!);
    }
    expect(acked.size).toBeGreaterThan(100);
    const d = new Database(db.file, { readonly: true });
    const stored = new Set((d.prepare('SELECT call_id FROM subscriptions').all() as Array<{ call_id: string }>).map((r) => r.call_id));
    d.close();
    const lost = [...acked].filter((c) => !stored.has(c));
    expect(lost).toEqual([]);
    db.cleanup();
  }, 60_000);
});

describe('backup and restore', () => {
  it('a backup taken while serving restores into a server that NOTIFYs the same watchers', async () => {
    const db = tempDbFile();
    const srv = await startTestServer({ dbFile: db.file });
    const peers = await Promise.all([0, 1].map(() => RawPeer.open({ port: srv.sip('udp').port })));
    const callIds: string[] = [];
    for (const [i, p] of peers.entries()) {
      const callId = `backup-${i}@127.0.0.1`;
      callIds.push(callId);
      const ok = await p.request(subscribeText(p, { user: '301', expires: 600, callId }));
      expect(ok.status).toBe(200);
      await p.waitFor((m) => m.method === 'NOTIFY', 5000, 0);
    }
    const backup = join(mkdtempSync(join(tmpdir(), 'lamplighter-backup-')), 'copy.sqlite');
    execFileSync(process.execPath, [join(ROOT, 'bin', 'lamplighter.js'), '--db', db.file, 'db', 'backup', backup], { cwd: ROOT, stdio: 'pipe' });
    const lastCseq = peers.map((p) => Math.max(...p.received.filter((m) => m.method === 'NOTIFY').map((m) => Number(m.get('cseq')!.split(' ')[0]))));
    await srv.stop();

    const restored = await startTestServer({ dbFile: backup });
    try {
      // The restored server listens on new ports; the watchers are reached at their stored source addresses.
      const pbx = await RawPeer.open({ port: restored.sip('udp').port });
      const seen = peers.map((p) => p.received.length);
      const pub = await pbx.request(publishText(pbx, { user: '301', state: 'early' }));
      expect(pub.status).toBe(200);
      for (const [i, p] of peers.entries()) {
        const n = await p.waitFor((m) => m.method === 'NOTIFY' && m.body.includes('early'), 5000, seen[i]);
        expect(n.get('call-id')).toBe(callIds[i]);
        expect(Number(n.get('cseq')!.split(' ')[0])).toBeGreaterThan(lastCseq[i]!);
      }
      pbx.close();
    } finally {
      peers.forEach((p) => p.close());
      await restored.stop();
      db.cleanup();
    }
  });
});
