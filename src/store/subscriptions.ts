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
  /** JSON of the SipIdentity that created it (kept as text: compact, parsed only for in-dialog requests). */
  identity: string | null;
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

const COLUMNS = `id, event, event_id, presentity, domain, watcher_uri, call_id, local_tag, remote_tag, local_uri,
  remote_uri, remote_target, route_set, local_cseq, remote_cseq, notify_version, accept, transport, flow_id,
  source_address, source_port, identity, expires, expires_at, node_id, created_at, updated_at, last_notify_cseq,
  last_notify_reply, user_agent`;

/** One row in COLUMNS order; raw (array) rows load several times faster than objects for 100k subscriptions. */
type RawRow = [
  string, string, string | null, string, string, string, string, string, string, string,
  string, string, string, number, number, number, string | null, string, string | null,
  string | null, number | null, string | null, number, number, string, number, number, number,
  number, string | null,
];

/**
 * Values repeated across many rows (domain, node, Accept, User-Agent...) share one string in memory instead of one
 * copy per row; with 100k subscriptions that is tens of megabytes.
 */
function interner(): <T extends string | null>(v: T) => T {
  const seen = new Map<string, string>();
  return <T extends string | null>(v: T): T => {
    if (v === null) return v;
    const hit = seen.get(v);
    if (hit !== undefined) return hit as T;
    seen.set(v, v);
    return v;
  };
}

function fromRaw(r: RawRow, intern: ReturnType<typeof interner>): SubscriptionRecord {
  return {
    id: r[0], event: intern(r[1]) as SubscriptionRecord['event'], eventId: r[2], presentity: intern(r[3]), domain: intern(r[4]),
    watcherUri: r[5], callId: r[6], localTag: r[7], remoteTag: r[8], localUri: r[9], remoteUri: r[10],
    remoteTarget: r[11], routeSet: r[12] === '[]' ? EMPTY_ROUTE : (JSON.parse(r[12]) as string[]),
    localCseq: r[13], remoteCseq: r[14], notifyVersion: r[15], accept: intern(r[16]),
    transport: intern(r[17]) as SubscriptionTransport, flowId: r[18], sourceAddress: intern(r[19]), sourcePort: r[20],
    identity: intern(r[21]), expires: r[22], expiresAt: r[23], nodeId: intern(r[24]), createdAt: r[25], updatedAt: r[26],
    lastNotifyCseq: r[27], lastNotifyReply: r[28], userAgent: intern(r[29]),
  };
}

/** Rows per read when loading at start. */
const LOAD_CHUNK = 5000;

/** Shared by every subscription without Record-Route (most of them): one array, not 100k. */
const EMPTY_ROUTE: string[] = [];

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
    this.notifyStmt = db.prepare('UPDATE subscriptions SET local_cseq = ?, notify_version = ? WHERE id = ?');
    this.replyStmt = db.prepare(`UPDATE subscriptions SET last_notify_cseq = ?, last_notify_reply = ?, last_notify_body = ?
      WHERE id = ?`);
    this.deleteStmt = db.prepare('DELETE FROM subscriptions WHERE id = ?');
    this.allStmt = db.prepare(`SELECT ${COLUMNS}, rowid FROM subscriptions WHERE rowid > ? ORDER BY rowid LIMIT ${LOAD_CHUNK}`).raw();
    this.bodyStmt = db.prepare('SELECT last_notify_body AS body FROM subscriptions WHERE id = ?').pluck();
    this.countStmt = db.prepare('SELECT count(*) FROM subscriptions').pluck();
  }

  /**
   * `localCseq`/`notifyVersion` default to the record's; the notifier side passes the numbers its initial NOTIFY
   * will use, so that NOTIFY needs no UPDATE before it leaves (RFC 3261 §12.2.1.1 still holds: they are on disk).
   */
  insert(s: SubscriptionRecord, localCseq = s.localCseq, notifyVersion = s.notifyVersion): Promise<void> {
    const params = {
      id: s.id, event: s.event, event_id: s.eventId, presentity: s.presentity, domain: s.domain,
      watcher_uri: s.watcherUri, call_id: s.callId, local_tag: s.localTag, remote_tag: s.remoteTag,
      local_uri: s.localUri, remote_uri: s.remoteUri, remote_target: s.remoteTarget,
      route_set: JSON.stringify(s.routeSet), local_cseq: localCseq, remote_cseq: s.remoteCseq,
      notify_version: notifyVersion, accept: s.accept, transport: s.transport, flow_id: s.flowId,
      source_address: s.sourceAddress, source_port: s.sourcePort,
      identity: s.identity,
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
  notifySent(s: SubscriptionRecord): Promise<void> {
    const args = [s.localCseq, s.notifyVersion, s.id] as const;
    return this.commit.write(() => { this.notifyStmt.run(...args); });
  }

  /** The last ANSWERED NOTIFY: its CSeq, the answer and its body, together (Kazoo's notify{} reports one NOTIFY). */
  notifyReply(id: string, cseq: number, status: number, body: string): Promise<void> {
    return this.commit.write(() => { this.replyStmt.run(cseq, status, body, id); });
  }

  remove(id: string): Promise<void> {
    return this.commit.write(() => { this.deleteStmt.run(id); });
  }

  loadAll(): SubscriptionRecord[] {
    const out: SubscriptionRecord[] = [];
    const intern = interner();
    // In chunks by rowid: as fast as one .all(), without holding every raw row of 100k at once.
    let after = 0;
    for (;;) {
      // Each raw row is COLUMNS followed by the rowid.
      const rows = this.allStmt.all(after) as Array<RawRow & { 30: number }>;
      for (const r of rows) out.push(fromRaw(r, intern));
      if (rows.length < LOAD_CHUNK) break;
      after = rows[rows.length - 1]![30];
    }
    return out;
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
