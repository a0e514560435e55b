// Micro-benchmark of one PUBLISH fanned out by the whole server (issue 6): the real startServer (embedded engine,
// presence, notifier, SQLite on a temporary file) in this process, and a peer process that holds W watchers of
// one extension over loopback UDP and answers every NOTIFY with a SIPp-like 200 OK. Each round the peer sends
// one PUBLISH (a new state: confirmed, then terminated, ...) and times, on its own clock, PUBLISH → 200 and
// PUBLISH → first / median / last NOTIFY; this process reads its own CPU over the round, so the figure "server
// CPU µs per NOTIFY" covers building, committing and sending each NOTIFY and matching its 200.
// It is the quick loop for work on the fan-out path; `npm run bench` (SIPp, fresh server) is the figure of record.
// Run: node --expose-gc --import tsx bench/fanout.ts [--watchers 1000] [--rounds 20]   (add --cpu-prof to profile)
import { fork, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startServer } from '../src/server.js';
import { headerLine, sippLike200 } from './lib/answer.js';

const CRLF = (s: string): string => s.replace(/\r?\n/g, '\r\n');
const EXT = 'fan';
const DOMAIN = 'example.test';

interface RoundResult { publish200Ms: number; firstMs: number; medianMs: number; lastMs: number; notified: number }

// ---------------------------------------------------------------------------------------------- the peer
function peerMain(): void {
  process.on('disconnect', () => process.exit(0)); // never outlive the benchmark
  const sock = dgram.createSocket('udp4');
  let server = 0;
  let me = 0;
  let ready = 0;
  let want = 0;
  let onReady: (() => void) | undefined;
  // A round ends when every watcher has had a NOTIFY with the round's state (a late NOTIFY of the round before,
  // or a retransmission, does not count).
  let round: { t0: number; state: string; got: Set<string>; times: number[]; ok200?: number; done: (r: RoundResult) => void } | undefined;
  let etag = '';
  let publishes = 0;
  const lastCseq = new Map<string, string>(); // Call-ID → CSeq of the newest NOTIFY (a retransmission repeats it)
  sock.on('message', (msg, rinfo) => {
    const t = msg.toString('latin1');
    if (t.startsWith('SIP/2.0')) {
      if (/^CSeq:\s*\d+ PUBLISH/im.test(t) && round) {
        round.ok200 = performance.now() - round.t0;
        etag = /^SIP-ETag:\s*(\S+)/im.exec(t)?.[1] ?? etag;
      }
      return;
    }
    const callId = headerLine(t, 'Call-ID');
    sock.send(sippLike200(t, `<sip:w@127.0.0.1:${me};transport=udp>`), rinfo.port, rinfo.address);
    const cseq = headerLine(t, 'CSeq');
    const seen = lastCseq.get(callId);
    if (seen === cseq) return; // a retransmission, answered again
    lastCseq.set(callId, cseq);
    if (seen === undefined) {
      if (++ready === want) onReady?.();
      return;
    }
    if (round && !round.got.has(callId) && t.includes(`<state>${round.state}</state>`)) {
      round.got.add(callId);
      round.times.push(performance.now() - round.t0);
      if (round.times.length === want) {
        const r = round;
        round = undefined;
        const s = [...r.times].sort((a, b) => a - b);
        r.done({ publish200Ms: r.ok200 ?? -1, firstMs: s[0]!, medianMs: s[Math.floor(s.length / 2)]!, lastMs: s[s.length - 1]!, notified: s.length });
      }
    }
  });
  sock.bind(0, '127.0.0.1', () => {
    sock.setRecvBufferSize(8 << 20);
    sock.setSendBufferSize(8 << 20);
    me = sock.address().port;
    process.send!({ port: me });
  });
  process.on('message', (m: { subscribe?: number; server: number } | { publish: number }) => {
    if ('subscribe' in m && m.subscribe) {
      server = m.server;
      want = m.subscribe;
      onReady = () => process.send!({ ready });
      let i = 0;
      const timer = setInterval(() => {
        for (let k = 0; k < 5 && i < want; k++, i++) sock.send(CRLF(`SUBSCRIBE sip:${EXT}@${DOMAIN} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:${me};branch=z9hG4bK-s${i}-${process.pid};rport
Max-Forwards: 70
From: <sip:${EXT}w${i}@${DOMAIN}>;tag=lf${process.pid}x${i}
To: <sip:${EXT}@${DOMAIN}>
Call-ID: ${i}-${process.pid}@127.0.0.1
CSeq: 1 SUBSCRIBE
Contact: <sip:${EXT}w${i}@127.0.0.1:${me};transport=udp>
Event: dialog
Accept: application/dialog-info+xml
Expires: 3600
User-Agent: lamplighter-bench
Content-Length: 0

`), server, '127.0.0.1');
        if (i >= want) clearInterval(timer);
      }, 1);
      return;
    }
    if ('publish' in m) {
      const n = ++publishes;
      const state = n % 2 === 1 ? 'confirmed' : 'early';
      const body = CRLF(`<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:${EXT}@${DOMAIN}">
<dialog id="b1" call-id="bc1@bench" local-tag="l1" remote-tag="r1" direction="recipient">
<state>${state}</state>
<remote><identity>sip:caller@${DOMAIN}</identity><target uri="sip:caller@${DOMAIN}"/></remote>
<local><identity>sip:${EXT}@${DOMAIN}</identity><target uri="sip:${EXT}@${DOMAIN}"/></local>
</dialog>
</dialog-info>
`);
      const req = CRLF(`PUBLISH sip:${EXT}@${DOMAIN} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:${me};branch=z9hG4bK-p${n}-${process.pid};rport
Max-Forwards: 70
From: <sip:${EXT}@${DOMAIN}>;tag=lp${process.pid}
To: <sip:${EXT}@${DOMAIN}>
Call-ID: pub-${process.pid}@127.0.0.1
CSeq: ${n} PUBLISH
Event: dialog
Expires: 3600
${etag ? `SIP-If-Match: ${etag}\n` : ''}Content-Type: application/dialog-info+xml
Content-Length: ${Buffer.byteLength(body)}

`) + body;
      round = { t0: performance.now(), state, got: new Set(), times: [], done: (r) => process.send!(r) };
      sock.send(req, server, '127.0.0.1');
    }
  });
}

// ---------------------------------------------------------------------------------------------- the run
function ask<T>(child: ChildProcess, msg: unknown, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`peer did not answer ${JSON.stringify(msg)} within ${timeoutMs} ms`)), timeoutMs);
    child.once('message', (m) => { clearTimeout(timer); resolve(m as T); });
    child.send(msg as never);
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cpuUs = (): number => { const u = process.cpuUsage(); return u.user + u.system; };

async function main(): Promise<void> {
  const arg = (name: string, dflt: number): number => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const watchers = arg('watchers', 1000);
  const rounds = arg('rounds', 20);
  const dir = mkdtempSync(join(tmpdir(), 'lamplighter-fanout-'));
  const config = loadConfig({
    env: {},
    overrides: {
      nodeId: 'bench', log: { level: 'silent', traceSip: [] }, db: { file: join(dir, 'bench.sqlite') },
      sip: { auth: false, listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }] },
      api: { address: '127.0.0.1', port: 0 },
    },
  });
  const server = await startServer(config, silentLogger);
  const peer = fork(fileURLToPath(import.meta.url), ['--peer'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const deadline = setTimeout(() => { console.error('fanout bench: 5 min deadline reached'); peer.kill(); process.exit(2); }, 300_000);
  try {
    await new Promise((r) => peer.once('message', r));
    const sipPort = server.sipAddresses.find((a) => a.transport === 'udp')!.port;
    await ask(peer, { subscribe: watchers, server: sipPort }, 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    const rows: Array<RoundResult & { cpuUsPerNotify: number }> = [];
    for (let r = 0; r < rounds + 3; r++) {
      const c0 = cpuUs();
      const res = await ask<RoundResult>(peer, { publish: r }, 30_000);
      // The last 200s are still on their way when the peer reports: let them be matched before CPU is read.
      await new Promise((ok) => setTimeout(ok, 30));
      const cpu = cpuUs() - c0;
      if (process.argv.includes("--verbose")) console.error(`round ${r}: ${JSON.stringify(res)} cpu/notify ${(cpu / watchers).toFixed(1)} µs`);
      if (r >= 3) rows.push({ ...res, cpuUsPerNotify: cpu / watchers }); // three warm-up rounds
      await new Promise((ok) => setTimeout(ok, 150));
    }
    const m = (k: keyof RoundResult | 'cpuUsPerNotify'): number => +median(rows.map((x) => x[k])).toFixed(1);
    console.log(JSON.stringify({ watchers, rounds, publish200Ms: m('publish200Ms'), firstMs: m('firstMs'), medianMs: m('medianMs'),
      lastMs: m('lastMs'), lastMsMin: +Math.min(...rows.map((x) => x.lastMs)).toFixed(1), cpuUsPerNotify: m('cpuUsPerNotify') }));
  } finally {
    clearTimeout(deadline);
    peer.kill();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes('--peer')) peerMain();
else await main();
