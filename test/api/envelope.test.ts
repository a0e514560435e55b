// Crossbar's envelopes and system errors over real HTTP: exact bodies, status codes, request ids, limits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiHarness } from './helpers.js';

const ENVELOPE_KEYS = ['auth_token', 'data', 'node', 'request_id', 'revision', 'status', 'timestamp', 'version'];
const ERROR_KEYS = ['auth_token', 'data', 'error', 'message', 'node', 'request_id', 'status', 'timestamp', 'version'];

let h: ApiHarness;
let acct: { id: string; token: string };
beforeAll(async () => {
  h = await startApi({ overrides: { api: { maxBodyBytes: 4096 } } });
  acct = await h.account('Acme', 'acme.example.com');
});
afterAll(async () => { await h.close(); });

describe('success envelope', () => {
  it('carries every Crossbar field, echoes X-Request-ID and the token', async () => {
    const r = await h.call('GET', `/v2/accounts/${acct.id}`, { token: acct.token, headers: { 'X-Request-ID': 'req-42.a' } });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(ENVELOPE_KEYS);
    expect(r.body.status).toBe('success');
    expect(r.body.request_id).toBe('req-42.a');
    expect(r.headers.get('x-request-id')).toBe('req-42.a');
    expect(r.body.auth_token).toBe(acct.token);
    expect(r.body.timestamp).toBe('2026-01-02T03:04:05Z');
    expect(r.body.revision).toMatch(/^1-[0-9a-f]{32}$/);
    expect(r.body.node).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(r.body.node).not.toContain('test-node');
    expect(r.body.version).toBe('0.1.0');
  });

  it('generates a request id when none (or a malformed one) is sent', async () => {
    const a = await h.call('GET', `/v2/accounts/${acct.id}`, { token: acct.token });
    const b = await h.call('GET', `/v2/accounts/${acct.id}`, { token: acct.token, headers: { 'X-Request-ID': 'bad id\twith spaces' } });
    expect(a.body.request_id).toMatch(/^[0-9a-f]{32}$/);
    expect(b.body.request_id).toMatch(/^[0-9a-f]{32}$/);
    expect(a.body.request_id).not.toBe(b.body.request_id);
  });
});

describe('system errors', () => {
  it('401 invalid_credentials without a token', async () => {
    const r = await h.call('GET', `/v2/accounts/${acct.id}`);
    expect(r.status).toBe(401);
    expect(Object.keys(r.body).sort()).toEqual(ERROR_KEYS);
    expect(r.body).toMatchObject({ status: 'error', error: '401', message: 'invalid_credentials', data: { message: 'invalid credentials' }, auth_token: '' });
  });

  it('401 for a wrong token, the token in the envelope is accepted', async () => {
    const bad = await h.call('GET', `/v2/accounts/${acct.id}`, { token: 'f'.repeat(64) });
    expect(bad.status).toBe(401);
    const viaEnvelope = await h.call('PATCH', `/v2/accounts/${acct.id}`, { raw: JSON.stringify({ auth_token: acct.token, data: { language: 'fr-fr' } }) });
    expect(viaEnvelope.status).toBe(200);
    expect(viaEnvelope.body.data.language).toBe('fr-fr');
  });

  it('404 not_found for an unknown path, 405 invalid_method for a wrong verb', async () => {
    const nf = await h.call('GET', '/v2/nothing-here', { token: acct.token });
    expect(nf.status).toBe(404);
    expect(nf.body).toMatchObject({ status: 'error', error: '404', message: 'not_found', data: { message: 'not found' } });
    const m = await h.call('PATCH', `/v2/accounts/${acct.id}/presence`, { token: acct.token, data: {} });
    expect(m.status).toBe(405);
    expect(m.body).toMatchObject({ status: 'error', error: '405', message: 'invalid_method', data: { message: 'method not allowed' } });
    expect(m.headers.get('allow')).toBe('HEAD, GET, POST');
    const odd = await h.call('PROPFIND', `/v2/accounts/${acct.id}`, { token: acct.token });
    expect(odd.status).toBe(405);
    expect(odd.body.message).toBe('invalid_method');
  });

  it('400 parse_error for a body that is not JSON', async () => {
    const r = await h.call('PATCH', `/v2/accounts/${acct.id}`, { token: acct.token, raw: '{"data": {"name": ' });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ status: 'error', error: '400', message: 'parse_error', data: { message: 'failed to parse request body' } });
  });

  it('400 invalid request envelope for a JSON body that is not an object', async () => {
    const r = await h.call('PATCH', `/v2/accounts/${acct.id}`, { token: acct.token, raw: '[1,2,3]' });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error: '400', message: 'invalid request envelope' });
  });

  it('refuses JSON nested deeper than 32 levels before parsing it, accepts 32', async () => {
    const nest = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
    const deep = await h.call('PATCH', `/v2/accounts/${acct.id}`, { token: acct.token, raw: `{"data":{"x":${nest(31)}}}` });
    expect(deep.status).toBe(400);
    expect(deep.body).toMatchObject({ error: '400', message: 'parse_error', data: { message: 'JSON nested deeper than 32 levels' } });
    const ok = await h.call('PATCH', `/v2/accounts/${acct.id}`, { token: acct.token, raw: `{"data":{"x":${nest(30)}}}` });
    expect(ok.status).toBe(200);
    // Brackets inside strings are not nesting.
    const str = await h.call('PATCH', `/v2/accounts/${acct.id}`, { token: acct.token, raw: JSON.stringify({ data: { note: '['.repeat(100) } }) });
    expect(str.status).toBe(200);
  });

  it('413 for a body over api.maxBodyBytes, with or without Content-Length', async () => {
    const big = JSON.stringify({ data: { big_note: 'x'.repeat(5000) } });
    const r = await h.call('PATCH', `/v2/accounts/${acct.id}`, { token: acct.token, raw: big });
    expect(r.status).toBe(413);
    expect(r.body).toMatchObject({ status: 'error', error: '413', message: 'request_entity_too_large' });
    // Chunked (no Content-Length): counted while reading.
    const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(big)); c.close(); } });
    const res = await fetch(`${h.url}/v2/accounts/${acct.id}`, { method: 'PATCH', headers: { 'X-Auth-Token': acct.token }, body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    const again = await h.call('GET', `/v2/accounts/${acct.id}`, { token: acct.token });
    expect(again.body.data.big_note).toBeUndefined();
  });

  it('tunnels PUT/DELETE through POST with the envelope verb', async () => {
    const r = await h.call('POST', `/v2/accounts/${acct.id}/users`, { token: acct.token, raw: JSON.stringify({ verb: 'PUT', data: { first_name: 'V', last_name: 'W' } }) });
    expect(r.status).toBe(201);
    expect(r.body.data.first_name).toBe('V');
  });
});

describe('metrics and health', () => {
  it('counts every request by method and status', async () => {
    const before = (await h.metrics.apiRequests.get()).values.find((v) => v.labels.method === 'GET' && v.labels.status === '401')?.value ?? 0;
    await h.call('GET', `/v2/accounts/${acct.id}`);
    await h.call('GET', `/v2/accounts/${acct.id}`);
    const after = (await h.metrics.apiRequests.get()).values.find((v) => v.labels.method === 'GET' && v.labels.status === '401')?.value ?? 0;
    expect(after - before).toBe(2);
    const m = await h.call('GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.text).toContain('lamplighter_api_requests_total{method="GET",status="401"}');
  });

  it('/health and /ready need no token', async () => {
    expect((await h.call('GET', '/health')).body).toEqual({ status: 'ok' });
    expect((await h.call('GET', '/ready')).body).toEqual({ ready: true });
  });
});
