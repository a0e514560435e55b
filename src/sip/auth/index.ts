// Builds the SIP authenticator from the config: digest auth against the directory when sip.auth is on (the
// default), the open authenticator when a lab switched it off (server.ts logs the warning at start).
import type { Config } from '../../config.js';
import type { Db } from '../../store/db.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import { Directory } from '../../store/directory.js';
import { openAuthenticator, type SipAuthenticator } from './types.js';
import { DigestAuthenticator, type DirectoryLookup } from './authenticator.js';
import { NonceService, loadNonceSecret } from './nonce.js';
import { AuthThrottle } from './throttle.js';
import { CidrList } from './cidr.js';

export interface AuthenticatorDeps {
  config: Config;
  db: Db;
  logger: Logger;
  metrics: Metrics;
  /** Tests inject a clock to drive nonce expiry and the back-off window. */
  now?: () => number;
  directory?: DirectoryLookup;
}

export function createAuthenticator(opts: AuthenticatorDeps): SipAuthenticator {
  const { config, db, logger, metrics } = opts;
  if (!config.sip.auth) return openAuthenticator;
  let trustedPublishers: CidrList;
  try {
    trustedPublishers = new CidrList(config.sip.trustedPublishers);
  } catch (err) {
    throw new Error(`sip.trustedPublishers: ${(err as Error).message}`);
  }
  const now = opts.now ?? Date.now;
  const limits = config.sip.limits;
  if (trustedPublishers.size > 0) logger.info({ trustedPublishers: config.sip.trustedPublishers }, 'trusted publishers may PUBLISH without a challenge');
  return new DigestAuthenticator({
    directory: opts.directory ?? new Directory(db),
    nonces: new NonceService(loadNonceSecret(db), { ttlSeconds: config.sip.nonceTtl, now }),
    throttle: new AuthThrottle({ failuresBeforeBlock: limits.authFailuresBeforeBlock, blockMs: limits.authBlockSeconds * 1000, now }),
    trustedPublishers,
    logger,
    metrics,
  });
}

export { DigestAuthenticator } from './authenticator.js';
