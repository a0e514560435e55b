// Who may call: an auth token (X-Auth-Token header, `Authorization: Bearer`, or `auth_token` in the request
// envelope, as Crossbar accepts) reaches its own account and every account below it. Any other existing account
// is 403 forbidden, an unknown one 404 bad_identifier, a missing/unknown/expired token 401 invalid_credentials.
import { apiErrors } from './envelope.js';
import { idParam, type ApiContext, type ApiDeps, type ApiMiddleware } from './context.js';

export function tokenFrom(ctx: ApiContext): string | undefined {
  const header = ctx.get('X-Auth-Token');
  if (header) return header.trim();
  const authz = ctx.get('Authorization');
  const m = /^Bearer\s+(\S+)$/i.exec(authz);
  if (m) return m[1];
  return ctx.state.envelope?.authToken;
}

export function requireAuth(deps: ApiDeps): ApiMiddleware {
  return async (c, next) => {
    const ctx = c as ApiContext;
    const token = tokenFrom(ctx);
    const info = token ? deps.tokens.verifyToken(token) : undefined;
    if (!token || !info) throw apiErrors.invalidCredentials();
    ctx.state.auth = { ...info, token };
    await next();
  };
}

/** Loads `:accountId` into ctx.state.account once the token's reach over it is checked. */
export function requireAccount(deps: ApiDeps): ApiMiddleware {
  return async (c, next) => {
    const ctx = c as ApiContext;
    const id = idParam(ctx, 'accountId');
    const account = deps.directory.getAccount(id);
    if (!account) throw apiErrors.badIdentifier(id);
    if (!deps.directory.isDescendant(id, ctx.state.auth!.accountId)) throw apiErrors.forbidden();
    ctx.state.account = account;
    await next();
  };
}
