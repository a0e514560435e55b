import type { Migration } from '../db.js';

// TODO(owner of directory): tables for directory.
export const directoryMigration: Migration = {
  version: 2,
  name: 'directory',
  up(_db) {},
};
