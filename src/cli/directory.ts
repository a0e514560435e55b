// `lamplighter accounts|devices|users create|list`: the directory from the command line, straight on the database
// (WAL lets this run beside the server). `accounts create` is the first-run path: it prints the account id and a
// new API key once; only the key's hash is stored, so it cannot be shown again (`accounts create-key` issues another).
import type { Command } from 'commander';
import type { Db } from '../store/db.js';
import { Directory, DirectoryError, type AccountRecord, type Json } from '../store/directory.js';
import { TokenStore } from '../store/tokens.js';
import { schemaErrors, type SchemaName } from '../api/validate.js';

class CliError extends Error {}

function check(name: SchemaName, doc: Json): void {
  const errs = schemaErrors(name, doc);
  const lines = Object.entries(errs).flatMap(([field, rules]) => Object.values(rules).map((r) => `  ${field}: ${String(r.message)}`));
  if (lines.length) throw new CliError(`invalid ${name.replace(/s$/, '')}:\n${lines.join('\n')}`);
}

function run<T>(openDb: () => Db, fn: (dir: Directory, db: Db) => T): void {
  const db = openDb();
  try {
    fn(new Directory(db), db);
  } catch (err) {
    if (err instanceof DirectoryError) throw new CliError(`${err.field}: ${err.message}${err.detail ? ` (${err.detail})` : ''}`);
    throw err;
  } finally {
    db.close();
  }
}

function findAccount(dir: Directory, idOrRealm: string): AccountRecord {
  const a = /^[0-9a-f]{32}$/.test(idOrRealm) ? dir.getAccount(idOrRealm) : (() => {
    const r = dir.accountByRealm(idOrRealm);
    return r ? dir.getAccount(r.id) : undefined;
  })();
  if (!a) throw new CliError(`no account with id or realm ${idOrRealm}`);
  return a;
}

const out = (s: string) => process.stdout.write(`${s}\n`);

function table(rows: Array<Record<string, unknown>>, cols: string[]): void {
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  out(cols.map((c, i) => c.padEnd(widths[i])).join('  '));
  for (const r of rows) out(cols.map((c, i) => String(r[c] ?? '').padEnd(widths[i])).join('  '));
}

/** Commander swallows nothing: a CliError becomes a message on stderr and exit status 1. */
function action<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      if (err instanceof CliError) {
        process.stderr.write(`${err.message}\n`);
        process.exitCode = 1;
        return;
      }
      throw err;
    }
  };
}

export function registerDirectoryCommands(program: Command, openDb: () => Db): void {
  const accounts = program.command('accounts').description('manage accounts (tenants; each has a unique SIP realm)');
  accounts.command('create')
    .description('create an account and print its id and a new API key (shown once)')
    .requiredOption('--name <name>', 'account name')
    .requiredOption('--realm <realm>', 'SIP realm (domain) of the account, e.g. pbx.example.com')
    .option('--parent <account>', 'parent account id or realm (makes a sub-account)')
    .option('--json', 'print JSON instead of text')
    .action(action((o: { name: string; realm: string; parent?: string; json?: boolean }) => run(openDb, (dir, db) => {
      const doc: Json = { name: o.name, realm: o.realm };
      check('accounts', doc);
      const parentId = o.parent ? findAccount(dir, o.parent).id : null;
      const a = db.transaction(() => {
        const created = dir.createAccount(doc, parentId);
        const apiKey = new TokenStore(db, { ttlSeconds: 1 }).issueApiKey(created.id);
        return { created, apiKey };
      })();
      if (o.json) out(JSON.stringify({ account_id: a.created.id, name: a.created.name, realm: a.created.realm, api_key: a.apiKey }));
      else {
        out(`account_id: ${a.created.id}`);
        out(`realm:      ${a.created.realm}`);
        out(`api_key:    ${a.apiKey}`);
        out('The API key is shown only this once; store it now. Exchange it for a token with PUT /v2/api_auth.');
      }
    })));
  accounts.command('create-key')
    .description('issue a new API key for an account (printed once); older keys stop working')
    .argument('<account>', 'account id or realm')
    .action(action((idOrRealm: string) => run(openDb, (dir, db) => {
      const a = findAccount(dir, idOrRealm);
      out(new TokenStore(db, { ttlSeconds: 1 }).issueApiKey(a.id, { replace: true }));
    })));
  accounts.command('list')
    .description('list every account')
    .option('--json', 'print JSON')
    .action(action((o: { json?: boolean }) => run(openDb, (dir) => {
      const rows = dir.listAccounts().map((a) => ({ id: a.id, name: a.name, realm: a.realm, enabled: a.enabled, parent_id: a.parentId ?? '' }));
      if (o.json) out(JSON.stringify(rows)); else table(rows, ['id', 'name', 'realm', 'enabled', 'parent_id']);
    })));

  const devices = program.command('devices').description('manage devices (phones; sip.username/password for digest auth)');
  devices.command('create')
    .description('create a device; prints its id')
    .requiredOption('--account <account>', 'account id or realm')
    .requiredOption('--name <name>', 'device name')
    .option('--username <sipUsername>', 'SIP username (digest auth)')
    .option('--password <sipPassword>', 'SIP password; stored only as HA1 digests (prefer LAMPLIGHTER_SIP_PASSWORD: argv is visible to other users)')
    .option('--presence-id <id>', 'presence id (defaults to the SIP username)')
    .option('--owner <userId>', 'owning user id')
    .option('--ip <address>', 'authenticate by source address instead (sip.method "ip")')
    .option('--json', 'print JSON')
    .action(action((o: { account: string; name: string; username?: string; password?: string; presenceId?: string; owner?: string; ip?: string; json?: boolean }) => run(openDb, (dir) => {
      const a = findAccount(dir, o.account);
      const password = o.password ?? process.env.LAMPLIGHTER_SIP_PASSWORD;
      const sip: Json = {};
      if (o.username) sip.username = o.username;
      if (password !== undefined) sip.password = password;
      if (o.ip) { sip.method = 'ip'; sip.ip = o.ip; }
      const doc: Json = { name: o.name };
      if (Object.keys(sip).length) doc.sip = sip;
      if (o.presenceId) doc.presence_id = o.presenceId;
      if (o.owner) doc.owner_id = o.owner;
      check('devices', doc);
      if (doc.sip) delete (doc.sip as Json).password;
      const d = dir.createDevice(a.id, doc, password);
      if (o.json) out(JSON.stringify({ id: d.id, account_id: a.id, name: d.name, username: d.sipUsername, presence_id: d.presenceId }));
      else out(d.id);
    })));
  devices.command('list')
    .description("list an account's devices")
    .requiredOption('--account <account>', 'account id or realm')
    .option('--json', 'print JSON')
    .action(action((o: { account: string; json?: boolean }) => run(openDb, (dir) => {
      const a = findAccount(dir, o.account);
      const rows = listAll((startKey) => dir.listDevices(a.id, { startKey, pageSize: 500 })).map((d) => ({
        id: d.id, name: d.name, username: d.sipUsername ?? '', presence_id: d.presenceId ?? '', owner_id: d.ownerId ?? '', method: d.sipMethod, enabled: d.enabled,
      }));
      if (o.json) out(JSON.stringify(rows)); else table(rows, ['id', 'name', 'username', 'presence_id', 'owner_id', 'method', 'enabled']);
    })));

  const users = program.command('users').description('manage users (people; may own devices)');
  users.command('create')
    .description('create a user; prints its id')
    .requiredOption('--account <account>', 'account id or realm')
    .requiredOption('--first-name <name>', 'first name')
    .requiredOption('--last-name <name>', 'last name')
    .option('--username <username>', 'login name (PUT /v2/user_auth)')
    .option('--password <password>', 'password; stored only as digests (prefer LAMPLIGHTER_USER_PASSWORD)')
    .option('--presence-id <id>', 'presence id')
    .option('--json', 'print JSON')
    .action(action((o: { account: string; firstName: string; lastName: string; username?: string; password?: string; presenceId?: string; json?: boolean }) => run(openDb, (dir) => {
      const a = findAccount(dir, o.account);
      const password = o.password ?? process.env.LAMPLIGHTER_USER_PASSWORD;
      const doc: Json = { first_name: o.firstName, last_name: o.lastName };
      if (o.username) doc.username = o.username;
      if (o.presenceId) doc.presence_id = o.presenceId;
      check('users', password !== undefined ? { ...doc, password } : doc);
      const u = dir.createUser(a.id, doc, password);
      if (o.json) out(JSON.stringify({ id: u.id, account_id: a.id, username: u.username, presence_id: u.presenceId }));
      else out(u.id);
    })));
  users.command('list')
    .description("list an account's users")
    .requiredOption('--account <account>', 'account id or realm')
    .option('--json', 'print JSON')
    .action(action((o: { account: string; json?: boolean }) => run(openDb, (dir) => {
      const a = findAccount(dir, o.account);
      const rows = listAll((startKey) => dir.listUsers(a.id, { startKey, pageSize: 500 })).map((u) => ({
        id: u.id, first_name: u.doc.first_name, last_name: u.doc.last_name, username: u.username ?? '', presence_id: u.presenceId ?? '', enabled: u.enabled,
      }));
      if (o.json) out(JSON.stringify(rows)); else table(rows, ['id', 'first_name', 'last_name', 'username', 'presence_id', 'enabled']);
    })));
}

function listAll<T>(page: (startKey?: string) => { rows: T[]; nextStartKey?: string }): T[] {
  const all: T[] = [];
  let key: string | undefined;
  do {
    const p = page(key);
    all.push(...p.rows);
    key = p.nextStartKey;
  } while (key);
  return all;
}
