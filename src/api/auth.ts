// Who may call: an auth token (X-Auth-Token header, `Authorization: Bearer`, or `auth_token` in the request
// envelope, as Crossbar accepts) reaches its own account and every account below it. Any other existing account
// is 403 forbidden, an unknown one 404 bad_identifier, a missing/unknown/expired token (or one of a disabled
// account) 401 invalid_credentials.
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
    // A disabled account logs in no more (api_auth, user_auth refuse it), so the tokens it holds stop too; its
    // parent's tokens still reach it, so it can be enabled again.
    if (!deps.directory.getAccount(info.accountId)?.enabled) throw apiErrors.invalidCredentials();
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
    if (ctx.state.auth!.method === 'user_auth') checkUserPrivilege(ctx, deps, id);
    ctx.state.account = account;
    await next();
  };
}

/**
 * A token from user_auth acts with its user's privilege, looked up now so a demotion takes effect at once. An
 * `admin` user reaches what an API key does; any other user (Kazoo's priv_level "user") may read its own account,
 * change its own user document (not its priv_level), and reset or set its own and its devices' lamps.
 */
function checkUserPrivilege(ctx: ApiContext, deps: ApiDeps, accountId: string): void {
  const auth = ctx.state.auth!;
  const user = auth.ownerId ? deps.directory.getUser(auth.accountId, auth.ownerId) : undefined;
  if (!user || !user.enabled) throw apiErrors.invalidCredentials();
  if (user.doc.priv_level === 'admin') return;
  if (accountId !== auth.accountId) throw apiErrors.forbidden();
  if (ctx.method === 'GET' || ctx.method === 'HEAD') return;
  const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? '';
  const own = ctx.params.userId === user.id;
  if (route.endsWith('/users/:userId/presence') && own && ctx.method === 'POST') return;
  if (route.endsWith('/users/:userId') && own && (ctx.method === 'POST' || ctx.method === 'PATCH')) {
    const data = ctx.state.envelope?.data as Record<string, unknown> | undefined;
    const wanted = data && typeof data === 'object' ? data.priv_level : undefined;
    if (wanted === undefined || wanted === user.doc.priv_level) return;
  }
  if (/\/devices?\/:deviceId\/presence$/.test(route) && ctx.method === 'POST') {
    const device = deps.directory.getDevice(auth.accountId, ctx.params.deviceId ?? '');
    if (device && device.ownerId === user.id) return;
  }
  throw apiErrors.forbidden();
}
