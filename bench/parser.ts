// Parser and serializer micro-benchmark (issue 6): messages per second on a mix of a real-looking Yealink
// SUBSCRIBE, a NOTIFY with a dialog-info body, a compact-form PUBLISH and a 200 OK.
// Run: npx tsx bench/parser.ts [--n 200000] [--runs 5]
// Prints a markdown table with the median of the runs, then one JSON line for bench/run.ts.
import { cpus, loadavg } from 'node:os';
import { parseMessage } from '../src/sip/stack/parser.js';
import { serializeMessage } from '../src/sip/stack/serializer.js';
import type { SipMessage } from '../src/sip/stack/message.js';

const CRLF = (s: string): string => s.replace(/\r?\n/g, '\r\n');

const DIALOG_INFO = `<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="8" state="full" entity="sip:201@pbx.example.com">
  <dialog id="a84b4c76e66710" call-id="a84b4c76e66710@10.0.0.5" local-tag="1928301774" remote-tag="8321234356" direction="recipient">
    <state>early</state>
    <local><identity display="201">sip:201@pbx.example.com</identity><target uri="sip:201@pbx.example.com"/></local>
    <remote><identity display="Zoë">sip:100@pbx.example.com</identity><target uri="sip:100@pbx.example.com"/></remote>
  </dialog>
</dialog-info>
`;

function withBody(head: string, body: string): Buffer {
  const b = Buffer.from(CRLF(body), 'utf8');
  return Buffer.concat([Buffer.from(CRLF(head).replace('Content-Length: 0', `Content-Length: ${b.length}`)), b]);
}

export const SAMPLES: Record<string, Buffer> = {
  subscribe: Buffer.from(CRLF(`SUBSCRIBE sip:201@pbx.example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.23:5062;branch=z9hG4bK1764470215;rport
From: "Reception" <sip:100@pbx.example.com>;tag=3478093715
To: <sip:201@pbx.example.com>
Call-ID: 2066839571@10.0.0.23
CSeq: 1 SUBSCRIBE
Contact: <sip:100@10.0.0.23:5062>
Accept: application/dialog-info+xml
Max-Forwards: 70
User-Agent: Yealink SIP-T46S 66.86.0.15
Expires: 1800
Event: dialog
Allow-Events: talk,hold,conference,refer,check-sync
Content-Length: 0

`)),
  notify: withBody(`NOTIFY sip:100@10.0.0.23:5062 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK8d2c6f1e9b0a4c3d2e1f0a9b8c7d6e5f
Max-Forwards: 70
From: <sip:201@pbx.example.com>;tag=5a1f0c9e
To: "Reception" <sip:100@pbx.example.com>;tag=3478093715
Call-ID: 2066839571@10.0.0.23
CSeq: 12 NOTIFY
Contact: <sip:201@10.0.0.5:5060>
Event: dialog
Subscription-State: active;expires=1795
Content-Type: application/dialog-info+xml
Content-Length: 0

`, DIALOG_INFO),
  publish: withBody(`PUBLISH sip:201@pbx.example.com SIP/2.0
v: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-524287-1---a3f9c2
Max-Forwards: 70
f: <sip:201@pbx.example.com>;tag=9c1d2e
t: <sip:201@pbx.example.com>
i: 0b1c2d3e4f5a6b7c@10.0.0.2
CSeq: 3 PUBLISH
o: dialog
Expires: 3600
SIP-If-Match: dx200xyz
c: application/dialog-info+xml
Content-Length: 0

`, DIALOG_INFO),
  ok: Buffer.from(CRLF(`SIP/2.0 200 OK
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK8d2c6f1e9b0a4c3d2e1f0a9b8c7d6e5f;received=10.0.0.5
From: <sip:201@pbx.example.com>;tag=5a1f0c9e
To: "Reception" <sip:100@pbx.example.com>;tag=3478093715
Call-ID: 2066839571@10.0.0.23
CSeq: 12 NOTIFY
User-Agent: Yealink SIP-T46S 66.86.0.15
Content-Length: 0

`)),
};

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function main(): void {
  const n = arg('n', 200_000);
  const runs = arg('runs', 5);
  const inputs = Object.values(SAMPLES);
  const parsed: SipMessage[] = inputs.map((b) => {
    const r = parseMessage(b);
    if (!r.ok) throw new Error(`sample does not parse: ${r.error}`);
    return r.message;
  });
  let sink = 0;
  // Rates per second of this process's CPU time (user + system), and per second of wall-clock time. On a busy
  // machine the wall-clock rate falls with the share of the CPU we get; the CPU-time rate does not, so it is the
  // figure reported (and the one bench/run.ts reads).
  const time = (fn: (i: number) => void): { cpu: number; wall: number } => {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(i);
    const ns = Number(process.hrtime.bigint() - t0);
    const c = process.cpuUsage(c0);
    return { cpu: n / ((c.user + c.system) / 1e6), wall: n / (ns / 1e9) };
  };
  const cases: Array<[string, (i: number) => void]> = [
    ['parse', (i) => { const r = parseMessage(inputs[i & 3]!); if (r.ok) sink += r.message.headers.size; }],
    ['serialize', (i) => { sink += serializeMessage(parsed[i & 3]!).length; }],
    ['parse+serialize', (i) => { const r = parseMessage(inputs[i & 3]!); if (r.ok) sink += serializeMessage(r.message).length; }],
  ];
  // Warm every case up before measuring any, so no case is timed while the JIT is still settling the others.
  for (const [, fn] of cases) for (let i = 0; i < 100_000; i++) fn(i);
  const rows: string[] = [];
  const medians: Record<string, number> = {};
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  for (const [name, fn] of cases) {
    const cpu: number[] = [];
    const wall: number[] = [];
    // each operation gets its runs back to back
    for (let r = 0; r < runs; r++) {
      const t = time(fn);
      cpu.push(t.cpu);
      wall.push(t.wall);
    }
    const m = median(cpu);
    medians[name] = Math.round(m);
    rows.push(`| ${name} | ${fmt(m)} | ${(1e6 / m).toFixed(2)} | ${fmt(median(wall))} |`);
  }
  const load = loadavg()[0]!.toFixed(2);
  console.log(`Parser micro-benchmark: ${n.toLocaleString('en-US')} messages per run (SUBSCRIBE, NOTIFY+dialog-info, PUBLISH, 200 OK in turn), median of ${runs} runs`);
  console.log(`Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load average ${load} at the end (other work on the machine lowers the wall-clock figures)\n`);
  console.log('| operation | messages/s (CPU time) | µs/message | messages/s (wall clock) |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows) console.log(r);
  if (sink === 0) console.log('(nothing measured)');
  // One JSON line for bench/run.ts (bench/lib/parser-bench.ts reads messagesPerSecond = the parse median).
  console.log(JSON.stringify({
    messagesPerSecond: medians.parse,
    serializePerSecond: medians.serialize,
    parseSerializePerSecond: medians['parse+serialize'],
  }));
}

main();
