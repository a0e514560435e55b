// HTTP Digest as SIP uses it (RFC 3261 §22.4, RFC 7616, RFC 8760): parsing a credentials header, computing the
// response for qop=auth, and building the challenges. Pure functions; the policy lives in authenticator.ts.
import { createHash } from 'node:crypto';

export type DigestAlgorithm = 'MD5' | 'SHA-256';
/** Offered in this order: RFC 8760 §2.4 lets a UAS send one challenge per algorithm, most preferred first. */
export const OFFERED_ALGORITHMS: readonly DigestAlgorithm[] = ['SHA-256', 'MD5'];

/** A credentials header has a handful of parameters; more is hostile and not worth parsing. */
const MAX_AUTH_PARAMS = 32;

export function digestHash(algorithm: DigestAlgorithm, data: string): string {
  return createHash(algorithm === 'MD5' ? 'md5' : 'sha256').update(data, 'utf8').digest('hex');
}

/** Algorithm names are case-insensitive (RFC 7616 §3.3); absent means MD5. The -sess variants are not offered. */
export function parseAlgorithm(value: string | undefined): DigestAlgorithm | undefined {
  if (value === undefined) return 'MD5';
  const v = value.toUpperCase();
  if (v === 'MD5') return 'MD5';
  if (v === 'SHA-256') return 'SHA-256';
  return undefined;
}

/**
 * Parse `Digest k=v, k="quoted", ...` (RFC 7616 §3.4, RFC 3261 §25.1 quoted-string with quoted-pair).
 * Returns the parameters with lower-case names, or undefined when the scheme is not Digest or the syntax is bad.
 */
export function parseDigestCredentials(value: string): Map<string, string> | undefined {
  const m = /^\s*digest\s+/i.exec(value);
  if (!m) return undefined;
  const params = new Map<string, string>();
  let i = m[0].length;
  const s = value;
  const skipLws = () => { while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\r' || s[i] === '\n')) i++; };
  while (i < s.length) {
    skipLws();
    const nameStart = i;
    while (i < s.length && /[A-Za-z0-9!#$%&'*+.^_`|~-]/.test(s[i]!)) i++;
    if (i === nameStart) return undefined;
    const name = s.slice(nameStart, i).toLowerCase();
    skipLws();
    if (s[i] !== '=') return undefined;
    i++;
    skipLws();
    let val: string;
    if (s[i] === '"') {
      i++;
      let out = '';
      for (;;) {
        if (i >= s.length) return undefined;
        const c = s[i]!;
        if (c === '"') { i++; break; }
        if (c === '\\') {
          if (i + 1 >= s.length) return undefined;
          out += s[i + 1];
          i += 2;
          continue;
        }
        out += c;
        i++;
      }
      val = out;
    } else {
      const start = i;
      while (i < s.length && s[i] !== ',' && s[i] !== ' ' && s[i] !== '\t') i++;
      if (i === start) return undefined;
      val = s.slice(start, i);
    }
    // A repeated parameter is ambiguous (which one did the client hash?): refuse rather than guess.
    if (params.has(name)) return undefined;
    params.set(name, val);
    if (params.size > MAX_AUTH_PARAMS) return undefined;
    skipLws();
    if (i >= s.length) break;
    if (s[i] !== ',') return undefined;
    i++;
  }
  return params;
}

export interface DigestInput {
  algorithm: DigestAlgorithm;
  /** H(username:realm:password), hex, as the directory stores it. */
  ha1: string;
  nonce: string;
  nc: string;
  cnonce: string;
  qop: 'auth';
  method: string;
  uri: string;
}

/** request-digest for qop=auth (RFC 7616 §3.4.1): KD(HA1, nonce:nc:cnonce:qop:H(method:uri)). */
export function digestResponse(d: DigestInput): string {
  const ha2 = digestHash(d.algorithm, `${d.method}:${d.uri}`);
  return digestHash(d.algorithm, `${d.ha1}:${d.nonce}:${d.nc}:${d.cnonce}:${d.qop}:${ha2}`);
}

/** Escape a value for a quoted-string (RFC 3261 §25.1): backslash and double quote. */
export function quote(v: string): string {
  return `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** One WWW-Authenticate value (RFC 7616 §3.3). */
export function challenge(opts: { realm: string; nonce: string; algorithm: DigestAlgorithm; stale?: boolean }): string {
  return `Digest realm=${quote(opts.realm)}, qop="auth", nonce=${quote(opts.nonce)}, algorithm=${opts.algorithm}`
    + (opts.stale ? ', stale=true' : '');
}
