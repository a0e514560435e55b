// The XML reader's fast paths (ASCII names scanned by hand, literal runs without line ends not normalised, one
// pass for ']]>') must read every input exactly as the reader did before them: same tree or same refusal.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readXml, type XmlElement, type XmlReadResult } from '../../src/presence/packages/xml.js';
import { readXml as referenceReadXml } from './xml-reference.js';

function plain(el: XmlElement): unknown {
  return { name: el.name, local: el.local, ns: el.ns, attrs: [...el.attrs], text: el.text, children: el.children.map(plain) };
}
const view = (r: XmlReadResult | ReturnType<typeof referenceReadXml>) => (r.ok ? { ok: true, root: plain(r.root as XmlElement) } : r);

const seeds = [
  '<?xml version="1.0" encoding="UTF-8"?>\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:a@b">\r\n'
    + '<dialog id="x1" call-id="c&amp;1" direction="recipient"><state code="486" event="rejected">terminated</state>'
    + '<remote><identity display="Zoë\tB\r\nC">sip:b@c</identity><target uri="sip:b@c"><param pname="+sip.rendering" pvalue="no"/></target></remote></dialog></dialog-info>',
  '<d:dialog-info xmlns:d="urn:ietf:params:xml:ns:dialog-info" d:version="2" xml:lang="en"><d:dialog id="é"><d:state>early</d:state></d:dialog></d:dialog-info>',
  '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="pres:a@b"><!-- c --><tuple id="t">'
    + '<status><basic>open</basic></status><note><![CDATA[a]]b<c>]]> &#x1F3A7;&#9;</note></tuple><rpid:activities><rpid:on-the-phone/></rpid:activities></presence>',
  '<a:b:c/>', '<é:x xmlns:é="u"/>', '<x:é xmlns:x="u"/>', '<a>]]></a>', '<a>x]]y</a>', '<a b="1" b="2"/>', '<a\tb = \'v\'\r\n/>',
];
const pieces = ['<', '>', '/', ':', '"', "'", '=', ' ', '\t', '\r', '\n', '\r\n', '&amp;', '&#10;', ']]>', ']]', 'é', '🎧', 'x:', ':y', 'a',
  '<![CDATA[', '<!--', '-->', '<?pi x?>', 'xmlns:p="u"', 'p:', '\u0001', '\uFFFE'];
const mutated = fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 6 }), fc.array(fc.constantFrom(...pieces), { maxLength: 3 })), { maxLength: 4 }))
  .map(([s, edits]) => edits.reduce((acc, [at, del, ins]) => { const i = at % (acc.length + 1); return acc.slice(0, i) + ins.join('') + acc.slice(i + del); }, s));

describe('readXml: fast paths read as the reference reader does (property)', () => {
  it('on the seeds', () => {
    for (const s of seeds) expect(view(readXml(s))).toEqual(view(referenceReadXml(s)));
  });
  it('on mutated documents and random strings, with small limits too', () => {
    fc.assert(fc.property(fc.oneof(mutated, mutated, fc.string({ unit: 'binary', maxLength: 200 })), fc.boolean(), (s, small) => {
      const limits = small ? { maxBytes: 4096, maxDepth: 4, maxElements: 8, maxAttributes: 4, maxAttributeLength: 12, maxNameLength: 6, maxTextLength: 16 } : undefined;
      expect(view(readXml(s, limits))).toEqual(view(referenceReadXml(s, limits)));
    }), { numRuns: 3000 });
  });
});

describe('readXml: elements without attributes', () => {
  it('share one empty attribute Map that refuses writes', () => {
    const r = readXml('<a x="1"><b/><c/></a>');
    if (!r.ok) throw new Error(r.reason);
    const [b, c] = r.root.children;
    expect(b!.attrs.size).toBe(0);
    expect(b!.attrs).toBe(c!.attrs);
    expect(() => b!.attrs.set('y', '2')).toThrow(TypeError);
    expect(r.root.attrs.get('x')).toBe('1');
    expect(c!.attrs.size).toBe(0);
  });
});
