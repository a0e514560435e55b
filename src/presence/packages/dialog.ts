// The dialog event package (RFC 4235), application/dialog-info+xml: what lights BLF lamps.
// Bodies follow sip-requirements.md §2.1: state="full", entity = the watched AOR, always at least one <dialog>
// (Yealink breaks on an empty dialog-info), and a published dialog's call-id, tags, direction, identities and
// targets passed through so phones can pick up a ringing call with Replaces. Nothing is invented: a state with no
// real call behind it (manual, idle) carries no call-id and no tags, because a made-up Call-ID makes the phone send
// a Replaces INVITE the PBX rejects with 481.
//
// Composition rules:
// - A manual state (the admin API) overrides every publication while set: one dialog, id = the user part.
// - Live publications: their dialogs are merged by id, the newest publication (updatedAt) winning; ended dialogs
//   are dropped when another is still active; the rest are ordered most active first (see ACTIVITY), and the
//   first gives the summary. All ended: they are reported as they are.
// - Nothing live: one terminated dialog, reusing the id, call-id and tags of the dialog reported last (§4.3),
//   or id = the user part when there was none.
import type { ManualDialogState } from '../service.js';
import type { ComposedState, EventPackage, PublicationInput, RenderedBody } from './types.js';
import type { BodyLimits } from './common.js';
import { isMediaType, ownBuffer, resolveLimits, userPart, looksLikeUri, oldestFirst } from './common.js';
import { attr, child, children, escapeXml, readXml, type XmlElement } from './xml.js';

export const DIALOG_INFO_NS = 'urn:ietf:params:xml:ns:dialog-info';
export const DIALOG_INFO_CONTENT_TYPE = 'application/dialog-info+xml';

/** <state> values (RFC 4235 §3.7.1). */
export type DialogStateValue = 'trying' | 'proceeding' | 'early' | 'confirmed' | 'terminated';
const STATES: readonly DialogStateValue[] = ['trying', 'proceeding', 'early', 'confirmed', 'terminated'];

/**
 * How active a dialog is, for choosing the summary and the order of <dialog> elements: a line in a call (busy)
 * outranks one ringing, which outranks one being set up; terminated is the least. This matches Asterisk's default
 * mapping of INUSE+RINGING to "confirmed". The most active dialog goes first, as some phones read only the first.
 */
const ACTIVITY: Record<DialogStateValue, number> = { confirmed: 4, early: 3, proceeding: 2, trying: 1, terminated: 0 };

/** The short lamp state (the API's `state`): trying and proceeding are a call being set up, shown as early. */
const SUMMARY: Record<DialogStateValue, ManualDialogState> = {
  confirmed: 'confirmed', early: 'early', proceeding: 'early', trying: 'early', terminated: 'terminated',
};

export interface TargetParam { pname: string; pvalue: string }

/** <local> or <remote> (RFC 4235 §4.1.6). */
export interface DialogParticipant {
  identity?: string;
  display?: string;
  target?: string;
  /** e.g. `+sip.rendering`=`no` for a call on hold (RFC 4235 §4.1.6.2, RFC 3840). */
  targetParams: TargetParam[];
}

/** One <dialog> (RFC 4235 §4.1.1). JSON-safe, so the hub may persist it. */
export interface DialogEntry {
  /** null: no real dialog behind it; rendered with the presentity's user part as the id. */
  id: string | null;
  callId?: string;
  localTag?: string;
  remoteTag?: string;
  direction?: 'initiator' | 'recipient';
  state: DialogStateValue;
  /** The <state> `event` and `code` attributes (RFC 4235 §4.1.3), passed through. */
  stateEvent?: string;
  stateCode?: number;
  duration?: number;
  local?: DialogParticipant;
  remote?: DialogParticipant;
}

export interface DialogData { dialogs: DialogEntry[] }

export type DialogInfoParse =
  | { ok: true; version: number; state: 'full' | 'partial'; entity: string; dialogs: DialogEntry[] }
  | { ok: false; reason: string };

function participant(el: XmlElement | undefined, limits: BodyLimits): DialogParticipant | undefined {
  if (!el) return undefined;
  const p: DialogParticipant = { targetParams: [] };
  const identity = child(el, 'identity', DIALOG_INFO_NS);
  if (identity) {
    const uri = identity.text.trim();
    if (uri) p.identity = uri;
    const display = attr(identity, 'display');
    if (display !== undefined) p.display = display;
  }
  const target = child(el, 'target', DIALOG_INFO_NS);
  if (target) {
    const uri = attr(target, 'uri');
    if (uri) p.target = uri;
    for (const param of children(target, 'param', DIALOG_INFO_NS)) {
      const pname = attr(param, 'pname');
      const pvalue = attr(param, 'pvalue');
      if (pname && pvalue !== undefined && p.targetParams.length < limits.maxTargetParams) p.targetParams.push({ pname, pvalue });
    }
  }
  return p.identity !== undefined || p.target !== undefined || p.targetParams.length ? p : undefined;
}

/** Parse and check a dialog-info document (RFC 4235 §4). The reason strings are used as 400 reason phrases. */
export function parseDialogInfo(body: Buffer | string, limitsIn?: Partial<BodyLimits>): DialogInfoParse {
  const limits = resolveLimits(limitsIn);
  const doc = readXml(body, limits.xml);
  if (!doc.ok) return doc;
  const root = doc.root;
  if (root.local !== 'dialog-info' || root.ns !== DIALOG_INFO_NS) {
    return { ok: false, reason: 'root element is not dialog-info in urn:ietf:params:xml:ns:dialog-info' };
  }
  const version = attr(root, 'version');
  if (version === undefined || !/^[0-9]{1,10}$/.test(version)) return { ok: false, reason: 'dialog-info version missing or not a number' };
  const state = attr(root, 'state');
  if (state !== 'full' && state !== 'partial') return { ok: false, reason: 'dialog-info state must be full or partial' };
  const entity = attr(root, 'entity');
  if (entity === undefined || !looksLikeUri(entity)) return { ok: false, reason: 'dialog-info entity missing or not a URI' };
  const elements = children(root, 'dialog', DIALOG_INFO_NS);
  if (elements.length > limits.maxDialogs) return { ok: false, reason: `more than ${limits.maxDialogs} dialog elements` };
  const dialogs: DialogEntry[] = [];
  const seen = new Set<string>();
  for (const el of elements) {
    const id = attr(el, 'id');
    if (!id) return { ok: false, reason: 'dialog without id' };
    if (seen.has(id)) return { ok: false, reason: 'dialog id not unique' };
    seen.add(id);
    const direction = attr(el, 'direction');
    if (direction !== undefined && direction !== 'initiator' && direction !== 'recipient') {
      return { ok: false, reason: 'dialog direction must be initiator or recipient' };
    }
    const stateEl = child(el, 'state', DIALOG_INFO_NS);
    const value = stateEl?.text.trim() as DialogStateValue | undefined;
    if (!stateEl || !value || !STATES.includes(value)) return { ok: false, reason: 'dialog without a valid state' };
    const d: DialogEntry = { id, state: value };
    const callId = attr(el, 'call-id');
    const localTag = attr(el, 'local-tag');
    const remoteTag = attr(el, 'remote-tag');
    if (callId) d.callId = callId;
    if (localTag) d.localTag = localTag;
    if (remoteTag) d.remoteTag = remoteTag;
    if (direction) d.direction = direction;
    const event = attr(stateEl, 'event');
    if (event && /^[A-Za-z][A-Za-z-]{0,31}$/.test(event)) d.stateEvent = event;
    const code = attr(stateEl, 'code');
    if (code && /^[1-6][0-9]{2}$/.test(code)) d.stateCode = Number(code);
    const duration = child(el, 'duration', DIALOG_INFO_NS)?.text.trim();
    if (duration && /^[0-9]{1,10}$/.test(duration)) d.duration = Number(duration);
    const local = participant(child(el, 'local', DIALOG_INFO_NS), limits);
    const remote = participant(child(el, 'remote', DIALOG_INFO_NS), limits);
    if (local) d.local = local;
    if (remote) d.remote = remote;
    dialogs.push(d);
  }
  return { ok: true, version: Number(version), state, entity, dialogs };
}

function isDialogData(data: unknown): data is DialogData {
  return typeof data === 'object' && data !== null && Array.isArray((data as DialogData).dialogs);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const uint = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);

function cleanParticipant(raw: unknown, maxParams: number): DialogParticipant | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const p: DialogParticipant = { targetParams: [] };
  const identity = str(r.identity);
  const display = str(r.display);
  const target = str(r.target);
  if (identity !== undefined) p.identity = identity;
  if (display !== undefined && identity !== undefined) p.display = display;
  if (target !== undefined) p.target = target;
  if (Array.isArray(r.targetParams)) {
    for (const prm of r.targetParams as unknown[]) {
      const pname = str((prm as TargetParam | null)?.pname);
      const pvalue = str((prm as TargetParam | null)?.pvalue);
      if (pname && pvalue !== undefined && p.targetParams.length < maxParams) p.targetParams.push({ pname, pvalue });
    }
  }
  return p.identity !== undefined || p.target !== undefined ? p : undefined;
}

/**
 * A dialog entry as the renderer may trust it. `data` is ours, but it may have been persisted and read back, so
 * render and the idle-after-call rule take nothing from it on faith: wrong types are dropped, not rendered.
 */
function cleanEntry(raw: unknown, maxParams: number): DialogEntry | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const state = r.state as DialogStateValue;
  if (!STATES.includes(state)) return undefined;
  if (r.id !== null && (typeof r.id !== 'string' || !r.id)) return undefined;
  const d: DialogEntry = { id: r.id as string | null, state };
  const callId = str(r.callId), localTag = str(r.localTag), remoteTag = str(r.remoteTag), stateEvent = str(r.stateEvent);
  if (callId !== undefined) d.callId = callId;
  if (localTag !== undefined) d.localTag = localTag;
  if (remoteTag !== undefined) d.remoteTag = remoteTag;
  if (r.direction === 'initiator' || r.direction === 'recipient') d.direction = r.direction;
  if (stateEvent !== undefined) d.stateEvent = stateEvent;
  const code = uint(r.stateCode), duration = uint(r.duration);
  if (code !== undefined) d.stateCode = code;
  if (duration !== undefined) d.duration = duration;
  const local = cleanParticipant(r.local, maxParams), remote = cleanParticipant(r.remote, maxParams);
  if (local) d.local = local;
  if (remote) d.remote = remote;
  return d;
}

/** The well-typed entries of `data`, ids unique in the document (RFC 4235 §4.1.1), within the limits. */
function cleanDialogs(data: unknown, limits: BodyLimits): DialogEntry[] {
  if (!isDialogData(data)) return [];
  const out: DialogEntry[] = [];
  const ids = new Set<string | null>();
  for (const raw of data.dialogs) {
    const d = cleanEntry(raw, limits.maxTargetParams);
    if (!d || ids.has(d.id)) continue;
    ids.add(d.id);
    out.push(d);
    if (out.length >= limits.maxDialogs) break;
  }
  return out;
}

/**
 * The dialog to end under its own id when nothing is left (RFC 4235 §4.3: report the end of a reported dialog
 * with the same id instead of dropping it, so no phone keeps a stale lamp). Its call-id and tags are real, they
 * came from the call that ended; a manual state had none to keep.
 */
function endedDialog(previous: ComposedState | undefined, limits: BodyLimits): DialogEntry | undefined {
  if (!previous || previous.event !== 'dialog' || previous.source === 'manual') return undefined;
  const d = cleanDialogs(previous.data, limits)[0];
  if (!d || d.id === null) return undefined;
  const ended: DialogEntry = { id: d.id, state: 'terminated' };
  if (d.callId) ended.callId = d.callId;
  if (d.localTag) ended.localTag = d.localTag;
  if (d.remoteTag) ended.remoteTag = d.remoteTag;
  ended.direction = d.direction ?? 'recipient';
  return ended;
}

function state(dialogs: DialogEntry[], source: ComposedState['source']): ComposedState {
  const data: DialogData = { dialogs };
  return { event: 'dialog', summary: SUMMARY[dialogs[0]!.state], source, data };
}

function idleDialog(): DialogEntry {
  return { id: null, direction: 'recipient', state: 'terminated' };
}

// --- rendering ---

function renderParticipant(tag: 'local' | 'remote', p: DialogParticipant | undefined): string {
  if (!p) return '';
  let out = `<${tag}>`;
  if (p.identity !== undefined) {
    const display = p.display !== undefined ? ` display="${escapeXml(p.display)}"` : '';
    out += `<identity${display}>${escapeXml(p.identity)}</identity>`;
  }
  if (p.target !== undefined) {
    const uri = ` uri="${escapeXml(p.target)}"`;
    if (p.targetParams.length) {
      out += `<target${uri}>`;
      for (const prm of p.targetParams) out += `<param pname="${escapeXml(prm.pname)}" pvalue="${escapeXml(prm.pvalue)}"/>`;
      out += '</target>';
    } else {
      out += `<target${uri}/>`;
    }
  }
  return `${out}</${tag}>`;
}

function renderDialog(d: DialogEntry, user: string): string {
  let open = `<dialog id="${escapeXml(d.id ?? user)}"`;
  if (d.callId !== undefined) open += ` call-id="${escapeXml(d.callId)}"`;
  if (d.localTag !== undefined) open += ` local-tag="${escapeXml(d.localTag)}"`;
  if (d.remoteTag !== undefined) open += ` remote-tag="${escapeXml(d.remoteTag)}"`;
  if (d.direction !== undefined) open += ` direction="${d.direction}"`;
  open += '>';
  let stateAttrs = '';
  if (d.stateEvent !== undefined) stateAttrs += ` event="${escapeXml(d.stateEvent)}"`;
  if (d.stateCode !== undefined) stateAttrs += ` code="${d.stateCode}"`;
  const stateEl = `<state${stateAttrs}>${d.state}</state>`;
  const inner = [
    d.duration !== undefined ? `<duration>${d.duration}</duration>` : '',
    renderParticipant('local', d.local),
    renderParticipant('remote', d.remote),
  ].filter(Boolean);
  // The minimal form on one line, the rich form one element a line (as sip-requirements.md §2.1).
  if (!inner.length) return `  ${open}${stateEl}</dialog>\n`;
  return `  ${open}\n    ${stateEl}\n${inner.map((l) => `    ${l}\n`).join('')}  </dialog>\n`;
}

/** Everything before the version number: the same for every body, so one Buffer for all. */
const DIALOG_INFO_HEAD = Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n'
  + `<dialog-info xmlns="${DIALOG_INFO_NS}" version="`, 'utf8');

/**
 * dialog-info bodies differ per subscription only in `version` (RFC 4235 §4.1: a per-subscription counter), so
 * the document is rendered once around that attribute and the number spliced in for each watcher.
 */
class DialogInfoBody implements RenderedBody {
  readonly contentType = DIALOG_INFO_CONTENT_TYPE;
  /** Version 0, every new watcher's first NOTIFY (RFC 4235 §4.1): built once per state, shared by all of them. */
  private first: Buffer | undefined;
  /**
   * The last other version built: watchers that subscribed around the same time are at the same version, so most
   * of a fan-out shares one body (it is never written to after it is built).
   */
  private lastVersion = -1;
  private last: Buffer | undefined;
  constructor(private readonly head: Buffer, private readonly tail: Buffer) {}
  forVersion(version: number): Buffer {
    if (version === 0) return (this.first ??= this.build(0));
    if (version === this.lastVersion) return this.last!;
    if (!Number.isSafeInteger(version) || version < 0) throw new RangeError('dialog-info version must be a non-negative integer');
    this.last = this.build(version);
    this.lastVersion = version;
    return this.last;
  }
  private build(version: number): Buffer {
    // The number's digits go straight into the body: no Buffer and no array for them.
    const digits = version < 10 ? 1 : String(version).length;
    // Kept with the state, so in memory of its own (see ownBuffer): a pooled slice would pin its 8 KiB pool.
    const size = this.head.length + digits + this.tail.length;
    const out = Buffer.allocUnsafeSlow(size);
    this.head.copy(out, 0);
    out.write(String(version), this.head.length, 'latin1');
    this.tail.copy(out, this.head.length + digits);
    return out;
  }
}

const NO_DIALOGS: readonly DialogEntry[] = Object.freeze([]);

/**
 * The merge of one presentity's publications: dialogs by id in order of first appearance, each as the newest
 * publication reports it. It is kept with the state it produced, so that the next composition applies only what
 * changed (a publication added, modified or gone) instead of re-merging every live publication: with a PBX that
 * publishes each call on its own, a busy extension holds dozens of them.
 */
class DialogMerge {
  /** The publications merged, oldest first, by body (a modify brings a new Buffer) and content type... */
  private bodies: Buffer[] = [];
  private contentTypes: string[] = [];
  /** ...and the dialogs each one gave. */
  private given: (readonly DialogEntry[])[] = [];
  private readonly byId = new Map<string, DialogEntry>();
  /** Some id came from more than one publication: when one goes, finding who reports it now needs a full merge. */
  private overlapping = false;

  /**
   * Bring the merge to `ordered` (oldest first). False when that cannot be done by removing and appending: the
   * caller merges afresh. Removing a publication that alone gave its ids and appending newer ones is exactly what
   * merging everything again would give, Map order included.
   */
  update(ordered: readonly PublicationInput[], dialogsOf: (p: PublicationInput) => readonly DialogEntry[]): boolean {
    const m = this.bodies.length;
    let i = 0;
    let j = 0;
    let removed: number[] | undefined;
    for (; i < m; i++) {
      const p = ordered[j];
      if (p !== undefined && p.body === this.bodies[i] && p.contentType === this.contentTypes[i]) j++;
      else (removed ??= []).push(i);
    }
    if (removed !== undefined) {
      if (this.overlapping) return false;
      for (const k of removed) for (const d of this.given[k]!) this.byId.delete(d.id!);
      const keep = (_: unknown, k: number): boolean => !removed!.includes(k);
      this.bodies = this.bodies.filter(keep);
      this.contentTypes = this.contentTypes.filter(keep);
      this.given = this.given.filter(keep);
    }
    for (; j < ordered.length; j++) {
      const p = ordered[j]!;
      const dialogs = dialogsOf(p);
      this.bodies.push(p.body);
      this.contentTypes.push(p.contentType);
      this.given.push(dialogs);
      for (const d of dialogs) {
        // Newest wins, in the place where the id first appeared (Map.set keeps the insertion order).
        if (this.byId.has(d.id!)) this.overlapping = true;
        this.byId.set(d.id!, d);
      }
    }
    return true;
  }

  /**
   * The dialogs to report, at most `max`: the live ones most active first (see ACTIVITY), ties in order of first
   * appearance; ended ones are noise beside a live one, and when all have ended they are the coherent end report
   * (RFC 4235 §4.3).
   */
  chosen(max: number): DialogEntry[] {
    const counts = [0, 0, 0, 0, 0];
    for (const d of this.byId.values()) counts[ACTIVITY[d.state]]!++;
    const out: DialogEntry[] = [];
    const live = counts[1]! + counts[2]! + counts[3]! + counts[4]!;
    for (let level = 4; level >= (live > 0 ? 1 : 0) && out.length < max; level--) {
      if (counts[level] === 0) continue;
      for (const d of this.byId.values()) {
        if (ACTIVITY[d.state] !== level) continue;
        out.push(d);
        if (out.length >= max) break;
      }
    }
    return out;
  }
}

export function createDialogPackage(limitsIn?: Partial<BodyLimits>): EventPackage {
  const limits = resolveLimits(limitsIn);
  // A publication's body is parsed once (on PUBLISH, by validate), not again on every recomposition of its
  // presentity: keyed by the body Buffer itself, which the publication keeps unchanged until a modify replaces it.
  // The parse results are never mutated after parsing, so sharing them is safe.
  const parsedBodies = new WeakMap<Buffer, DialogInfoParse>();
  const parse = (body: Buffer): DialogInfoParse => {
    let r = parsedBodies.get(body);
    if (r === undefined) parsedBodies.set(body, (r = parseDialogInfo(body, limits)));
    return r;
  };
  /** The dialogs a publication contributes: none for another content type or a body that no longer parses. */
  const dialogsOf = (p: PublicationInput): readonly DialogEntry[] => {
    if (!isMediaType(p.contentType, DIALOG_INFO_CONTENT_TYPE)) return NO_DIALOGS;
    const parsed = parse(p.body);
    return parsed.ok ? parsed.dialogs : NO_DIALOGS; // validated on PUBLISH; a stored body that no longer parses counts for nothing
  };
  /** The merge each composed state came from, handed on to the next composition of the same presentity. */
  const merges = new WeakMap<ComposedState, DialogMerge>();
  return {
    name: 'dialog',
    contentType: DIALOG_INFO_CONTENT_TYPE,
    acceptsPublish: [DIALOG_INFO_CONTENT_TYPE],

    validate(body: Buffer, contentType: string): string | null {
      if (!isMediaType(contentType, DIALOG_INFO_CONTENT_TYPE)) return 'unsupported content type for dialog';
      const parsed = parse(body);
      return parsed.ok ? null : parsed.reason;
    },

    compose(pubs: readonly PublicationInput[], manual: ManualDialogState | null, previous?: ComposedState): ComposedState {
      // A manual state (the admin API) overrides publications while it is set, and has no call behind it.
      if (manual) return state([{ id: null, direction: 'recipient', state: manual }], 'manual');

      // Several publishers (a PBX per leg, a proxy...): merge their dialogs by id, the newest publication winning.
      // The merge behind `previous` is taken over and only what changed since is applied to it.
      const ordered = oldestFirst(pubs);
      let merge = previous === undefined ? undefined : merges.get(previous);
      if (merge !== undefined) merges.delete(previous!);
      if (merge === undefined || !merge.update(ordered, dialogsOf)) {
        merge = new DialogMerge();
        merge.update(ordered, dialogsOf);
      }
      const chosen = merge.chosen(limits.maxDialogs);
      if (chosen.length) {
        const composed = state(chosen, 'publication');
        merges.set(composed, merge);
        return composed;
      }

      const ended = endedDialog(previous, limits);
      return state([ended ?? idleDialog()], 'none');
    },

    idle(): ComposedState {
      return state([idleDialog()], 'none');
    },

    render(composed: ComposedState, entity: string): RenderedBody {
      const clean = cleanDialogs(composed.data, limits);
      const dialogs = clean.length ? clean : [idleDialog()];
      const user = userPart(entity) || 'presentity';
      const tail = `" state="full" entity="${escapeXml(entity)}">\n`
        + dialogs.map((d) => renderDialog(d, user)).join('')
        + '</dialog-info>\n';
      return new DialogInfoBody(DIALOG_INFO_HEAD, ownBuffer(tail));
    },
  };
}

export const dialogPackage: EventPackage = createDialogPackage();
