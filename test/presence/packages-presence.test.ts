import { describe, expect, it } from 'vitest';
import { PACKAGES } from '../../src/presence/packages/index.js';
import { parsePidf, PIDF_NS, RPID_NS, type PresenceData } from '../../src/presence/packages/presence.js';
import type { PublicationInput } from '../../src/presence/packages/types.js';
import { readXml, child, children, attr } from '../../src/presence/packages/xml.js';

const presence = PACKAGES.presence;
const ENTITY = 'sip:201@pbx.example.com';
const CT = 'application/pidf+xml';

function pidf(basic: string | null, note?: string, activity?: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:201@pbx.example.com">
  <tuple id="t1"><status>${basic ? `<basic>${basic}</basic>` : ''}</status>${note !== undefined ? `<note>${note}</note>` : ''}</tuple>
  ${activity ? `<dm:person id="p1"><rpid:activities><rpid:${activity}/></rpid:activities></dm:person>` : ''}
</presence>`;
}
function pub(body: string, updatedAt: number): PublicationInput {
  return { etag: `e${updatedAt}`, contentType: CT, body: Buffer.from(body), updatedAt };
}
function render(st: ReturnType<typeof presence.idle>, entity = ENTITY): string {
  const r = presence.render(st, entity);
  expect(r.contentType).toBe(CT);
  // Not per subscription: every version gets the same bytes.
  expect(r.forVersion(5).equals(r.forVersion(0))).toBe(true);
  return r.forVersion(0).toString('utf8');
}
/** Round trip through our reader and our own validator. */
function reread(body: string) {
  expect(presence.validate(Buffer.from(body), CT)).toBeNull();
  const r = parsePidf(body);
  if (!r.ok) throw new Error(r.reason);
  return r;
}

describe('presence: idle and render', () => {
  it('idle is open / Ready with no activity', () => {
    const idle = presence.idle();
    expect(idle).toMatchObject({ event: 'presence', summary: 'open', source: 'none' });
    const body = render(idle);
    expect(body).toContain(`<presence xmlns="${PIDF_NS}"`);
    expect(body).toContain(`xmlns:rpid="${RPID_NS}"`);
    expect(body).toContain(`entity="${ENTITY}"`);
    expect(body).toContain('<status><basic>open</basic></status><note>Ready</note>');
    expect(body).not.toContain('activities');
    expect(reread(body)).toMatchObject({ entity: ENTITY, basic: 'open', note: 'Ready', activities: [] });
  });

  it('a busy publication renders open, its note and on-the-phone in a dm:person', () => {
    const st = presence.compose([pub(pidf('open', 'On the phone', 'on-the-phone'), 1)], null);
    expect(st.summary).toBe('open');
    expect(st.source).toBe('publication');
    const body = render(st);
    expect(body).toContain('<dm:person id="p1"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>');
    expect(reread(body)).toMatchObject({ basic: 'open', note: 'On the phone', activities: ['on-the-phone'] });
  });

  it('closed', () => {
    const st = presence.compose([pub(pidf('closed', 'Offline'), 1)], null);
    expect(st.summary).toBe('closed');
    expect(reread(render(st))).toMatchObject({ basic: 'closed', note: 'Offline' });
  });
});

describe('presence: manual state (admin API) overrides publications', () => {
  it.each([
    ['early', 'Ringing', ['on-the-phone']],
    ['confirmed', 'On the phone', ['on-the-phone']],
    ['terminated', 'Ready', []],
  ] as const)('%s → open, %s', (manual, note, activities) => {
    const st = presence.compose([pub(pidf('closed', 'Away', 'away'), 1)], manual);
    expect(st.source).toBe('manual');
    expect(reread(render(st))).toMatchObject({ basic: 'open', note, activities });
  });
});

describe('presence: composing several publications', () => {
  it('open if any is open; note and activity from the newest open one', () => {
    const st = presence.compose([
      pub(pidf('open', 'On the phone', 'on-the-phone'), 10),
      pub(pidf('closed', 'Gone'), 30),
      pub(pidf('open', 'Desk'), 20),
    ], null);
    expect(st.summary).toBe('open');
    expect(st.data).toEqual({ basic: 'open', note: 'Desk', activities: [] } satisfies PresenceData);
  });
  it('closed only when every publication says closed; newest note wins', () => {
    const st = presence.compose([pub(pidf('closed', 'Old'), 1), pub(pidf('closed', 'New'), 2)], null);
    expect(st.data).toEqual({ basic: 'closed', note: 'New', activities: [] });
  });
  it('no publication (or none that parses) is idle', () => {
    expect(presence.compose([], null)).toMatchObject({ summary: 'open', source: 'none' });
    expect(presence.compose([pub('<nope', 1)], null)).toMatchObject({ summary: 'open', source: 'none' });
  });
  it('reads an Asterisk-style body (xml:lang note at the top, activities in dm:person)', () => {
    const asterisk = `<?xml version="1.0" encoding="UTF-8"?>
<presence entity="sip:201@pbx.example.com" xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid">
 <note xml:lang="en">On the phone</note>
 <tuple id="201"><status><basic>open</basic></status><contact priority="1">sip:201@pbx.example.com</contact></tuple>
 <dm:person><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>
</presence>`;
    expect(presence.validate(Buffer.from(asterisk), CT)).toBeNull();
    expect(reread(render(presence.compose([pub(asterisk, 1)], null)))).toMatchObject({ basic: 'open', note: 'On the phone', activities: ['on-the-phone'] });
  });
  it('in one document, the note of a tuple that agrees with the result is taken', () => {
    const doc = `<presence xmlns="${PIDF_NS}" entity="${ENTITY}">
      <tuple id="a"><status><basic>closed</basic></status><note>Mobile off</note></tuple>
      <tuple id="b"><status><basic>open</basic></status><note>Desk phone</note></tuple></presence>`;
    expect(parsePidf(doc)).toMatchObject({ ok: true, basic: 'open', note: 'Desk phone' });
  });
});

describe('presence: escaping and activity whitelist', () => {
  it('hostile notes are escaped; unknown activities are dropped (element names cannot be escaped)', () => {
    const body = `<presence xmlns="${PIDF_NS}" xmlns:r="${RPID_NS}" entity="${ENTITY}">
      <tuple id="t"><status><basic>open</basic></status><note>&lt;script&gt;x&lt;/script&gt; &amp; "q" 'a'</note></tuple>
      <r:activities><r:busy/><r:evil-element/></r:activities></presence>`;
    expect(presence.validate(Buffer.from(body), CT)).toBeNull();
    const out = render(presence.compose([pub(body, 1)], null));
    expect(out).not.toContain('<script>');
    expect(out).not.toContain('evil');
    expect(out).toContain('&lt;script&gt;x&lt;/script&gt; &amp; &quot;q&quot; &apos;a&apos;');
    expect(reread(out)).toMatchObject({ note: `<script>x</script> & "q" 'a'`, activities: ['busy'] });
  });
  it('hostile entity is escaped', () => {
    const entity = 'sip:a"><x@example.com';
    const r = readXml(render(presence.idle(), entity));
    if (!r.ok) throw new Error(r.reason);
    expect(attr(r.root, 'entity')).toBe(entity);
    expect(children(r.root, 'tuple', PIDF_NS)).toHaveLength(1);
  });
  it('UTF-8 note: bytes counted, not characters', () => {
    const st = presence.compose([pub(pidf('open', 'Besprechung – Zoë 😀'), 1)], null);
    const bytes = presence.render(st, ENTITY).forVersion(0);
    const s = bytes.toString('utf8');
    expect(bytes.length).toBe(Buffer.byteLength(s));
    expect(bytes.length).toBeGreaterThan(s.length);
    expect(reread(s).note).toBe('Besprechung – Zoë 😀');
  });
  it('a stored state with junk activities does not inject elements', () => {
    const out = render({ event: 'presence', summary: 'open', source: 'publication', data: { basic: 'open', activities: ['x/><evil'] } });
    const r = readXml(out);
    if (!r.ok) throw new Error(r.reason);
    expect(child(r.root, 'person')).toBeUndefined();
  });
});

describe('presence: validate', () => {
  const v = (body: string, ct = CT) => presence.validate(Buffer.from(body), ct);
  it('accepts PIDF and refuses other content types', () => {
    expect(v(pidf('open', 'x'))).toBeNull();
    expect(v(pidf(null))).toBeNull();
    expect(v(pidf('open'), 'application/dialog-info+xml')).toMatch(/content type/);
  });
  it.each([
    ['wrong root', `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"/>`, /root element/],
    ['wrong namespace', `<presence xmlns="urn:example" entity="${ENTITY}"/>`, /root element/],
    ['no entity', `<presence xmlns="${PIDF_NS}"/>`, /entity/],
    ['entity not a URI', `<presence xmlns="${PIDF_NS}" entity="just text"/>`, /entity/],
    ['tuple without id', `<presence xmlns="${PIDF_NS}" entity="${ENTITY}"><tuple><status/></tuple></presence>`, /tuple without id/],
    ['tuple without status', `<presence xmlns="${PIDF_NS}" entity="${ENTITY}"><tuple id="a"/></presence>`, /status/],
    ['bad basic', `<presence xmlns="${PIDF_NS}" entity="${ENTITY}"><tuple id="a"><status><basic>maybe</basic></status></tuple></presence>`, /basic/],
    ['not well-formed', `<presence xmlns="${PIDF_NS}" entity="${ENTITY}"><tuple>`, /unterminated|well-formed|mismatched/],
  ])('refuses %s', (_n, body, reason) => {
    expect(v(body)).toMatch(reason);
  });
});
