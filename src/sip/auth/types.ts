// The contract between the SIP faces (SUBSCRIBE, PUBLISH handlers) and authentication / authorization.
import type { ServerTransaction } from '../port.js';

/** Who sent a request, once it has been authenticated (or authentication is off). */
export interface SipIdentity {
  /** Account that owns the credentials (null when auth is off or the source is a trusted publisher). */
  accountId: string | null;
  /** Realm the credentials belong to. */
  realm: string | null;
  /** Digest username or the device matched by IP. */
  username: string | null;
  via: 'digest' | 'trusted' | 'ip' | 'none';
}

export type AuthDecision = { ok: true; identity: SipIdentity } | { ok: false };

export interface SipAuthenticator {
  /**
   * Authenticate and authorize a SUBSCRIBE or PUBLISH for a presentity in `domain`. On `{ok:false}` the
   * authenticator has already answered the transaction (401 challenge, 403, 404). `dialogIdentity` is the identity
   * stored with an existing subscription: an in-dialog request must come from the same credentials.
   */
  check(tx: ServerTransaction, ctx: { domain: string; dialogIdentity?: SipIdentity }): AuthDecision | Promise<AuthDecision>;
  /** Whether presentities in this domain are served at all (with auth on: only account realms). */
  servesDomain(domain: string): boolean;
}

/** Authentication switched off (`sip.auth: false`): every domain is served, every request is accepted. */
export const openAuthenticator: SipAuthenticator = {
  check: () => ({ ok: true, identity: { accountId: null, realm: null, username: null, via: 'none' } }),
  servesDomain: () => true,
};
