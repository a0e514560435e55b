// Operator routes without a token: liveness, readiness, Prometheus metrics, and the OpenAPI document.
import type { ApiDeps, RouteTable } from '../context.js';
import { buildOpenApi } from '../openapi.js';

export function registerSystemRoutes(t: RouteTable, deps: ApiDeps): void {
  t.add({ method: 'get', path: '/health', summary: 'The process is alive', tag: 'system', auth: false, raw: true }, (ctx) => {
    ctx.body = { status: 'ok' };
  });
  t.add({ method: 'get', path: '/ready', summary: 'Store open and SIP engine listening (503 until then)', tag: 'system', auth: false, raw: true }, (ctx) => {
    const r = deps.isReady();
    ctx.status = r ? 200 : 503;
    ctx.body = { ready: r };
  });
  t.add({ method: 'get', path: '/metrics', summary: 'Prometheus metrics', tag: 'system', auth: false, raw: true }, async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
  let doc: Record<string, unknown> | undefined;
  t.add({ method: 'get', path: '/v2/openapi.json', summary: 'This OpenAPI document', tag: 'system', auth: false, raw: true }, (ctx) => {
    doc ??= buildOpenApi(t.docs);
    ctx.body = doc;
  });
}
