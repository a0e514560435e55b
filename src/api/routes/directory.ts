// Users and devices (Kazoo cb_users, cb_devices): list (paginated), create (PUT), read, replace (POST), merge
// (PATCH), delete. Passwords (`password`, `sip.password`) are write-only: they become digests in the store and
// never appear in an answer. `/device` is accepted as well as `/devices` (Monster UI's SDK uses the singular).
import { apiErrors } from '../envelope.js';
import { requireAccount, requireAuth } from '../auth.js';
import { directoryCall, idParam, mergePatch, paging, reply, requestDoc, type ApiContext, type ApiDeps, type ApiMiddleware, type RouteTable } from '../context.js';
import { validate } from '../validate.js';
import type { DeviceRecord, Json, UserRecord } from '../../store/directory.js';

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

export function registerDirectoryRoutes(t: RouteTable, deps: ApiDeps): void {
  const scoped: ApiMiddleware[] = [requireAuth(deps), requireAccount(deps)];
  const base = '/v2/accounts/:accountId';
  const dir = deps.directory;

  // ---- users ----
  t.add({ method: 'get', path: `${base}/users`, summary: 'List users (paginated: page_size, start_key)', tag: 'users', auth: true }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const p = paging(ctx, deps);
    const page = dir.listUsers(ctx.state.account!.id, p);
    reply(ctx, deps, page.rows.map(userSummary), { paging: { page_size: page.rows.length, start_key: p.startKey, next_start_key: page.nextStartKey } });
  });
  t.add({ method: 'put', path: `${base}/users`, summary: 'Create a user', tag: 'users', auth: true, requestSchema: 'users', success: 201 }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const data = requestDoc(ctx);
    validate('users', data);
    const { doc, password } = splitUserSecret(data);
    const u = directoryCall(() => dir.createUser(ctx.state.account!.id, doc, password));
    reply(ctx, deps, userView(u), { status: 201, revision: u.revision });
  });
  const loadUser = (ctx: ApiContext): UserRecord => {
    const id = idParam(ctx, 'userId');
    const u = dir.getUser(ctx.state.account!.id, id);
    if (!u) throw apiErrors.badIdentifier(id);
    return u;
  };
  t.add({ method: 'get', path: `${base}/users/:userId`, summary: 'Get a user', tag: 'users', auth: true }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const u = loadUser(ctx);
    reply(ctx, deps, userView(u), { revision: u.revision });
  });
  t.add({ method: 'post', path: `${base}/users/:userId`, summary: 'Replace a user document', tag: 'users', auth: true, requestSchema: 'users' }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const u = loadUser(ctx);
    const data = requestDoc(ctx);
    validate('users', data);
    const { doc, password } = splitUserSecret(data);
    const updated = directoryCall(() => dir.updateUser(u.accountId, u.id, doc, password));
    reply(ctx, deps, userView(updated), { revision: updated.revision });
  });
  t.add({ method: 'patch', path: `${base}/users/:userId`, summary: 'Change some fields of a user', tag: 'users', auth: true, requestSchema: 'users' }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const u = loadUser(ctx);
    const merged = mergePatch(u.doc, requestDoc(ctx));
    validate('users', merged);
    const { doc, password } = splitUserSecret(merged);
    const updated = directoryCall(() => dir.updateUser(u.accountId, u.id, doc, password));
    reply(ctx, deps, userView(updated), { revision: updated.revision });
  });
  t.add({ method: 'delete', path: `${base}/users/:userId`, summary: 'Delete a user (its devices stay, without an owner)', tag: 'users', auth: true }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const u = loadUser(ctx);
    dir.deleteUser(u.accountId, u.id);
    reply(ctx, deps, userView(u));
  });

  // ---- devices (and the singular alias) ----
  for (const noun of ['devices', 'device'] as const) {
    const alias = noun === 'device' ? ' (alias of /devices)' : '';
    const loadDevice = (ctx: ApiContext): DeviceRecord => {
      const id = idParam(ctx, 'deviceId');
      const d = dir.getDevice(ctx.state.account!.id, id);
      if (!d) throw apiErrors.badIdentifier(id);
      return d;
    };
    t.add({ method: 'get', path: `${base}/${noun}`, summary: `List devices (paginated: page_size, start_key)${alias}`, tag: 'devices', auth: true }, ...scoped, async (c) => {
      const ctx = c as ApiContext;
      const p = paging(ctx, deps);
      const page = dir.listDevices(ctx.state.account!.id, p);
      reply(ctx, deps, page.rows.map(deviceSummary), { paging: { page_size: page.rows.length, start_key: p.startKey, next_start_key: page.nextStartKey } });
    });
    t.add({ method: 'put', path: `${base}/${noun}`, summary: `Create a device${alias}`, tag: 'devices', auth: true, requestSchema: 'devices', success: 201 }, ...scoped, async (c) => {
      const ctx = c as ApiContext;
      const data = requestDoc(ctx);
      validate('devices', data);
      const { doc, password } = splitDeviceSecret(data);
      const d = directoryCall(() => dir.createDevice(ctx.state.account!.id, doc, password));
      reply(ctx, deps, deviceView(d), { status: 201, revision: d.revision });
    });
    t.add({ method: 'get', path: `${base}/${noun}/:deviceId`, summary: `Get a device${alias}`, tag: 'devices', auth: true }, ...scoped, async (c) => {
      const ctx = c as ApiContext;
      const d = loadDevice(ctx);
      reply(ctx, deps, deviceView(d), { revision: d.revision });
    });
    t.add({ method: 'post', path: `${base}/${noun}/:deviceId`, summary: `Replace a device document${alias}`, tag: 'devices', auth: true, requestSchema: 'devices' }, ...scoped, async (c) => {
      const ctx = c as ApiContext;
      const d = loadDevice(ctx);
      const data = requestDoc(ctx);
      validate('devices', data);
      const { doc, password } = splitDeviceSecret(data);
      const updated = directoryCall(() => dir.updateDevice(d.accountId, d.id, doc, password));
      reply(ctx, deps, deviceView(updated), { revision: updated.revision });
    });
    t.add({ method: 'patch', path: `${base}/${noun}/:deviceId`, summary: `Change some fields of a device${alias}`, tag: 'devices', auth: true, requestSchema: 'devices' }, ...scoped, async (c) => {
      const ctx = c as ApiContext;
      const d = loadDevice(ctx);
      const merged = mergePatch(d.doc, requestDoc(ctx));
      validate('devices', merged);
      const { doc, password } = splitDeviceSecret(merged);
      const updated = directoryCall(() => dir.updateDevice(d.accountId, d.id, doc, password));
      reply(ctx, deps, deviceView(updated), { revision: updated.revision });
    });
    t.add({ method: 'delete', path: `${base}/${noun}/:deviceId`, summary: `Delete a device${alias}`, tag: 'devices', auth: true }, ...scoped, async (c) => {
      const ctx = c as ApiContext;
      const d = loadDevice(ctx);
      dir.deleteDevice(d.accountId, d.id);
      reply(ctx, deps, deviceView(d));
    });
  }
}
