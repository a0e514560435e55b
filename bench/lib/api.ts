// The admin API side of the scale figures: an account made with the project's own CLI, a token from
// PUT /v2/api_auth, and timed GET /v2/accounts/{A}/presence. Everything answers "n/a" (with the reason) when that
// part of the API is not there yet.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './servers.js';

export interface BenchAccount { id: string; apiKey: string; realm: string }

/** `tsx src/cli/main.ts accounts create --name bench --realm <realm>` against the given database file. */
export function createAccount(dbFile: string, realm: string): BenchAccount | string {
  const cli = join(ROOT, 'src', 'cli', 'main.ts');
  if (!existsSync(cli)) return 'n/a: API not ready (no src/cli/main.ts)';
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'accounts', 'create', '--name', 'bench', '--realm', realm], {
    cwd: ROOT, encoding: 'utf8', timeout: 60_000,
    env: { ...process.env, LAMPLIGHTER_DB: dbFile, LAMPLIGHTER_LOG_LEVEL: 'warn' },
  });
  const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  if (r.status !== 0) return `n/a: API not ready (accounts create exited ${r.status}: ${out.trim().split('\n').slice(-1)[0] ?? ''})`;
  // Accept JSON output or "key: value" lines; Kazoo ids are 32 hex digits, api keys 64.
  let id: string | undefined;
  let apiKey: string | undefined;
  try {
    const j = JSON.parse(r.stdout.trim()) as Record<string, any>;
    const d = (j.data ?? j) as Record<string, any>;
    id = d.id ?? d.account_id;
    apiKey = d.api_key ?? d.apiKey;
  } catch { /* not JSON */ }
  id ??= /(?:account[_ ]?id|\bid)\W+([0-9a-f]{32})/i.exec(out)?.[1] ?? /\b([0-9a-f]{32})\b/.exec(out)?.[1];
  apiKey ??= /api[_ ]?key\W+([0-9a-zA-Z]{20,})/i.exec(out)?.[1] ?? /\b([0-9a-f]{64})\b/.exec(out)?.[1];
  if (!id || !apiKey) return `n/a: API not ready (cannot read the account id and api key from: ${out.trim().slice(0, 200)})`;
  return { id, apiKey, realm };
}

export async function apiToken(apiPort: number, apiKey: string): Promise<string | string> {
  const res = await fetch(`http://127.0.0.1:${apiPort}/v2/api_auth`, {
    method: 'PUT', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data: { api_key: apiKey } }), signal: AbortSignal.timeout(10_000),
  });
  const body = await res.json().catch(() => ({})) as Record<string, any>;
  const token = body.auth_token ?? body.data?.auth_token;
  if (res.status !== 201 && res.status !== 200) throw new Error(`PUT /v2/api_auth answered ${res.status}`);
  if (typeof token !== 'string') throw new Error('PUT /v2/api_auth gave no auth_token');
  return token;
}

export interface PresenceTiming { ms: number[]; status: number; bytes: number; subscriptions: number }

/** Count the leaves of data.subscriptions.{ext}.{event}.{call_id} (the documented search shape). */
function countSubscriptions(body: any): number {
  const subs = body?.data?.subscriptions ?? body?.data;
  if (!subs || typeof subs !== 'object') return 0;
  let n = 0;
  for (const ext of Object.values(subs) as any[]) {
    if (!ext || typeof ext !== 'object') continue;
    for (const ev of Object.values(ext) as any[]) {
      if (ev && typeof ev === 'object') n += Object.keys(ev).length;
    }
  }
  return n;
}

export async function timePresence(apiPort: number, accountId: string, token: string, times: number): Promise<PresenceTiming> {
  const ms: number[] = [];
  let status = 0, bytes = 0, subscriptions = 0;
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    const res = await fetch(`http://127.0.0.1:${apiPort}/v2/accounts/${accountId}/presence`, {
      headers: { 'x-auth-token': token }, signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    ms.push(performance.now() - t0);
    status = res.status;
    bytes = Buffer.byteLength(text);
    if (i === 0) {
      try { subscriptions = countSubscriptions(JSON.parse(text)); } catch { subscriptions = 0; }
    }
  }
  return { ms, status, bytes, subscriptions };
}
