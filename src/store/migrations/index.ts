// Versioned schema migrations, applied in order by openDatabase(). Each feature owns its own file.
import type { Migration } from '../db.js';
import { presenceMigration } from './001_presence.js';
import { directoryMigration } from './002_directory.js';
import { securityMigration } from './003_security.js';
import { subscriptionSplitMigration } from './004_subscription_split.js';
import { publicationKeysMigration } from './005_publication_keys.js';

export const MIGRATIONS: Migration[] = [presenceMigration, directoryMigration, securityMigration, subscriptionSplitMigration, publicationKeysMigration];
