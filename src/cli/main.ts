// `lamplighter` command line: start the server, manage the directory, look at subscriptions, migrate and back up
// the database. Every command has --help. Commands that only read or write the database open it directly (SQLite
// in WAL mode allows that while the server runs); commands that must send NOTIFYs go through the running server's API.
import { Command } from 'commander';
import { loadConfig, ConfigError, type Config } from '../config.js';
import { openDatabase, migrate, type Db } from '../store/db.js';
import { registerDirectoryCommands } from './directory.js';
import { registerSubscriptionCommands } from './subscriptions.js';

function config(program: Command): Config {
  try {
    return loadConfig({ file: program.opts().config as string | undefined });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

export function buildProgram(): Command {
  const program = new Command('lamplighter')
    .description('SIP presence server for BLF lamps, with a Kazoo-compatible admin API')
    .option('-c, --config <file>', 'config file (overrides config/default.json; env LAMPLIGHTER_CONFIG)')
    .option('--db <file>', 'database file (overrides db.file; env LAMPLIGHTER_DB)')
    .showHelpAfterError();

  const openDb = (): Db => {
    const file = (program.opts().db as string | undefined) ?? config(program).db.file;
    return openDatabase(file);
  };

  program.command('start')
    .description('run the server (SIP on udp/tcp/ws and the HTTP API) until SIGTERM/SIGINT')
    .action(async () => {
      const opts = program.opts();
      if (opts.db) process.env.LAMPLIGHTER_DB = opts.db as string;
      if (opts.config) process.argv.push('--config', opts.config as string);
      await import('../main.js');
    });

  const db = program.command('db').description('database maintenance');
  db.command('migrate')
    .description('apply pending schema migrations and exit')
    .action(() => {
      const file = (program.opts().db as string | undefined) ?? config(program).db.file;
      // openDatabase migrates; report how many were applied by migrating a plain connection first.
      const d = openDatabase(file);
      const n = migrate(d);
      const v = d.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number };
      process.stdout.write(`database ${file} at schema version ${v.v}${n ? ` (${n} applied)` : ''}\n`);
      d.close();
    });
  db.command('backup')
    .argument('<file>', 'where to write the copy')
    .description('online backup (SQLite backup API): safe while the server runs')
    .action(async (file: string) => {
      const d = openDb();
      await d.backup(file);
      d.close();
      process.stdout.write(`backup written to ${file}\n`);
    });

  registerDirectoryCommands(program, openDb);
  registerSubscriptionCommands(program, openDb);
  return program;
}

const isMain = process.argv[1] && /cli[\\/]main\.(ts|js)$|bin[\\/]lamplighter(\.js)?$/.test(process.argv[1]);
if (isMain) {
  buildProgram().parseAsync(process.argv).catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}
