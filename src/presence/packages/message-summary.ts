// The message-summary event package (RFC 3842, message waiting indication), application/simple-message-summary:
// a small text body, lines ending in CRLF (RFC 3842 §5.2).
//
// Choices: several live publications are not added up; the newest one wins whole. A voicemail system that lost
// its entity tag publishes afresh while its old publication lives on until it expires (RFC 3903 §4), and adding
// the two would double the counts. A manual lamp state never changes MWI. No publication: "Messages-Waiting: no".
import type { ManualDialogState } from '../service.js';
import type { ComposedState, EventPackage, PublicationInput, RenderedBody } from './types.js';
import type { BodyLimits } from './common.js';
import { isMediaType, looksLikeUri, ownBuffer, resolveLimits, staticBody, oldestFirst } from './common.js';
import { hasControlChar } from '../../text.js';

export const MESSAGE_SUMMARY_CONTENT_TYPE = 'application/simple-message-summary';

/** message-context-class values (RFC 3458 §3), with the spelling we render. */
const CLASSES: ReadonlyMap<string, string> = new Map([
  ['voice-message', 'Voice-Message'],
  ['fax-message', 'Fax-Message'],
  ['pager-message', 'Pager-Message'],
  ['multimedia-message', 'Multimedia-Message'],
  ['text-message', 'Text-Message'],
  ['none', 'None'],
]);

export interface MessageSummaryLine {
  /** Lower-case message-context-class, e.g. `voice-message`. */
  messageClass: string;
  newMessages: number;
  oldMessages: number;
  urgentNew?: number;
  urgentOld?: number;
}

/** JSON-safe, so the hub may persist it. */
export interface MessageSummaryData {
  messagesWaiting: boolean;
  account?: string;
  lines: MessageSummaryLine[];
}

export type MessageSummaryParse = ({ ok: true } & MessageSummaryData) | { ok: false; reason: string };

const decoder = new TextDecoder('utf-8', { fatal: true });

// HCOLON is *(SP / HTAB) ":" SWS (RFC 3261 §25.1). Each pattern is anchored and has no nested quantifiers.
const HEADER_LINE = /^([A-Za-z][A-Za-z0-9-]*)[ \t]*:(.*)$/;
const COUNTS = /^([0-9]{1,9})[ \t]*\/[ \t]*([0-9]{1,9})(?:[ \t]*\([ \t]*([0-9]{1,9})[ \t]*\/[ \t]*([0-9]{1,9})[ \t]*\))?$/;

/** Parse and check a simple-message-summary body (RFC 3842 §5.2). Reasons are used as 400 reason phrases. */
export function parseMessageSummary(body: Buffer | string, limitsIn?: Partial<BodyLimits>): MessageSummaryParse {
  const limits = resolveLimits(limitsIn);
  const bytes = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.length;
  if (bytes > limits.maxSummaryBytes) return { ok: false, reason: `body larger than ${limits.maxSummaryBytes} bytes` };
  let text: string;
  try {
    text = typeof body === 'string' ? body : decoder.decode(body);
  } catch {
    return { ok: false, reason: 'body is not valid UTF-8' };
  }
  // CRLF is the rule; a bare LF is tolerated from publishers that write Unix text.
  const lines = text.split(/\r?\n/);
  if (lines.length > limits.maxSummaryLines + 1) return { ok: false, reason: `more than ${limits.maxSummaryLines} lines` };
  let i = 0;
  while (i < lines.length && lines[i] === '') i++;
  const status = HEADER_LINE.exec(lines[i] ?? '');
  if (!status || status[1]!.toLowerCase() !== 'messages-waiting') return { ok: false, reason: 'body must start with Messages-Waiting' };
  const yn = status[2]!.trim().toLowerCase();
  if (yn !== 'yes' && yn !== 'no') return { ok: false, reason: 'Messages-Waiting must be yes or no' };
  const out: MessageSummaryData = { messagesWaiting: yn === 'yes', lines: [] };
  for (i++; i < lines.length; i++) {
    const line = lines[i]!;
    // An empty line ends the summary; what follows are optional message headers (§5.2), not ours to relay.
    if (line === '') break;
    if (hasControlChar(line)) return { ok: false, reason: 'control character in message-summary' };
    const m = HEADER_LINE.exec(line);
    if (!m) return { ok: false, reason: 'malformed message-summary line' };
    const name = m[1]!.toLowerCase();
    const value = m[2]!.trim();
    if (name === 'message-account') {
      if (out.account !== undefined) return { ok: false, reason: 'Message-Account given twice' };
      if (!looksLikeUri(value)) return { ok: false, reason: 'Message-Account is not a URI' };
      out.account = value;
      continue;
    }
    if (!CLASSES.has(name)) return { ok: false, reason: 'unknown message-context-class' };
    if (out.lines.some((l) => l.messageClass === name)) return { ok: false, reason: 'message-context-class given twice' };
    const c = COUNTS.exec(value);
    if (!c) return { ok: false, reason: 'message counts must be new/old (urgent_new/urgent_old)' };
    const entry: MessageSummaryLine = { messageClass: name, newMessages: Number(c[1]), oldMessages: Number(c[2]) };
    if (c[3] !== undefined) {
      entry.urgentNew = Number(c[3]);
      entry.urgentOld = Number(c[4]);
    }
    out.lines.push(entry);
  }
  return { ok: true, ...out };
}

function isSummaryData(data: unknown): data is MessageSummaryData {
  const d = data as MessageSummaryData;
  return typeof d === 'object' && d !== null && typeof d.messagesWaiting === 'boolean' && Array.isArray(d.lines);
}

function state(data: MessageSummaryData, source: ComposedState['source']): ComposedState {
  return { event: 'message-summary', summary: data.messagesWaiting ? 'yes' : 'no', source, data };
}

/** A count read back from `data` (possibly from storage): a non-negative integer or 0. */
function count(n: unknown): number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

export function renderMessageSummary(d: MessageSummaryData): string {
  let out = `Messages-Waiting: ${d.messagesWaiting ? 'yes' : 'no'}\r\n`;
  // Line breaks or controls in the account would forge lines of the body: such an account is left out.
  if (d.account !== undefined && looksLikeUri(d.account) && !/[\x00-\x1f\x7f]/.test(d.account)) {
    out += `Message-Account: ${d.account}\r\n`;
  }
  for (const l of d.lines) {
    const name = CLASSES.get(l.messageClass);
    if (!name) continue;
    out += `${name}: ${count(l.newMessages)}/${count(l.oldMessages)}`;
    if (l.urgentNew !== undefined || l.urgentOld !== undefined) out += ` (${count(l.urgentNew)}/${count(l.urgentOld)})`;
    out += '\r\n';
  }
  return out;
}

export function createMessageSummaryPackage(limitsIn?: Partial<BodyLimits>): EventPackage {
  const limits = resolveLimits(limitsIn);
  const idleData = (): MessageSummaryData => ({ messagesWaiting: false, lines: [] });
  return {
    name: 'message-summary',
    contentType: MESSAGE_SUMMARY_CONTENT_TYPE,
    acceptsPublish: [MESSAGE_SUMMARY_CONTENT_TYPE],

    validate(body: Buffer, contentType: string): string | null {
      if (!isMediaType(contentType, MESSAGE_SUMMARY_CONTENT_TYPE)) return 'unsupported content type for message-summary';
      const parsed = parseMessageSummary(body, limits);
      return parsed.ok ? null : parsed.reason;
    },

    compose(pubs: readonly PublicationInput[], _manual: ManualDialogState | null): ComposedState {
      const ordered = oldestFirst(pubs);
      for (let k = ordered.length - 1; k >= 0; k--) {
        const p = ordered[k]!;
        if (!isMediaType(p.contentType, MESSAGE_SUMMARY_CONTENT_TYPE)) continue;
        const r = parseMessageSummary(p.body, limits);
        if (!r.ok) continue;
        const data: MessageSummaryData = { messagesWaiting: r.messagesWaiting, lines: r.lines };
        if (r.account !== undefined) data.account = r.account;
        return state(data, 'publication');
      }
      return state(idleData(), 'none');
    },

    idle(): ComposedState {
      return state(idleData(), 'none');
    },

    render(composed: ComposedState): RenderedBody {
      const d = isSummaryData(composed.data) ? composed.data : idleData();
      return staticBody(MESSAGE_SUMMARY_CONTENT_TYPE, ownBuffer(renderMessageSummary(d)));
    },
  };
}

export const messageSummaryPackage: EventPackage = createMessageSummaryPackage();
