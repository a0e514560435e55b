// PUT /v2/api_auth and PUT /v2/user_auth hand out auth tokens as Kazoo's cb_api_auth and cb_user_auth do;
// GET/DELETE /v2/token_auth inspect and revoke the token in use (cb_token_auth).
import { apiErrors, fieldError } from '../envelope.js';
import { requireAuth } from '../auth.js';
import { reply, requestDoc, type ApiContext, type ApiDeps, type RouteTable } from '../context.js';
import { validate } from '../validate.js';
import { LoginThrottle } from '../throttle.js';
import type { AccountRecord } from '../../store/directory.js';
import type { TokenInfo } from '../../store/tokens.js';

function tokenData(account: AccountRecord, info: TokenInfo) {
  return {
    account_id: account.id,
    account_name: account.name,
    realm: account.realm,
    owner_id: info.ownerId ?? undefined,
    method: info.method,
    apps: [],
    is_reseller: false,
    language: typeof account.doc.language === 'string' ? account.doc.language : 'en-us',
    reseller_id: account.parentId ?? undefined,
    expires_at: new Date(info.expiresAt).toISOString(),
  };
}

export function registerAuthRoutes(t: RouteTable, deps: ApiDeps): void {
  // The SIP brute-force limits (sip.limits.authFailuresBeforeBlock / authBlockSeconds) also guard API logins.
  const throttle = new LoginThrottle({ maxFailures: deps.config.sip.limits.authFailuresBeforeBlock, blockSeconds: deps.config.sip.limits.authBlockSeconds, now: deps.now });
  const refuse = (ctx: ApiContext): never => {
    throttle.failed(ctx.ip);
    deps.logger.info({ source: ctx.ip, path: ctx.path }, 'API login failed');
    throw apiErrors.invalidCredentials();
  };
  t.add({ method: 'put', path: '/v2/api_auth', summary: 'Exchange an account API key for an auth token', tag: 'auth', auth: false, requestSchema: 'api_auth', success: 201 }, async (c) => {
    const ctx = c as ApiContext;
    throttle.check(ctx.ip);
    const data = requestDoc(ctx);
    validate('api_auth', data);
    const accountId = deps.tokens.accountForApiKey(String(data.api_key));
    const account = accountId ? deps.directory.getAccount(accountId) : undefined;
    if (!account || !account.enabled) refuse(ctx);
    throttle.succeeded(ctx.ip);
    const { token, info } = deps.tokens.issueToken(account!.id, null, 'api_key');
    ctx.state.auth = { ...info, token };
    reply(ctx, deps, tokenData(account!, info), { status: 201 });
  });

  t.add({ method: 'put', path: '/v2/user_auth', summary: 'Exchange md5("username:password") and an account name or realm for an auth token', tag: 'auth', auth: false, requestSchema: 'user_auth', success: 201 }, async (c) => {
    const ctx = c as ApiContext;
    throttle.check(ctx.ip);
    const data = requestDoc(ctx);
    validate('user_auth', data);
    const realm = (data.account_realm ?? data.realm) as string | undefined;
    const name = data.account_name as string | undefined;
    let candidates: AccountRecord[];
    if (realm) {
      const a = deps.directory.accountByRealm(realm);
      candidates = a ? [deps.directory.getAccount(a.id)!] : [];
    } else if (name) {
      candidates = deps.directory.accountsByName(name);
    } else if (data.phone_number) {
      candidates = []; // Lamplighter keeps no phone numbers: nothing can match.
    } else {
      throw apiErrors.validation(fieldError('account_name', 'required', { message: 'Field is required but missing' }));
    }
    const method = data.method === 'sha' ? 'sha' : 'md5';
    for (const account of candidates) {
      if (!account.enabled) continue;
      const user = deps.directory.userByCredentials(account.id, String(data.credentials), method);
      if (!user || !user.enabled) continue;
      throttle.succeeded(ctx.ip);
      const { token, info } = deps.tokens.issueToken(account.id, user.id, 'user_auth');
      ctx.state.auth = { ...info, token };
      reply(ctx, deps, tokenData(account, info), { status: 201 });
      return;
    }
    refuse(ctx);
  });

  t.add({ method: 'get', path: '/v2/token_auth', summary: 'What the auth token in use grants', tag: 'auth', auth: true }, requireAuth(deps), async (c) => {
    const ctx = c as ApiContext;
    const auth = ctx.state.auth!;
    const account = deps.directory.getAccount(auth.accountId);
    if (!account) throw apiErrors.invalidCredentials();
    reply(ctx, deps, tokenData(account, auth));
  });

  t.add({ method: 'delete', path: '/v2/token_auth', summary: 'Revoke the auth token in use', tag: 'auth', auth: true }, requireAuth(deps), async (c) => {
    const ctx = c as ApiContext;
    deps.tokens.revokeToken(ctx.state.auth!.token);
    reply(ctx, deps, {});
  });
}
