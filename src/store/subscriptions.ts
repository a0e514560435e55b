// Subscriptions on disk: one row per RFC 6665 subscription with its whole dialog state (RFC 3261 §12.1.1), so a
// restarted node can send the next in-dialog NOTIFY with CSeq and version still going up. Prepared statements
// only; every write goes through the group commit so one event-loop turn is one transaction.
import type { Db, GroupCommit } from './db.js';

export type SubscriptionTransport = 'udp' | 'tcp' | 'ws';

/** The persistent part of a subscription, as the domain keeps it in memory. */
export interface SubscriptionRecord {
  id: string;
  event: 'dialog' | 'presence' | 'message-summary';
  /** The `id` parameter of the Event header (RFC 6665 §8.2.1), or null. */
  eventId: string | null;
  /** `user@domain` */
  presentity: string;
  domain: string;
  /** The watcher's From URI (no tag). */
  watcherUri: string;
  callId: string;
  localTag: string;
  remoteTag: string;
  /** The From header value our NOTIFYs carry (the SUBSCRIBE's To plus our tag). */
  localUri: string;
  /** The To header value our NOTIFYs carry (the SUBSCRIBE's From with its tag). */
  remoteUri: string;
  /** The subscriber's Contact URI: the Request-URI of every NOTIFY (RFC 3261 §12.2.1.1). */
  remoteTarget: string;
  /** Route values for our NOTIFYs, in the order they are sent. */
  routeSet: string[];
  localCseq: number;
  remoteCseq: number;
  /** Version of the last body sent (-1 before the first NOTIFY; RFC 4235 §4.1 starts at 0). */
  notifyVersion: number;
  accept: string | null;
  transport: SubscriptionTransport;
  flowId: string | null;
  sourceAddress: string | null;
  sourcePort: number | null;
  /** JSON of the SipIdentity that created it; in-dialog requests must come from the same one. */
  identity: unknown;
  /** Granted duration in seconds. */
  expires: number;
  expiresAt: number;
  nodeId: string;
  createdAt: number;
  updatedAt: number;
  lastNotifyCseq: number;
  lastNotifyReply: number;
  userAgent: string | null;
}

interface Row {
  id: string; event: string; event_id: string | null; presentity: string; domain: string; watcher_uri: string;
  call_id: string; local_tag: string; remote_tag: string; local_uri: string; remote_uri: string; remote_target: string;
  route_set: string; local_cseq: number; remote_cseq: number; notify_version: number; accept: string | null;
  transport: string; flow_id: string | null; source_address: string | null; source_port: number | null;
  identity: string | null; expires: number; expires_at: number; node_id: string; created_at: number;
  updated_at: number; last_notify_cseq: number; last_notify_reply: number; user_agent: string | null;
}

const COLUMNS = `id, event, event_id, presentity, domain, watcher_uri, call_id, local_tag, remote_tag, local_uri,
  remote_uri, remote_target, route_set, local_cseq, remote_cseq, notify_version, accept, transport, flow_id,
  source_address, source_port, identity, expires, expires_at, node_id, created_at, updated_at, last_notify_cseq,
  last_notify_reply, user_agent`;

function fromRow(r: Row): SubscriptionRecord {
  return {
    id: r.id, event: r.event as SubscriptionRecord['event'], eventId: r.event_id, presentity: r.presentity,
    domain: r.domain, watcherUri: r.watcher_uri, callId: r.call_id, localTag: r.local_tag, remoteTag: r.remote_tag,
    localUri: r.local_uri, remoteUri: r.remote_uri, remoteTarget: r.remote_target,
    routeSet: r.route_set === '[]' ? [] : (JSON.parse(r.route_set) as string[]),
    localCseq: r.local_cseq, remoteCseq: r.remote_cseq, notifyVersion: r.notify_version, accept: r.accept,
    transport: r.transport as SubscriptionTransport, flowId: r.flow_id, sourceAddress: r.source_address,
    sourcePort: r.source_port, identity: r.identity === null ? null : JSON.parse(r.identity),
    expires: r.expires, expiresAt: r.expires_at, nodeId: r.node_id, createdAt: r.created_at,
    updatedAt: r.updated_at, lastNotifyCseq: r.last_notify_cseq, lastNotifyReply: r.last_notify_reply,
    userAgent: r.user_agent,
  };
}

export class SubscriptionStore {
  private readonly insertStmt;
  private readonly refreshStmt;
  private readonly notifyStmt;
  private readonly replyStmt;
  private readonly deleteStmt;
  private readonly allStmt;
  private readonly bodyStmt;
  private readonly countStmt;

  constructor(private readonly db: Db, private readonly commit: GroupCommit) {
    this.insertStmt = db.prepare(`INSERT INTO subscriptions (${COLUMNS}) VALUES (
      @id, @event, @event_id, @presentity, @domain, @watcher_uri, @call_id, @local_tag, @remote_tag, @local_uri,
      @remote_uri, @remote_target, @route_set, @local_cseq, @remote_cseq, @notify_version, @accept, @transport, @flow_id,
      @source_address, @source_port, @identity, @expires, @expires_at, @node_id, @created_at, @updated_at,
      @last_notify_cseq, @last_notify_reply, @user_agent)`);
    this.refreshStmt = db.prepare(`UPDATE subscriptions SET expires = ?, expires_at = ?, remote_cseq = ?,
      remote_target = ?, transport = ?, flow_id = ?, source_address = ?, source_port = ?, updated_at = ? WHERE id = ?`);
    this.notifyStmt = db.prepare(`UPDATE subscriptions SET local_cseq = ?, notify_version = ?, last_notify_cseq = ?,
      last_notify_body = ? WHERE id = ?`);
    this.replyStmt = db.prepare('UPDATE subscriptions SET last_notify_reply = ? WHERE id = ?');
    this.deleteStmt = db.prepare('DELETE FROM subscriptions WHERE id = ?');
    this.allStmt = db.prepare(`SELECT ${COLUMNS} FROM subscriptions`);
    this.bodyStmt = db.prepare('SELECT last_notify_body AS body FROM subscriptions WHERE id = ?').pluck();
    this.countStmt = db.prepare('SELECT count(*) FROM subscriptions').pluck();
  }

  insert(s: SubscriptionRecord): Promise<void> {
    const params = {
      id: s.id, event: s.event, event_id: s.eventId, presentity: s.presentity, domain: s.domain,
      watcher_uri: s.watcherUri, call_id: s.callId, local_tag: s.localTag, remote_tag: s.remoteTag,
      local_uri: s.localUri, remote_uri: s.remoteUri, remote_target: s.remoteTarget,
      route_set: JSON.stringify(s.routeSet), local_cseq: s.localCseq, remote_cseq: s.remoteCseq,
      notify_version: s.notifyVersion, accept: s.accept, transport: s.transport, flow_id: s.flowId,
      source_address: s.sourceAddress, source_port: s.sourcePort,
      identity: s.identity === null || s.identity === undefined ? null : JSON.stringify(s.identity),
      expires: s.expires, expires_at: s.expiresAt, node_id: s.nodeId, created_at: s.createdAt,
      updated_at: s.updatedAt, last_notify_cseq: s.lastNotifyCseq, last_notify_reply: s.lastNotifyReply,
      user_agent: s.userAgent,
    };
    return this.commit.write(() => { this.insertStmt.run(params); });
  }

  /** A refresh (RFC 6665 §4.1.2.2) moves the expiry and, as a target refresh, the remote target and flow. */
  refresh(s: SubscriptionRecord): Promise<void> {
    const args = [s.expires, s.expiresAt, s.remoteCseq, s.remoteTarget, s.transport, s.flowId, s.sourceAddress,
      s.sourcePort, s.updatedAt, s.id] as const;
    return this.commit.write(() => { this.refreshStmt.run(...args); });
  }

  /** Written before a NOTIFY leaves, so a restart never reuses a CSeq or a version (RFC 3261 §12.2.1.1). */
  notifySent(s: SubscriptionRecord, body: string): Promise<void> {
    const args = [s.localCseq, s.notifyVersion, s.lastNotifyCseq, body, s.id] as const;
    return this.commit.write(() => { this.notifyStmt.run(...args); });
  }

  notifyReply(id: string, status: number): Promise<void> {
    return this.commit.write(() => { this.replyStmt.run(status, id); });
  }

  remove(id: string): Promise<void> {
    return this.commit.write(() => { this.deleteStmt.run(id); });
  }

  loadAll(): SubscriptionRecord[] {
    return (this.allStmt.all() as Row[]).map(fromRow);
  }

  /** The body of the last NOTIFY as committed (the admin API shows it; not kept in memory). */
  lastNotifyBody(id: string): string | undefined {
    const v = this.bodyStmt.get(id) as string | null | undefined;
    return v ?? undefined;
  }

  count(): number {
    return this.countStmt.get() as number;
  }
}
