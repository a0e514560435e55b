import type { Migration } from '../db.js';

// The directory (accounts, users, devices as Kazoo's Crossbar keeps them), the API's credentials (API keys and
// auth tokens, stored only as SHA-256 hashes) and the presence reset reports. Secrets never get a column of their
// own in clear: passwords are kept only as the HA1 digests SIP needs (RFC 7616 §3.4.2, one per algorithm) and as
// a SHA-256 of Kazoo's user_auth credentials hash.
export const directoryMigration: Migration = {
  version: 2,
  name: 'directory',
  up(db) {
    db.exec(`
      CREATE TABLE accounts (
        id          TEXT PRIMARY KEY,
        parent_id   TEXT REFERENCES accounts(id) ON DELETE RESTRICT,
        name        TEXT NOT NULL,
        realm       TEXT NOT NULL COLLATE NOCASE UNIQUE,
        enabled     INTEGER NOT NULL DEFAULT 1,
        doc         TEXT NOT NULL,
        revision    INTEGER NOT NULL DEFAULT 1,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      );
      CREATE INDEX accounts_parent ON accounts(parent_id);
      CREATE INDEX accounts_name ON accounts(name COLLATE NOCASE);

      CREATE TABLE users (
        id          TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        username    TEXT,
        presence_id TEXT,
        enabled     INTEGER NOT NULL DEFAULT 1,
        doc         TEXT NOT NULL,
        ha1_md5     TEXT,
        ha1_sha256  TEXT,
        creds_md5   TEXT,
        creds_sha1  TEXT,
        revision    INTEGER NOT NULL DEFAULT 1,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX users_username ON users(account_id, username) WHERE username IS NOT NULL;
      CREATE INDEX users_creds_md5 ON users(account_id, creds_md5);
      CREATE INDEX users_creds_sha1 ON users(account_id, creds_sha1);

      CREATE TABLE devices (
        id           TEXT PRIMARY KEY,
        account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        owner_id     TEXT REFERENCES users(id) ON DELETE SET NULL,
        name         TEXT NOT NULL,
        presence_id  TEXT,
        enabled      INTEGER NOT NULL DEFAULT 1,
        sip_username TEXT,
        sip_realm    TEXT COLLATE NOCASE,
        sip_method   TEXT NOT NULL DEFAULT 'password',
        sip_ip       TEXT,
        ha1_md5      TEXT,
        ha1_sha256   TEXT,
        doc          TEXT NOT NULL,
        revision     INTEGER NOT NULL DEFAULT 1,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
      );
      CREATE INDEX devices_account ON devices(account_id);
      CREATE INDEX devices_owner ON devices(owner_id);
      CREATE INDEX devices_sip_username ON devices(sip_username);
      CREATE INDEX devices_sip_ip ON devices(sip_ip) WHERE sip_method = 'ip';

      CREATE TABLE api_keys (
        key_hash    TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        created_at  INTEGER NOT NULL
      );
      CREATE INDEX api_keys_account ON api_keys(account_id);

      CREATE TABLE auth_tokens (
        token_hash  TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        owner_id    TEXT,
        method      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
      );
      CREATE INDEX auth_tokens_expires ON auth_tokens(expires_at);

      CREATE TABLE presence_reports (
        id          TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        target      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        report      TEXT NOT NULL
      );
      CREATE INDEX presence_reports_account ON presence_reports(account_id, created_at);
    `);
  },
};
