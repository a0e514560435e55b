import type { Migration } from '../db.js';

// Subscriptions split by how often they are written. The dialog (RFC 3261 §12.1.1) is written when a SUBSCRIBE
// creates or refreshes it; the NOTIFY counters (local CSeq, dialog-info version) are written before EVERY NOTIFY
// leaves, so a fan-out to 1000 watchers is 1000 row updates. In the wide row that rewrote ~1.5 KB per watcher (about
// 25 ms per 1000 random rows at 100 000 subscriptions); in a narrow row of its own it is ~2 ms.
//
// Keys are INTEGER rowids (`seq`, chosen by the node) instead of the random TEXT id: inserts append to the last page
// instead of landing on a random page of an index, and there are no secondary indexes, because every lookup is done
// in memory (the whole table is loaded at start). `subscriptions` stays as a view with the old columns, so readers
// (the CLI, operators' scripts, tests) see one row per subscription as before.
const DIALOG_COLUMNS = `id, event, event_id, presentity, domain, watcher_uri, call_id, local_tag, remote_tag, local_uri,
  remote_uri, remote_target, route_set, remote_cseq, accept, transport, flow_id, source_address, source_port, identity,
  expires, expires_at, node_id, created_at, updated_at, last_notify_cseq, last_notify_reply, last_notify_body,
  user_agent`;

export const subscriptionSplitMigration: Migration = {
  version: 4,
  name: 'subscription-split',
  up(db) {
    db.exec(`
      CREATE TABLE subscription_dialogs (
        seq               INTEGER PRIMARY KEY,
        id                TEXT NOT NULL,
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
        remote_cseq       INTEGER NOT NULL,
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
      CREATE TABLE subscription_counters (
        seq            INTEGER PRIMARY KEY,
        local_cseq     INTEGER NOT NULL,
        notify_version INTEGER NOT NULL
      );
      INSERT INTO subscription_dialogs (seq, ${DIALOG_COLUMNS}) SELECT rowid, ${DIALOG_COLUMNS} FROM subscriptions;
      INSERT INTO subscription_counters (seq, local_cseq, notify_version) SELECT rowid, local_cseq, notify_version FROM subscriptions;
      DROP TABLE subscriptions;
      CREATE VIEW subscriptions AS
        SELECT d.seq, d.id, d.event, d.event_id, d.presentity, d.domain, d.watcher_uri, d.call_id, d.local_tag,
          d.remote_tag, d.local_uri, d.remote_uri, d.remote_target, d.route_set, c.local_cseq, d.remote_cseq,
          c.notify_version, d.accept, d.transport, d.flow_id, d.source_address, d.source_port, d.identity, d.expires,
          d.expires_at, d.node_id, d.created_at, d.updated_at, d.last_notify_cseq, d.last_notify_reply,
          d.last_notify_body, d.user_agent
        FROM subscription_dialogs d JOIN subscription_counters c ON c.seq = d.seq;
    `);
  },
};
