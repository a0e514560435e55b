// Presence (Kazoo cb_presence): list subscriptions in the documented 4.0 shape, one extension's subscriptions and
// state, reset or set a presentity, devices' and users' presence ids, and the snapshot taken at a reset.
// A presentity is `{presence id, lower-cased}@{account realm}`; the realm is always the account's (kazoo-presence
// §2.1). Every POST answers once presence has queued the NOTIFYs, not once the phones have answered them.
import { apiErrors, fieldError } from '../envelope.js';
import { requireAccount, requireAuth } from '../auth.js';
import { idParam, reply, requestDoc, type ApiContext, type ApiDeps, type ApiMiddleware, type RouteTable } from '../context.js';
import { EVENT_PACKAGES, type EventPackageName, type ManualDialogState, type SubscriptionView } from '../../presence/service.js';
import type { AccountRecord, DeviceRecord, Json } from '../../store/directory.js';

/** Kazoo timestamps are Gregorian seconds: Unix seconds + 62167219200 (kz_time:now_s/0). */
export const GREGORIAN_OFFSET = 62167219200;
export const gregorian = (unixMs: number) => Math.floor(unixMs / 1000) + GREGORIAN_OFFSET;

const EXTENSION_RE = /^[A-Za-z0-9*+_.\-]{1,64}$/;
const STATES: readonly ManualDialogState[] = ['confirmed', 'early', 'terminated'];

/**
 * `"Bob" <sip:1001@Example.com:5060;transport=udp>;tag=x` -> `1001@example.com`: the `from` Kazoo shows is the
 * watcher's user@realm (omnipresence's From-User@From-Realm), so URI parameters, headers and the port go
 * (RFC 3261 §19.1.1), and the host is lower-cased (it is case-insensitive, §19.1.4).
 */
export function watcherAor(watcher: string): string {
  const m = /<([^>]*)>/.exec(watcher);
  let uri = (m ? m[1]! : watcher).trim();
  uri = uri.replace(/^sips?:/i, '');
  const cut = uri.search(/[;?]/);
  if (cut >= 0) uri = uri.slice(0, cut);
  const at = uri.lastIndexOf('@');
  const user = at >= 0 ? uri.slice(0, at + 1) : '';
  let host = uri.slice(at + 1);
  host = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
  return user + host.toLowerCase();
}

/**
 * The last answered NOTIFY as Kazoo 4.0 shows it (omnipresence notify_update, written when Kamailio reports the
 * reply): body, response code and CSeq, or "undefined", 0, 0 until a NOTIFY has been answered, whatever presence
 * recorded when a NOTIFY left (a sent but unanswered first NOTIFY shows no CSeq).
 */
export function notifyOf(v: SubscriptionView): { body: string; reply: number; sequence: number } {
  if (v.lastNotify.reply === 0) return { body: 'undefined', reply: 0, sequence: 0 };
  return { body: v.lastNotify.body, reply: v.lastNotify.reply, sequence: v.lastNotify.sequence };
}

export type KazooSubscriptions = Record<string, Record<string, Record<string, Record<string, unknown>>>>;

/** data.subscriptions.{extension}.{event}.{call_id}, first subscription per key kept (cb_presence 4.0). */
export function kazooSubscriptions(views: SubscriptionView[]): KazooSubscriptions {
  const out: KazooSubscriptions = {};
  for (const v of views) {
    const ext = v.presentity.split('@')[0].toLowerCase();
    const byEvent = (out[ext] ??= {});
    const byCall = (byEvent[v.event] ??= {});
    if (byCall[v.callId]) continue;
    byCall[v.callId] = {
      expires: v.expires,
      from: watcherAor(v.watcher),
      notify: notifyOf(v),
      stalker: v.nodeId,
      timestamp: gregorian(v.updatedAt),
      // Kazoo's protocol-variant flag: 1 = no Subscription-ID (single-node server).
      version: 1,
      subscription_id: v.id,
      user_agent: v.userAgent,
    };
  }
  return out;
}

function eventFilter(ctx: ApiContext): EventPackageName | undefined {
  const raw = ctx.query.event;
  if (raw === undefined) return undefined;
  const e = Array.isArray(raw) ? raw[0] : raw;
  if (!(EVENT_PACKAGES as readonly string[]).includes(e)) {
    throw apiErrors.validation(fieldError('event', 'enum', { message: 'Value not found in enumerated list of values', target: EVENT_PACKAGES, value: e.slice(0, 64) }));
  }
  return e as EventPackageName;
}

/** Only live subscriptions: one that ran out but is not swept yet is not listed (Kazoo: now > timestamp + expires). */
function live(deps: ApiDeps, views: SubscriptionView[]): SubscriptionView[] {
  const now = deps.now();
  return views.filter((v) => v.expiresAt > now);
}

type PresenceCommand = { action: 'reset' } | { action: 'set'; state: ManualDialogState };

/**
 * The body of a presence POST (cb_presence validate_action): action "reset", or "set" with a valid state; the
 * deprecated `reset: true` means reset. On `/presence/{EXT}` an empty body resets, as Kazoo 4.3 ignores the body there.
 */
export function presenceCommand(data: unknown, emptyMeansReset: boolean): PresenceCommand {
  const d = (typeof data === 'object' && data !== null && !Array.isArray(data) ? data : {}) as Json;
  let action = d.action;
  if (action === undefined && d.reset === true) action = 'reset';
  if (action === undefined && emptyMeansReset && d.reset === undefined && d.state === undefined) action = 'reset';
  if (action === 'reset') return { action: 'reset' };
  if (action === 'set') {
    if (typeof d.state === 'string' && (STATES as readonly string[]).includes(d.state)) return { action: 'set', state: d.state as ManualDialogState };
    throw apiErrors.validation(fieldError('state', 'invalid', { message: 'Field must be set to a valid state', target: 'invalid' }));
  }
  throw apiErrors.validation(fieldError('action', 'invalid', { message: 'Field must be set to a valid action', target: 'invalid' }));
}

function presentityOf(presenceId: string, account: AccountRecord): string {
  const user = presenceId.split('@')[0].toLowerCase();
  return `${user}@${account.realm}`;
}

/** A device's presence id: presence_id, else sip.username (what Kazoo's docs promise and 4.0 did). */
export function devicePresenceId(d: DeviceRecord): string | undefined {
  return d.presenceId ?? d.sipUsername ?? undefined;
}

export function registerPresenceRoutes(t: RouteTable, deps: ApiDeps): void {
  const scoped: ApiMiddleware[] = [requireAuth(deps), requireAccount(deps)];
  const base = '/v2/accounts/:accountId';

  /** Runs the command on each presentity, saves the reset snapshot as a report, answers with Kazoo's text. */
  async function run(ctx: ApiContext, account: AccountRecord, target: string, presentities: string[], cmd: PresenceCommand): Promise<number> {
    let notified = 0;
    const snapshot: SubscriptionView[] = [];
    for (const p of presentities) {
      if (cmd.action === 'reset') {
        const r = await deps.presence.reset(p);
        notified += r.notified;
        snapshot.push(...r.snapshot);
      } else {
        notified += (await deps.presence.setManualState(p, cmd.state)).notified;
      }
    }
    if (cmd.action === 'reset') {
      const id = deps.reports.save(account.id, target, {
        account_id: account.id, target, presentities, notified, timestamp: gregorian(deps.now()),
        subscriptions: kazooSubscriptions(snapshot),
      });
      ctx.set('X-Presence-Report', `/v2/accounts/${account.id}/presence/report-${id}`);
    }
    deps.logger.info({ accountId: account.id, target, action: cmd.action, state: cmd.action === 'set' ? cmd.state : undefined, presentities, notified }, 'presence command');
    return notified;
  }

  t.add({ method: 'get', path: `${base}/presence`, summary: 'Every live subscription of the account (?event=dialog|presence|message-summary)', tag: 'presence', auth: true }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const event = eventFilter(ctx);
    const subs = live(deps, deps.presence.listSubscriptions(ctx.state.account!.realm, event ? { event } : undefined));
    reply(ctx, deps, { subscriptions: kazooSubscriptions(subs) });
  });

  // Kazoo's OAS lists it, its code answers 404 "faulty request" (cb_presence validate_presence_thing/2); so do we.
  t.add({ method: 'post', path: `${base}/presence`, summary: 'Not a command: answers 404 faulty_request as Kazoo does (POST to /presence/{EXT})', tag: 'presence', auth: true }, ...scoped, async () => {
    throw apiErrors.faultyRequest();
  });

  t.add({ method: 'get', path: `${base}/presence/:extension`, summary: "One extension's subscriptions and current state; report-{ID} downloads a reset snapshot", tag: 'presence', auth: true }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const account = ctx.state.account!;
    const ext = ctx.params.extension ?? '';
    if (ext.startsWith('report-')) {
      const id = ext.slice('report-'.length);
      const report = /^[0-9a-f]{32}$/.test(id) ? deps.reports.get(account.id, id) : undefined;
      if (report === undefined) throw apiErrors.badIdentifier(id.slice(0, 64));
      // Kazoo serves the saved report file itself as an attachment, not inside an envelope.
      ctx.set('Content-Disposition', `attachment; filename=${id}.json`);
      ctx.type = 'application/json';
      ctx.body = JSON.stringify(report);
      return;
    }
    if (!EXTENSION_RE.test(ext)) throw apiErrors.badIdentifier(ext.slice(0, 64));
    const event = eventFilter(ctx);
    const user = ext.toLowerCase();
    const subs = live(deps, deps.presence.listSubscriptions(account.realm, event ? { event, user } : { user }));
    const states: Record<string, unknown> = {};
    for (const s of deps.presence.currentState(`${user}@${account.realm}`)) {
      if (event && s.event !== event) continue;
      states[s.event] = { state: s.state, source: s.source, content_type: s.contentType, body: s.body };
    }
    reply(ctx, deps, { subscriptions: kazooSubscriptions(subs), presentities: { [user]: states } });
  });

  t.add({ method: 'post', path: `${base}/presence/:extension`, summary: 'Reset ({"action":"reset"}, the default) or set ({"action":"set","state":...}) an extension', tag: 'presence', auth: true, requestSchema: 'presence_action' }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const account = ctx.state.account!;
    const ext = ctx.params.extension ?? '';
    if (ext.startsWith('report-')) throw apiErrors.invalidMethod();
    if (!EXTENSION_RE.test(ext)) throw apiErrors.badIdentifier(ext.slice(0, 64));
    const cmd = presenceCommand(ctx.state.envelope?.data, true);
    await run(ctx, account, `extension ${ext}`, [presentityOf(ext, account)], cmd);
    reply(ctx, deps, cmd.action === 'reset' ? `reset command sent for extension ${ext}` : `${cmd.state} command sent for extension ${ext}`);
  });

  for (const noun of ['devices', 'device'] as const) {
    t.add({ method: 'post', path: `${base}/${noun}/:deviceId/presence`, summary: `Reset or set the device's presence id (presence_id, else sip.username)${noun === 'device' ? ' (alias of /devices)' : ''}`, tag: 'presence', auth: true, requestSchema: 'presence_action' }, ...scoped, async (c) => {
      const ctx = c as ApiContext;
      const account = ctx.state.account!;
      const id = idParam(ctx, 'deviceId');
      const device = deps.directory.getDevice(account.id, id);
      if (!device) throw apiErrors.badIdentifier(id);
      const cmd = presenceCommand(requestDoc(ctx), false);
      const pid = devicePresenceId(device);
      if (!pid) { reply(ctx, deps, 'nothing to send command to'); return; }
      await run(ctx, account, `device ${id}`, [presentityOf(pid, account)], cmd);
      reply(ctx, deps, 'command sent');
    });
  }

  t.add({ method: 'post', path: `${base}/users/:userId/presence`, summary: "Reset or set the user's presence id, else the presence ids of the user's devices", tag: 'presence', auth: true, requestSchema: 'presence_action' }, ...scoped, async (c) => {
    const ctx = c as ApiContext;
    const account = ctx.state.account!;
    const id = idParam(ctx, 'userId');
    const user = deps.directory.getUser(account.id, id);
    if (!user) throw apiErrors.badIdentifier(id);
    const cmd = presenceCommand(requestDoc(ctx), false);
    const ids = user.presenceId
      ? [user.presenceId]
      : deps.directory.devicesOwnedBy(account.id, id).map(devicePresenceId).filter((x): x is string => !!x);
    const presentities = [...new Set(ids.map((p) => presentityOf(p, account)))];
    if (presentities.length === 0) { reply(ctx, deps, 'nothing to send command to'); return; }
    await run(ctx, account, `user ${id}`, presentities, cmd);
    reply(ctx, deps, 'command sent');
  });
}
