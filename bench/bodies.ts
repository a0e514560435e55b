// Micro-bench of the event-package hot paths: validate (on PUBLISH), compose + render (once per state change) and
// forVersion (once per watcher per NOTIFY). Run: npx tsx bench/bodies.ts [iterations]
import { PACKAGES } from '../src/presence/packages/index.js';
import type { PublicationInput } from '../src/presence/packages/types.js';

const N = Number(process.argv[2] ?? 20_000);
const ENTITY = 'sip:201@pbx.example.com';

const ringing = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full" entity="${ENTITY}">
  <dialog id="a84b4c76e66710" call-id="a84b4c76e66710@10.0.0.5" local-tag="1928301774" remote-tag="8321234356" direction="recipient">
    <state>early</state>
    <local><identity display="201">sip:201@pbx.example.com</identity><target uri="sip:201@pbx.example.com"/></local>
    <remote><identity display="Bob &amp; Zoë">sip:100@pbx.example.com</identity><target uri="sip:100@pbx.example.com"/></remote>
  </dialog>
</dialog-info>`);
const pidf = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="${ENTITY}">
  <tuple id="t1"><status><basic>open</basic></status><note>On the phone</note></tuple>
  <dm:person id="p1"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>
</presence>`);
const mwi = Buffer.from('Messages-Waiting: yes\r\nMessage-Account: sip:*97@pbx.example.com\r\nVoice-Message: 2/8 (0/2)\r\n');

function time(label: string, n: number, fn: (i: number) => unknown): void {
  for (let i = 0; i < Math.min(n, 1000); i++) fn(i); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  console.log(`${label.padEnd(40)} ${us.toFixed(2).padStart(8)} µs/op ${Math.round(1e6 / us).toLocaleString('en').padStart(12)} op/s`);
}

const pub = (body: Buffer, contentType: string): PublicationInput[] => [{ etag: 'e', contentType, body, updatedAt: 1 }];
const dialogPubs = pub(ringing, 'application/dialog-info+xml');
const d = PACKAGES.dialog;
const rendered = d.render(d.compose(dialogPubs, null), ENTITY);

console.log(`node ${process.version}, ${N} iterations each`);
time('dialog validate (PUBLISH body)', N, () => d.validate(ringing, 'application/dialog-info+xml'));
time('dialog compose + render (per change)', N, () => d.render(d.compose(dialogPubs, null), ENTITY));
time('dialog forVersion (per watcher)', N * 10, (i) => rendered.forVersion(i));
time('dialog idle render', N, () => d.render(d.idle(), ENTITY).forVersion(0));
time('presence validate', N, () => PACKAGES.presence.validate(pidf, 'application/pidf+xml'));
time('presence compose + render', N, () => PACKAGES.presence.render(PACKAGES.presence.compose(pub(pidf, 'application/pidf+xml'), null), ENTITY));
time('message-summary compose + render', N, () => PACKAGES['message-summary'].render(
  PACKAGES['message-summary'].compose(pub(mwi, 'application/simple-message-summary'), null), ENTITY));
const hostile = Buffer.from('<a>'.repeat(20_000));
time('hostile 60 kB deep nesting refused', Math.max(1, N / 100), () => d.validate(hostile, 'application/dialog-info+xml'));
