// STUB (replaced by the drachtio work).
import type { Config } from '../../config.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import type { SipEngine } from '../port.js';

export function createDrachtioEngine(_opts: { config: Config; logger: Logger; metrics: Metrics }): SipEngine {
  throw new Error('sip.engine "drachtio" is not implemented yet');
}
