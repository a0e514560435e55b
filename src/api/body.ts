// Request bodies: read at most `maxBytes` (413 past it, before buffering more), refuse JSON nested deeper than
// `maxDepth` before parsing it (a deep document costs stack and CPU in every later walk), 400 parse_error for
// anything that is not JSON, and unwrap Crossbar's request envelope `{"data": ..., "auth_token"?, "verb"?}`.
import type { IncomingMessage } from 'node:http';
import { apiErrors } from './envelope.js';

export interface RequestEnvelope {
  data: unknown;
  authToken?: string;
  verb?: string;
}

export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    throw apiErrors.tooLarge(maxBytes);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > maxBytes) {
      req.resume();
      throw apiErrors.tooLarge(maxBytes);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, size);
}

/** The deepest nesting of objects and arrays in a JSON text, counted without parsing (stops past `limit`). */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

export function parseJson(raw: Buffer, maxDepth: number): unknown {
  const text = raw.toString('utf8');
  if (text.trim() === '') return undefined;
  if (jsonDepthExceeds(text, maxDepth)) throw apiErrors.parseError(`JSON nested deeper than ${maxDepth} levels`);
  try {
    return JSON.parse(text);
  } catch {
    throw apiErrors.parseError();
  }
}

/** Crossbar's request envelope; an empty body is `{data: {}}`. */
export function unwrapEnvelope(body: unknown): RequestEnvelope {
  if (body === undefined) return { data: {} };
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw apiErrors.invalidEnvelope('the body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (b.auth_token !== undefined && typeof b.auth_token !== 'string') throw apiErrors.invalidEnvelope('auth_token must be a string');
  if (b.verb !== undefined && typeof b.verb !== 'string') throw apiErrors.invalidEnvelope('verb must be a string');
  return { data: b.data === undefined ? {} : b.data, authToken: b.auth_token as string | undefined, verb: b.verb as string | undefined };
}
