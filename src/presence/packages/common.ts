// Small helpers shared by the event packages (no I/O).
import type { XmlLimits } from './xml.js';
import { DEFAULT_XML_LIMITS } from './xml.js';

/** The limits of the event packages, every one named. The hub may pass config values through createPackages(). */
export interface BodyLimits {
  xml: XmlLimits;
  /** Most `<dialog>` elements in one published body, and in one rendered body. */
  maxDialogs: number;
  /** Most `<param>` elements kept per `<target>`. */
  maxTargetParams: number;
  /** Most `<tuple>` elements in one published PIDF body. */
  maxTuples: number;
  /** Longest `<note>` kept (characters). */
  maxNoteLength: number;
  /** Largest message-summary body in bytes. */
  maxSummaryBytes: number;
  /** Most lines in a message-summary body. */
  maxSummaryLines: number;
}

export const DEFAULT_BODY_LIMITS: Readonly<BodyLimits> = Object.freeze({
  xml: DEFAULT_XML_LIMITS,
  maxDialogs: 32,
  maxTargetParams: 8,
  maxTuples: 32,
  maxNoteLength: 256,
  maxSummaryBytes: 8 * 1024,
  maxSummaryLines: 64,
});

export function resolveLimits(over?: Partial<BodyLimits>): BodyLimits {
  return { ...DEFAULT_BODY_LIMITS, ...over, xml: { ...DEFAULT_BODY_LIMITS.xml, ...over?.xml } };
}

/** The media type of a Content-Type value, lower-cased, parameters dropped (RFC 3261 §20.15, media types are case-insensitive). */
export function mediaType(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/**
 * Whether a Content-Type value names this media type (lower-case, no parameters). Stored publications already
 * hold the bare lower-case media type, so the common case is one string comparison, not a slice, trim and case fold.
 */
export function isMediaType(contentType: string, type: string): boolean {
  return contentType === type || mediaType(contentType) === type;
}

/** The user part of a SIP/SIPS/pres URI (`sip:201@example.com` → `201`), or '' when it has none. */
export function userPart(uri: string): string {
  let rest = uri.trim();
  if (rest.startsWith('<') && rest.endsWith('>')) rest = rest.slice(1, -1);
  const colon = rest.indexOf(':');
  if (colon > 0 && /^[A-Za-z][A-Za-z0-9+.-]*$/.test(rest.slice(0, colon))) rest = rest.slice(colon + 1);
  const at = rest.indexOf('@');
  if (at < 0) return '';
  const user = rest.slice(0, at);
  // A `;user-param` or `:password` is not part of the user (RFC 3261 §19.1.1).
  const cut = user.search(/[;:]/);
  return cut < 0 ? user : user.slice(0, cut);
}

/** A URI-ish string: a scheme and something after it (RFC 3986 §3.1). Enough to refuse junk, not a full check. */
export function looksLikeUri(value: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(value);
}

/**
 * Publications oldest first by their last modify, ties kept in the given order, so "newest wins" means "last
 * wins" wherever a package merges (RFC 3903 §4: each publication is one source's state).
 */
export function oldestFirst<T extends { updatedAt: number }>(pubs: readonly T[]): readonly T[] {
  // The registry hands them over in arrival order, which is already oldest first unless one was modified since:
  // then no copy and no sort.
  let sorted = true;
  for (let i = 1; i < pubs.length && sorted; i++) sorted = pubs[i - 1]!.updatedAt <= pubs[i]!.updatedAt;
  if (sorted) return pubs;
  return pubs.map((p, i) => ({ p, i })).sort((a, b) => a.p.updatedAt - b.p.updatedAt || a.i - b.i).map((x) => x.p);
}

/** A body shared by every watcher: no per-subscription part (PIDF, message-summary). */
export function staticBody(contentType: string, bytes: Buffer): { contentType: string; forVersion(version: number): Buffer } {
  return { contentType, forVersion: () => bytes };
}

/**
 * A Buffer with memory of its own, for bytes kept long (a publication's body, a rendered state). Small Buffers
 * from Buffer.from/concat/allocUnsafe are slices of a shared 8 KiB pool, and one long-lived slice keeps its whole
 * pool alive after everything else in it is garbage (RSS: thousands of pinned pools at 100k subscriptions).
 */
export function ownBuffer(bytes: Uint8Array | string): Buffer {
  if (typeof bytes === 'string') {
    const out = Buffer.allocUnsafeSlow(Buffer.byteLength(bytes, 'utf8'));
    out.write(bytes, 0, 'utf8');
    return out;
  }
  const out = Buffer.allocUnsafeSlow(bytes.length);
  out.set(bytes, 0);
  return out;
}
