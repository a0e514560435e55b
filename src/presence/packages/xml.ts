// XML escaping and a small, bounded, non-validating XML reader for the bodies we accept in PUBLISH
// (dialog-info, RFC 4235; PIDF, RFC 3863). No maintained XML parser is installed, and these bodies need very
// little of XML 1.0, so the reader takes only what they need and refuses the rest:
// - no DOCTYPE at all, hence no entity declarations and no entity expansion ("billion laughs", XXE);
// - only the five predefined entities and character references (XML 1.0 §4.6, §4.1);
// - hard limits on bytes, depth, element count, attributes, names and text, checked as it goes, so hostile input
//   costs at most one linear pass over at most `maxBytes` bytes;
// - input must be valid UTF-8 (XML 1.0 §4.3.3: a body declaring nothing is UTF-8).
// Namespaces (Namespaces in XML 1.0) are resolved, so `<d:dialog-info xmlns:d="…">` reads like the unprefixed form.

export interface XmlLimits {
  /** Largest body in bytes. */
  maxBytes: number;
  /** Deepest element nesting (the root is depth 1). */
  maxDepth: number;
  /** Most elements in one document. */
  maxElements: number;
  /** Most attributes on one element (namespace declarations included). */
  maxAttributes: number;
  /** Longest attribute value, in characters after entity decoding. */
  maxAttributeLength: number;
  /** Longest element or attribute name. */
  maxNameLength: number;
  /** Longest text content of one element, in characters. */
  maxTextLength: number;
}

export const DEFAULT_XML_LIMITS: Readonly<XmlLimits> = Object.freeze({
  maxBytes: 64 * 1024,
  maxDepth: 32,
  maxElements: 2000,
  maxAttributes: 32,
  maxAttributeLength: 4096,
  maxNameLength: 128,
  maxTextLength: 16 * 1024,
});

export interface XmlElement {
  /** The qualified name as written (`d:dialog`). */
  name: string;
  /** The local part (`dialog`). */
  local: string;
  /** Namespace URI, or '' when the element is in no namespace. */
  ns: string;
  /** Attributes by qualified name as written, namespace declarations excluded. A Map, so `__proto__` is just a name. */
  attrs: Map<string, string>;
  children: XmlElement[];
  /** Character data directly inside this element (CDATA included), concatenated. */
  text: string;
}

export type XmlReadResult = { ok: true; root: XmlElement } | { ok: false; reason: string };

const XML_NS = 'http://www.w3.org/XML/1998/namespace';

/** The attributes of every element that has none: shared, so it refuses writes. */
class NoAttributes extends Map<string, string> {
  override set(): this { throw new TypeError('parsed XML elements are read-only'); }
  override delete(): boolean { throw new TypeError('parsed XML elements are read-only'); }
  override clear(): void { throw new TypeError('parsed XML elements are read-only'); }
}
const NO_ATTRIBUTES: Map<string, string> = new NoAttributes();

class XmlError extends Error {}

/** Escape for element content and attribute values alike (XML 1.0 §2.4, §3.3.3). */
export function escapeXml(value: string): string {
  let out = '';
  let last = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    let rep: string | undefined;
    switch (c) {
      case 0x26: rep = '&amp;'; break;
      case 0x3c: rep = '&lt;'; break;
      case 0x3e: rep = '&gt;'; break;
      case 0x22: rep = '&quot;'; break;
      case 0x27: rep = '&apos;'; break;
      // Tab, CR and LF would be normalised to spaces inside an attribute value (XML 1.0 §3.3.3): keep them.
      case 0x09: rep = '&#9;'; break;
      case 0x0a: rep = '&#10;'; break;
      case 0x0d: rep = '&#13;'; break;
      default:
        if (c < 0x20 || c === 0xfffe || c === 0xffff) {
          // Not a legal XML character at all (§2.2), not even as a reference: replace it.
          rep = '\uFFFD';
        } else if (c >= 0xd800 && c <= 0xdbff) {
          const next = value.charCodeAt(i + 1);
          if (next >= 0xdc00 && next <= 0xdfff) { i++; continue; }
          rep = '\uFFFD';
        } else if (c >= 0xdc00 && c <= 0xdfff) {
          rep = '\uFFFD';
        }
    }
    if (rep !== undefined) {
      out += value.slice(last, i) + rep;
      last = i + 1;
    }
  }
  return last === 0 ? value : out + value.slice(last);
}

/** First child element with this local name (and namespace, when given). */
export function child(el: XmlElement, local: string, ns?: string): XmlElement | undefined {
  for (const c of el.children) if (c.local === local && (ns === undefined || c.ns === ns)) return c;
  return undefined;
}

/** All child elements with this local name (and namespace, when given). */
export function children(el: XmlElement, local: string, ns?: string): XmlElement[] {
  return el.children.filter((c) => c.local === local && (ns === undefined || c.ns === ns));
}

/** An unprefixed attribute (unprefixed attributes are in no namespace, Namespaces in XML §6.2). */
export function attr(el: XmlElement, name: string): string | undefined {
  return el.attrs.get(name);
}

// NameStartChar/NameChar (XML 1.0 §2.3) of the BMP, without ':' so a QName is NCName(:NCName)? (Namespaces in
// XML §3). Sticky and without nested quantifiers: one linear match per name.
const NC_START = 'A-Za-z_\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD';
const NC_CHAR = `${NC_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040`;
const QNAME = new RegExp(`[${NC_START}][${NC_CHAR}]*(?::[${NC_START}][${NC_CHAR}]*)?`, 'y');

/** ASCII NameStartChar without ':' (XML 1.0 §2.3). */
function isAsciiNameStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
}
/** ASCII NameChar without ':'. */
function isAsciiNameChar(c: number): boolean {
  return isAsciiNameStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
/** Char (XML 1.0 §2.2) for a code point. */
function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd)
    || (cp >= 0x10000 && cp <= 0x10ffff);
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

interface OpenElement {
  el: XmlElement;
  /** Prefix → namespace URI in scope for this element. */
  scope: Map<string, string>;
}

/**
 * Read a whole document. Never throws on input: every problem becomes `{ ok: false, reason }`, a short phrase that
 * can be used as a SIP reason phrase (no input is echoed in it).
 */
export function readXml(input: Buffer | string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlReadResult {
  try {
    return { ok: true, root: new Reader(input, limits).document() };
  } catch (err) {
    if (err instanceof XmlError) return { ok: false, reason: err.message };
    // Anything unforeseen is still only a reason, never a crash of the request handler.
    return { ok: false, reason: 'body is not well-formed XML' };
  }
}

class Reader {
  private readonly s: string;
  private pos = 0;
  private elements = 0;
  /** Where the next ']]>' at or after some earlier position is (-1: none left); see text(). */
  private cdataEndAt = -2;

  constructor(input: Buffer | string, private readonly limits: XmlLimits) {
    const bytes = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.length;
    if (bytes > limits.maxBytes) throw new XmlError(`body larger than ${limits.maxBytes} bytes`);
    if (typeof input === 'string') {
      this.s = input;
    } else {
      try {
        this.s = decoder.decode(input);
      } catch {
        throw new XmlError('body is not valid UTF-8');
      }
    }
    if (this.s.charCodeAt(0) === 0xfeff) this.pos = 1;
  }

  document(): XmlElement {
    const s = this.s;
    if (s.startsWith('<?xml', this.pos) && isSpaceOrEnd(s.charCodeAt(this.pos + 5))) this.xmlDecl();
    this.misc();
    if (this.pos >= s.length || s.charCodeAt(this.pos) !== 0x3c) throw new XmlError('no root element');
    const root = this.element();
    this.misc();
    if (this.pos < s.length) throw new XmlError('content after the root element');
    return root;
  }

  /** XMLDecl (§2.8): only version 1.0 and a UTF-8 encoding are accepted. */
  private xmlDecl(): void {
    const end = this.s.indexOf('?>', this.pos);
    if (end < 0) throw new XmlError('unterminated XML declaration');
    const decl = this.s.slice(this.pos + 5, end);
    if (decl.length > 200) throw new XmlError('XML declaration too long');
    const enc = /encoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(decl);
    if (enc && !/^utf-?8$/i.test(enc[1]!)) throw new XmlError('only UTF-8 bodies are accepted');
    if (!/^\s+version\s*=\s*["']1\.[0-9]+["']/.test(decl)) throw new XmlError('bad XML declaration');
    this.pos = end + 2;
  }

  /** Misc* (§2.8): white space, comments and processing instructions around the root; DOCTYPE refused. */
  private misc(): void {
    const s = this.s;
    for (;;) {
      while (this.pos < s.length && isSpace(s.charCodeAt(this.pos))) this.pos++;
      if (s.startsWith('<!--', this.pos)) this.comment();
      else if (s.startsWith('<?', this.pos)) this.pi();
      else if (s.startsWith('<!', this.pos)) throw new XmlError('DOCTYPE and declarations are not allowed');
      else return;
    }
  }

  private comment(): void {
    const end = this.s.indexOf('-->', this.pos + 4);
    if (end < 0) throw new XmlError('unterminated comment');
    // '--' is not allowed inside a comment (§2.5).
    const body = this.s.slice(this.pos + 4, end);
    if (body.includes('--') || body.endsWith('-')) throw new XmlError('"--" inside a comment');
    this.checkChars(this.pos + 4, end);
    this.pos = end + 3;
  }

  private pi(): void {
    const end = this.s.indexOf('?>', this.pos + 2);
    if (end < 0) throw new XmlError('unterminated processing instruction');
    const target = /^[A-Za-z_][-.\w]*/.exec(this.s.slice(this.pos + 2, Math.min(end, this.pos + 2 + this.limits.maxNameLength + 1)));
    if (!target || target[0].toLowerCase() === 'xml') throw new XmlError('bad processing instruction');
    this.pos = end + 2;
  }

  private name(): string {
    // ASCII names (all our packages' elements and attributes) are scanned by hand; anything else goes to QNAME.
    const s = this.s;
    const start = this.pos;
    let i = start;
    let colon = -1;
    let c = s.charCodeAt(i);
    if (isAsciiNameStart(c)) {
      for (i++; ; i++) {
        c = s.charCodeAt(i);
        if (isAsciiNameChar(c)) continue;
        if (c === 0x3a && colon < 0 && i > start && isAsciiNameStart(s.charCodeAt(i + 1))) { colon = i++; continue; }
        break;
      }
      // Stopped on something that is no part of a name (or the end): the name is complete and ASCII. A colon
      // before a non-ASCII character, or a non-ASCII character, may still continue it: QNAME decides.
      const more = c >= 0x80 || (c === 0x3a && colon < 0 && s.charCodeAt(i + 1) >= 0x80);
      if (!more) {
        if (i - start > this.limits.maxNameLength) throw new XmlError('name too long');
        this.pos = i;
        // A second colon, or one at the end, is not a QName.
        if (c === 0x3a) throw new XmlError('bad qualified name');
        return s.slice(start, i);
      }
    }
    QNAME.lastIndex = start;
    const m = QNAME.exec(s);
    if (!m) throw new XmlError('bad name');
    if (m[0].length > this.limits.maxNameLength) throw new XmlError('name too long');
    this.pos += m[0].length;
    if (s[this.pos] === ':') throw new XmlError('bad qualified name');
    return m[0];
  }

  private skipSpace(): boolean {
    const start = this.pos;
    while (this.pos < this.s.length && isSpace(this.s.charCodeAt(this.pos))) this.pos++;
    return this.pos > start;
  }

  /** Reference (§4.1) at this.pos, which is on '&'. Only predefined entities and character references. */
  private reference(): string {
    const s = this.s;
    const semi = s.indexOf(';', this.pos);
    if (semi < 0 || semi - this.pos > 12) throw new XmlError('bad entity reference');
    const ref = s.slice(this.pos + 1, semi);
    this.pos = semi + 1;
    switch (ref) {
      case 'amp': return '&';
      case 'lt': return '<';
      case 'gt': return '>';
      case 'quot': return '"';
      case 'apos': return "'";
    }
    let cp: number;
    if (/^#[0-9]{1,7}$/.test(ref)) cp = parseInt(ref.slice(1), 10);
    else if (/^#x[0-9A-Fa-f]{1,6}$/.test(ref)) cp = parseInt(ref.slice(2), 16);
    else throw new XmlError('undefined entity reference');
    if (!isXmlChar(cp)) throw new XmlError('character reference to an illegal character');
    return String.fromCodePoint(cp);
  }

  /** Check a run of literal characters for ones XML forbids (§2.2): C0 controls, lone surrogates, U+FFFE/FFFF. */
  private checkChars(from: number, to: number): boolean {
    const s = this.s;
    let lineEnds = false;
    for (let i = from; i < to; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x20 && c < 0xd800) continue;
      if (c === 0x9 || c === 0xa || c === 0xd) { lineEnds = true; continue; }
      if (c < 0x20 || c === 0xfffe || c === 0xffff) throw new XmlError('illegal character in XML');
      if (c >= 0xd800 && c <= 0xdbff) {
        const n = s.charCodeAt(i + 1);
        if (n >= 0xdc00 && n <= 0xdfff) { i++; continue; }
        throw new XmlError('illegal character in XML');
      }
      if (c >= 0xdc00 && c <= 0xdfff) throw new XmlError('illegal character in XML');
    }
    return lineEnds;
  }

  private attributeValue(): string {
    const s = this.s;
    const quote = s[this.pos];
    if (quote !== '"' && quote !== "'") throw new XmlError('attribute value not quoted');
    this.pos++;
    let out = '';
    let runStart = this.pos;
    for (;;) {
      if (this.pos >= s.length) throw new XmlError('unterminated attribute value');
      const ch = s[this.pos]!;
      if (ch === quote) break;
      if (ch === '<') throw new XmlError("'<' in attribute value");
      if (ch === '&') {
        out += this.literal(runStart, this.pos, true) + this.reference();
        runStart = this.pos;
      } else {
        this.pos++;
      }
      if (out.length + (this.pos - runStart) > this.limits.maxAttributeLength) throw new XmlError('attribute value too long');
    }
    out += this.literal(runStart, this.pos, true);
    this.pos++;
    return out;
  }

  /**
   * Literal characters from..to, checked; line ends normalised to LF (§2.11), and in attribute values literal
   * white space to a space (§3.3.3). Characters written as references are not normalised, which is how an
   * escaped tab or line break survives.
   */
  private literal(from: number, to: number, inAttribute: boolean): string {
    if (from === to) return '';
    const lineEnds = this.checkChars(from, to);
    const slice = this.s.slice(from, to);
    if (!lineEnds) return slice;
    const run = slice.replace(/\r\n?/g, '\n');
    return inAttribute ? run.replace(/[\t\n]/g, ' ') : run;
  }

  /**
   * element (§3.1), iterative with an explicit stack so depth is bounded by the limit, never by the JS call stack.
   * this.pos is on the root's '<'.
   */
  private element(): XmlElement {
    const s = this.s;
    const stack: OpenElement[] = [];
    const rootScope = new Map<string, string>([['xml', XML_NS]]);
    let root: XmlElement | undefined;

    for (;;) {
      // At '<' of a start tag.
      this.pos++;
      if (++this.elements > this.limits.maxElements) throw new XmlError('too many elements');
      if (stack.length + 1 > this.limits.maxDepth) throw new XmlError('elements nested too deeply');
      const name = this.name();
      const rawAttrs: [string, string][] = [];
      let selfClosing = false;
      for (;;) {
        const hadSpace = this.skipSpace();
        if (this.pos >= s.length) throw new XmlError('unterminated start tag');
        const ch = s[this.pos];
        if (ch === '>') { this.pos++; break; }
        if (ch === '/') {
          if (s[this.pos + 1] !== '>') throw new XmlError('bad empty-element tag');
          this.pos += 2;
          selfClosing = true;
          break;
        }
        if (!hadSpace) throw new XmlError('attributes must be separated by white space');
        const an = this.name();
        this.skipSpace();
        if (s[this.pos] !== '=') throw new XmlError('attribute without value');
        this.pos++;
        this.skipSpace();
        const av = this.attributeValue();
        for (const [n] of rawAttrs) if (n === an) throw new XmlError('duplicate attribute');
        rawAttrs.push([an, av]);
        if (rawAttrs.length > this.limits.maxAttributes) throw new XmlError('too many attributes');
      }

      const parentScope = stack.length ? stack[stack.length - 1]!.scope : rootScope;
      let scope = parentScope;
      // Most elements of these bodies have no attribute: they share one empty Map (nothing ever writes to a parsed
      // element; the parse results are memoised and shared already).
      const attrs = rawAttrs.length === 0 ? NO_ATTRIBUTES : new Map<string, string>();
      for (const [an, av] of rawAttrs) {
        if (an === 'xmlns' || an.startsWith('xmlns:')) {
          if (scope === parentScope) scope = new Map(parentScope);
          const prefix = an === 'xmlns' ? '' : an.slice(6);
          if (prefix === 'xmlns' || (prefix !== '' && av === '')) throw new XmlError('bad namespace declaration');
          scope.set(prefix, av);
        } else {
          attrs.set(an, av);
        }
      }
      if (scope !== parentScope) {
        // `xml` is bound to its namespace and nothing else may be (Namespaces in XML §3).
        for (const [p, uri] of scope) if ((p === 'xml') !== (uri === XML_NS)) throw new XmlError('bad namespace declaration');
      }
      let expanded: Set<string> | undefined;
      for (const an of attrs.keys()) {
        const colon = an.indexOf(':');
        if (colon < 0) continue;
        expanded ??= new Set<string>();
        const uri = scope.get(an.slice(0, colon));
        if (uri === undefined) throw new XmlError('undeclared namespace prefix');
        // Two prefixes for one namespace must not make the same attribute twice (Namespaces in XML §6.3).
        const key = `${uri} ${an.slice(colon + 1)}`;
        if (expanded.has(key)) throw new XmlError('duplicate attribute');
        expanded.add(key);
      }
      const colon = name.indexOf(':');
      const prefix = colon > 0 ? name.slice(0, colon) : '';
      const ns = scope.get(prefix);
      if (prefix !== '' && ns === undefined) throw new XmlError('undeclared namespace prefix');
      const el: XmlElement = { name, local: colon > 0 ? name.slice(colon + 1) : name, ns: ns ?? '', attrs, children: [], text: '' };
      if (stack.length) stack[stack.length - 1]!.el.children.push(el);
      else root = el;

      if (!selfClosing) {
        stack.push({ el, scope });
      } else if (!stack.length) {
        return el;
      }

      // Content (§3.1) until the next start tag, or until the stack empties.
      for (;;) {
        const top = stack[stack.length - 1]!;
        const lt = s.indexOf('<', this.pos);
        if (lt < 0) throw new XmlError('unterminated element');
        this.text(top.el, lt);
        if (s.startsWith('</', lt)) {
          this.pos = lt + 2;
          const endName = this.name();
          this.skipSpace();
          if (s[this.pos] !== '>') throw new XmlError('bad end tag');
          this.pos++;
          if (endName !== top.el.name) throw new XmlError('mismatched end tag');
          stack.pop();
          if (!stack.length) return root!;
        } else if (s.startsWith('<!--', lt)) {
          this.pos = lt;
          this.comment();
        } else if (s.startsWith('<![CDATA[', lt)) {
          const end = s.indexOf(']]>', lt + 9);
          if (end < 0) throw new XmlError('unterminated CDATA section');
          this.appendText(top.el, this.literal(lt + 9, end, false));
          this.pos = end + 3;
        } else if (s.startsWith('<?', lt)) {
          this.pos = lt;
          this.pi();
        } else if (s.startsWith('<!', lt)) {
          throw new XmlError('DOCTYPE and declarations are not allowed');
        } else {
          this.pos = lt;
          break; // a child start tag
        }
      }
    }
  }

  /** Character data from this.pos up to `end` (exclusive), with references decoded. */
  private text(el: XmlElement, end: number): void {
    const s = this.s;
    if (end === this.pos) return;
    // ']]>' must not appear in character data (§2.4).
    // The next ']]>' of the document is looked up again only once it is behind us: one pass in all.
    if (this.cdataEndAt !== -1 && this.cdataEndAt < this.pos) this.cdataEndAt = s.indexOf(']]>', this.pos);
    if (this.cdataEndAt !== -1 && this.cdataEndAt + 3 <= end) throw new XmlError("']]>' in character data");
    let out = '';
    let runStart = this.pos;
    while (this.pos < end) {
      const amp = s.indexOf('&', this.pos);
      if (amp < 0 || amp >= end) { this.pos = end; break; }
      out += this.literal(runStart, amp, false);
      this.pos = amp;
      out += this.reference();
      if (this.pos > end) throw new XmlError('bad entity reference');
      runStart = this.pos;
    }
    this.appendText(el, out + this.literal(runStart, end, false));
  }

  private appendText(el: XmlElement, t: string): void {
    if (!t) return;
    if (el.text.length + t.length > this.limits.maxTextLength) throw new XmlError('text content too long');
    el.text += t;
  }
}

function isSpaceOrEnd(c: number): boolean {
  return Number.isNaN(c) || isSpace(c) || c === 0x3f;
}
