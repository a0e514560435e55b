// The presence event package (RFC 3856) with PIDF bodies (RFC 3863), application/pidf+xml, plus an RPID activity
// (RFC 4480) in a data-model <person> (RFC 4479) so softphones show "on the phone".
//
// Choices (kept simple on purpose):
// - The package renders from its own publications; it does not derive presence from dialog state, because a PBX
//   that wants presence watchers served publishes PIDF itself (Asterisk and FreeSWITCH do), and two sources of
//   truth for one lamp would disagree.
// - Several live publications: basic is `open` if any says open (the presentity is reachable on some device,
//   RFC 3863 §4.1.4), and the note and activities come from the newest publication whose basic matches.
// - No publication: `open` with the note "Ready" (the neutral state, RFC 6665 §4.2.1.2).
// - A manual lamp state (the admin API) overrides publications: early → open "Ringing", confirmed → open
//   "On the phone", both with activity on-the-phone; terminated → open "Ready".
import type { ManualDialogState } from '../service.js';
import type { ComposedState, EventPackage, PublicationInput, RenderedBody } from './types.js';
import type { BodyLimits } from './common.js';
import { isMediaType, looksLikeUri, ownBuffer, resolveLimits, staticBody, oldestFirst } from './common.js';
import { attr, child, children, escapeXml, readXml, type XmlElement } from './xml.js';

export const PIDF_NS = 'urn:ietf:params:xml:ns:pidf';
export const PIDF_DATA_MODEL_NS = 'urn:ietf:params:xml:ns:pidf:data-model';
export const RPID_NS = 'urn:ietf:params:xml:ns:pidf:rpid';
export const PIDF_CONTENT_TYPE = 'application/pidf+xml';

/**
 * The activities of RFC 4480 §3.2 (plus `unknown`). Only these are passed through: an activity is an element
 * name, which cannot be escaped, so anything else a publisher sends is dropped.
 */
export const RPID_ACTIVITIES: ReadonlySet<string> = new Set([
  'appointment', 'away', 'breakfast', 'busy', 'dinner', 'holiday', 'in-transit', 'looking-for-work', 'lunch', 'meal',
  'meeting', 'on-the-phone', 'performance', 'permanent-absence', 'playing', 'presentation', 'shopping', 'sleeping',
  'spectator', 'steering', 'travel', 'tv', 'unknown', 'vacation', 'working', 'worship',
]);

export type BasicStatus = 'open' | 'closed';

/** JSON-safe, so the hub may persist it. */
export interface PresenceData {
  basic: BasicStatus;
  note?: string;
  activities: string[];
}

export type PidfParse =
  | { ok: true; entity: string; basic?: BasicStatus; note?: string; activities: string[] }
  | { ok: false; reason: string };

function firstNote(el: XmlElement, limits: BodyLimits): string | undefined {
  const note = child(el, 'note', PIDF_NS)?.text.trim();
  return note ? note.slice(0, limits.maxNoteLength) : undefined;
}

/** Parse and check a PIDF document (RFC 3863 §4). Reasons are used as 400 reason phrases. */
export function parsePidf(body: Buffer | string, limitsIn?: Partial<BodyLimits>): PidfParse {
  const limits = resolveLimits(limitsIn);
  const doc = readXml(body, limits.xml);
  if (!doc.ok) return doc;
  const root = doc.root;
  if (root.local !== 'presence' || root.ns !== PIDF_NS) {
    return { ok: false, reason: 'root element is not presence in urn:ietf:params:xml:ns:pidf' };
  }
  // entity is required and a URI (RFC 3863 §4.1.1).
  const entity = attr(root, 'entity');
  if (entity === undefined || !looksLikeUri(entity)) return { ok: false, reason: 'presence entity missing or not a URI' };
  const tuples = children(root, 'tuple', PIDF_NS);
  if (tuples.length > limits.maxTuples) return { ok: false, reason: `more than ${limits.maxTuples} tuple elements` };
  let basic: BasicStatus | undefined;
  const basics: (BasicStatus | undefined)[] = [];
  for (const t of tuples) {
    if (!attr(t, 'id')) return { ok: false, reason: 'tuple without id' };
    // Every tuple has a status (RFC 3863 §4.1.2); basic inside it is optional, but open or closed when present.
    const status = child(t, 'status', PIDF_NS);
    if (!status) return { ok: false, reason: 'tuple without status' };
    const b = child(status, 'basic', PIDF_NS);
    let v: BasicStatus | undefined;
    if (b) {
      const text = b.text.trim();
      if (text !== 'open' && text !== 'closed') return { ok: false, reason: 'basic must be open or closed' };
      v = text;
      if (v === 'open' || basic === undefined) basic = v;
    }
    basics.push(v);
  }
  // The note of the first tuple that says what the document says, else the document's own, else any tuple's.
  let note: string | undefined;
  tuples.forEach((t, i) => { if (note === undefined && basic !== undefined && basics[i] === basic) note = firstNote(t, limits); });
  note ??= firstNote(root, limits);
  for (const t of tuples) if (note === undefined) note = firstNote(t, limits);
  // RPID activities may sit in a data-model person (RFC 4479 §3.3), in a tuple, or at the top (older publishers).
  const activities: string[] = [];
  const collect = (el: XmlElement): void => {
    for (const acts of children(el, 'activities', RPID_NS)) {
      for (const a of acts.children) {
        if (a.ns === RPID_NS && RPID_ACTIVITIES.has(a.local) && !activities.includes(a.local)) activities.push(a.local);
      }
    }
  };
  collect(root);
  for (const p of children(root, 'person', PIDF_DATA_MODEL_NS)) collect(p);
  for (const t of tuples) collect(t);
  const out: PidfParse = { ok: true, entity, activities };
  if (basic) out.basic = basic;
  if (note !== undefined) out.note = note;
  return out;
}

const MANUAL: Record<ManualDialogState, PresenceData> = {
  early: { basic: 'open', note: 'Ringing', activities: ['on-the-phone'] },
  confirmed: { basic: 'open', note: 'On the phone', activities: ['on-the-phone'] },
  terminated: { basic: 'open', note: 'Ready', activities: [] },
};

function state(data: PresenceData, source: ComposedState['source']): ComposedState {
  return { event: 'presence', summary: data.basic, source, data };
}

function isPresenceData(data: unknown): data is PresenceData {
  const d = data as PresenceData;
  return typeof d === 'object' && d !== null && (d.basic === 'open' || d.basic === 'closed') && Array.isArray(d.activities);
}

export function createPresencePackage(limitsIn?: Partial<BodyLimits>): EventPackage {
  const limits = resolveLimits(limitsIn);
  const idleData = (): PresenceData => ({ basic: 'open', note: 'Ready', activities: [] });
  // Each publication's body is parsed once, not on every recomposition (see the dialog package); results are
  // never mutated (compose copies `activities`).
  const parsedBodies = new WeakMap<Buffer, PidfParse>();
  const parse = (body: Buffer): PidfParse => {
    let r = parsedBodies.get(body);
    if (r === undefined) parsedBodies.set(body, (r = parsePidf(body, limits)));
    return r;
  };
  return {
    name: 'presence',
    contentType: PIDF_CONTENT_TYPE,
    acceptsPublish: [PIDF_CONTENT_TYPE],

    validate(body: Buffer, contentType: string): string | null {
      if (!isMediaType(contentType, PIDF_CONTENT_TYPE)) return 'unsupported content type for presence';
      const parsed = parse(body);
      return parsed.ok ? null : parsed.reason;
    },

    compose(pubs: readonly PublicationInput[], manual: ManualDialogState | null): ComposedState {
      if (manual) {
        const m = MANUAL[manual];
        return state({ ...m, activities: [...m.activities] }, 'manual');
      }
      const ordered = oldestFirst(pubs);
      const parsed: PidfParse[] = [];
      for (const p of ordered) {
        if (!isMediaType(p.contentType, PIDF_CONTENT_TYPE)) continue;
        const r = parse(p.body);
        if (r.ok) parsed.push(r);
      }
      if (!parsed.length) return state(idleData(), 'none');
      // A publication without any basic says nothing about reachability; count it as open only if nothing else speaks.
      const anyOpen = parsed.some((r) => r.ok && r.basic === 'open');
      const anyClosed = parsed.some((r) => r.ok && r.basic === 'closed');
      const basic: BasicStatus = anyOpen || !anyClosed ? 'open' : 'closed';
      let winner: PidfParse | undefined;
      for (let i = parsed.length - 1; i >= 0; i--) {
        const r = parsed[i]!;
        if (r.ok && (r.basic ?? 'open') === basic) { winner = r; break; }
      }
      const data: PresenceData = { basic, activities: [] };
      if (winner?.ok) {
        if (winner.note !== undefined) data.note = winner.note;
        data.activities = [...winner.activities];
      }
      return state(data, 'publication');
    },

    idle(): ComposedState {
      return state(idleData(), 'none');
    },

    render(composed: ComposedState, entity: string): RenderedBody {
      const d = isPresenceData(composed.data) ? composed.data : idleData();
      // Tuple and person ids are xs:ID (NCName), which a user part like `201` or `*3101` is not: fixed ids keep
      // them valid and persistent across NOTIFYs (RFC 3863 §4.1.2).
      let xml = '<?xml version="1.0" encoding="UTF-8"?>\n'
        + `<presence xmlns="${PIDF_NS}" xmlns:dm="${PIDF_DATA_MODEL_NS}" xmlns:rpid="${RPID_NS}" entity="${escapeXml(entity)}">\n`
        + `  <tuple id="t1"><status><basic>${d.basic === 'closed' ? 'closed' : 'open'}</basic></status>`
        + (d.note !== undefined ? `<note>${escapeXml(d.note)}</note>` : '')
        + '</tuple>\n';
      const acts = d.activities.filter((a) => RPID_ACTIVITIES.has(a));
      if (acts.length) {
        xml += `  <dm:person id="p1"><rpid:activities>${acts.map((a) => `<rpid:${a}/>`).join('')}</rpid:activities></dm:person>\n`;
      }
      xml += '</presence>\n';
      return staticBody(PIDF_CONTENT_TYPE, ownBuffer(xml));
    },
  };
}

export const presencePackage: EventPackage = createPresencePackage();
