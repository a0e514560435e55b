// The directory commands of the CLI, run in-process on a temp database: the first-run path from an empty
// database to a working token, listings, validation messages, and --help on each command.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Command } from 'commander';
import { registerDirectoryCommands } from '../../src/cli/directory.js';
import { openDatabase } from '../../src/store/db.js';
import { Directory } from '../../src/store/directory.js';
import { TokenStore } from '../../src/store/tokens.js';
import { tempDbFile } from '../helpers/server.js';

const tmp = tempDbFile();
afterEach(() => { process.exitCode = 0; });

async function cli(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err += String(s); return true; });
  const program = new Command('lamplighter').exitOverride().configureOutput({ writeOut: (s) => { out += s; }, writeErr: (s) => { err += s; } });
  registerDirectoryCommands(program, () => openDatabase(tmp.file));
  let code = 0;
  try {
    await program.parseAsync(['node', 'lamplighter', ...args]);
    code = Number(process.exitCode ?? 0);
  } catch (x) {
    code = (x as { exitCode?: number }).exitCode ?? 1;
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  return { out, err, code };
}

describe('lamplighter accounts|devices|users', () => {
  it('accounts create prints the id and an API key that works once stored only as a hash', async () => {
    const r = await cli('accounts', 'create', '--name', 'Acme', '--realm', 'acme.example.com', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { account_id: string; api_key: string; realm: string };
    expect(j.account_id).toMatch(/^[0-9a-f]{32}$/);
    expect(j.api_key).toMatch(/^[0-9a-f]{64}$/);
    const db = openDatabase(tmp.file);
    try {
      const tokens = new TokenStore(db, { ttlSeconds: 60 });
      expect(tokens.accountForApiKey(j.api_key)).toBe(j.account_id);
      expect(JSON.stringify(db.prepare('SELECT * FROM api_keys').all())).not.toContain(j.api_key);
    } finally { db.close(); }
    const text = await cli('accounts', 'create', '--name', 'Beta', '--realm', 'beta.example.com', '--parent', 'acme.example.com');
    expect(text.out).toMatch(/account_id: [0-9a-f]{32}\nrealm: +beta\.example\.com\napi_key: +[0-9a-f]{64}\n/);
  });

  it('refuses a bad or duplicate realm with a message and exit status 1', async () => {
    const bad = await cli('accounts', 'create', '--name', 'X', '--realm', 'b@d');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("realm: Failed to match pattern");
    const dup = await cli('accounts', 'create', '--name', 'X', '--realm', 'ACME.example.com');
    expect(dup.code).toBe(1);
    expect(dup.err).toContain('Account realm already in use');
  });

  it('devices and users create|list; passwords become digests', async () => {
    const d = await cli('devices', 'create', '--account', 'acme.example.com', '--name', 'Desk', '--username', '1001', '--password', 'secret99');
    expect(d.code).toBe(0);
    const deviceId = d.out.trim();
    const u = await cli('users', 'create', '--account', 'acme.example.com', '--first-name', 'Al', '--last-name', 'Ice', '--username', 'alice', '--password', 'pw1');
    expect(u.code).toBe(0);
    const dl = await cli('devices', 'list', '--account', 'acme.example.com', '--json');
    expect(JSON.parse(dl.out)).toEqual([expect.objectContaining({ id: deviceId, name: 'Desk', username: '1001', method: 'password', enabled: true })]);
    const ul = await cli('users', 'list', '--account', 'acme.example.com');
    expect(ul.out).toMatch(/alice/);
    const db = openDatabase(tmp.file);
    try {
      const c = new Directory(db).digestCredentials('acme.example.com', '1001');
      expect(c?.ha1Md5).toBe(createHash('md5').update('1001:acme.example.com:secret99').digest('hex'));
      expect(JSON.stringify(db.prepare('SELECT * FROM devices').all())).not.toContain('secret99');
    } finally { db.close(); }
    const al = await cli('accounts', 'list');
    expect(al.out.split('\n')[0]).toMatch(/^id +name +realm +enabled +parent_id/);
    expect(al.out).toContain('beta.example.com');
    const short = await cli('devices', 'create', '--account', 'acme.example.com', '--name', 'X', '--username', '1002', '--password', 'abc');
    expect(short.code).toBe(1);
    expect(short.err).toContain('sip.password: String must be at least 5 characters');
    expect(short.err).not.toContain('abc');
    const noAcct = await cli('users', 'list', '--account', 'nowhere.example.com');
    expect(noAcct.code).toBe(1);
  });

  it('has --help on every command', async () => {
    for (const args of [['accounts'], ['accounts', 'create'], ['accounts', 'list'], ['devices', 'create'], ['devices', 'list'], ['users', 'create'], ['users', 'list']]) {
      const r = await cli(...args, '--help');
      expect(r.out, args.join(' ')).toContain('Usage: lamplighter');
    }
  });
});
