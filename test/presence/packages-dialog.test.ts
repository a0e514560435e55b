import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PACKAGES, ALLOW_EVENTS, getPackage, createPackages } from '../../src/presence/packages/index.js';
import { parseDialogInfo, type DialogData, type DialogEntry } from '../../src/presence/packages/dialog.js';
import type { PublicationInput } from '../../src/presence/packages/types.js';
import { readXml, child, children, attr } from '../../src/presence/packages/xml.js';

const dialog = PACKAGES.dialog;
const ENTITY = 'sip:201@pbx.example.com';
const NS = 'urn:ietf:params:xml:ns:dialog-info';

function pub(body: string, updatedAt: number, etag = `e${updatedAt}`): PublicationInput {
  return { etag, contentType: 'application/dialog-info+xml', body: Buffer.from(body, 'utf8'), updatedAt };
}

/** The ringing call of sip-requirements.md §2.1 as a PBX would publish it. */
function ringingBody(state = 'early', extra = ''): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full" entity="sip:201@pbx.example.com">
  <dialog id="a84b4c76e66710" call-id="a84b4c76e66710@10.0.0.5" local-tag="1928301774" remote-tag="8321234356" direction="recipient">
    <state>${state}</state>
    <local><identity display="201">sip:201@pbx.example.com</identity><target uri="sip:201@pbx.example.com">${extra}</target></local>
    <remote><identity display="Bob">sip:100@pbx.example.com</identity><target uri="sip:100@pbx.example.com"/></remote>
  </dialog>
</dialog-info>`;
}

function text(state: ReturnType<typeof dialog.compose>, version = 0, entity = ENTITY): string {
  return dialog.render(state, entity).forVersion(version).toString('utf8');
}

/** Round trip: every rendered body must read back with our reader and validate as dialog-info. */
function reparse(body: string): DialogEntry[] {
  expect(dialog.validate(Buffer.from(body), 'application/dialog-info+xml')).toBeNull();
  const r = parseDialogInfo(body);
  if (!r.ok) throw new Error(r.reason);
  expect(r.state).toBe('full');
  return r.dialogs;
}

describe('index', () => {
  it('exposes the three packages and Allow-Events', () => {
    expect(Object.keys(PACKAGES).sort()).toEqual(['dialog', 'message-summary', 'presence']);
    expect(ALLOW_EVENTS).toBe('dialog, presence, message-summary');
    for (const name of ALLOW_EVENTS.split(', ')) expect(getPackage(name)?.name).toBe(name);
  });
  it('knows no other event and no prototype keys', () => {
    for (const name of ['Dialog', 'dialog;id=1', 'reg', '', 'constructor', '__proto__', 'toString']) {
      expect(getPackage(name)).toBeUndefined();
    }
  });
  it('content types', () => {
    expect(PACKAGES.dialog.contentType).toBe('application/dialog-info+xml');
    expect(PACKAGES.presence.contentType).toBe('application/pidf+xml');
    expect(PACKAGES['message-summary'].contentType).toBe('application/simple-message-summary');
  });
});

describe('dialog: the three §2.1 bodies', () => {
  it('idle: one dialog id=<user>, recipient, terminated, no call-id or tags', () => {
    const idle = dialog.idle();
    expect(idle.summary).toBe('terminated');
    expect(idle.source).toBe('none');
    const body = text(idle, 7);
    expect(body).toBe('<?xml version="1.0" encoding="UTF-8"?>\n'
      + '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="7" state="full" entity="sip:201@pbx.example.com">\n'
      + '  <dialog id="201" direction="recipient"><state>terminated</state></dialog>\n'
      + '</dialog-info>\n');
    const ds = reparse(body);
    expect(ds).toEqual([{ id: '201', direction: 'recipient', state: 'terminated' }]);
  });

  it('ringing: call-id, tags, direction, identities and targets passed through', () => {
    const st = dialog.compose([pub(ringingBody(), 1000)], null);
    expect(st.summary).toBe('early');
    expect(st.source).toBe('publication');
    const body = text(st, 8);
    expect(body).toContain('version="8" state="full" entity="sip:201@pbx.example.com"');
    expect(body).toContain('<dialog id="a84b4c76e66710" call-id="a84b4c76e66710@10.0.0.5" local-tag="1928301774" remote-tag="8321234356" direction="recipient">');
    expect(body).toContain('<state>early</state>');
    expect(body).toContain('<local><identity display="201">sip:201@pbx.example.com</identity><target uri="sip:201@pbx.example.com"/></local>');
    expect(body).toContain('<remote><identity display="Bob">sip:100@pbx.example.com</identity><target uri="sip:100@pbx.example.com"/></remote>');
    const [d] = reparse(body);
    expect(d).toMatchObject({
      id: 'a84b4c76e66710', callId: 'a84b4c76e66710@10.0.0.5', localTag: '1928301774', remoteTag: '8321234356',
      direction: 'recipient', state: 'early',
      remote: { identity: 'sip:100@pbx.example.com', display: 'Bob', target: 'sip:100@pbx.example.com' },
    });
  });

  it('busy: the same call confirmed, with +sip.rendering on the local target', () => {
    const st = dialog.compose([pub(ringingBody('confirmed', '<param pname="+sip.rendering" pvalue="yes"/>'), 2000)], null);
    expect(st.summary).toBe('confirmed');
    const body = text(st, 9);
    expect(body).toContain('<state>confirmed</state>');
    expect(body).toContain('<target uri="sip:201@pbx.example.com"><param pname="+sip.rendering" pvalue="yes"/></target>');
    const [d] = reparse(body);
    expect(d!.local!.targetParams).toEqual([{ pname: '+sip.rendering', pvalue: 'yes' }]);
    expect(d!.callId).toBe('a84b4c76e66710@10.0.0.5');
  });
});

describe('dialog: version splicing', () => {
  it('one render serves every watcher, only version differs', () => {
    const r = dialog.render(dialog.compose([pub(ringingBody(), 1)], null), ENTITY);
    const a = r.forVersion(0).toString();
    const b = r.forVersion(123456).toString();
    expect(a.replace('version="0"', 'version="123456"')).toBe(b);
    expect(r.contentType).toBe('application/dialog-info+xml');
    expect(() => r.forVersion(-1)).toThrow(RangeError);
    expect(() => r.forVersion(1.5)).toThrow(RangeError);
  });
});

describe('dialog: manual state', () => {
  for (const manual of ['early', 'confirmed', 'terminated'] as const) {
    it(`manual ${manual} overrides publications and carries no call-id, tags or identities`, () => {
      const st = dialog.compose([pub(ringingBody('confirmed'), 5)], manual);
      expect(st.source).toBe('manual');
      expect(st.summary).toBe(manual);
      const body = text(st, 1);
      expect(body).not.toMatch(/call-id=|local-tag=|remote-tag=|<local>|<remote>/);
      expect(reparse(body)).toEqual([{ id: '201', direction: 'recipient', state: manual }]);
    });
  }
  it('after a manual state, idle does not resurrect anything', () => {
    const manual = dialog.compose([], 'early');
    const idle = dialog.compose([], null, manual);
    expect(reparse(text(idle))).toEqual([{ id: '201', direction: 'recipient', state: 'terminated' }]);
  });
});

describe('dialog: idle after a call reuses its dialog id and tags (RFC 4235 §4.3)', () => {
  it('the ended call is reported under its own id', () => {
    const ringing = dialog.compose([pub(ringingBody(), 1)], null);
    const busy = dialog.compose([pub(ringingBody('confirmed'), 2)], null, ringing);
    const idle = dialog.compose([], null, busy);
    expect(idle.summary).toBe('terminated');
    expect(idle.source).toBe('none');
    const ds = reparse(text(idle));
    expect(ds).toEqual([{
      id: 'a84b4c76e66710', callId: 'a84b4c76e66710@10.0.0.5', localTag: '1928301774', remoteTag: '8321234356',
      direction: 'recipient', state: 'terminated',
    }]);
    // And stays so when recomposed again from itself (a refresh changes nothing).
    expect(text(dialog.compose([], null, idle))).toBe(text(idle));
  });
  it('previous state read back as JSON (e.g. from storage) works the same', () => {
    const busy = dialog.compose([pub(ringingBody('confirmed'), 2)], null);
    const idle = dialog.compose([], null, JSON.parse(JSON.stringify(busy)));
    expect((idle.data as DialogData).dialogs[0]!.id).toBe('a84b4c76e66710');
  });
  it('garbage previous data falls back to plain idle', () => {
    const idle = dialog.compose([], null, { event: 'dialog', summary: 'x', source: 'publication', data: { dialogs: 'no' } });
    expect(reparse(text(idle))).toEqual([{ id: '201', direction: 'recipient', state: 'terminated' }]);
  });
});

describe('dialog: several publications', () => {
  const two = (id: string, state: string, callId: string) =>
    `<dialog-info xmlns="${NS}" version="1" state="full" entity="${ENTITY}"><dialog id="${id}" call-id="${callId}" direction="recipient"><state>${state}</state></dialog></dialog-info>`;
  it('merges dialogs, newest publication wins per id, most active first', () => {
    const st = dialog.compose([
      pub(two('A', 'early', 'ca'), 10),
      pub(two('B', 'confirmed', 'cb'), 20),
      pub(two('A', 'terminated', 'ca2'), 5), // older: loses against the early one
    ], null);
    const ds = (st.data as DialogData).dialogs;
    expect(ds.map((d) => [d.id, d.state, d.callId])).toEqual([['B', 'confirmed', 'cb'], ['A', 'early', 'ca']]);
    expect(st.summary).toBe('confirmed');
    const body = text(st);
    expect(reparse(body).map((d) => d.id)).toEqual(['B', 'A']);
  });
  it('a newer terminated report ends that dialog; terminated ones are dropped beside an active one', () => {
    const st = dialog.compose([pub(two('A', 'early', 'ca'), 10), pub(two('A', 'terminated', 'ca'), 30), pub(two('B', 'trying', 'cb'), 20)], null);
    const ds = (st.data as DialogData).dialogs;
    expect(ds.map((d) => d.id)).toEqual(['B']);
    expect(st.summary).toBe('early'); // trying is a call being set up
  });
  it('when all dialogs ended, they are all reported terminated', () => {
    const st = dialog.compose([pub(two('A', 'terminated', 'ca'), 1), pub(two('B', 'terminated', 'cb'), 2)], null);
    expect(st.summary).toBe('terminated');
    expect(reparse(text(st)).map((d) => d.id)).toEqual(['A', 'B']);
  });
  it('a publication with no dialog at all still renders one dialog (Yealink)', () => {
    const st = dialog.compose([pub(`<dialog-info xmlns="${NS}" version="0" state="full" entity="${ENTITY}"/>`, 1)], null);
    const ds = reparse(text(st));
    expect(ds).toHaveLength(1);
    expect(ds[0]!.state).toBe('terminated');
  });
  it('order of the array does not matter, updatedAt does', () => {
    const a = pub(two('A', 'early', 'old'), 10);
    const b = pub(two('A', 'confirmed', 'new'), 20);
    expect(text(dialog.compose([a, b], null))).toBe(text(dialog.compose([b, a], null)));
    expect((dialog.compose([b, a], null).data as DialogData).dialogs[0]!.callId).toBe('new');
  });
  it('caps the dialogs rendered at maxDialogs', () => {
    const pkgs = createPackages({ maxDialogs: 3 });
    const body = `<dialog-info xmlns="${NS}" version="1" state="full" entity="${ENTITY}">${[1, 2, 3].map((i) => `<dialog id="d${i}"><state>early</state></dialog>`).join('')}</dialog-info>`;
    const st = pkgs.dialog.compose([pub(body, 1), pub(body.replace(/d(\d)/g, 'x$1'), 2)], null);
    expect((st.data as DialogData).dialogs).toHaveLength(3);
    expect(pkgs.dialog.validate(Buffer.from(body.replace('</dialog-info>', '<dialog id="d4"><state>early</state></dialog></dialog-info>')), 'application/dialog-info+xml'))
      .toMatch(/more than 3 dialog/);
  });
});

describe('dialog: passthrough of published bodies', () => {
  it('Kamailio pua_dialoginfo style (prefix-free, full detail)', () => {
    const kamailio = `<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:201@pbx.example.com">
  <dialog id="c2a1f9a1-0f5f-1234" call-id="c2a1f9a1-0f5f-1234@192.0.2.10" local-tag="as5e1d2c3b" remote-tag="77812abc" direction="recipient">
    <state>early</state>
    <remote>
      <identity display="Alice &amp; Co">sip:100@pbx.example.com</identity>
      <target uri="sip:100@192.0.2.20:5060"/>
    </remote>
    <local>
      <identity>sip:201@pbx.example.com</identity>
      <target uri="sip:201@pbx.example.com"/>
    </local>
  </dialog>
</dialog-info>`;
    expect(dialog.validate(Buffer.from(kamailio), 'application/dialog-info+xml; charset=utf-8')).toBeNull();
    const body = text(dialog.compose([pub(kamailio, 1)], null), 4);
    const [d] = reparse(body);
    expect(d).toEqual({
      id: 'c2a1f9a1-0f5f-1234', callId: 'c2a1f9a1-0f5f-1234@192.0.2.10', localTag: 'as5e1d2c3b', remoteTag: '77812abc',
      direction: 'recipient', state: 'early',
      local: { identity: 'sip:201@pbx.example.com', target: 'sip:201@pbx.example.com', targetParams: [] },
      remote: { identity: 'sip:100@pbx.example.com', display: 'Alice & Co', target: 'sip:100@192.0.2.20:5060', targetParams: [] },
    });
    expect(body).toContain('display="Alice &amp; Co"');
  });

  it('FreeSWITCH style: namespace prefix, intercept target, hold param, state event/code and duration', () => {
    const fs = `<?xml version="1.0" encoding="UTF-8"?>
<d:dialog-info xmlns:d="urn:ietf:params:xml:ns:dialog-info" version="12" state="full" entity="sip:201@pbx.example.com">
<d:dialog id="5f3e7b2a-aaaa-bbbb" call-id="5f3e7b2a-aaaa-bbbb" local-tag="k3Z1" remote-tag="Q8xy" direction="initiator">
<d:state event="remote-bye" code="200">confirmed</d:state><d:duration>42</d:duration>
<d:local><d:identity display="201">sip:201@pbx.example.com</d:identity><d:target uri="sip:201@pbx.example.com"><d:param pname="+sip.rendering" pvalue="no"/></d:target></d:local>
<d:remote><d:identity display="Outbound Call">sip:5551234@pbx.example.com</d:identity><d:target uri="sip:**201@pbx.example.com"/></d:remote>
</d:dialog></d:dialog-info>`;
    expect(dialog.validate(Buffer.from(fs), 'application/dialog-info+xml')).toBeNull();
    const body = text(dialog.compose([pub(fs, 1)], null));
    expect(body).toContain('<state event="remote-bye" code="200">confirmed</state>');
    expect(body).toContain('<duration>42</duration>');
    expect(body).toContain('<target uri="sip:**201@pbx.example.com"/>');
    expect(body).toContain('<param pname="+sip.rendering" pvalue="no"/>');
    const [d] = reparse(body);
    expect(d).toMatchObject({ direction: 'initiator', state: 'confirmed', stateEvent: 'remote-bye', stateCode: 200, duration: 42 });
  });

  it('the watched entity is rendered, not the publisher’s', () => {
    const other = ringingBody().replace('entity="sip:201@pbx.example.com"', 'entity="sip:201@10.0.0.5"');
    const body = text(dialog.compose([pub(other, 1)], null), 0, 'sip:201@tenant.example.com');
    expect(body).toContain('entity="sip:201@tenant.example.com"');
  });
});

describe('dialog: escaping hostile values', () => {
  const hostile = `<script>alert("x")</script> & 'quote'`;
  const published = `<dialog-info xmlns="${NS}" version="1" state="full" entity="${ENTITY}">
  <dialog id="id&quot;&gt;&lt;x" call-id="c&amp;&lt;&apos;" local-tag="t&quot;" remote-tag="r'&gt;" direction="recipient"><state>early</state>
    <remote><identity display="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &apos;quote&apos;">sip:100@x?a=&lt;b&gt;</identity><target uri="sip:1@x&quot;&gt;"><param pname="a&amp;" pvalue="&lt;/target&gt;"/></target></remote>
  </dialog></dialog-info>`;

  it('every value that came from outside is escaped and reads back unchanged', () => {
    expect(dialog.validate(Buffer.from(published), 'application/dialog-info+xml')).toBeNull();
    const st = dialog.compose([pub(published, 1)], null);
    const body = text(st);
    expect(body).not.toContain('<script>');
    expect(body).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &apos;quote&apos;');
    const [d] = reparse(body);
    expect(d!.id).toBe('id"><x');
    expect(d!.callId).toBe(`c&<'`);
    expect(d!.localTag).toBe('t"');
    expect(d!.remoteTag).toBe(`r'>`);
    expect(d!.remote).toEqual({ identity: 'sip:100@x?a=<b>', display: hostile, target: 'sip:1@x">', targetParams: [{ pname: 'a&', pvalue: '</target>' }] });
    // The document structure is intact: one dialog, one remote, one param.
    const root = readXml(body);
    if (!root.ok) throw new Error(root.reason);
    const dl = children(root.root, 'dialog', NS);
    expect(dl).toHaveLength(1);
    expect(children(child(child(dl[0]!, 'remote')!, 'target')!, 'param')).toHaveLength(1);
  });

  it('a hostile entity URI is escaped too', () => {
    const entity = 'sip:"><evil a="@example.com';
    const body = text(dialog.idle(), 0, entity);
    const r = readXml(body);
    if (!r.ok) throw new Error(r.reason);
    expect(attr(r.root, 'entity')).toBe(entity);
    expect(r.root.children).toHaveLength(1);
  });

  it('a stored state with junk in it renders only what is well-typed', () => {
    const junk = { event: 'dialog' as const, summary: 'early', source: 'publication' as const, data: { dialogs: [
      { id: 'ok', state: 'early', direction: 'up"><x', stateCode: '200"/><y', duration: -1, callId: 42,
        remote: { identity: 'sip:1@x', display: 7, targetParams: [{ pname: 'a' }, null, { pname: 'b', pvalue: 'c' }] } },
      { id: 'bad', state: '<evil/>' },
      { id: 5, state: 'early' },
      null,
    ] } };
    const body = text(junk);
    expect(reparse(body)).toEqual([{ id: 'ok', state: 'early', remote: { identity: 'sip:1@x', targetParams: [] } }]);
    expect(body).not.toMatch(/evil|<x|<y/);
  });

  it('UTF-8 display names: Buffer length is the byte length', () => {
    const utf = `<dialog-info xmlns="${NS}" version="1" state="full" entity="${ENTITY}"><dialog id="x" direction="recipient"><state>early</state><remote><identity display="Zoë Łukasz 山田 😀">sip:100@pbx.example.com</identity></remote></dialog></dialog-info>`;
    const bytes = dialog.render(dialog.compose([pub(utf, 1)], null), ENTITY).forVersion(3);
    const s = bytes.toString('utf8');
    expect(s).toContain('display="Zoë Łukasz 山田 😀"');
    expect(bytes.length).toBe(Buffer.byteLength(s, 'utf8'));
    expect(bytes.length).toBeGreaterThan(s.length);
    expect(reparse(s)[0]!.remote!.display).toBe('Zoë Łukasz 山田 😀');
  });
});

describe('dialog: validate', () => {
  const ok = ringingBody();
  const v = (body: string, ct = 'application/dialog-info+xml') => dialog.validate(Buffer.from(body), ct);
  it('accepts the real thing and refuses other content types', () => {
    expect(v(ok)).toBeNull();
    expect(v(ok, 'Application/Dialog-Info+XML')).toBeNull();
    expect(v(ok, 'application/pidf+xml')).toMatch(/content type/);
  });
  it.each([
    ['wrong root', `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>`, /root element/],
    ['no namespace', `<dialog-info version="1" state="full" entity="sip:a@b"/>`, /root element/],
    ['no version', `<dialog-info xmlns="${NS}" state="full" entity="sip:a@b"/>`, /version/],
    ['bad state', `<dialog-info xmlns="${NS}" version="1" state="half" entity="sip:a@b"/>`, /state/],
    ['no entity', `<dialog-info xmlns="${NS}" version="1" state="full"/>`, /entity/],
    ['dialog without id', `<dialog-info xmlns="${NS}" version="1" state="full" entity="sip:a@b"><dialog><state>early</state></dialog></dialog-info>`, /id/],
    ['duplicate id', `<dialog-info xmlns="${NS}" version="1" state="full" entity="sip:a@b"><dialog id="1"><state>early</state></dialog><dialog id="1"><state>early</state></dialog></dialog-info>`, /unique/],
    ['bad direction', `<dialog-info xmlns="${NS}" version="1" state="full" entity="sip:a@b"><dialog id="1" direction="up"><state>early</state></dialog></dialog-info>`, /direction/],
    ['bad state value', `<dialog-info xmlns="${NS}" version="1" state="full" entity="sip:a@b"><dialog id="1"><state>ringing</state></dialog></dialog-info>`, /state/],
    ['no state', `<dialog-info xmlns="${NS}" version="1" state="full" entity="sip:a@b"><dialog id="1"/></dialog-info>`, /state/],
    ['not XML', 'Messages-Waiting: yes', /root element|well-formed/],
    ['truncated', ok.slice(0, ok.length - 20), /unterminated|mismatched|end tag/],
    ['empty', '', /root/],
  ])('refuses %s', (_name, body, reason) => {
    expect(v(body)).toMatch(reason);
  });
});

describe('dialog: invariants over random publications (property)', () => {
  const STATES = ['trying', 'proceeding', 'early', 'confirmed', 'terminated'] as const;
  const RANK: Record<string, number> = { confirmed: 4, early: 3, proceeding: 2, trying: 1, terminated: 0 };
  const SUMMARY: Record<string, string> = { confirmed: 'confirmed', early: 'early', proceeding: 'early', trying: 'early', terminated: 'terminated' };
  const hostileText = fc.string({ maxLength: 12 }).map((s) => s.replace(/[\u0000-\u001f\ufffe\uffff]/g, '') + '<&"\'>');
  const dialogArb = fc.record({
    id: fc.constantFrom('a', 'b', 'c', 'd'),
    state: fc.constantFrom(...STATES),
    callId: fc.option(hostileText, { nil: undefined }),
    display: fc.option(hostileText, { nil: undefined }),
  });
  const pubArb = fc.record({
    dialogs: fc.uniqueArray(dialogArb, { selector: (d) => d.id, maxLength: 4 }),
    updatedAt: fc.integer({ min: 0, max: 50 }),
  });
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
  const toBody = (ds: Array<{ id: string; state: string; callId?: string; display?: string }>) =>
    `<dialog-info xmlns="${NS}" version="1" state="full" entity="${ENTITY}">${ds.map((d) =>
      `<dialog id="${d.id}"${d.callId !== undefined ? ` call-id="${esc(d.callId)}"` : ''} direction="recipient"><state>${d.state}</state>`
      + (d.display !== undefined ? `<remote><identity display="${esc(d.display)}">sip:x@y</identity></remote>` : '')
      + '</dialog>').join('')}</dialog-info>`;

  it('always one or more unique dialogs, a valid body, the right summary and override', () => {
    fc.assert(fc.property(
      fc.array(pubArb, { maxLength: 5 }),
      fc.option(fc.constantFrom('early', 'confirmed', 'terminated' as const), { nil: null }),
      fc.boolean(),
      fc.nat({ max: 1_000_000 }),
      (pubs, manual, withPrevious, version) => {
        const inputs = pubs.map((p, i) => pub(toBody(p.dialogs), p.updatedAt, `e${i}`));
        for (const i of inputs) expect(dialog.validate(i.body, 'application/dialog-info+xml')).toBeNull();
        const previous = withPrevious ? dialog.compose([pub(ringingBody('confirmed'), 0)], null) : undefined;
        const st = dialog.compose(inputs, manual, previous);
        const body = dialog.render(st, ENTITY).forVersion(version).toString('utf8');
        expect(body).toContain(`version="${version}"`);
        const out = reparse(body);
        expect(out.length).toBeGreaterThanOrEqual(1);
        expect(new Set(out.map((d) => d.id)).size).toBe(out.length);
        expect(st.summary).toBe(SUMMARY[out[0]!.state]);
        for (let i = 1; i < out.length; i++) expect(RANK[out[i - 1]!.state]!).toBeGreaterThanOrEqual(RANK[out[i]!.state]!);
        if (manual) {
          expect(out).toEqual([{ id: '201', direction: 'recipient', state: manual }]);
          return;
        }
        // The newest publication that mentions an id decides that dialog's state.
        const sorted = pubs.map((p, i) => ({ p, i })).sort((a, b) => a.p.updatedAt - b.p.updatedAt || a.i - b.i);
        const latest = new Map<string, string>();
        for (const { p } of sorted) for (const d of p.dialogs) latest.set(d.id, d.state);
        const anyActive = [...latest.values()].some((s) => s !== 'terminated');
        if (anyActive) expect(out.every((d) => d.state !== 'terminated')).toBe(true);
        for (const d of out) if (latest.has(d.id!)) expect(d.state).toBe(latest.get(d.id!));
        if (latest.size === 0) {
          expect(out).toHaveLength(1);
          expect(out[0]!.state).toBe('terminated');
          expect(out[0]!.id).toBe(withPrevious ? 'a84b4c76e66710' : '201');
        }
      },
    ), { numRuns: 300 });
  });
});
