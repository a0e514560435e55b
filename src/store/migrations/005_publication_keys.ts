import type { Migration } from '../db.js';

// Publications keyed by an INTEGER rowid (`seq`, chosen by the node) instead of their entity-tag. The entity-tag
// changes on every refresh and modify (RFC 3903 §6 step 8), so as a primary key each refresh moved the row within a
// random-keyed index; and the presentity and expiry indexes were never read, because every lookup is in memory
// (the table is loaded at start). Same reasoning and measurements as migration 004.
export const publicationKeysMigration: Migration = {
  version: 5,
  name: 'publication-keys',
  up(db) {
    db.exec(`
      CREATE TABLE publications_by_seq (
        seq           INTEGER PRIMARY KEY,
        etag          TEXT NOT NULL,
        presentity    TEXT NOT NULL,
        event         TEXT NOT NULL,
        expires_at    INTEGER NOT NULL,
        content_type  TEXT NOT NULL,
        body          BLOB NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
      );
      INSERT INTO publications_by_seq (seq, etag, presentity, event, expires_at, content_type, body, created_at, updated_at)
        SELECT rowid, etag, presentity, event, expires_at, content_type, body, created_at, updated_at FROM publications;
      DROP TABLE publications;
      ALTER TABLE publications_by_seq RENAME TO publications;
    `);
  },
};
