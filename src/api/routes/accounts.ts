// Accounts (Kazoo cb_accounts): read, replace (POST), merge (PATCH), create a sub-account (PUT on the parent),
// delete (refused while sub-accounts exist), list children, and issue a new API key (shown once: only its hash is kept).
import { apiErrors } from '../envelope.js';
import { requireAccount, requireAuth } from '../auth.js';
import { directoryCall, mergePatch, reply, requestDoc, type ApiContext, type ApiDeps, type RouteTable } from '../context.js';
import { validate } from '../validate.js';
import type { AccountRecord } from '../../store/directory.js';

export function accountView(a: AccountRecord) {
  return { ...a.doc, id: a.id, name: a.name, realm: a.realm, enabled: a.enabled, parent_id: a.parentId ?? undefined };
}

function accountSummary(a: AccountRecord) {
  return { id: a.id, name: a.name, realm: a.realm, enabled: a.enabled };
}

export function registerAccountRoutes(t: RouteTable, deps: ApiDeps): void {
  const scoped = [requireAuth(deps), requireAccount(deps)];
  const base = '/v2/accounts/:accountId';

  t.add({ method: 'get', path: base, summary: 'Get an account', tag: 'accounts', auth: true }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const a = ctx.state.account!;
    reply(ctx, deps, accountView(a), { revision: a.revision });
  });

  t.add({ method: 'post', path: base, summary: 'Replace an account document', tag: 'accounts', auth: true, requestSchema: 'accounts' }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const a = ctx.state.account!;
    const doc = requestDoc(ctx);
    doc.realm ??= a.realm;
    validate('accounts', doc);
    const updated = directoryCall(() => deps.directory.updateAccount(a.id, doc));
    reply(ctx, deps, accountView(updated), { revision: updated.revision });
  });

  t.add({ method: 'patch', path: base, summary: 'Change some fields of an account', tag: 'accounts', auth: true, requestSchema: 'accounts' }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const a = ctx.state.account!;
    const doc = mergePatch(a.doc, requestDoc(ctx));
    validate('accounts', doc);
    const updated = directoryCall(() => deps.directory.updateAccount(a.id, doc));
    reply(ctx, deps, accountView(updated), { revision: updated.revision });
  });

  t.add({ method: 'put', path: base, summary: 'Create a sub-account below this account', tag: 'accounts', auth: true, requestSchema: 'accounts', success: 201 }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const doc = requestDoc(ctx);
    validate('accounts', doc);
    const created = directoryCall(() => deps.directory.createAccount(doc, ctx.state.account!.id));
    deps.logger.info({ accountId: created.id, parentId: created.parentId, realm: created.realm }, 'account created');
    reply(ctx, deps, accountView(created), { status: 201, revision: created.revision });
  });

  t.add({ method: 'delete', path: base, summary: 'Delete an account with its users, devices and credentials', tag: 'accounts', auth: true }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const a = ctx.state.account!;
    if (deps.directory.hasChildren(a.id)) throw apiErrors.accountHasDescendants();
    deps.directory.deleteAccount(a.id);
    deps.logger.info({ accountId: a.id, realm: a.realm }, 'account deleted');
    reply(ctx, deps, accountView(a));
  });

  t.add({ method: 'get', path: `${base}/children`, summary: 'List the direct sub-accounts', tag: 'accounts', auth: true }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    reply(ctx, deps, deps.directory.children(ctx.state.account!.id).map(accountSummary));
  });

  t.add({ method: 'put', path: `${base}/api_key`, summary: 'Issue a new API key (shown once; older keys stop working)', tag: 'accounts', auth: true, success: 201 }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const key = deps.tokens.issueApiKey(ctx.state.account!.id, { replace: true });
    deps.logger.info({ accountId: ctx.state.account!.id }, 'API key replaced');
    reply(ctx, deps, { api_key: key }, { status: 201 });
  });
}
