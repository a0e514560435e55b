// STUB (replaced by the security work): digest authentication is not implemented yet, so every request passes.
import type { Config } from '../../config.js';
import type { Db } from '../../store/db.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import { openAuthenticator, type SipAuthenticator } from './types.js';

export function createAuthenticator(_opts: { config: Config; db: Db; logger: Logger; metrics: Metrics }): SipAuthenticator {
  return openAuthenticator;
}
