// The OpenAPI document at /v2/openapi.json against the router's real routes: every (method, path) the router
// serves is documented, nothing documented is missing from the router, and each answers as documented.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiHarness } from './helpers.js';
import { toOpenApiPath } from '../../src/api/openapi.js';

let h: ApiHarness;
let doc: any;
beforeAll(async () => {
  h = await startApi();
  doc = (await h.call('GET', '/v2/openapi.json')).body;
});
afterAll(async () => { await h.close(); });

function routerOperations(): string[] {
  const ops: string[] = [];
  for (const layer of h.app.routes.router.stack as Array<{ path: string | RegExp; methods: string[] }>) {
    if (typeof layer.path !== 'string') continue;
    for (const m of layer.methods) if (m !== 'HEAD') ops.push(`${m.toLowerCase()} ${toOpenApiPath(layer.path)}`);
  }
  return ops.sort();
}

function documentedOperations(): string[] {
  const ops: string[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const m of Object.keys(item)) ops.push(`${m} ${path}`);
  }
  return ops.sort();
}

describe('OpenAPI document', () => {
  it('is OpenAPI 3.1 and lists exactly the routes the router serves', () => {
    expect(doc.openapi).toBe('3.1.0');
    const served = routerOperations();
    expect(served.length).toBeGreaterThan(30);
    expect(documentedOperations()).toEqual(served);
  });

  it('covers the endpoints issue 3 names', () => {
    const ops = documentedOperations();
    for (const op of [
      'get /v2/accounts/{accountId}/presence', 'get /v2/accounts/{accountId}/presence/{extension}', 'post /v2/accounts/{accountId}/presence/{extension}',
      'post /v2/accounts/{accountId}/devices/{deviceId}/presence', 'post /v2/accounts/{accountId}/device/{deviceId}/presence', 'post /v2/accounts/{accountId}/users/{userId}/presence',
      'put /v2/api_auth', 'put /v2/user_auth', 'put /v2/accounts/{accountId}', 'patch /v2/accounts/{accountId}', 'delete /v2/accounts/{accountId}',
      'get /v2/accounts/{accountId}/users', 'put /v2/accounts/{accountId}/devices', 'get /health', 'get /ready', 'get /metrics',
    ]) expect(ops, op).toContain(op);
  });

  it('declares every path parameter and resolves every $ref', () => {
    const json = JSON.stringify(doc);
    for (const [, ref] of json.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) expect(doc.components.schemas[ref], ref).toBeDefined();
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      for (const op of Object.values(item)) {
        expect(op.parameters.map((p: { name: string }) => p.name).sort(), path).toEqual(names);
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
      }
    }
  });

  it('every documented route exists: token routes answer 401 without a token, the others do not 404/405', async () => {
    const fill = (p: string) => p.replace(/\{(accountId|userId|deviceId)\}/g, 'a'.repeat(32)).replace('{extension}', '1001');
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(item)) {
        const r = await h.call(method.toUpperCase(), fill(path), { data: method === 'get' ? undefined : {} });
        if (op.security.length > 0) expect(r.status, `${method} ${path}`).toBe(401);
        else expect([404, 405], `${method} ${path}`).not.toContain(r.status);
      }
    }
  });
});
