// SIP digest authentication and authorization for SUBSCRIBE and PUBLISH (RFC 3261 §22, RFC 7616, RFC 8760).
//
// Order of the checks, cheapest and least revealing first:
//   1. A source in brute-force back-off gets 403 at once, before any directory lookup (trusted publishers aside).
//   2. A domain that is not an enabled account realm gets 404: we serve no presentities there.
//   3. PUBLISH from a trusted source (config.sip.trustedPublishers) passes without a challenge.
//   4. Credentials, when present, are verified (stale nonce -> 401 stale=true; anything else wrong -> a fresh 401,
//      the same for an unknown user and a wrong password, both after one HA1 comparison).
//   5. Without credentials, a device registered by source address (sip.method "ip") is matched; else 401.
//   6. Authorization: the identity's realm must be the presentity's domain, and an in-dialog request must come from
//      the identity the subscription was created with (403 otherwise).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import type { ServerTransaction } from '../port.js';
import { headerAll } from '../stack/message.js';
import type { AuthDecision, SipAuthenticator, SipIdentity } from './types.js';
import { challenge, digestHash, digestResponse, OFFERED_ALGORITHMS, parseAlgorithm, parseDigestCredentials, type DigestAlgorithm } from './digest.js';
import { NonceService } from './nonce.js';
import { AuthThrottle } from './throttle.js';
import { CidrList, throttleKey } from './cidr.js';

/** The part of src/store/directory.ts the authenticator reads. */
export interface DirectoryLookup {
  accountByRealm(realm: string): { id: string; realm: string; enabled: boolean } | undefined;
  digestCredentials(realm: string, username: string): {
    accountId: string; deviceId: string; realm: string; username: string; ha1Md5: string; ha1Sha256: string; enabled: boolean;
  } | undefined;
  deviceByIp(ip: string): { accountId: string; deviceId: string; realm: string; username: string } | undefined;
}

export type FailureReason =
  | 'blocked' | 'malformed' | 'realm' | 'uri' | 'nonce' | 'stale' | 'unknown_user' | 'wrong_password' | 'replay' | 'forbidden';

export interface AuthenticatorOptions {
  directory: DirectoryLookup;
  nonces: NonceService;
  throttle: AuthThrottle;
  trustedPublishers: CidrList;
  logger: Logger;
  metrics: Pick<Metrics, 'authFailures'>;
  random?: (n: number) => Buffer;
}

const NC_PATTERN = /^[0-9a-fA-F]{8}$/;
const LOGGED_USERNAME_CHARS = 64;

export class DigestAuthenticator implements SipAuthenticator {
  private readonly random: (n: number) => Buffer;
  /** Compared against when the user is unknown, so both failures cost the same (issue 4: same timing class). */
  private readonly decoyHa1: Record<DigestAlgorithm, string>;

  constructor(private readonly opts: AuthenticatorOptions) {
    this.random = opts.random ?? randomBytes;
    const decoy = this.random(16).toString('hex');
    this.decoyHa1 = { 'MD5': digestHash('MD5', decoy), 'SHA-256': digestHash('SHA-256', decoy) };
  }

  servesDomain(domain: string): boolean {
    return this.account(domain) !== undefined;
  }

  check(tx: ServerTransaction, ctx: { domain: string; dialogIdentity?: SipIdentity }): AuthDecision {
    const source = tx.flow.remoteAddress;
    const method = tx.request.method;
    const domain = ctx.domain.toLowerCase();

    const trusted = method === 'PUBLISH' && this.opts.trustedPublishers.contains(source);
    if (!trusted && this.opts.throttle.isBlocked(throttleKey(source))) {
      this.opts.metrics.authFailures.inc({ reason: 'blocked' });
      tx.respond({ status: 403, reason: 'Forbidden', toTag: this.tag() });
      return { ok: false };
    }
    if (!this.account(domain)) {
      tx.respond({ status: 404, reason: 'Not Found', toTag: this.tag() });
      return { ok: false };
    }
    if (trusted) return { ok: true, identity: { accountId: null, realm: null, username: null, via: 'trusted' } };

    let identity: SipIdentity | undefined;
    const credentials = headerAll(tx.request, 'authorization');
    if (credentials.length > 0) {
      const verdict = this.verify(tx, credentials);
      if (verdict.kind === 'stale') return this.challenge(tx, domain, true);
      if (verdict.kind === 'failed') {
        this.fail(source, verdict.reason, verdict.username);
        return this.challenge(tx, domain, false);
      }
      identity = verdict.identity;
    } else {
      const device = this.opts.directory.deviceByIp(source);
      if (device) identity = { accountId: device.accountId, realm: device.realm.toLowerCase(), username: device.username, via: 'ip' };
    }
    if (!identity) return this.challenge(tx, domain, false);

    // RFC 6665 §4.2.1.3: the notifier decides who may watch; here a watcher sees its own account's realm only.
    if (identity.realm !== domain || (ctx.dialogIdentity && !sameIdentity(identity, ctx.dialogIdentity))) {
      this.opts.metrics.authFailures.inc({ reason: 'forbidden' });
      this.opts.logger.debug({ source, method, realm: identity.realm, domain }, 'authenticated but not authorized');
      tx.respond({ status: 403, reason: 'Forbidden', toTag: this.tag() });
      return { ok: false };
    }
    return { ok: true, identity };
  }

  private verify(tx: ServerTransaction, values: string[]):
    | { kind: 'ok'; identity: SipIdentity }
    | { kind: 'stale' }
    | { kind: 'failed'; reason: FailureReason; username?: string } {
    // Several credentials may be present (one per realm, RFC 3261 §22.3); use the first Digest one for a realm we
    // serve, else the first Digest one at all (and fail it on its realm).
    let params: Map<string, string> | undefined;
    for (const v of values) {
      const p = parseDigestCredentials(v);
      if (!p) continue;
      params ??= p;
      const r = p.get('realm');
      if (r !== undefined && this.account(r)) { params = p; break; }
    }
    if (!params) return { kind: 'failed', reason: 'malformed' };
    const username = params.get('username');
    const realm = params.get('realm');
    const nonce = params.get('nonce');
    const uri = params.get('uri');
    const response = params.get('response');
    const cnonce = params.get('cnonce');
    const nc = params.get('nc');
    const algorithm = parseAlgorithm(params.get('algorithm'));
    if (username === undefined || realm === undefined || nonce === undefined || uri === undefined || response === undefined
      || !algorithm || params.get('qop')?.toLowerCase() !== 'auth' || cnonce === undefined || nc === undefined || !NC_PATTERN.test(nc)) {
      return { kind: 'failed', reason: 'malformed', username };
    }
    const account = this.account(realm);
    if (!account) return { kind: 'failed', reason: 'realm', username };
    // RFC 7616 §3.4.6: the digest-uri must name the resource of the request line, or the response was computed
    // for some other request.
    if (uri !== tx.request.uri) return { kind: 'failed', reason: 'uri', username };
    const fresh = this.opts.nonces.check(nonce);
    if (fresh.status === 'invalid') return { kind: 'failed', reason: 'nonce', username };

    const creds = this.opts.directory.digestCredentials(account.realm, username);
    const known = creds !== undefined && creds.enabled;
    const ha1 = known ? (algorithm === 'MD5' ? creds.ha1Md5 : creds.ha1Sha256) : this.decoyHa1[algorithm];
    const expected = digestResponse({ algorithm, ha1: ha1.toLowerCase(), nonce, nc, cnonce, qop: 'auth', method: tx.request.method, uri });
    const given = Buffer.from(response.toLowerCase().padEnd(expected.length, '\0').slice(0, expected.length), 'latin1');
    const match = timingSafeEqual(given, Buffer.from(expected, 'latin1')) && response.length === expected.length;
    if (!known) return { kind: 'failed', reason: 'unknown_user', username };
    if (!match) return { kind: 'failed', reason: 'wrong_password', username };
    // stale=true only for a correct response with an old nonce (RFC 7616 §3.3): the client knows the password and
    // retries with the new nonce without asking its user.
    if (fresh.status === 'stale') {
      this.opts.metrics.authFailures.inc({ reason: 'stale' });
      return { kind: 'stale' };
    }
    if (!this.opts.nonces.acceptCount(nonce, fresh.issuedAt, parseInt(nc, 16))) return { kind: 'failed', reason: 'replay', username };
    return { kind: 'ok', identity: { accountId: creds.accountId, realm: account.realm.toLowerCase(), username: creds.username, via: 'digest' } };
  }

  private fail(source: string, reason: FailureReason, username: string | undefined): void {
    this.opts.metrics.authFailures.inc({ reason });
    // The username is the client's word: cut it so a hostile one cannot bloat the log line.
    this.opts.logger.debug({ source, reason, username: username?.slice(0, LOGGED_USERNAME_CHARS) }, 'SIP authentication failed');
    if (this.opts.throttle.recordFailure(throttleKey(source))) {
      this.opts.logger.warn({ source, reason }, 'too many failed SIP authentications: source blocked for the back-off window');
    }
  }

  /** 401 with one challenge per algorithm, SHA-256 first (RFC 8760 §2.4), sharing one nonce. */
  private challenge(tx: ServerTransaction, realm: string, stale: boolean): { ok: false } {
    const nonce = this.opts.nonces.issue();
    tx.respond({
      status: 401,
      reason: 'Unauthorized',
      toTag: this.tag(),
      headers: OFFERED_ALGORITHMS.map((algorithm) => ['WWW-Authenticate', challenge({ realm, nonce, algorithm, stale })] as [string, string]),
    });
    return { ok: false };
  }

  private account(realm: string): { id: string; realm: string } | undefined {
    const d = this.opts.directory;
    const a = d.accountByRealm(realm) ?? (realm !== realm.toLowerCase() ? d.accountByRealm(realm.toLowerCase()) : undefined);
    return a && a.enabled ? a : undefined;
  }

  private tag(): string {
    return this.random(6).toString('hex');
  }
}

function sameIdentity(a: SipIdentity, b: SipIdentity): boolean {
  return a.via === b.via && a.username === b.username && (a.realm ?? '').toLowerCase() === (b.realm ?? '').toLowerCase();
}
