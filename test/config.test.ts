import { describe, it, expect } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfig, ConfigError } from '../src/config.js';

function tmpFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'lamplighter-cfg-'));
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe('config', () => {
  it('embedded defaults: SQLite file, SIP 5060 udp/tcp, WS 5066, API 8000, auth on', () => {
    const c = loadConfig({ env: {} });
    expect(c.db.file).toMatch(/\.sqlite$/);
    expect(c.sip.listen).toEqual([
      { transport: 'udp', address: '0.0.0.0', port: 5060 },
      { transport: 'tcp', address: '0.0.0.0', port: 5060 },
      { transport: 'ws', address: '0.0.0.0', port: 5066 },
    ]);
    expect(c.api.port).toBe(8000);
    expect(c.sip.auth).toBe(true);
    expect(c.nodeId).not.toBe('');
  });

  it('environment variables override the file', () => {
    const file = tmpFile('c.json', JSON.stringify({ api: { port: 9000 }, db: { file: '/tmp/x.sqlite' } }));
    const c = loadConfig({ env: { LAMPLIGHTER_CONFIG: file, LAMPLIGHTER_API_PORT: '9100', LAMPLIGHTER_SIP_PORT: '5070', LAMPLIGHTER_WS_PORT: '5077', LAMPLIGHTER_SIP_AUTH: 'false', LAMPLIGHTER_DB: '/tmp/y.sqlite' } });
    expect(c.api.port).toBe(9100);
    expect(c.db.file).toBe('/tmp/y.sqlite');
    expect(c.sip.auth).toBe(false);
    expect(c.sip.listen.map((l) => `${l.transport}:${l.port}`)).toEqual(['udp:5070', 'tcp:5070', 'ws:5077']);
  });

  it('a file on the command line wins over LAMPLIGHTER_CONFIG and may carry comments', () => {
    const a = tmpFile('a.json', JSON.stringify({ api: { port: 1111 } }));
    const b = tmpFile('b.jsonc', '// comment\n{ "api": { /* inline */ "port": 2222 }, "nodeId": "n//1" }');
    const c = loadConfig({ file: b, env: { LAMPLIGHTER_CONFIG: a } });
    expect(c.api.port).toBe(2222);
    expect(c.nodeId).toBe('n//1');
  });

  it('the shipped example config is valid', () => {
    const c = loadConfig({ file: join(import.meta.dirname, '..', 'config', 'example.jsonc'), env: {} });
    expect(c.db.file).toBe('/var/lib/lamplighter/lamplighter.sqlite');
  });

  it('reports every wrong value with its path', () => {
    const file = tmpFile('bad.json', JSON.stringify({ api: { port: 70000 }, sip: { engine: 'pjsip', subscription: { minExpires: 100, maxExpires: 10 } }, bogus: 1 }));
    let err: unknown;
    try { loadConfig({ file, env: { LAMPLIGHTER_SIP_AUTH: 'maybe', LAMPLIGHTER_WS_PORT: 'x' } }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ConfigError);
    const text = (err as ConfigError).problems.join('\n');
    expect(text).toContain('api.port');
    expect(text).toContain('sip.engine');
    expect(text).toContain('minExpires must not exceed maxExpires');
    expect(text).toContain('LAMPLIGHTER_SIP_AUTH=maybe');
    expect(text).toContain('LAMPLIGHTER_WS_PORT=x');
    expect(text).toMatch(/bogus|Unrecognized/);
  });

  it('an unreadable or non-JSON file is a clear error', () => {
    expect(() => loadConfig({ file: '/nonexistent/x.json', env: {} })).toThrow(/cannot read config file/);
    expect(() => loadConfig({ file: tmpFile('x.json', '{nope'), env: {} })).toThrow(/not valid JSON/);
  });
});
