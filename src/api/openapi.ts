// The OpenAPI 3.1 document, built from the route table (every route the router serves is registered through it)
// and the same JSON Schemas ajv checks requests against. Served at GET /v2/openapi.json.
import type { RouteDoc } from './context.js';
import { SERVER_VERSION } from './envelope.js';
import { SCHEMAS } from './validate.js';

/** `/v2/accounts/:accountId` -> `/v2/accounts/{accountId}`. */
export function toOpenApiPath(koaPath: string): string {
  return koaPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

const PARAM_SCHEMAS: Record<string, Record<string, unknown>> = {
  accountId: { type: 'string', pattern: '^[0-9a-f]{32}$' },
  userId: { type: 'string', pattern: '^[0-9a-f]{32}$' },
  deviceId: { type: 'string', pattern: '^[0-9a-f]{32}$' },
  extension: { type: 'string', pattern: '^[A-Za-z0-9*+_.\\-]{1,64}$', description: 'Extension or presence id (e.g. 1001, *3101), or report-{ID}' },
};

const errorRef = (d: string) => ({ description: d, content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorEnvelope' } } } });

export function buildOpenApi(routes: RouteDoc[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const p = toOpenApiPath(r.path);
    const params = [...r.path.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => ({
      name: m[1], in: 'path', required: true, schema: PARAM_SCHEMAS[m[1]] ?? { type: 'string' },
    }));
    const responses: Record<string, unknown> = {
      [String(r.success ?? 200)]: r.raw
        ? { description: 'OK' }
        : { description: 'Success', content: { 'application/json': { schema: { $ref: '#/components/schemas/SuccessEnvelope' } } } },
    };
    if (!r.raw) {
      responses['400'] = errorRef('validation error, parse_error or invalid request envelope');
      responses['413'] = errorRef('request body over api.maxBodyBytes');
    }
    if (r.auth) {
      responses['401'] = errorRef('invalid_credentials: no, unknown or expired token');
      if (r.path.includes(':accountId')) {
        responses['403'] = errorRef('forbidden: the account is outside the token\'s tree');
        responses['404'] = errorRef('bad_identifier: unknown account, user or device');
      }
    }
    const op: Record<string, unknown> = {
      operationId: `${r.method}${p.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ? ch.toUpperCase() : ''))}`,
      summary: r.summary,
      tags: [r.tag],
      parameters: params,
      responses,
      security: r.auth ? [{ authToken: [] }] : [],
    };
    if (r.requestSchema) {
      op.requestBody = {
        required: false,
        content: { 'application/json': { schema: { type: 'object', properties: { data: { $ref: `#/components/schemas/${r.requestSchema}` }, auth_token: { type: 'string' } } } } },
      };
    }
    (paths[p] ??= {})[r.method] = op;
  }
  const schemas: Record<string, unknown> = {
    SuccessEnvelope: {
      type: 'object',
      required: ['status', 'data', 'request_id', 'timestamp', 'version', 'node', 'revision', 'auth_token'],
      properties: {
        status: { const: 'success' }, data: {}, request_id: { type: 'string' }, revision: { type: 'string' },
        auth_token: { type: 'string' }, timestamp: { type: 'string', format: 'date-time' }, version: { type: 'string' }, node: { type: 'string' },
        page_size: { type: 'integer' }, start_key: { type: 'string' }, next_start_key: { type: 'string' },
      },
    },
    ErrorEnvelope: {
      type: 'object',
      required: ['status', 'error', 'message', 'data', 'request_id'],
      properties: {
        status: { const: 'error' }, error: { type: 'string', description: 'The HTTP status code as a string' },
        message: { type: 'string', description: 'invalid_credentials, forbidden, bad_identifier, validation error, parse_error, ...' },
        data: { description: 'Details; for validation errors {field: {rule: {message, target?, value?}}}' },
        request_id: { type: 'string' }, auth_token: { type: 'string' }, timestamp: { type: 'string' }, version: { type: 'string' }, node: { type: 'string' },
      },
    },
  };
  for (const [name, s] of Object.entries(SCHEMAS)) {
    const { $id: _id, ...rest } = s as Record<string, unknown>;
    schemas[name] = rest;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Lamplighter admin API (Kazoo Crossbar compatible)', version: SERVER_VERSION },
    paths,
    components: {
      schemas,
      securitySchemes: { authToken: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' } },
    },
  };
}
