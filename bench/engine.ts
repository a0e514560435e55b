// Micro-benchmark of the embedded SIP engine's hot paths (issue 6), the engine alone over loopback UDP:
//   fanout  W NOTIFYs through sendRequest to a peer process that answers each with a SIPp-like 200 OK;
//           wall ms from the first sendRequest to the last outcome, and engine CPU µs per NOTIFY (its 200 parsed);
//           then the bytes a client transaction holds while it waits out Timer K after its 200.
//   server  N SUBSCRIBE-like requests from the peer, answered 200 at once by the handler; engine CPU µs per
//           request, and the bytes each completed server transaction holds while it waits out Timer J (32 s):
//           (heap + external after gc) / N, measured over N transactions that are all still in Completed
//           (the completed-transaction budget raised so that none is forgotten early).
//   parse   parseMessage of the 200 OK a watcher sends back to a NOTIFY, µs each, with the full checks and with
//           the 'match' checks the engine applies to responses.
// Run: node --expose-gc --import tsx bench/engine.ts [fanout|server|parse ...] [--watchers 1000] [--rounds 30] [--n 50000]
// The peer is this file again (`--peer`), so its CPU is not the engine's.
import { fork, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { createEmbeddedEngine } from '../src/sip/stack/engine.js';
import { DEFAULT_LIMITS, parseMessage } from '../src/sip/stack/parser.js';
import type { DialogRequestSpec, SipEngine } from '../src/sip/port.js';
import { sippLike200 } from './lib/answer.js';

const CRLF = (s: string): string => s.replace(/\r?\n/g, '\r\n');

// ---------------------------------------------------------------------------------------------- the peer
// Answers every request with a 200 copying Via/From/To/Call-ID/CSeq (what SIPp's [last_*] does), and on
// {send:n,rate,port} sends n SUBSCRIBEs to the engine at `rate` per second.
function peerMain(): void {
  process.on('disconnect', () => process.exit(0)); // never outlive the benchmark
  const sock = dgram.createSocket('udp4');
  let answers = 0;
  sock.on('message', (msg, rinfo) => {
    const t = msg.toString('latin1');
    if (t.startsWith('SIP/2.0')) { answers++; return; }
    sock.send(sippLike200(t, `<sip:w@127.0.0.1:${sock.address().port};transport=udp>`), rinfo.port, rinfo.address);
  });
  try { sock.bind(0, '127.0.0.1', () => { sock.setRecvBufferSize(4 << 20); sock.setSendBufferSize(4 << 20); process.send!({ port: sock.address().port }); }); } catch { /* */ }
  process.on('message', (m: { send: number; rate: number; port: number; start: number; reset?: boolean }) => {
    if (m.reset) { answers = 0; process.send!({ answers }); return; }
    let i = 0;
    const perTick = Math.max(1, Math.round(m.rate / 1000));
    const me = sock.address().port;
    const timer = setInterval(() => {
      for (let k = 0; k < perTick && i < m.send; k++, i++) {
        const n = m.start + i;
        const req = CRLF(`SUBSCRIBE sip:${100000 + (n % 5000)}@example.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:${me};branch=z9hG4bK-b${n}-${process.pid};rport
Max-Forwards: 70
From: <sip:w${n}@example.test>;tag=ls${process.pid}x${n}
To: <sip:${100000 + (n % 5000)}@example.test>
Call-ID: ${n}-${process.pid}@127.0.0.1
CSeq: 1 SUBSCRIBE
Contact: <sip:w${n}@127.0.0.1:${me};transport=udp>
Event: dialog
Accept: application/dialog-info+xml
Expires: 600
User-Agent: lamplighter-bench
Content-Length: 0

`);
        sock.send(req, m.port, '127.0.0.1');
      }
      if (i >= m.send) {
        clearInterval(timer);
        setTimeout(() => process.send!({ sent: i, answers }), 300);
      }
    }, 1);
  });
}

// ---------------------------------------------------------------------------------------------- helpers
const DIALOG_INFO = Buffer.from(CRLF(`<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:201@example.test">
  <dialog id="a84b4c76e66710" direction="recipient"><state>confirmed</state></dialog>
</dialog-info>
`));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const gc = (globalThis as { gc?: () => void }).gc;
function heapNow(): { heap: number; external: number } {
  if (!gc) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, external: m.external };
}

function ask<T>(child: ChildProcess, msg: unknown): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(msg as never);
  });
}

async function startPeer(): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(fileURLToPath(import.meta.url), ['--peer'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const { port } = await new Promise<{ port: number }>((r) => child.once('message', (m) => r(m as { port: number })));
  return { child, port };
}

async function startEngine(sip: Record<string, unknown> = {}): Promise<{ engine: SipEngine; port: number }> {
  const config = loadConfig({
    env: {},
    overrides: { log: { level: 'silent', traceSip: [] }, sip: { listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }], ...sip } },
  });
  const engine = createEmbeddedEngine({ config, logger: silentLogger, metrics: createMetrics() });
  const [a] = await engine.start();
  return { engine, port: a!.port };
}

function notifySpec(peerPort: number, i: number): DialogRequestSpec {
  return {
    method: 'NOTIFY',
    requestUri: `sip:w${i}@127.0.0.1:${peerPort};transport=udp`,
    callId: `call-${i}@127.0.0.1`,
    from: `<sip:201@example.test>;tag=srv${i}`,
    to: `<sip:w${i}@example.test>;tag=ls${i}`,
    cseq: 2,
    routeSet: [],
    transport: 'udp',
    flowId: `udp|127.0.0.1|0|127.0.0.1|${peerPort}`,
    flowRemote: { address: '127.0.0.1', port: peerPort },
    headers: [
      ['Event', 'dialog'],
      ['Subscription-State', 'active;expires=600'],
      ['Contact', 'sip:127.0.0.1:5060;transport=udp'],
      ['Content-Type', 'application/dialog-info+xml'],
    ],
    body: DIALOG_INFO,
  };
}

// ---------------------------------------------------------------------------------------------- figures
async function fanout(watchers: number, rounds: number): Promise<Record<string, number>> {
  const peer = await startPeer();
  const { engine } = await startEngine();
  const walls: number[] = [];
  const cpus: number[] = [];
  const specs = Array.from({ length: watchers }, (_, i) => notifySpec(peer.port, i));
  for (let r = 0; r < rounds + 5; r++) {
    const c0 = cpuUs();
    const t0 = performance.now();
    const outcomes = await Promise.all(specs.map((s) => { s.cseq++; return engine.sendRequest(s); }));
    const wall = performance.now() - t0;
    const cpu = cpuUs() - c0;
    const bad = outcomes.filter((o) => o.status !== 200).length;
    if (bad > 0) console.error(`round ${r}: ${bad} NOTIFYs not answered 200`);
    if (r >= 5) { walls.push(wall); cpus.push(cpu / watchers); }
    await new Promise((res) => setTimeout(res, 100));
  }
  // What a client transaction holds while it waits out Timer K (5 s on UDP) after its 200: one more fan-out, read
  // at once, against a reading taken after every earlier transaction has ended.
  await new Promise((res) => setTimeout(res, 5500));
  const m0 = heapNow();
  let answered = 0;
  await Promise.all(specs.map((sp) => { sp.cseq++; return engine.sendRequest(sp).then((o) => { if (o.status === 200) answered++; }); }));
  const m1 = heapNow();
  const kBytes = (m1.heap + m1.external - m0.heap - m0.external) / answered;
  await engine.stop();
  peer.child.kill();
  return { watchers, fanoutWallMs: +median(walls).toFixed(1), fanoutCpuUsPerNotify: +median(cpus).toFixed(1), bytesPerCompletedClientTx: Math.round(kBytes) };
}

async function server(n: number): Promise<Record<string, number>> {
  const peer = await startPeer();
  // The completed-transaction byte budget is 256 * sip.maxMessageSize (16 MiB by default, about 20 000 small
  // answers): raised here so that all N transactions are still held when memory is read.
  const { engine, port } = await startEngine({ maxMessageSize: 1024 * 1024 });
  let handled = 0;
  let tag = 0;
  engine.onRequest((tx) => {
    handled++;
    tx.respond({ status: 200, toTag: 'srv' + (tag++).toString(36), headers: [['Expires', '600'], ['Contact', '<sip:127.0.0.1:5060>']] });
  });
  const warm = 5000;
  await ask(peer.child, { send: warm, rate: 10000, port, start: 0 });
  const m0 = heapNow();
  const h0 = handled;
  const c0 = cpuUs();
  const t0 = performance.now();
  const r = await ask<{ sent: number; answers: number }>(peer.child, { send: n, rate: 10000, port, start: warm });
  const wall = performance.now() - t0;
  const cpu = cpuUs() - c0;
  const done = handled - h0;
  const m1 = heapNow();
  const heapBytes = (m1.heap - m0.heap) / done;
  const externalBytes = (m1.external - m0.external) / done;
  if (wall > 30_000) console.error('the run took longer than Timer J: some transactions may have ended before the reading');
  await engine.stop();
  peer.child.kill();
  return { requests: done, lost: r.sent - done, serverCpuUsPerRequest: +(cpu / done).toFixed(1),
    bytesPerCompletedTx: Math.round(heapBytes + externalBytes), heapBytesPerTx: Math.round(heapBytes), externalBytesPerTx: Math.round(externalBytes) };
}

function parse(n: number): Record<string, number> {
  const ok = Buffer.from(CRLF(`SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1:5060;rport=5060;branch=z9hG4bK9f8e7d6c5b4a39281706f5e4d3c2b1a0;received=127.0.0.1
From: <sip:201@example.test>;tag=3b5f0c1a
To: <sip:w17@example.test>;tag=ls1234x17
Call-ID: 17-1234@127.0.0.1
CSeq: 3 NOTIFY
Contact: <sip:w17@127.0.0.1:40000;transport=udp>
Content-Length: 0

`));
  let x = 0;
  for (let i = 0; i < 20000; i++) x += parseMessage(ok).ok ? 1 : 0;
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) x += parseMessage(ok).ok ? 1 : 0;
    runs.push(((performance.now() - t0) * 1000) / n);
  }
  const light: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) x += parseMessage(ok, DEFAULT_LIMITS, 'match').ok ? 1 : 0;
    light.push(((performance.now() - t0) * 1000) / n);
  }
  if (x === 0) throw new Error('unreachable');
  return { parse200Us: +median(runs).toFixed(3), parse200MatchUs: +median(light).toFixed(3) };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, d: number): number => {
    const i = args.indexOf(`--${name}`);
    return i === -1 ? d : Number(args[i + 1]);
  };
  const which = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1]!.startsWith('--')));
  const all = which.length === 0;
  const out: Record<string, number> = {};
  if (all || which.includes('parse')) Object.assign(out, parse(opt('parse-n', 200000)));
  if (all || which.includes('fanout')) Object.assign(out, await fanout(opt('watchers', 1000), opt('rounds', 30)));
  if (all || which.includes('server')) Object.assign(out, await server(opt('n', 50000)));
  console.log(JSON.stringify(out));
}

if (process.argv.includes('--peer')) peerMain();
else void main();
