import type { Migration } from '../db.js';

// TODO(owner of security): tables for security.
export const securityMigration: Migration = {
  version: 3,
  name: 'security',
  up(_db) {},
};
