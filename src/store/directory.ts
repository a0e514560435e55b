// The directory: accounts (each with a unique SIP realm and a parent), users and devices, kept as Kazoo keeps
// them (a JSON document per object, fields the server needs copied into indexed columns). Passwords never reach
// the database in clear: devices and users keep the HA1 digests SIP digest auth needs (RFC 7616 §3.4.2,
// HA1 = H(username:realm:password), one per algorithm) and users also keep a SHA-256 of Kazoo's user_auth hash
// (md5/sha1 of "username:password"). Every statement is prepared once.
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './db.js';

export type Json = Record<string, unknown>;

export interface DigestCredentials {
  accountId: string; deviceId: string; realm: string; username: string;
  /** HA1 = H(username:realm:password), lower-case hex. */
  ha1Md5: string; ha1Sha256: string;
  /** The device and its account are both enabled. */
  enabled: boolean;
}

export interface AccountRecord {
  id: string; parentId: string | null; name: string; realm: string; enabled: boolean;
  doc: Json; revision: string; createdAt: number; updatedAt: number;
}
export interface UserRecord {
  id: string; accountId: string; username: string | null; presenceId: string | null; enabled: boolean;
  doc: Json; revision: string; hasPassword: boolean; createdAt: number; updatedAt: number;
}
export interface DeviceRecord {
  id: string; accountId: string; ownerId: string | null; name: string; presenceId: string | null; enabled: boolean;
  sipUsername: string | null; sipRealm: string | null; sipMethod: string; sipIp: string | null;
  doc: Json; revision: string; hasPassword: boolean; createdAt: number; updatedAt: number;
}
/** One page of a listing; keys are opaque to clients (Kazoo: URL-safe base64), `startKey` names this page's first row. */
export interface Page<T> { rows: T[]; startKey?: string; nextStartKey?: string }

/** A rule the directory enforces across documents (uniqueness, references); the API turns it into a 400. */
export class DirectoryError extends Error {
  constructor(public readonly field: string, public readonly rule: string, message: string, public readonly detail?: string) {
    super(message);
  }
}

export function newId(): string {
  return randomBytes(16).toString('hex');
}

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');
const sha1 = (s: string) => createHash('sha1').update(s, 'utf8').digest('hex');
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/** RFC 7616 §3.4.2: HA1 for MD5 and SHA-256 (the non "-sess" variants). */
export function ha1Digests(username: string, realm: string, password: string): { md5: string; sha256: string } {
  const a1 = `${username}:${realm}:${password}`;
  return { md5: md5(a1), sha256: sha256(a1) };
}

/** Kazoo's user_auth credentials: md5 (or sha1, method "sha") of "username:password", username lower-cased. */
export function userAuthCredentials(username: string, password: string, method: 'md5' | 'sha' = 'md5'): string {
  const s = `${username.toLowerCase()}:${password}`;
  return method === 'sha' ? sha1(s) : md5(s);
}

function revisionOf(n: number, doc: string): string {
  return `${n}-${md5(doc)}`;
}

function get(doc: Json, path: string): unknown {
  let v: unknown = doc;
  for (const k of path.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Json)[k];
  }
  return v;
}
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const bool = (v: unknown, dflt: boolean): boolean => (typeof v === 'boolean' ? v : dflt);

function encodeKey(id: string): string { return Buffer.from(id, 'utf8').toString('base64url'); }
function decodeKey(key: string | undefined): string {
  if (!key) return '';
  const id = Buffer.from(key, 'base64url').toString('utf8');
  return /^[0-9a-f]{32}$/.test(id) ? id : '';
}
/** Whether `key` is a listing key this directory hands out (the API refuses any other). */
export function isStartKey(key: string): boolean {
  return decodeKey(key) !== '' && encodeKey(decodeKey(key)) === key;
}

interface AccountRow { id: string; parent_id: string | null; name: string; realm: string; enabled: number; doc: string; revision: number; created_at: number; updated_at: number }
interface UserRow { id: string; account_id: string; username: string | null; presence_id: string | null; enabled: number; doc: string; ha1_md5: string | null; revision: number; created_at: number; updated_at: number }
interface DeviceRow { id: string; account_id: string; owner_id: string | null; name: string; presence_id: string | null; enabled: number; sip_username: string | null; sip_realm: string | null; sip_method: string; sip_ip: string | null; ha1_md5: string | null; ha1_sha256: string | null; doc: string; revision: number; created_at: number; updated_at: number }

export class Directory {
  private readonly s;
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {
    this.s = {
      accountById: db.prepare<[string], AccountRow>('SELECT * FROM accounts WHERE id = ?'),
      accountByRealm: db.prepare<[string], AccountRow>('SELECT * FROM accounts WHERE realm = ?'),
      accountsByName: db.prepare<[string], AccountRow>('SELECT * FROM accounts WHERE name = ? COLLATE NOCASE ORDER BY id'),
      accountRealms: db.prepare<[], { realm: string }>('SELECT realm FROM accounts ORDER BY realm'),
      accountsAll: db.prepare<[], AccountRow>('SELECT * FROM accounts ORDER BY created_at, id'),
      children: db.prepare<[string], AccountRow>('SELECT * FROM accounts WHERE parent_id = ? ORDER BY id'),
      childCount: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM accounts WHERE parent_id = ?'),
      insertAccount: db.prepare('INSERT INTO accounts (id, parent_id, name, realm, enabled, doc, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)'),
      updateAccount: db.prepare('UPDATE accounts SET name = ?, realm = ?, enabled = ?, doc = ?, revision = revision + 1, updated_at = ? WHERE id = ?'),
      deleteAccount: db.prepare('DELETE FROM accounts WHERE id = ?'),
      isDescendant: db.prepare<[string, string], { one: number }>(`
        WITH RECURSIVE up(id, parent_id) AS (
          SELECT id, parent_id FROM accounts WHERE id = ?
          UNION ALL SELECT a.id, a.parent_id FROM accounts a JOIN up ON a.id = up.parent_id
        ) SELECT 1 AS one FROM up WHERE id = ? LIMIT 1`),
      accountDevicesWithDigestOnRealm: db.prepare<[string], { n: number }>(
        'SELECT count(*) AS n FROM devices WHERE account_id = ? AND sip_realm IS NULL AND ha1_md5 IS NOT NULL'),
      clearUserDigests: db.prepare('UPDATE users SET ha1_md5 = NULL, ha1_sha256 = NULL WHERE account_id = ?'),

      userById: db.prepare<[string, string], UserRow>('SELECT * FROM users WHERE account_id = ? AND id = ?'),
      userByUsername: db.prepare<[string, string], UserRow>('SELECT * FROM users WHERE account_id = ? AND username = ?'),
      userByCredsMd5: db.prepare<[string, string], UserRow>('SELECT * FROM users WHERE account_id = ? AND creds_md5 = ?'),
      userByCredsSha1: db.prepare<[string, string], UserRow>('SELECT * FROM users WHERE account_id = ? AND creds_sha1 = ?'),
      usersPage: db.prepare<[string, string, number], UserRow>('SELECT * FROM users WHERE account_id = ? AND id >= ? ORDER BY id LIMIT ?'),
      insertUser: db.prepare('INSERT INTO users (id, account_id, username, presence_id, enabled, doc, ha1_md5, ha1_sha256, creds_md5, creds_sha1, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)'),
      updateUser: db.prepare('UPDATE users SET username = ?, presence_id = ?, enabled = ?, doc = ?, ha1_md5 = ?, ha1_sha256 = ?, creds_md5 = ?, creds_sha1 = ?, revision = revision + 1, updated_at = ? WHERE account_id = ? AND id = ?'),
      userSecrets: db.prepare<[string, string], { ha1_md5: string | null; ha1_sha256: string | null; creds_md5: string | null; creds_sha1: string | null }>('SELECT ha1_md5, ha1_sha256, creds_md5, creds_sha1 FROM users WHERE account_id = ? AND id = ?'),
      deleteUser: db.prepare('DELETE FROM users WHERE account_id = ? AND id = ?'),

      deviceById: db.prepare<[string, string], DeviceRow>('SELECT * FROM devices WHERE account_id = ? AND id = ?'),
      devicesPage: db.prepare<[string, string, number], DeviceRow>('SELECT * FROM devices WHERE account_id = ? AND id >= ? ORDER BY id LIMIT ?'),
      devicesOwnedBy: db.prepare<[string, string], DeviceRow>('SELECT * FROM devices WHERE account_id = ? AND owner_id = ? ORDER BY id'),
      devicesBySipUsername: db.prepare<[string], DeviceRow & { account_realm: string; account_enabled: number }>(`
        SELECT d.*, a.realm AS account_realm, a.enabled AS account_enabled
        FROM devices d JOIN accounts a ON a.id = d.account_id WHERE d.sip_username = ?`),
      deviceByIp: db.prepare<[string], DeviceRow & { account_realm: string }>(`
        SELECT d.*, a.realm AS account_realm FROM devices d JOIN accounts a ON a.id = d.account_id
        WHERE d.sip_method = 'ip' AND d.sip_ip = ? AND d.enabled = 1 AND a.enabled = 1 ORDER BY d.id LIMIT 1`),
      insertDevice: db.prepare('INSERT INTO devices (id, account_id, owner_id, name, presence_id, enabled, sip_username, sip_realm, sip_method, sip_ip, ha1_md5, ha1_sha256, doc, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)'),
      updateDevice: db.prepare('UPDATE devices SET owner_id = ?, name = ?, presence_id = ?, enabled = ?, sip_username = ?, sip_realm = ?, sip_method = ?, sip_ip = ?, ha1_md5 = ?, ha1_sha256 = ?, doc = ?, revision = revision + 1, updated_at = ? WHERE account_id = ? AND id = ?'),
      deleteDevice: db.prepare('DELETE FROM devices WHERE account_id = ? AND id = ?'),
    };
  }

  // ---- the functions SIP digest auth calls -------------------------------------------------------------------

  accountByRealm(realm: string): { id: string; name: string; realm: string; enabled: boolean } | undefined {
    const r = this.s.accountByRealm.get(realm.toLowerCase());
    return r && { id: r.id, name: r.name, realm: r.realm, enabled: r.enabled === 1 };
  }

  /** Every account realm: the domains served when SIP auth is on. */
  accountRealms(): string[] {
    return this.s.accountRealms.all().map((r) => r.realm);
  }

  /** The device whose sip.username is `username` and whose realm (sip.realm, else the account realm) is `realm`. */
  digestCredentials(realm: string, username: string): DigestCredentials | undefined {
    const want = realm.toLowerCase();
    for (const d of this.s.devicesBySipUsername.all(username)) {
      const effective = (d.sip_realm ?? d.account_realm).toLowerCase();
      if (effective !== want || d.sip_method !== 'password' || !d.ha1_md5 || !d.ha1_sha256) continue;
      return {
        accountId: d.account_id, deviceId: d.id, realm: effective, username: d.sip_username!,
        ha1Md5: d.ha1_md5, ha1Sha256: d.ha1_sha256, enabled: d.enabled === 1 && d.account_enabled === 1,
      };
    }
    return undefined;
  }

  /** An enabled device (in an enabled account) with sip.method "ip" whose sip.ip is `ip`. */
  deviceByIp(ip: string): { accountId: string; deviceId: string; realm: string; username: string } | undefined {
    const d = this.s.deviceByIp.get(ip);
    return d && { accountId: d.account_id, deviceId: d.id, realm: d.sip_realm ?? d.account_realm, username: d.sip_username ?? d.presence_id ?? d.id };
  }

  /** True when `accountId` is `ancestorId` itself or lies anywhere below it (what a token of `ancestorId` reaches). */
  isDescendant(accountId: string, ancestorId: string): boolean {
    return this.s.isDescendant.get(accountId, ancestorId) !== undefined;
  }

  // ---- accounts ------------------------------------------------------------------------------------------------

  getAccount(id: string): AccountRecord | undefined {
    const r = this.s.accountById.get(id);
    return r && toAccount(r);
  }

  accountsByName(name: string): AccountRecord[] {
    return this.s.accountsByName.all(name).map(toAccount);
  }

  listAccounts(): AccountRecord[] {
    return this.s.accountsAll.all().map(toAccount);
  }

  children(id: string): AccountRecord[] {
    return this.s.children.all(id).map(toAccount);
  }

  /** `doc` holds name, realm, enabled and whatever else the client sent (already validated, secrets removed). */
  createAccount(doc: Json, parentId: string | null): AccountRecord {
    const id = newId();
    const realm = String(doc.realm).toLowerCase();
    const stored = { ...doc, realm };
    const now = this.now();
    this.db.transaction(() => {
      this.assertRealmFree(realm, undefined);
      this.s.insertAccount.run(id, parentId, String(doc.name), realm, bool(doc.enabled, true) ? 1 : 0, JSON.stringify(stored), now, now);
    })();
    return this.getAccount(id)!;
  }

  updateAccount(id: string, doc: Json): AccountRecord {
    const now = this.now();
    this.db.transaction(() => {
      const cur = this.s.accountById.get(id);
      if (!cur) throw new DirectoryError('id', 'not_found', 'account not found', id);
      const realm = String(doc.realm ?? cur.realm).toLowerCase();
      if (realm !== cur.realm) {
        this.assertRealmFree(realm, id);
        // A device's HA1 is bound to its realm (RFC 7616 §3.4.2); without the password it cannot be recomputed.
        if (this.s.accountDevicesWithDigestOnRealm.get(id)!.n > 0) {
          throw new DirectoryError('realm', 'invalid', 'realm cannot change while devices hold SIP password digests made with it: give those devices sip.realm or a new sip.password first');
        }
        this.s.clearUserDigests.run(id);
      }
      const stored = { ...doc, realm };
      this.s.updateAccount.run(String(doc.name ?? cur.name), realm, bool(doc.enabled, true) ? 1 : 0, JSON.stringify(stored), now, id);
    })();
    return this.getAccount(id)!;
  }

  hasChildren(id: string): boolean {
    return this.s.childCount.get(id)!.n > 0;
  }

  /** Deletes the account with its users, devices, keys, tokens and reports (ON DELETE CASCADE). */
  deleteAccount(id: string): boolean {
    return this.s.deleteAccount.run(id).changes > 0;
  }

  private assertRealmFree(realm: string, selfId: string | undefined): void {
    const other = this.s.accountByRealm.get(realm);
    if (other && other.id !== selfId) throw new DirectoryError('realm', 'unique', 'Account realm already in use', realm);
  }

  // ---- users ---------------------------------------------------------------------------------------------------

  getUser(accountId: string, id: string): UserRecord | undefined {
    const r = this.s.userById.get(accountId, id);
    return r && toUser(r);
  }

  listUsers(accountId: string, opts: { startKey?: string; pageSize: number }): Page<UserRecord> {
    const rows = this.s.usersPage.all(accountId, decodeKey(opts.startKey), opts.pageSize + 1);
    const next = rows.length > opts.pageSize ? rows.pop() : undefined;
    return { rows: rows.map(toUser), startKey: rows[0] && encodeKey(rows[0].id), nextStartKey: next && encodeKey(next.id) };
  }

  /** Kazoo's user_auth: the user of `accountId` whose md5/sha1("username:password") is `credentials`. */
  userByCredentials(accountId: string, credentials: string, method: 'md5' | 'sha'): UserRecord | undefined {
    const h = sha256(credentials.toLowerCase());
    const r = method === 'sha' ? this.s.userByCredsSha1.get(accountId, h) : this.s.userByCredsMd5.get(accountId, h);
    return r && toUser(r);
  }

  createUser(accountId: string, doc: Json, password?: string): UserRecord {
    const id = newId();
    this.db.transaction(() => this.writeUser(accountId, id, doc, password, undefined))();
    return this.getUser(accountId, id)!;
  }

  updateUser(accountId: string, id: string, doc: Json, password?: string): UserRecord {
    this.db.transaction(() => {
      const cur = this.s.userById.get(accountId, id);
      if (!cur) throw new DirectoryError('id', 'not_found', 'user not found', id);
      this.writeUser(accountId, id, doc, password, cur);
    })();
    return this.getUser(accountId, id)!;
  }

  deleteUser(accountId: string, id: string): boolean {
    return this.db.transaction(() => {
      // Kazoo leaves owned devices in place; they lose their owner (the column by ON DELETE SET NULL, the doc here).
      for (const d of this.s.devicesOwnedBy.all(accountId, id)) {
        const doc = JSON.parse(d.doc) as Json;
        delete doc.owner_id;
        this.s.updateDevice.run(null, d.name, d.presence_id, d.enabled, d.sip_username, d.sip_realm, d.sip_method, d.sip_ip, d.ha1_md5, d.ha1_sha256, JSON.stringify(doc), this.now(), accountId, d.id);
      }
      return this.s.deleteUser.run(accountId, id).changes > 0;
    })();
  }

  private writeUser(accountId: string, id: string, doc: Json, password: string | undefined, cur: UserRow | undefined): void {
    const account = this.s.accountById.get(accountId);
    if (!account) throw new DirectoryError('account_id', 'not_found', 'account not found', accountId);
    const username = str(doc.username)?.toLowerCase() ?? null;
    const stored: Json = { ...doc };
    if (username) stored.username = username;
    if (username) {
      const other = this.s.userByUsername.get(accountId, username);
      if (other && other.id !== id) throw new DirectoryError('username', 'unique', 'Username is not unique for this account', username);
    }
    let secrets = { ha1_md5: null as string | null, ha1_sha256: null as string | null, creds_md5: null as string | null, creds_sha1: null as string | null };
    if (password !== undefined) {
      if (!username) throw new DirectoryError('username', 'required', 'Field is required when a password is set');
      const ha1 = ha1Digests(username, account.realm, password);
      secrets = {
        ha1_md5: ha1.md5, ha1_sha256: ha1.sha256,
        creds_md5: sha256(userAuthCredentials(username, password, 'md5')),
        creds_sha1: sha256(userAuthCredentials(username, password, 'sha')),
      };
    } else if (cur) {
      const old = this.s.userSecrets.get(accountId, id)!;
      // The digests bind the username; a new username without the password would leave them unusable.
      if (old.creds_md5 && username !== cur.username) {
        throw new DirectoryError('password', 'required', 'Field is required when the username changes: passwords are kept only as digests');
      }
      secrets = old;
    }
    const now = this.now();
    const json = JSON.stringify(stored);
    const presenceId = str(doc.presence_id);
    const enabled = bool(doc.enabled, true) ? 1 : 0;
    if (cur) {
      this.s.updateUser.run(username, presenceId, enabled, json, secrets.ha1_md5, secrets.ha1_sha256, secrets.creds_md5, secrets.creds_sha1, now, accountId, id);
    } else {
      this.s.insertUser.run(id, accountId, username, presenceId, enabled, json, secrets.ha1_md5, secrets.ha1_sha256, secrets.creds_md5, secrets.creds_sha1, now, now);
    }
  }

  // ---- devices -------------------------------------------------------------------------------------------------

  getDevice(accountId: string, id: string): DeviceRecord | undefined {
    const r = this.s.deviceById.get(accountId, id);
    return r && toDevice(r);
  }

  listDevices(accountId: string, opts: { startKey?: string; pageSize: number }): Page<DeviceRecord> {
    const rows = this.s.devicesPage.all(accountId, decodeKey(opts.startKey), opts.pageSize + 1);
    const next = rows.length > opts.pageSize ? rows.pop() : undefined;
    return { rows: rows.map(toDevice), startKey: rows[0] && encodeKey(rows[0].id), nextStartKey: next && encodeKey(next.id) };
  }

  devicesOwnedBy(accountId: string, userId: string): DeviceRecord[] {
    return this.s.devicesOwnedBy.all(accountId, userId).map(toDevice);
  }

  createDevice(accountId: string, doc: Json, sipPassword?: string): DeviceRecord {
    const id = newId();
    this.db.transaction(() => this.writeDevice(accountId, id, doc, sipPassword, undefined))();
    return this.getDevice(accountId, id)!;
  }

  updateDevice(accountId: string, id: string, doc: Json, sipPassword?: string): DeviceRecord {
    this.db.transaction(() => {
      const cur = this.s.deviceById.get(accountId, id);
      if (!cur) throw new DirectoryError('id', 'not_found', 'device not found', id);
      this.writeDevice(accountId, id, doc, sipPassword, cur);
    })();
    return this.getDevice(accountId, id)!;
  }

  deleteDevice(accountId: string, id: string): boolean {
    return this.s.deleteDevice.run(accountId, id).changes > 0;
  }

  private writeDevice(accountId: string, id: string, doc: Json, sipPassword: string | undefined, cur: DeviceRow | undefined): void {
    const account = this.s.accountById.get(accountId);
    if (!account) throw new DirectoryError('account_id', 'not_found', 'account not found', accountId);
    const ownerId = str(doc.owner_id);
    if (ownerId && !this.s.userById.get(accountId, ownerId)) {
      throw new DirectoryError('owner_id', 'not_found', 'Owner is not a user of this account', ownerId);
    }
    const sipUsername = str(get(doc, 'sip.username'));
    const sipRealm = str(get(doc, 'sip.realm'))?.toLowerCase() ?? null;
    const sipMethod = str(get(doc, 'sip.method')) ?? 'password';
    const sipIp = str(get(doc, 'sip.ip'));
    const realm = sipRealm ?? account.realm;
    if (sipUsername) {
      // Digest lookups go by (realm, username), so that pair names one device at most.
      for (const other of this.s.devicesBySipUsername.all(sipUsername)) {
        if (other.id !== id && (other.sip_realm ?? other.account_realm).toLowerCase() === realm) {
          throw new DirectoryError('sip.username', 'unique', 'SIP username already in use', sipUsername);
        }
      }
    }
    let ha1: { md5: string | null; sha256: string | null } = { md5: null, sha256: null };
    if (sipPassword !== undefined) {
      if (!sipUsername) throw new DirectoryError('sip.username', 'required', 'Field is required when sip.password is set');
      ha1 = ha1Digests(sipUsername, realm, sipPassword);
    } else if (cur?.ha1_md5 && sipUsername) {
      const oldRealm = cur.sip_realm ?? account.realm;
      if (sipUsername !== cur.sip_username || realm !== oldRealm.toLowerCase()) {
        throw new DirectoryError('sip.password', 'required', 'Field is required when sip.username or sip.realm changes: passwords are kept only as digests');
      }
      ha1 = { md5: cur.ha1_md5, sha256: cur.ha1_sha256 };
    }
    const stored: Json = { ...doc };
    if (sipRealm && typeof stored.sip === 'object' && stored.sip) stored.sip = { ...(stored.sip as Json), realm: sipRealm };
    const now = this.now();
    const json = JSON.stringify(stored);
    const name = String(doc.name ?? '');
    const presenceId = str(doc.presence_id);
    const enabled = bool(doc.enabled, true) ? 1 : 0;
    if (cur) {
      this.s.updateDevice.run(ownerId, name, presenceId, enabled, sipUsername, sipRealm, sipMethod, sipIp, ha1.md5, ha1.sha256, json, now, accountId, id);
    } else {
      this.s.insertDevice.run(id, accountId, ownerId, name, presenceId, enabled, sipUsername, sipRealm, sipMethod, sipIp, ha1.md5, ha1.sha256, json, now, now);
    }
  }
}

function toAccount(r: AccountRow): AccountRecord {
  return {
    id: r.id, parentId: r.parent_id, name: r.name, realm: r.realm, enabled: r.enabled === 1,
    doc: JSON.parse(r.doc) as Json, revision: revisionOf(r.revision, r.doc), createdAt: r.created_at, updatedAt: r.updated_at,
  };
}
function toUser(r: UserRow): UserRecord {
  return {
    id: r.id, accountId: r.account_id, username: r.username, presenceId: r.presence_id, enabled: r.enabled === 1,
    doc: JSON.parse(r.doc) as Json, revision: revisionOf(r.revision, r.doc), hasPassword: r.ha1_md5 !== null,
    createdAt: r.created_at, updatedAt: r.updated_at,
  };
}
function toDevice(r: DeviceRow): DeviceRecord {
  const doc = JSON.parse(r.doc) as Json;
  if (r.owner_id) doc.owner_id = r.owner_id; else delete doc.owner_id;
  return {
    id: r.id, accountId: r.account_id, ownerId: r.owner_id, name: r.name, presenceId: r.presence_id, enabled: r.enabled === 1,
    sipUsername: r.sip_username, sipRealm: r.sip_realm, sipMethod: r.sip_method, sipIp: r.sip_ip,
    doc, revision: revisionOf(r.revision, r.doc), hasPassword: r.ha1_md5 !== null, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

// ---- presence reset reports (Kazoo's /presence/report-{ID}) -------------------------------------------------------

/** Reports kept per account; older ones are dropped as new ones arrive. */
export const REPORTS_PER_ACCOUNT = 100;

export class PresenceReports {
  private readonly s;
  constructor(db: Db, private readonly now: () => number = Date.now) {
    this.s = {
      insert: db.prepare('INSERT INTO presence_reports (id, account_id, target, created_at, report) VALUES (?, ?, ?, ?, ?)'),
      get: db.prepare<[string, string], { report: string; target: string; created_at: number }>('SELECT report, target, created_at FROM presence_reports WHERE account_id = ? AND id = ?'),
      prune: db.prepare(`DELETE FROM presence_reports WHERE account_id = ? AND id NOT IN (
        SELECT id FROM presence_reports WHERE account_id = ? ORDER BY created_at DESC, id DESC LIMIT ?)`),
    };
  }

  save(accountId: string, target: string, report: unknown): string {
    const id = newId();
    this.s.insert.run(id, accountId, target, this.now(), JSON.stringify(report));
    this.s.prune.run(accountId, accountId, REPORTS_PER_ACCOUNT);
    return id;
  }

  get(accountId: string, id: string): unknown | undefined {
    const r = this.s.get.get(accountId, id);
    return r && JSON.parse(r.report);
  }
}
