import type { Migration } from '../db.js';

// Presence state on disk: subscriptions with the complete dialog state needed to send an in-dialog NOTIFY after a
// restart (RFC 3261 §12.1.1, RFC 6665 §4.1.2), publications held by the event state compositor (RFC 3903 §6), and
// the admin's manual lamp states. Expiry is an absolute unix-ms column so a restarted node can honour it.
export const presenceMigration: Migration = {
  version: 1,
  name: 'presence',
  up(db) {
    db.exec(`
      CREATE TABLE subscriptions (
        id                TEXT PRIMARY KEY,
        event             TEXT NOT NULL,
        event_id          TEXT,
        presentity        TEXT NOT NULL,
        domain            TEXT NOT NULL,
        watcher_uri       TEXT NOT NULL,
        call_id           TEXT NOT NULL,
        local_tag         TEXT NOT NULL,
        remote_tag        TEXT NOT NULL,
        local_uri         TEXT NOT NULL,
        remote_uri        TEXT NOT NULL,
        remote_target     TEXT NOT NULL,
        route_set         TEXT NOT NULL DEFAULT '[]',
        local_cseq        INTEGER NOT NULL,
        remote_cseq       INTEGER NOT NULL,
        notify_version    INTEGER NOT NULL,
        accept            TEXT,
        transport         TEXT NOT NULL,
        flow_id           TEXT,
        source_address    TEXT,
        source_port       INTEGER,
        identity          TEXT,
        expires           INTEGER NOT NULL,
        expires_at        INTEGER NOT NULL,
        node_id           TEXT NOT NULL,
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL,
        last_notify_cseq  INTEGER NOT NULL DEFAULT 0,
        last_notify_reply INTEGER NOT NULL DEFAULT 0,
        last_notify_body  TEXT,
        user_agent        TEXT
      );
      CREATE INDEX subscriptions_presentity_event ON subscriptions (presentity, event);
      CREATE INDEX subscriptions_expires_at ON subscriptions (expires_at);
      CREATE INDEX subscriptions_dialog ON subscriptions (call_id, local_tag, remote_tag);

      CREATE TABLE publications (
        etag          TEXT PRIMARY KEY,
        presentity    TEXT NOT NULL,
        event         TEXT NOT NULL,
        expires_at    INTEGER NOT NULL,
        content_type  TEXT NOT NULL,
        body          BLOB NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
      );
      CREATE INDEX publications_presentity_event ON publications (presentity, event);
      CREATE INDEX publications_expires_at ON publications (expires_at);

      CREATE TABLE manual_states (
        presentity  TEXT NOT NULL,
        event       TEXT NOT NULL,
        state       TEXT NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (presentity, event)
      );
    `);
  },
};
