// Framing of SIP messages on a stream transport (TCP; RFC 3261 §18.3): a message ends after its header section
// plus Content-Length bytes of body. Between messages, CRLFs are keep-alives (RFC 3261 §7.5); a CRLFCRLF is an
// RFC 5626 §3.5.1 ping that the transport answers with a CRLF pong, so push() counts them.
//
// Choices:
// - A missing Content-Length on a stream is taken as 0 (§18.3 makes it mandatory; the parser then sees an empty
//   body). A malformed or conflicting Content-Length cannot be framed: that is an error and the transport should
//   close the connection, since the stream cannot be resynchronised.
// - A header section that grows past maxMessageSize without its blank line, or a message whose header section
//   plus body exceeds it, is an error before the body is buffered, so a peer cannot make us hold more than the
//   limit per connection.
// - Errors are sticky: after one, every push() returns it again and nothing more is framed.
import { DEFAULT_LIMITS, findHeaderEnd, normalizeHeaderName, type ParseLimits } from './parser.js';

export interface FramerOutput {
  /** Complete messages, each exactly header section + Content-Length bytes, in arrival order. */
  messages: Buffer[];
  /** CRLFCRLF keep-alive pings seen between messages; answer each with CRLF (RFC 5626 §3.5.1). */
  pings: number;
  /** Set when the stream cannot be framed any more (oversize, bad Content-Length); close the connection. */
  error?: string;
}

const EMPTY = Buffer.alloc(0);

export class StreamFramer {
  private readonly limits: ParseLimits;
  /**
   * Unconsumed bytes. Either a view of the chunk being drained (zero-copy: complete messages in one chunk are
   * handed out as views of it), or a view of `store`, the growable buffer that holds a partial message across
   * chunks. Appending to `store` is amortised O(1) per byte, so a peer sending one byte per segment costs linear
   * work, not quadratic (a slow-loris on Buffer.concat would cost ~0.2 s of CPU per 64 KiB message).
   */
  private buf: Buffer = EMPTY;
  private store: Buffer = EMPTY;
  /** Where to resume looking for the blank line (bytes before it were already searched). */
  private scanFrom = 0;
  /** Total length of the message at the head of buf, once its header section is known; -1 before. */
  private pendingTotal = -1;
  /** CRLF pairs seen in a row between messages, and whether the last byte was a lone CR. */
  private crlfPairs = 0;
  private lastWasCr = false;
  private error: string | undefined;

  constructor(limits: ParseLimits = DEFAULT_LIMITS) {
    this.limits = limits;
  }

  /** Bytes held waiting for the rest of a message. */
  get buffered(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): FramerOutput {
    if (this.error !== undefined) return { messages: [], pings: 0, error: this.error };
    const out: FramerOutput = { messages: [], pings: 0 };
    if (chunk.length === 0) return out;
    try {
      if (this.buf.length === 0) this.buf = chunk;
      else this.append(chunk);
      this.drain(out);
      this.keepRest();
    } catch {
      this.fail(out, 'Malformed Stream');
    }
    return out;
  }

  /** Append chunk after the held bytes, in `store`, growing it by doubling. */
  private append(chunk: Buffer): void {
    const held = this.buf.length;
    const need = held + chunk.length;
    const inStore = this.buf.buffer === this.store.buffer && this.buf.byteOffset === this.store.byteOffset;
    if (!inStore || need > this.store.length) {
      const next = Buffer.allocUnsafe(Math.max(4096, need * 2));
      this.buf.copy(next, 0);
      this.store = next;
    }
    chunk.copy(this.store, held);
    this.buf = this.store.subarray(0, need);
  }

  /** After a drain: move what is left (a partial message) to the start of `store`, so it survives the chunk. */
  private keepRest(): void {
    const left = this.buf.length;
    if (left === 0) {
      this.buf = EMPTY;
      if (this.store.length > 65536) this.store = EMPTY; // do not pin a large buffer on an idle connection
      return;
    }
    const inStore = this.buf.buffer === this.store.buffer;
    if (inStore && this.buf.byteOffset === this.store.byteOffset) return;
    if (inStore) {
      this.store.copy(this.store, 0, this.buf.byteOffset - this.store.byteOffset, this.buf.byteOffset - this.store.byteOffset + left);
    } else {
      if (this.store.length < left) this.store = Buffer.allocUnsafe(Math.max(4096, left * 2));
      this.buf.copy(this.store, 0);
    }
    this.buf = this.store.subarray(0, left);
  }

  private fail(out: FramerOutput, error: string): void {
    this.error = error;
    out.error = error;
    this.buf = EMPTY;
    this.store = EMPTY;
  }

  private drain(out: FramerOutput): void {
    const max = this.limits.maxMessageSize;
    for (;;) {
      if (this.pendingTotal === -1) {
        // Keep-alive CRLFs between messages.
        let i = 0;
        const b = this.buf;
        while (i < b.length) {
          const c = b[i]!;
          if (c === 0x0d) {
            this.lastWasCr = true;
          } else if (c === 0x0a) {
            if (this.lastWasCr) {
              if (++this.crlfPairs === 2) {
                out.pings++;
                this.crlfPairs = 0;
              }
            }
            this.lastWasCr = false;
          } else break;
          i++;
        }
        if (i > 0) {
          this.buf = i === b.length ? EMPTY : b.subarray(i);
          this.scanFrom = 0;
        }
        if (this.buf.length === 0) return;
        this.crlfPairs = 0;
        this.lastWasCr = false;

        const end = findHeaderEnd(this.buf, Math.max(0, this.scanFrom - 3));
        if (end === null) {
          if (this.buf.length > max) return this.fail(out, 'Message Too Large');
          this.scanFrom = this.buf.length;
          return;
        }
        const [headEnd, bodyStart] = end;
        if (bodyStart > max) return this.fail(out, 'Message Too Large');
        const cl = contentLengthOf(this.buf.toString('latin1', 0, headEnd));
        if (cl === null) return this.fail(out, 'Bad Content-Length');
        const total = bodyStart + cl;
        if (total > max) return this.fail(out, 'Message Too Large');
        this.pendingTotal = total;
      }
      if (this.buf.length < this.pendingTotal) return;
      const total = this.pendingTotal;
      const view = this.buf.subarray(0, total);
      // A message held in `store` is copied out: store is reused for the next partial message.
      out.messages.push(view.buffer === this.store.buffer ? Buffer.from(view) : view);
      this.buf = total === this.buf.length ? EMPTY : this.buf.subarray(total);
      this.pendingTotal = -1;
      this.scanFrom = 0;
    }
  }
}

/**
 * Content-Length of a header section (compact `l` too, any case, folded lines joined); 0 when absent; null when
 * malformed or given twice with different values.
 */
function contentLengthOf(head: string): number | null {
  let found: number | undefined;
  let pos = 0;
  const n = head.length;
  while (pos < n) {
    let e = head.indexOf('\n', pos);
    if (e === -1) e = n;
    const line = head.slice(pos, e);
    pos = e + 1;
    const c0 = line.charCodeAt(0);
    if (c0 !== 0x6c && c0 !== 0x4c && c0 !== 0x63 && c0 !== 0x43) continue; // l L c C
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = normalizeHeaderName(line.slice(0, colon).trimEnd());
    if (name !== 'content-length') continue;
    let value = line.slice(colon + 1);
    // folded continuation lines belong to this value
    while (pos < n && (head.charCodeAt(pos) === 0x20 || head.charCodeAt(pos) === 0x09)) {
      let e2 = head.indexOf('\n', pos);
      if (e2 === -1) e2 = n;
      value += ' ' + head.slice(pos, e2);
      pos = e2 + 1;
    }
    const v = value.trim();
    if (v.length === 0 || v.length > 10 || !/^[0-9]+$/.test(v)) return null;
    const num = Number(v);
    if (found !== undefined && found !== num) return null;
    found = num;
  }
  return found ?? 0;
}
