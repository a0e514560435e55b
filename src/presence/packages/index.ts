// The event packages we serve (RFC 6665 §4.4.2), one file each. Adding a package is one new file plus one line here.
import type { EventPackageName } from '../service.js';
import type { EventPackage } from './types.js';
import type { BodyLimits } from './common.js';
import { createDialogPackage } from './dialog.js';
import { createPresencePackage } from './presence.js';
import { createMessageSummaryPackage } from './message-summary.js';

export type { BodyLimits } from './common.js';
export { DEFAULT_BODY_LIMITS } from './common.js';
export type { XmlLimits } from './xml.js';
export { DEFAULT_XML_LIMITS, escapeXml, readXml } from './xml.js';

/** Build the packages with other limits than the defaults (e.g. from config). */
export function createPackages(limits?: Partial<BodyLimits>): Record<EventPackageName, EventPackage> {
  return {
    dialog: createDialogPackage(limits),
    presence: createPresencePackage(limits),
    'message-summary': createMessageSummaryPackage(limits),
  };
}

export const PACKAGES: Record<EventPackageName, EventPackage> = createPackages();

/** For `Allow-Events` in 2xx to SUBSCRIBE, in 489 and in OPTIONS replies (RFC 6665 §4.4.4, §7.2.2). */
export const ALLOW_EVENTS = 'dialog, presence, message-summary';

/**
 * The package for an Event header's event type (without parameters), or undefined for 489. Event types are
 * tokens, matched exactly; own properties only, so `constructor` or `__proto__` are unknown.
 */
export function getPackage(name: string): EventPackage | undefined {
  return Object.prototype.hasOwnProperty.call(PACKAGES, name) ? PACKAGES[name as EventPackageName] : undefined;
}
