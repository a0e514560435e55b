import type { Migration } from '../db.js';

// TODO(owner of presence): tables for presence.
export const presenceMigration: Migration = {
  version: 1,
  name: 'presence',
  up(_db) {},
};
