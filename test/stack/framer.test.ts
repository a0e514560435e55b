// TCP stream framing: split at every byte boundary, coalesced messages, keep-alives and pings, oversize, bad length.
import { describe, expect, it } from 'vitest';
import { StreamFramer } from '../../src/sip/stack/framer.js';
import { parseMessage } from '../../src/sip/stack/parser.js';

function msg(callId: string, body = '', opts: { compact?: boolean; cl?: string | null } = {}): Buffer {
  const b = Buffer.from(body, 'utf8');
  const cl = opts.cl === null ? '' : `${opts.compact ? 'l' : 'Content-Length'}: ${opts.cl ?? b.length}\r\n`;
  return Buffer.concat([
    Buffer.from(
      'SUBSCRIBE sip:201@example.com SIP/2.0\r\n' +
        'Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK' + callId + '\r\n' +
        'From: <sip:100@example.com>;tag=a\r\nTo: <sip:201@example.com>\r\n' +
        `Call-ID: ${callId}\r\nCSeq: 1 SUBSCRIBE\r\nEvent: dialog\r\n` + cl + '\r\n',
    ),
    b,
  ]);
}

function callIds(buffers: Buffer[]): string[] {
  return buffers.map((b) => {
    const r = parseMessage(b);
    if (!r.ok) throw new Error(r.error);
    return r.message.headers.get('call-id')![0]!;
  });
}

describe('StreamFramer', () => {
  const a = msg('a', 'body with Zoë and \r\n\r\n inside');
  const b = msg('b');
  const c = msg('c', 'xyz', { compact: true });
  const stream = Buffer.concat([a, b, c]);

  it('frames several messages coalesced in one chunk', () => {
    const f = new StreamFramer();
    const out = f.push(stream);
    expect(out.error).toBeUndefined();
    expect(out.messages.map((m) => m.length)).toEqual([a.length, b.length, c.length]);
    expect(callIds(out.messages)).toEqual(['a', 'b', 'c']);
    expect(f.buffered).toBe(0);
  });

  it('frames the same stream split at every byte boundary into two chunks', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      const f = new StreamFramer();
      const got = [...f.push(stream.subarray(0, cut)).messages, ...f.push(stream.subarray(cut)).messages];
      expect(got.length, `cut at ${cut}`).toBe(3);
      expect(Buffer.concat(got).equals(stream)).toBe(true);
    }
  });

  it('frames the stream fed one byte at a time', () => {
    const f = new StreamFramer();
    const got: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) {
      const out = f.push(stream.subarray(i, i + 1));
      expect(out.error).toBeUndefined();
      got.push(...out.messages);
    }
    expect(callIds(got)).toEqual(['a', 'b', 'c']);
  });

  it('takes the body by bytes, not characters', () => {
    const f = new StreamFramer();
    const out = f.push(Buffer.concat([a, b]));
    const r = parseMessage(out.messages[0]!);
    expect(r.ok && r.message.body.toString('utf8')).toBe('body with Zoë and \r\n\r\n inside');
  });

  it('skips CRLF keep-alives and counts CRLFCRLF pings (RFC 5626 §3.5.1)', () => {
    const f = new StreamFramer();
    let out = f.push(Buffer.from('\r\n\r\n'));
    expect(out).toEqual({ messages: [], pings: 1 });
    out = f.push(Buffer.from('\r\n'));
    expect(out.pings).toBe(0);
    out = f.push(Buffer.from('\r\n'));
    expect(out.pings).toBe(1); // a ping split over two chunks
    out = f.push(Buffer.concat([Buffer.from('\r\n\r\n\r\n\r\n'), a, Buffer.from('\r\n\r\n'), b]));
    expect(out.pings).toBe(3);
    expect(callIds(out.messages)).toEqual(['a', 'b']);
    expect(f.buffered).toBe(0);
  });

  it('a lone CRLF between messages is not a ping', () => {
    const f = new StreamFramer();
    const out = f.push(Buffer.concat([a, Buffer.from('\r\n'), b]));
    expect(out.pings).toBe(0);
    expect(out.messages.length).toBe(2);
  });

  it('waits for a body that has not arrived yet', () => {
    const f = new StreamFramer();
    expect(f.push(a.subarray(0, a.length - 1)).messages).toEqual([]);
    expect(f.push(a.subarray(a.length - 1)).messages.length).toBe(1);
  });

  it('takes a missing Content-Length as 0 on a stream', () => {
    const f = new StreamFramer();
    const out = f.push(Buffer.concat([msg('n', '', { cl: null }), b]));
    expect(callIds(out.messages)).toEqual(['n', 'b']);
  });

  it('reads a folded or oddly spelled Content-Length', () => {
    const m = Buffer.from(
      'NOTIFY sip:a@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\n' +
        'Call-ID: f\r\nCSeq: 1 NOTIFY\r\ncontent-LENGTH  :\r\n   3\r\n\r\nabc',
    );
    const out = new StreamFramer().push(Buffer.concat([m, b]));
    expect(callIds(out.messages)).toEqual(['f', 'b']);
  });

  it.each([['five'], ['-1'], ['99999999999']])('errors on Content-Length %j and stays in error', (cl) => {
    const f = new StreamFramer();
    const out = f.push(Buffer.concat([b, msg('x', 'abc', { cl })]));
    expect(out.messages.length).toBe(1); // what came before is still delivered
    expect(out.error).toBe('Bad Content-Length');
    expect(f.push(a)).toEqual({ messages: [], pings: 0, error: 'Bad Content-Length' });
  });

  it('errors on two different Content-Length values', () => {
    const m = Buffer.from(msg('d', 'abc').toString().replace('Content-Length: 3\r\n', 'Content-Length: 3\r\nl: 4\r\n'));
    expect(new StreamFramer().push(m).error).toBe('Bad Content-Length');
  });

  it('errors before buffering a body larger than the limit', () => {
    const f = new StreamFramer({ maxMessageSize: 2048, maxHeaders: 100 });
    const head = msg('big', '', { cl: '100000' });
    const out = f.push(head);
    expect(out.error).toBe('Message Too Large');
    expect(f.buffered).toBe(0);
  });

  it('errors on a header section that grows past the limit without its blank line', () => {
    const f = new StreamFramer({ maxMessageSize: 2048, maxHeaders: 100 });
    let out = f.push(Buffer.from('SUBSCRIBE sip:a@h SIP/2.0\r\nX-Long: '));
    for (let i = 0; i < 10 && out.error === undefined; i++) out = f.push(Buffer.alloc(512, 0x61));
    expect(out.error).toBe('Message Too Large');
    expect(f.buffered).toBe(0);
  });

  it('accepts a message exactly at the limit', () => {
    const size = a.length;
    const f = new StreamFramer({ maxMessageSize: size, maxHeaders: 100 });
    expect(f.push(a).messages.length).toBe(1);
    const g = new StreamFramer({ maxMessageSize: size - 1, maxHeaders: 100 });
    expect(g.push(a).error).toBe('Message Too Large');
  });

  it('frames 16 000 messages coalesced in one chunk in linear time (a rescan per message would take many seconds)', () => {
    const many = Buffer.concat(Array.from({ length: 16_000 }, (_, i) => msg(`m${i}`, 'x')));
    const t0 = performance.now();
    const out = new StreamFramer({ maxMessageSize: 65536, maxHeaders: 100 }).push(many);
    expect(out.messages.length).toBe(16_000);
    expect(performance.now() - t0).toBeLessThan(3000); // ~0.1 s when linear
  });

  it('messages handed out stay intact while the framer keeps working (no aliasing of its buffer)', () => {
    const big = msg('big', 'z'.repeat(20_000));
    const f = new StreamFramer();
    const got: Buffer[] = [];
    const stream = Buffer.concat([big, a, big, b]);
    // odd chunk sizes so that messages end inside chunks and partial messages are held between pushes
    for (let at = 0, k = 0; at < stream.length; k++) {
      const len = [1, 7, 4096, 13, 999][k % 5]!;
      got.push(...f.push(stream.subarray(at, at + len)).messages);
      at += len;
    }
    expect(got.length).toBe(4);
    expect(got[0]!.equals(big)).toBe(true);
    expect(got[1]!.equals(a)).toBe(true);
    expect(got[2]!.equals(big)).toBe(true);
    expect(got[3]!.equals(b)).toBe(true);
    expect(f.buffered).toBe(0);
  });

  it('a large message sent one byte per segment frames correctly', () => {
    const big = msg('slow', 'q'.repeat(30_000));
    const f = new StreamFramer();
    const got: Buffer[] = [];
    for (let i = 0; i < big.length; i++) got.push(...f.push(big.subarray(i, i + 1)).messages);
    expect(got.length).toBe(1);
    expect(got[0]!.equals(big)).toBe(true);
  });
});
