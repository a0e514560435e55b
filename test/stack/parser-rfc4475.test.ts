// RFC 4475 torture messages, transcribed in test/fixtures/rfc4475/*.txt with the RFC's verdict in a header:
//   ; verdict: valid    -> must parse
//   ; verdict: invalid  -> must come back { ok: false } with the given error (never a throw or a hang)
//   ; verdict: liberal  -> RFC 4475 allows accepting it; we do, and say why in the fixture
// The messages are stored with LF line ends and RFC 4475 §2 notation: <hex>..</hex> for raw bytes and
// <repeat count=N>..</repeat> for long runs. The loader turns LF into CRLF, as on the wire.
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { canAnswer, parseMessage } from '../../src/sip/stack/parser.js';
import { parseCSeq, parseNameAddr, parseUri, parseVia } from '../../src/sip/stack/headers.js';
import { serializeRequest, serializeResponse } from '../../src/sip/stack/serializer.js';
import type { SipMessage } from '../../src/sip/stack/message.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'rfc4475');

interface Fixture {
  name: string;
  title: string;
  verdict: 'valid' | 'invalid' | 'liberal';
  error?: string;
  bytes: Buffer;
}

function decode(text: string): Buffer {
  const expanded = text
    .replace(/<repeat count=(\d+)>(.*?)<\/repeat>/g, (_m, n: string, s: string) => s.repeat(Number(n)))
    .replace(/\n/g, '\r\n');
  const parts: Buffer[] = [];
  for (const piece of expanded.split(/(<hex>[0-9a-fA-F]*<\/hex>)/)) {
    const m = /^<hex>([0-9a-fA-F]*)<\/hex>$/.exec(piece);
    parts.push(m ? Buffer.from(m[1]!, 'hex') : Buffer.from(piece, 'utf8'));
  }
  return Buffer.concat(parts);
}

function load(): Fixture[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((f) => {
      const text = readFileSync(join(DIR, f), 'utf8');
      const lines = text.split('\n');
      const meta: Record<string, string> = {};
      let i = 0;
      for (; i < lines.length && lines[i]!.startsWith(';'); i++) {
        const m = /^; (\w+): (.*)$/.exec(lines[i]!);
        if (m) meta[m[1]!] = m[2]!;
      }
      const first = lines[0]!;
      return {
        name: f.replace(/\.txt$/, ''),
        title: first,
        verdict: meta.verdict as Fixture['verdict'],
        ...(meta.error !== undefined ? { error: meta.error } : {}),
        bytes: decode(lines.slice(i).join('\n')),
      };
    });
}

const fixtures = load();

function reserialize(m: SipMessage): Buffer {
  return m.kind === 'request' ? serializeRequest(m) : serializeResponse(m);
}

describe('RFC 4475 torture messages', () => {
  it('has the whole corpus (49 messages of sections 3.1-3.4)', () => {
    expect(fixtures.length).toBe(49);
    for (const f of fixtures) expect(['valid', 'invalid', 'liberal']).toContain(f.verdict);
  });

  for (const f of fixtures) {
    it(`${f.name}: ${f.verdict}${f.error ? ` (${f.error})` : ''}`, () => {
      const r = parseMessage(f.bytes);
      if (f.verdict === 'invalid') {
        expect(r.ok).toBe(false);
        if (!r.ok) {
          expect(r.error).toBe(f.error);
          expect([400, 505, 513]).toContain(r.status);
        }
        return;
      }
      if (!r.ok) throw new Error(`${f.name} refused: ${r.error}`);
      const m = r.message;
      // what the server relies on after a successful parse
      expect(parseCSeq(m.headers.get('cseq')![0]!)).not.toBeNull();
      for (const v of m.headers.get('via')!) expect(parseVia(v)).not.toBeNull();
      expect(parseNameAddr(m.headers.get('from')![0]!)).not.toBeNull();
      expect(parseNameAddr(m.headers.get('to')![0]!)).not.toBeNull();
      if (m.kind === 'request') expect(canAnswer(m)).toBe(true);
      // serialize and parse again: the same message (header values, body bytes)
      const again = parseMessage(reserialize(m));
      if (!again.ok) throw new Error(`${f.name} did not survive a round trip: ${again.error}`);
      for (const [k, v] of m.headers) if (k !== 'content-length') expect(again.message.headers.get(k)).toEqual(v);
      expect(again.message.body.equals(m.body)).toBe(true);
    });
  }

  const byName = new Map(fixtures.map((f) => [f.name, f]));
  function parsed(name: string): SipMessage {
    const r = parseMessage(byName.get(name)!.bytes);
    if (!r.ok) throw new Error(r.error);
    return r.message;
  }

  it('wsinv: folding, compact forms, LWS everywhere, lists split', () => {
    const m = parsed('wsinv');
    expect(m.kind).toBe('request');
    expect(m.headers.get('via')!.length).toBe(3);
    const vias = m.headers.get('via')!.map((v) => parseVia(v)!);
    expect(vias.map((v) => [v.transport, v.host, v.branch])).toEqual([
      ['UDP', '192.0.2.2', '390skdjuw'],
      ['TCP', 'spindle.example.com', 'z9hG4bK9ikj8'],
      ['UDP', '192.168.255.111', 'z9hG4bK30239'],
    ]);
    expect(parseCSeq(m.headers.get('cseq')![0]!)).toEqual({ seq: 9, method: 'INVITE' });
    expect(m.headers.get('max-forwards')).toEqual(['0068']);
    expect(m.headers.get('subject')).toEqual(['']);
    expect(m.headers.get('newfangledheader')).toEqual(['newfangled value continued newfangled value']);
    expect(m.headers.get('unknownheaderwithunusualvalue')).toEqual([';;,,;;,;']);
    const to = parseNameAddr(m.headers.get('to')![0]!)!;
    expect(to.params.tag).toBe('1918181833n');
    const from = parseNameAddr(m.headers.get('from')![0]!)!;
    expect(from.display).toBe('J Rosenberg \\"');
    expect(from.params.tag).toBe('98asjd8');
    const contact = parseNameAddr(m.headers.get('contact')![0]!)!;
    expect(contact.display).toBe('Quoted string ""');
    expect(contact.params).toEqual({ newparam: 'newvalue', secondparam: null, q: '0.33' });
    expect(m.body.length).toBe(150);
  });

  it('intmeth: unusual method, URI and token characters', () => {
    const m = parsed('intmeth');
    if (m.kind !== 'request') throw new Error('request expected');
    expect(m.method).toBe("!interesting-Method0123456789_*+`.%indeed'~");
    const u = parseUri(m.uri)!;
    expect(u.user).toBe("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    expect(u.password).toBe("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    expect(u.host).toBe('example.com');
    expect(parseNameAddr(m.headers.get('to')![0]!)!.display).toBe('BEL:\x07 NUL:\x00 DEL:\x7f');
    const from = parseNameAddr(m.headers.get('from')![0]!)!;
    expect(from.display).toBe("token1~` token2'+_ token3*%!.-");
    expect(from.params.tag).toBe("_token~1'+`*%!-.");
    expect(m.headers.get("extensionheader-!.%*+_`'~")).toEqual(['\ufeff大停電']);
  });

  it('semiuri: the user part holds the ;par=...', () => {
    const m = parsed('semiuri');
    if (m.kind !== 'request') throw new Error('request expected');
    expect(parseUri(m.uri)!.user).toBe('user;par=u%40example.net');
    expect(parseUri(m.uri)!.host).toBe('example.com');
  });

  it('esc02: C%6Fntact is not Contact; two Contacts', () => {
    const m = parsed('esc02');
    expect(m.headers.get('contact')!.length).toBe(2);
    expect(m.headers.get('c%6fntact')).toEqual(['<sip:alias2@host2.example.com>']);
  });

  it('longreq: 34 Via values across every spelling of Via and v', () => {
    const m = parsed('longreq');
    expect(m.headers.get('via')!.length).toBe(34);
    expect(parseUri(parseNameAddr(m.headers.get('to')![0]!)!.uri)!.port).toBe(6000);
  });

  it('dblreq: the bytes after Content-Length are discarded', () => {
    const m = parsed('dblreq');
    if (m.kind !== 'request') throw new Error('request expected');
    expect(m.method).toBe('REGISTER');
    expect(m.body.length).toBe(0);
  });

  it('mpart01: binary body with NUL and CRLFCRLF is taken by byte count', () => {
    const m = parsed('mpart01');
    expect(m.body.length).toBe(Number(m.headers.get('content-length')![0]));
    expect(m.body.includes(Buffer.from([0, 0, 0x0d, 0x0a, 0x0d, 0x0a, 0]))).toBe(true);
  });

  it('unreason and noreason: UTF-8 and empty reason phrases', () => {
    const a = parsed('unreason');
    const b = parsed('noreason');
    if (a.kind !== 'response' || b.kind !== 'response') throw new Error('responses expected');
    expect(a.status).toBe(200);
    expect(a.reason).toBe('= 2**3 * 5**2 но сто девяносто девять - простое');
    expect(b.status).toBe(100);
    expect(b.reason).toBe('');
  });

  it('inv2543: no Content-Length on a datagram means the rest of it', () => {
    const m = parsed('inv2543');
    expect(m.body.toString()).toMatch(/^v=0\r\n[\s\S]*m=audio 49217 RTP\/AVP 0\r\n$/);
  });

  it('invalid requests that can be answered carry the partial request; insuf cannot be answered', () => {
    for (const f of fixtures.filter((x) => x.verdict === 'invalid')) {
      const r = parseMessage(f.bytes);
      if (r.ok) throw new Error(`${f.name} parsed`);
      const isRequest = !f.bytes.subarray(0, 4).equals(Buffer.from('SIP/'));
      expect(r.request !== undefined).toBe(isRequest);
      if (r.request) expect(canAnswer(r.request)).toBe(f.name !== 'insuf');
    }
  });

  it('badvers asks for 505', () => {
    const r = parseMessage(byName.get('badvers')!.bytes);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.status).toBe(505);
  });
});
