import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readXml, escapeXml, attr, DEFAULT_XML_LIMITS, type XmlElement } from '../../src/presence/packages/xml.js';
import { PACKAGES } from '../../src/presence/packages/index.js';

function ok(input: string | Buffer): XmlElement {
  const r = readXml(input);
  if (!r.ok) throw new Error(r.reason);
  return r.root;
}
function reason(input: string | Buffer, limits = DEFAULT_XML_LIMITS): string {
  const r = readXml(input, limits);
  if (r.ok) throw new Error('expected a refusal');
  return r.reason;
}
/** Hostile input must be refused quickly: the reader is one linear pass. */
function refusedFast(input: string | Buffer, limits = DEFAULT_XML_LIMITS): string {
  const t = performance.now();
  const why = reason(input, limits);
  expect(performance.now() - t).toBeLessThan(500);
  return why;
}

describe('escapeXml', () => {
  it('escapes the five and keeps everything else', () => {
    expect(escapeXml(`<a href="x">&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;');
    expect(escapeXml('plain Zoë 😀')).toBe('plain Zoë 😀');
  });
  it('replaces characters XML cannot carry and keeps tab/CR/LF through attribute normalisation', () => {
    expect(escapeXml('a\u0000b\u001bc\ud800d\uffff')).toBe('a\uFFFDb\uFFFDc\uFFFDd\uFFFD');
    const v = 'line1\r\nline2\tend';
    expect(attr(ok(`<a v="${escapeXml(v)}"/>`), 'v')).toBe(v);
  });
  it('round-trips any string through an attribute and through text (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
      const clean = s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\uFFFD');
      const root = ok(`<r a="${escapeXml(s)}">${escapeXml(s)}</r>`);
      expect(attr(root, 'a')).toBe(clean);
      // Text keeps CR only as a reference; our escaper emits it as one, so the text survives too.
      expect(root.text).toBe(clean);
      expect(root.children).toHaveLength(0);
    }), { numRuns: 500 });
  });
});

describe('readXml: what it accepts', () => {
  it('declaration, BOM, comments, PIs, CDATA, character references, namespaces', () => {
    const root = ok(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(
      `<?xml version="1.0" encoding="utf-8" standalone="yes"?>\n<!-- hi --><?pi x?>`
      + `<p:r xmlns:p="urn:x" xmlns="urn:d" a='1'><c>&#65;&#x42;&lt;<![CDATA[<&>]]></c><p:d/></p:r>\n<!-- bye -->`)]));
    expect(root).toMatchObject({ local: 'r', ns: 'urn:x' });
    expect(root.children[0]).toMatchObject({ local: 'c', ns: 'urn:d', text: 'AB<<&>' });
    expect(root.children[1]).toMatchObject({ local: 'd', ns: 'urn:x' });
    expect(attr(root, 'a')).toBe('1');
    expect(root.attrs.has('xmlns:p')).toBe(false);
  });
  it('an attribute called __proto__ is only a name', () => {
    const root = ok('<a __proto__="x" constructor="y"/>');
    expect(root.attrs.get('__proto__')).toBe('x');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe('readXml: hostile input is refused without hanging', () => {
  it('entity declarations (billion laughs) and external entities (XXE)', () => {
    const lol = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">${Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`).join('')}]><lolz>&lol9;</lolz>`;
    expect(refusedFast(lol)).toMatch(/DOCTYPE/);
    expect(refusedFast('<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>')).toMatch(/DOCTYPE/);
    expect(refusedFast('<a>&xxe;</a>')).toMatch(/entity/);
    expect(refusedFast('<a b="&lol;"/>')).toMatch(/entity/);
    expect(refusedFast('<a>&#0;</a>')).toMatch(/illegal character/);
    expect(refusedFast('<a>&#x110000;</a>')).toMatch(/illegal character/);
  });
  it('deep nesting', () => {
    const n = 5000; // 5000 levels in 15 kB: under the size limit, far over the depth limit
    expect(refusedFast('<a>'.repeat(n) + '</a>'.repeat(n))).toMatch(/nested too deeply/);
    const deepButSmall = '<a>'.repeat(DEFAULT_XML_LIMITS.maxDepth) + '</a>'.repeat(DEFAULT_XML_LIMITS.maxDepth);
    expect(readXml(deepButSmall).ok).toBe(true);
  });
  it('huge attributes, many attributes, long names, many elements, big text, big body', () => {
    expect(refusedFast(`<a b="${'x'.repeat(50_000)}"/>`)).toMatch(/attribute value too long/);
    expect(refusedFast(`<a ${Array.from({ length: 100 }, (_, i) => `a${i}="1"`).join(' ')}/>`)).toMatch(/too many attributes/);
    expect(refusedFast(`<${'a'.repeat(5000)}/>`)).toMatch(/name too long/);
    expect(refusedFast(`<a>${'<b/>'.repeat(5000)}</a>`)).toMatch(/too many elements/);
    expect(refusedFast(`<a>${'x'.repeat(40_000)}</a>`)).toMatch(/text content too long/);
    expect(refusedFast(Buffer.alloc(200_000, 0x20))).toMatch(/larger than/);
  });
  it('unclosed constructs at the end of a large body', () => {
    for (const tail of ['<!--', '<![CDATA[', '<?pi', '<a b="', '&amp', '<a', '</']) {
      refusedFast(`<r>${'x'.repeat(30_000)}${tail}${'y'.repeat(20_000)}`);
    }
  });
  it('malformed structure', () => {
    for (const bad of ['<a><b></a></b>', '<a/><b/>', 'text<a/>', '<a>', '<a b=1/>', '<a b="1" b="2"/>', '<a b="1"c="2"/>',
      '<p:a/>', '<a p:b="1"/>', '<a>]]></a>', '<a><!-- x -- y --></a>', '<?xml version="1.0" encoding="ISO-8859-1"?><a/>',
      '<a>\u0001</a>', '<1a/>', '<a><!-- x ---></a>', '<a xmlns:p="u" xmlns:q="u" p:b="1" q:b="2"/>', '<a xmlns:xml="urn:other"/>', '<a xmlns:p="http://www.w3.org/XML/1998/namespace"/>', '<a:b:c xmlns:a="u"/>', '<a b="<"/>', '<a xmlns:p=""/>', '<a><!DOCTYPE x></a>', '']) {
      expect(readXml(bad).ok, bad).toBe(false);
    }
  });
  it('invalid UTF-8', () => {
    expect(reason(Buffer.from([0x3c, 0x61, 0x3e, 0xc3, 0x28, 0x3c, 0x2f, 0x61, 0x3e]))).toMatch(/UTF-8/);
  });
  it('never throws on random input, and each package validate answers a string or null (property)', () => {
    const seeds = [
      '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:a@b"><dialog id="1"><state>early</state></dialog></dialog-info>',
      '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="t"><status><basic>open</basic></status></tuple></presence>',
    ];
    const mutated = fc.tuple(fc.constantFrom(...seeds), fc.nat(), fc.nat({ max: 20 }), fc.string({ maxLength: 8 }))
      .map(([s, at, del, ins]) => { const i = at % (s.length + 1); return s.slice(0, i) + ins + s.slice(i + del); });
    fc.assert(fc.property(fc.oneof(mutated, fc.string({ unit: 'binary', maxLength: 300 })), (s) => {
      const r = readXml(s);
      expect(typeof r.ok).toBe('boolean');
      for (const pkg of Object.values(PACKAGES)) {
        const v = pkg.validate(Buffer.from(s), pkg.contentType);
        expect(v === null || typeof v === 'string').toBe(true);
      }
    }), { numRuns: 2000 });
  });
});
