// Crossbar's envelopes (Kazoo api_util:create_default_resp_envelope/1): every answer, success or error, carries
// auth_token, request_id, node, version and timestamp; success adds revision and data, errors add error (the HTTP
// code as a string), message (the error's name) and data (details). No stack trace ever reaches a body.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export class ApiError extends Error {
  constructor(public readonly status: number, public readonly errorName: string, public readonly data: unknown) {
    super(errorName);
  }
}

/** Field errors as Kazoo writes them: `{"sip.username": {"minLength": {"message": ..., "target": ...}}}`. */
export type FieldErrors = Record<string, Record<string, Record<string, unknown>>>;

export const apiErrors = {
  invalidCredentials: () => new ApiError(401, 'invalid_credentials', { message: 'invalid credentials' }),
  forbidden: () => new ApiError(403, 'forbidden', { message: 'forbidden' }),
  badIdentifier: (cause: string) => new ApiError(404, 'bad_identifier', { message: 'bad identifier', cause }),
  faultyRequest: () => new ApiError(404, 'faulty_request', { message: 'faulty request' }),
  notFound: () => new ApiError(404, 'not_found', { message: 'not found' }),
  invalidMethod: () => new ApiError(405, 'invalid_method', { message: 'method not allowed' }),
  parseError: (why = 'failed to parse request body') => new ApiError(400, 'parse_error', { message: why }),
  invalidEnvelope: (why: string) => new ApiError(400, 'invalid request envelope', { message: why }),
  tooLarge: (limit: number) => new ApiError(413, 'request_entity_too_large', { message: `request body is larger than ${limit} bytes` }),
  validation: (fields: FieldErrors) => new ApiError(400, 'validation error', fields),
  accountHasDescendants: () => new ApiError(400, 'account_has_descendants', { message: 'account has descendants' }),
  unspecified: () => new ApiError(500, 'unspecified_fault', { message: 'unspecified fault' }),
};

/** One field error (Kazoo's `data.{field}.{rule}`), dots inside a key escaped as %2E. */
export function fieldError(path: string[] | string, rule: string, detail: Record<string, unknown>): FieldErrors {
  const key = Array.isArray(path) ? path.map((p) => p.replace(/\./g, '%2E')).join('.') : path;
  return { [key]: { [rule]: detail } };
}

const here = new URL('.', import.meta.url);
export const SERVER_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', here), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

/** Kazoo's node_encoded: an opaque hash of the node name, so the envelope does not reveal host names. */
export function encodeNode(nodeId: string): string {
  return createHash('md5').update(nodeId).digest('base64url');
}

export interface EnvelopeMeta {
  requestId: string;
  authToken: string;
  node: string;
  now: number;
}

/** ISO-8601 without milliseconds, as kz_time:iso8601/1 writes it. */
export function iso8601(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function successEnvelope(meta: EnvelopeMeta, data: unknown, extra: { revision?: string; paging?: Record<string, unknown> } = {}) {
  return {
    auth_token: meta.authToken,
    status: 'success',
    request_id: meta.requestId,
    node: meta.node,
    version: SERVER_VERSION,
    timestamp: iso8601(meta.now),
    revision: extra.revision ?? 'undefined',
    ...extra.paging,
    data,
  };
}

export function errorEnvelope(meta: EnvelopeMeta, err: ApiError) {
  return {
    auth_token: meta.authToken,
    request_id: meta.requestId,
    node: meta.node,
    version: SERVER_VERSION,
    timestamp: iso8601(meta.now),
    status: 'error',
    error: String(err.status),
    message: err.errorName,
    data: err.data,
  };
}
