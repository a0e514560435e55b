// Small text checks shared by the SIP face and the domain (a leaf module: it imports nothing of ours, so
// src/presence may use it without importing src/sip).

/** C0 controls but HTAB, and DEL: what RFC 3261 §25.1 TEXT-UTF8, token and qdtext leave out, and RFC 3842 lines. */
const CONTROL_BUT_HTAB = /[\x00-\x08\x0a-\x1f\x7f]/;

/**
 * True when `text` holds a control character other than HTAB (U+0000..U+0008, U+000A..U+001F, U+007F). Such a
 * value, once stored or relayed, could forge header or body lines (CR, LF) or break a reader (NUL).
 */
export function hasControlChar(text: string): boolean {
  return CONTROL_BUT_HTAB.test(text);
}
