// `npm start`: load config, start the server, stop cleanly on SIGTERM/SIGINT.
import { loadConfig, ConfigError } from './config.js';
import { createLogger } from './log.js';
import { startServer } from './server.js';
import { tuneMemory } from './memory.js';

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig({ file: argValue('--config') });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.log.level);
  tuneMemory(config.memory, logger);
  const server = await startServer(config, logger);
  let exiting = false;
  const shutdown = (signal: string) => {
    if (exiting) return;
    exiting = true;
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    server.stop().then(() => {
      logger.info('stopped');
      logger.flush();
      process.exit(0);
    }, (err) => {
      logger.error({ err }, 'error while stopping');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`lamplighter failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
