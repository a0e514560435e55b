// No secret in any log line: a debug-level run through API keys, tokens, user and device passwords.
import { Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { startApi } from './helpers.js';

describe('API logs', () => {
  it('log one line per request at debug, with no key, token or password', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { lines.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
    const h = await startApi({ logger: createLogger('debug', sink) });
    try {
      const a = await h.account('Acme', 'acme.example.com');
      const before = lines.length;
      await h.call('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, data: { first_name: 'A', last_name: 'B', username: 'alice', password: 'hunter2-user' } });
      await h.call('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, data: { name: 'D', sip: { username: '1001', password: 'hunter2-sip' } } });
      await h.call('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, data: { name: 'D2', sip: { username: '1002', password: 'x' } } });
      await h.call('PUT', '/v2/user_auth', { data: { credentials: createHash('md5').update('alice:hunter2-user').digest('hex'), account_name: 'Acme' } });
      await h.call('PUT', '/v2/api_auth', { data: { api_key: 'b'.repeat(64) } });
      await h.call('GET', `/v2/accounts/${a.id}?auth_token=${a.token}`);
      await new Promise((r) => setImmediate(r));
      const requestLines = lines.slice(before).map((l) => JSON.parse(l)).filter((l) => l.msg === 'api request');
      expect(requestLines).toHaveLength(6);
      expect(requestLines[0]).toMatchObject({ level: 20, method: 'PUT', path: `/v2/accounts/${a.id}/users`, status: 201 });
      const all = lines.join('\n');
      for (const secret of ['hunter2-user', 'hunter2-sip', a.apiKey, a.token, 'b'.repeat(64), createHash('md5').update('alice:hunter2-user').digest('hex')]) {
        expect(all).not.toContain(secret);
      }
    } finally {
      await h.close();
    }
  });
});
