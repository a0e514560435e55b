// The first-run path of README.md, as a user types it: `npm run accounts -- create` on an empty database, the
// server started as a child process, the API key exchanged with curl (which sends the body form-encoded, as the
// docs' command does), the token cut out with the docs' sed expression, then the docs' curl calls. Loopback only.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, spawnServer, tempDbFile, type ChildServer } from '../helpers/server.js';

const run = promisify(execFile);
const tmp = tempDbFile();
let child: ChildServer | undefined;

async function curl(...args: string[]): Promise<string> {
  const { stdout } = await run('curl', ['-s', '--max-time', '10', ...args], { timeout: 15_000 });
  return stdout;
}

afterAll(async () => {
  await child?.kill();
  tmp.cleanup();
});

describe('README.md "From an empty database to a working curl"', () => {
  it('works as written', async () => {
    const created = await run('npm', ['run', '--silent', 'accounts', '--', 'create', '--name', 'Acme', '--realm', 'acme.example.com'], {
      cwd: ROOT, env: { ...process.env, LAMPLIGHTER_DB: tmp.file }, timeout: 60_000,
    });
    const accountId = /account_id: +([0-9a-f]{32})/.exec(created.stdout)?.[1];
    const apiKey = /api_key: +([0-9a-f]{64})/.exec(created.stdout)?.[1];
    expect(accountId, created.stdout).toBeDefined();
    expect(apiKey, created.stdout).toBeDefined();
    expect(created.stdout).toMatch(/realm: +acme\.example\.com/);

    child = await spawnServer({ dbFile: tmp.file, timeoutMs: 30_000 });
    const base = `http://127.0.0.1:${child.apiPort}`;
    const auth = await curl('-X', 'PUT', `${base}/v2/api_auth`, '-d', JSON.stringify({ data: { api_key: apiKey } }));
    // The docs' sed: s/.*"auth_token":"([0-9a-f]+)".*/\1/
    const token = auth.replace(/.*"auth_token":"([0-9a-f]+)".*/s, '$1');
    expect(token, auth).toMatch(/^[0-9a-f]{64}$/);

    const account = JSON.parse(await curl('-H', `X-Auth-Token: ${token}`, `${base}/v2/accounts/${accountId}`));
    expect(account).toMatchObject({ status: 'success', data: { id: accountId, name: 'Acme', realm: 'acme.example.com' } });
    const device = JSON.parse(await curl('-H', `X-Auth-Token: ${token}`, '-X', 'PUT', `${base}/v2/accounts/${accountId}/devices`,
      '-d', '{"data":{"name":"Desk 1001","sip":{"username":"1001","password":"a-long-secret"}}}'));
    expect(device).toMatchObject({ status: 'success', data: { name: 'Desk 1001', sip: { username: '1001' } } });
    expect(JSON.stringify(device)).not.toContain('a-long-secret');
    const presence = JSON.parse(await curl('-H', `X-Auth-Token: ${token}`, `${base}/v2/accounts/${accountId}/presence`));
    expect(presence).toMatchObject({ status: 'success', data: { subscriptions: {} } });
    const reset = JSON.parse(await curl('-H', `X-Auth-Token: ${token}`, '-X', 'POST', `${base}/v2/accounts/${accountId}/presence/1001`, '-d', '{"data":{"action":"reset"}}'));
    expect(reset).toMatchObject({ status: 'success', data: 'reset command sent for extension 1001' });
    // And without the token, Crossbar's 401.
    const anon = JSON.parse(await curl(`${base}/v2/accounts/${accountId}`));
    expect(anon).toMatchObject({ status: 'error', error: '401', message: 'invalid_credentials' });
  });
});
