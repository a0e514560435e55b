import type { Migration } from '../db.js';

// Security state that must survive restarts and be shared by every node on the same database: the server secret
// that stateless digest nonces are HMAC-signed with (RFC 7616 §3.3 leaves the nonce format to the server). The secret
// is created by the authenticator on first start (INSERT OR IGNORE), never by an operator, and never leaves the DB.
export const securityMigration: Migration = {
  version: 3,
  name: 'security',
  up(db) {
    db.exec(`CREATE TABLE IF NOT EXISTS server_secrets (
      name TEXT PRIMARY KEY,
      value BLOB NOT NULL,
      created_at INTEGER NOT NULL
    ) STRICT`);
  },
};
