// Mutation fuzzing of the parser, the serializer and the stream framer (issue 4, "Hostile input").
// A seeded mutator works over real messages (phone-like SUBSCRIBE/NOTIFY/PUBLISH/200 and the RFC 4475 corpus):
// byte flips, truncations, insertions, deleted/duplicated/swapped lines, folding, huge values, random
// Content-Length. For every case: no throw, bounded time, a well-formed result, and a message that parses
// serializes to bytes that parse back to the same headers and body.
//   FUZZ_CASES=1000000 npx vitest run test/stack/fuzz.test.ts   (default 100 000; FUZZ_SEED to replay)
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { canAnswer, parseMessage, type ParseLimits, type ParseResult } from '../../src/sip/stack/parser.js';
import { serializeMessage } from '../../src/sip/stack/serializer.js';
import { StreamFramer } from '../../src/sip/stack/framer.js';
import * as H from '../../src/sip/stack/headers.js';
import { isValidNameAddr, isValidVia, parseCSeq } from '../../src/sip/stack/headers.js';
import { int, mulberry32, pick, type Rand } from '../fuzz/mutator.js';

const CASES = Number(process.env.FUZZ_CASES ?? 100_000);
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed4475);
const LIMITS: ParseLimits = { maxMessageSize: 65536, maxHeaders: 100 };
const ROOMY: ParseLimits = { maxMessageSize: 1 << 22, maxHeaders: 100_000 };
/** Per-case budget (the best of a few timings): a hang or a quadratic blow-up would not fit in it. */
const MAX_MS_PER_CASE = 50;
/** Test timeout that grows with FUZZ_CASES (about 60 s per 100 000 cases on a busy 2-core machine, at least 120 s). */
const TIMEOUT_MS = Math.max(120_000, Math.ceil(CASES / 100_000) * 60_000);

const CRLF = (s: string): string => s.replace(/\r?\n/g, '\r\n');
const DIALOG_INFO = CRLF(`<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full" entity="sip:201@pbx.example.com">
  <dialog id="a1" direction="recipient"><state>early</state>
    <remote><identity display="Zoë">sip:100@pbx.example.com</identity></remote></dialog>
</dialog-info>
`);
const REAL: string[] = [
  CRLF(`SUBSCRIBE sip:201@pbx.example.com SIP/2.0
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

`),
  CRLF(`NOTIFY sip:100@10.0.0.23:5062 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK8d2c6f1e9b0a4c3d
Max-Forwards: 70
From: <sip:201@pbx.example.com>;tag=5a1f0c9e
To: "Reception" <sip:100@pbx.example.com>;tag=3478093715
Call-ID: 2066839571@10.0.0.23
CSeq: 12 NOTIFY
Contact: <sip:201@10.0.0.5:5060>
Event: dialog
Subscription-State: active;expires=1795
Content-Type: application/dialog-info+xml
Content-Length: ${Buffer.byteLength(DIALOG_INFO)}

`) + DIALOG_INFO,
  CRLF(`PUBLISH sip:201@pbx.example.com SIP/2.0
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
l: ${Buffer.byteLength(DIALOG_INFO)}

`) + DIALOG_INFO,
  CRLF(`SIP/2.0 200 OK
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK8d2c6f1e9b0a4c3d;received=10.0.0.5
From: <sip:201@pbx.example.com>;tag=5a1f0c9e
To: "Reception" <sip:100@pbx.example.com>;tag=3478093715
Call-ID: 2066839571@10.0.0.23
CSeq: 12 NOTIFY
Content-Length: 0

`),
];

function rfc4475(): Buffer[] {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'rfc4475');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((f) => {
      const text = readFileSync(join(dir, f), 'utf8').split('\n').filter((l, i, a) => !(l.startsWith(';') && a.slice(0, i).every((x) => x.startsWith(';')))).join('\n');
      const expanded = text.replace(/<repeat count=(\d+)>(.*?)<\/repeat>/g, (_m, n: string, s: string) => s.repeat(Number(n))).replace(/\n/g, '\r\n');
      return Buffer.concat(expanded.split(/(<hex>[0-9a-fA-F]*<\/hex>)/).map((p) => {
        const m = /^<hex>([0-9a-fA-F]*)<\/hex>$/.exec(p);
        return m ? Buffer.from(m[1]!, 'hex') : Buffer.from(p, 'utf8');
      }));
    });
}

const SEEDS: Buffer[] = [...REAL.map((s) => Buffer.from(s, 'utf8')), ...rfc4475()];

const INTERESTING = ['\r\n', '\r\n\r\n', '\n', '\r', ' ', '\t', ':', ';', ',', '"', '\\', '<', '>', '=', '@', '?', '%', '\x00', '\xff', 'é', ';tag=', 'SIP/2.0', 'Content-Length: ', 'l: ', 'v: SIP/2.0/UDP h', ' \r\n '];

function randomNumberText(r: Rand): string {
  return pick(r, ['0', '1', '-1', '-999', '9999', '65536', '4294967295', '4294967296', '99999999999999999999', 'five', '', ' 3', '3 ', '0x10', '1e3', '00000000000000000001', String(int(r, 2000))]);
}

/** One mutation of buf. */
function mutate(r: Rand, buf: Buffer): Buffer {
  const n = buf.length;
  switch (int(r, 12)) {
    case 0: { // flip some bytes
      const out = Buffer.from(buf);
      for (let k = 1 + int(r, 4); k > 0 && n > 0; k--) out[int(r, n)] = int(r, 256);
      return out;
    }
    case 1: // truncate
      return buf.subarray(0, int(r, n + 1));
    case 2: { // insert an interesting or random string
      const at = int(r, n + 1);
      const ins = r() < 0.7 ? Buffer.from(pick(r, INTERESTING), 'latin1') : Buffer.from(Array.from({ length: 1 + int(r, 8) }, () => int(r, 256)));
      return Buffer.concat([buf.subarray(0, at), ins, buf.subarray(at)]);
    }
    case 3: { // delete a range
      const a = int(r, n + 1);
      return Buffer.concat([buf.subarray(0, a), buf.subarray(Math.min(n, a + 1 + int(r, 40)))]);
    }
    default: { // line-level mutations on the header section
      const text = buf.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const head = end === -1 ? text : text.slice(0, end);
      const rest = end === -1 ? '' : text.slice(end);
      const lines = head.split('\r\n');
      const i = 1 + int(r, Math.max(1, lines.length - 1));
      switch (int(r, 8)) {
        case 0: lines.splice(i, 0, lines[i] ?? lines[0]!); break; // duplicate a header
        case 1: lines.splice(i, 1); break; // drop a header
        case 2: { const j = int(r, lines.length); [lines[i], lines[j]] = [lines[j]!, lines[i]!]; break; } // swap (may move the start line)
        case 3: lines[i] = (lines[i] ?? '') + 'x'.repeat(r() < 0.5 ? 70_000 : 1 + int(r, 3000)); break; // huge value
        case 4: lines.splice(i, 0, ...Array.from({ length: 1 + int(r, 150) }, (_, k) => `X-Dup-${k}: ${k}`)); break; // many headers
        case 5: { const l = lines[i] ?? ''; const c = l.indexOf(' '); if (c > 0) lines[i] = l.slice(0, c) + '\r\n ' + l.slice(c + 1); break; } // fold
        case 6: { // random Content-Length
          const k = lines.findIndex((l) => /^(content-length|l)\s*:/i.test(l));
          if (k > 0) lines[k] = lines[k]!.replace(/:.*$/, ': ' + randomNumberText(r));
          else lines.push('Content-Length: ' + randomNumberText(r));
          break;
        }
        default: lines[i] = (lines[i] ?? '').replace(/[a-z]/gi, (ch) => (r() < 0.5 ? ch.toUpperCase() : ch.toLowerCase())); // case noise
      }
      return Buffer.from(lines.join('\r\n') + rest, 'latin1');
    }
  }
}

/** Plain checks (no expect() in the hot loop: it costs more than the parse). */
function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`shape check failed: ${what}`);
}

function checkShape(r: ParseResult): void {
  if (r.ok) {
    const m = r.message;
    check(m.kind === 'request' || m.kind === 'response', 'kind');
    check(m.version === 'SIP/2.0', 'version');
    check(Buffer.isBuffer(m.body), 'body is a Buffer');
    for (const [k, v] of m.headers) {
      check(k === k.toLowerCase(), `lower-case name ${k}`);
      check(Array.isArray(v) && v.every((x) => typeof x === 'string' && !x.includes('\n') && !x.includes('\r')), `values of ${k} (no CR or LF)`);
    }
    // what the parser promises on success
    check(parseCSeq(m.headers.get('cseq')![0]!) !== null, 'CSeq parses');
    check(m.headers.get('via')!.every(isValidVia), 'every Via parses');
    check(isValidNameAddr(m.headers.get('from')![0]!) && isValidNameAddr(m.headers.get('to')![0]!), 'From/To parse');
    if (m.kind === 'request') check(canAnswer(m), 'a parsed request can be answered');
    else check(m.status >= 100 && m.status <= 699, 'status range');
  } else {
    check(typeof r.error === 'string' && r.error.length > 0 && r.error.length < 64 && !/[\r\n]/.test(r.error), `error phrase ${r.error}`);
    check(r.status === 400 || r.status === 505 || r.status === 513, `status ${r.status}`);
    if (r.request !== undefined) check(r.request.kind === 'request', 'partial request kind');
  }
}

function sameValues(a: string[] | undefined, b: string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

describe('fuzz', () => {
  it(`parser survives ${CASES.toLocaleString('en-US')} mutated messages (seed ${SEED})`, () => {
    const rand = mulberry32(SEED);
    let parsed = 0;
    let rejected = 0;
    let worst = 0;
    let roundTrips = 0;
    for (let c = 0; c < CASES; c++) {
      let input = pick(rand, SEEDS);
      for (let k = 1 + int(rand, 3); k > 0; k--) input = mutate(rand, input);
      const t0 = performance.now();
      let r: ParseResult;
      try {
        r = parseMessage(input, LIMITS);
      } catch (e) {
        throw new Error(`case ${c} (seed ${SEED}) threw: ${String(e)}; input ${input.toString('base64')}`);
      }
      let dt = performance.now() - t0;
      if (dt > MAX_MS_PER_CASE) {
        // Re-time before blaming the input: on a shared machine a GC pause or a descheduling can hit any case.
        for (let k = 0; k < 3; k++) {
          const t1 = performance.now();
          parseMessage(input, LIMITS);
          dt = Math.min(dt, performance.now() - t1);
        }
        if (dt > MAX_MS_PER_CASE) throw new Error(`case ${c} took ${dt.toFixed(1)} ms; input ${input.toString('base64')}`);
      }
      worst = Math.max(worst, dt);
      checkShape(r);
      if (r.ok) {
        parsed++;
        // serialize -> parse is a fixed point
        {
          const back = parseMessage(serializeMessage(r.message), ROOMY);
          if (!back.ok) throw new Error(`case ${c}: re-serialized message refused (${back.error}); input ${input.toString('base64')}`);
          for (const [k, v] of r.message.headers) {
            if (k !== 'content-length' && !sameValues(back.message.headers.get(k), v)) {
              throw new Error(`case ${c}: header ${k} changed in a round trip; input ${input.toString('base64')}`);
            }
          }
          check(back.message.body.equals(r.message.body), `case ${c}: body changed in a round trip`);
          roundTrips++;
        }
      } else rejected++;
    }
    // the corpus and mutator reach both outcomes in quantity, or the fuzzer is not testing much
    expect(parsed).toBeGreaterThan(CASES * 0.05);
    expect(rejected).toBeGreaterThan(CASES * 0.05);
    expect(roundTrips).toBeGreaterThan(CASES * 0.05);
    console.log(`fuzz: ${CASES} cases, ${parsed} parsed, ${rejected} refused, ${roundTrips} round trips, worst ${worst.toFixed(2)} ms`);
  }, TIMEOUT_MS);

  it('framer survives mutated streams cut into random chunks', () => {
    const rand = mulberry32(SEED ^ 0xf7a3);
    const streams = Math.max(200, Math.floor(CASES / 50));
    const limits: ParseLimits = { maxMessageSize: 8192, maxHeaders: 100 };
    for (let s = 0; s < streams; s++) {
      const parts: Buffer[] = [];
      for (let k = 1 + int(rand, 6); k > 0; k--) {
        let m = pick(rand, SEEDS);
        if (rand() < 0.5) m = mutate(rand, m);
        parts.push(rand() < 0.2 ? Buffer.from('\r\n\r\n') : Buffer.alloc(0), m);
      }
      const stream = Buffer.concat(parts);
      const f = new StreamFramer(limits);
      let framedBytes = 0;
      let error: string | undefined;
      for (let at = 0; at < stream.length; ) {
        const len = 1 + int(rand, rand() < 0.3 ? 8 : 2000);
        const out = f.push(stream.subarray(at, at + len));
        at += len;
        for (const m of out.messages) {
          check(m.length <= limits.maxMessageSize, 'framed message within the limit');
          framedBytes += m.length;
          checkShape(parseMessage(m, limits));
        }
        check(out.pings >= 0, 'pings');
        if (error !== undefined) check(out.messages.length === 0 && out.error === error, 'errors are sticky');
        error ??= out.error;
        check(f.buffered <= limits.maxMessageSize + 2000, 'buffer bounded');
      }
      expect(framedBytes).toBeLessThanOrEqual(stream.length);
    }
  }, TIMEOUT_MS);

  it('header-value parsers never throw and keep their promises on random input', () => {
    const rand = mulberry32(SEED ^ 0x4ead);
    const pieces = [...INTERESTING, 'sip:', 'sips:', 'tel:', '<sip:a@h>', '"d"', 'Digest ', 'realm="r"', 'active', ';expires=', '[::1]', ':5060', 'SIP/2.0/UDP ', 'branch=z9hG4bK'];
    const n = Math.max(2000, Math.floor(CASES / 5));
    for (let c = 0; c < n; c++) {
      let v = '';
      for (let k = int(rand, 12); k > 0; k--) v += rand() < 0.8 ? pick(rand, pieces) : String.fromCharCode(int(rand, 0x3000));
      try {
        const uri = H.parseUri(v);
        check((uri !== null) === H.isValidUri(v), 'isValidUri agrees');
        if (uri !== null) check(H.parseUri(H.formatUri(uri)) !== null, 'formatUri output parses');
        const na = H.parseNameAddr(v);
        check((na !== null) === H.isValidNameAddr(v), 'isValidNameAddr agrees');
        const via = H.parseVia(v);
        check((via !== null) === H.isValidVia(v), 'isValidVia agrees');
        if (via !== null) check(H.parseVia(H.formatVia(via)) !== null, 'formatVia output parses');
        H.parseCSeq(v);
        H.parseEvent(v);
        H.parseSubscriptionState(v);
        H.parseAuthHeader(v);
        H.parseParams(v);
        H.tagOf(v);
        H.parseUInt(v);
        for (const part of H.splitTopLevelCommas(v)) check(part.length > 0 && part === part.trim(), 'split parts trimmed, non-empty');
        check(H.unquote(H.quote(v)) === v, 'quote round trip');
      } catch (e) {
        throw new Error(`header value ${JSON.stringify(v)} (seed ${SEED}, case ${c}): ${String(e)}`);
      }
    }
  }, TIMEOUT_MS);
});
