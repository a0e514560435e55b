// Users and devices (Kazoo cb_users, cb_devices): list (paginated), create (PUT), read, replace (POST), merge
// (PATCH), delete. Passwords (`password`, `sip.password`) are write-only: they become digests in the store and
// never appear in an answer. `/device` is accepted as well as `/devices` (Monster UI's SDK uses the singular).
import { apiErrors } from '../envelope.js';
import { requireAccount, requireAuth } from '../auth.js';
import { directoryCall, idParam, mergePatch, paging, reply, requestDoc, type ApiContext, type ApiDeps, type ApiMiddleware, type RouteTable } from '../context.js';
import { validate } from '../validate.js';
import { isStartKey, type DeviceRecord, type Json, type UserRecord } from '../../store/directory.js';

export function userView(u: UserRecord) {
  return { ...u.doc, id: u.id, enabled: u.enabled };
}
function userSummary(u: UserRecord) {
  const d = u.doc;
  return { id: u.id, first_name: d.first_name, last_name: d.last_name, username: u.username ?? undefined, email: d.email, presence_id: u.presenceId ?? undefined, priv_level: d.priv_level, enabled: u.enabled };
}
export function deviceView(d: DeviceRecord) {
  return { ...d.doc, id: d.id, enabled: d.enabled };
}
function deviceSummary(d: DeviceRecord) {
  return { id: d.id, name: d.name, owner_id: d.ownerId ?? undefined, presence_id: d.presenceId ?? undefined, username: d.sipUsername ?? undefined, device_type: d.doc.device_type, enabled: d.enabled };
}

/** Takes `password` out of a user document: it is handed to the store separately and never kept in the doc. */
function splitUserSecret(doc: Json): { doc: Json; password?: string } {
  const { password, ...rest } = doc;
  return { doc: rest, password: typeof password === 'string' ? password : undefined };
}
function splitDeviceSecret(doc: Json): { doc: Json; password?: string } {
  const sip = doc.sip;
  if (typeof sip !== 'object' || sip === null || Array.isArray(sip)) return { doc };
  const { password, ...rest } = sip as Json;
  return { doc: { ...doc, sip: rest }, password: typeof password === 'string' ? password : undefined };
}

/** What differs between users and devices; the routes are the same shape (Kazoo's cb_users / cb_devices). */
interface Collection<R extends { id: string; accountId: string; doc: Json; revision: string }> {
  noun: string;
  thing: string;
  tag: string;
  schema: 'users' | 'devices';
  idParam: string;
  listNote?: string;
  list(accountId: string, p: { pageSize: number; startKey?: string }): { rows: R[]; startKey?: string; nextStartKey?: string };
  get(accountId: string, id: string): R | undefined;
  create(accountId: string, doc: Json, password?: string): R;
  update(accountId: string, id: string, doc: Json, password?: string): R;
  remove(accountId: string, id: string): void;
  view(r: R): unknown;
  summary(r: R): unknown;
  split(doc: Json): { doc: Json; password?: string };
}

function registerCollection<R extends { id: string; accountId: string; doc: Json; revision: string }>(t: RouteTable, deps: ApiDeps, c: Collection<R>): void {
  const scoped: ApiMiddleware[] = [requireAuth(deps), requireAccount(deps)];
  const list = `/v2/accounts/:accountId/${c.noun}`;
  const one = `${list}/:${c.idParam}`;
  const note = c.listNote ?? '';
  const load = (ctx: ApiContext): R => {
    const id = idParam(ctx, c.idParam);
    const r = c.get(ctx.state.account!.id, id);
    if (!r) throw apiErrors.badIdentifier(id);
    return r;
  };
  const save = (ctx: ApiContext, data: Json, existing?: R): R => {
    validate(c.schema, data);
    const { doc, password } = c.split(data);
    return directoryCall(() => (existing ? c.update(existing.accountId, existing.id, doc, password) : c.create(ctx.state.account!.id, doc, password)));
  };

  t.add({ method: 'get', path: list, summary: `List ${c.thing}s (paginated: page_size, start_key; paginate=false for every row)${note}`, tag: c.tag, auth: true }, ...scoped, async (x) => {
    const ctx = x as ApiContext;
    const p = paging(ctx, deps, isStartKey);
    const page = c.list(ctx.state.account!.id, p);
    // Crossbar basics.md "Pagination": start_key names this page, next_start_key the next (absent on the last);
    // paginate=false answers without them unless the listing is over api limits.maxUnpaginatedRows.
    const keys = p.unpaginated && !page.nextStartKey
      ? undefined
      : { page_size: page.rows.length, start_key: page.startKey ?? p.startKey, next_start_key: page.nextStartKey };
    reply(ctx, deps, page.rows.map(c.summary), { paging: keys });
  });
  t.add({ method: 'put', path: list, summary: `Create a ${c.thing}${note}`, tag: c.tag, auth: true, requestSchema: c.schema, success: 201 }, ...scoped, async (x) => {
    const ctx = x as ApiContext;
    const r = save(ctx, requestDoc(ctx));
    reply(ctx, deps, c.view(r), { status: 201, revision: r.revision });
  });
  t.add({ method: 'get', path: one, summary: `Get a ${c.thing}${note}`, tag: c.tag, auth: true }, ...scoped, async (x) => {
    const ctx = x as ApiContext;
    const r = load(ctx);
    reply(ctx, deps, c.view(r), { revision: r.revision });
  });
  t.add({ method: 'post', path: one, summary: `Replace a ${c.thing} document${note}`, tag: c.tag, auth: true, requestSchema: c.schema }, ...scoped, async (x) => {
    const ctx = x as ApiContext;
    const r = save(ctx, requestDoc(ctx), load(ctx));
    reply(ctx, deps, c.view(r), { revision: r.revision });
  });
  t.add({ method: 'patch', path: one, summary: `Change some fields of a ${c.thing}${note}`, tag: c.tag, auth: true, requestSchema: c.schema }, ...scoped, async (x) => {
    const ctx = x as ApiContext;
    const cur = load(ctx);
    const r = save(ctx, mergePatch(cur.doc, requestDoc(ctx)), cur);
    reply(ctx, deps, c.view(r), { revision: r.revision });
  });
  t.add({ method: 'delete', path: one, summary: `Delete a ${c.thing}${note}`, tag: c.tag, auth: true }, ...scoped, async (x) => {
    const ctx = x as ApiContext;
    const r = load(ctx);
    c.remove(r.accountId, r.id);
    reply(ctx, deps, c.view(r));
  });
}

export function registerDirectoryRoutes(t: RouteTable, deps: ApiDeps): void {
  const dir = deps.directory;
  registerCollection<UserRecord>(t, deps, {
    noun: 'users', thing: 'user', tag: 'users', schema: 'users', idParam: 'userId',
    list: (a, p) => dir.listUsers(a, p), get: (a, id) => dir.getUser(a, id),
    create: (a, doc, pw) => dir.createUser(a, doc, pw), update: (a, id, doc, pw) => dir.updateUser(a, id, doc, pw),
    remove: (a, id) => { dir.deleteUser(a, id); },
    view: userView, summary: userSummary, split: splitUserSecret,
  });
  for (const noun of ['devices', 'device']) {
    registerCollection<DeviceRecord>(t, deps, {
      noun, thing: 'device', tag: 'devices', schema: 'devices', idParam: 'deviceId', listNote: noun === 'device' ? ' (alias of /devices)' : undefined,
      list: (a, p) => dir.listDevices(a, p), get: (a, id) => dir.getDevice(a, id),
      create: (a, doc, pw) => dir.createDevice(a, doc, pw), update: (a, id, doc, pw) => dir.updateDevice(a, id, doc, pw),
      remove: (a, id) => { dir.deleteDevice(a, id); },
      view: deviceView, summary: deviceSummary, split: splitDeviceSecret,
    });
  }
}
