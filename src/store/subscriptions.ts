// Subscriptions on disk: each RFC 6665 subscription with its whole dialog state (RFC 3261 §12.1.1), so a restarted
// node can send the next in-dialog NOTIFY with CSeq and version still going up. The dialog and the NOTIFY counters
// are two narrow tables keyed by `seq` (migration 004); the `subscriptions` view joins them for readers. Prepared
// statements only; every write goes through the group commit so one event-loop turn is one transaction.
import type { Db, GroupCommit } from './db.js';

export type SubscriptionTransport = 'udp' | 'tcp' | 'ws';

/** The persistent part of a subscription, as the domain keeps it in memory. */
export interface SubscriptionRecord {
  /**
   * The row key on disk (INTEGER rowid of subscription_dialogs/subscription_counters), given by the store when the
   * subscription is first inserted; absent until then.
   */
  seq?: number;
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

const COLUMNS = `seq, id, event, event_id, presentity, domain, watcher_uri, call_id, local_tag, remote_tag, local_uri,
  remote_uri, remote_target, route_set, local_cseq, remote_cseq, notify_version, accept, transport, flow_id,
  source_address, source_port, identity, expires, expires_at, node_id, created_at, updated_at, last_notify_cseq,
  last_notify_reply, user_agent`;

/** One row in COLUMNS order; raw (array) rows load several times faster than objects for 100k subscriptions. */
type RawRow = [
  number, string, string, string | null, string, string, string, string, string, string, string,
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
    seq: r[0], id: r[1], event: intern(r[2]) as SubscriptionRecord['event'], eventId: r[3], presentity: intern(r[4]),
    domain: intern(r[5]), watcherUri: r[6], callId: r[7], localTag: r[8], remoteTag: r[9], localUri: r[10],
    remoteUri: r[11], remoteTarget: r[12], routeSet: r[13] === '[]' ? EMPTY_ROUTE : (JSON.parse(r[13]) as string[]),
    localCseq: r[14], remoteCseq: r[15], notifyVersion: r[16], accept: intern(r[17]),
    transport: intern(r[18]) as SubscriptionTransport, flowId: r[19], sourceAddress: intern(r[20]), sourcePort: r[21],
    identity: intern(r[22]), expires: r[23], expiresAt: r[24], nodeId: intern(r[25]), createdAt: r[26], updatedAt: r[27],
    lastNotifyCseq: r[28], lastNotifyReply: r[29], userAgent: intern(r[30]),
  };
}

/** Rows per read when loading at start. */
const LOAD_CHUNK = 5000;

/** Shared by every subscription without Record-Route (most of them): one array, not 100k. */
const EMPTY_ROUTE: string[] = [];

/** How long the answer to a NOTIFY may wait in memory before it is written (see noteReply). */
export const DEFAULT_REPLY_LOG_INTERVAL_MS = 1000;

/** The counters of the initial NOTIFY, written with the subscription's row. */
export interface InitialNotify {
  localCseq: number;
  notifyVersion: number;
}

interface PendingReply {
  cseq: number;
  status: number;
  body: Buffer | string;
}

export class SubscriptionStore {
  private readonly insertDialogStmt;
  private readonly insertCountersStmt;
  private readonly refreshStmt;
  private readonly countersStmt;
  private readonly replyStmt;
  private readonly deleteDialogStmt;
  private readonly deleteCountersStmt;
  private readonly allStmt;
  private readonly bodyStmt;
  private readonly countStmt;
  private nextSeq: number;
  /** Subscriptions whose NOTIFY counters go into the next transaction (one write for a whole fan-out). */
  private counterBatch: { records: Map<number, SubscriptionRecord>; durable: Promise<void> } | undefined;
  /**
   * The CSeq and version of a subscription's initial NOTIFY (RFC 6665 §4.2.1.2: it follows every accepted
   * SUBSCRIBE at once) that its INSERT wrote, with that write's promise: the NOTIFY needs no write of its own, one
   * statement per SUBSCRIBE instead of two. Kept by seq until that NOTIFY's notifySent, or the remove.
   */
  private readonly initialNotify = new Map<number, InitialNotify & { durable: Promise<void> }>();
  /** Answers to NOTIFYs not yet written (see noteReply). */
  private readonly replies = new Map<SubscriptionRecord, PendingReply>();
  private replyTimer: NodeJS.Timeout | undefined;
  private readonly replyLogIntervalMs: number;

  constructor(private readonly db: Db, private readonly commit: GroupCommit, opts: { replyLogIntervalMs?: number } = {}) {
    this.replyLogIntervalMs = opts.replyLogIntervalMs ?? DEFAULT_REPLY_LOG_INTERVAL_MS;
    this.insertDialogStmt = db.prepare(`INSERT INTO subscription_dialogs (seq, id, event, event_id, presentity, domain,
      watcher_uri, call_id, local_tag, remote_tag, local_uri, remote_uri, remote_target, route_set, remote_cseq, accept,
      transport, flow_id, source_address, source_port, identity, expires, expires_at, node_id, created_at, updated_at,
      last_notify_cseq, last_notify_reply, user_agent) VALUES (@seq, @id, @event, @event_id, @presentity, @domain,
      @watcher_uri, @call_id, @local_tag, @remote_tag, @local_uri, @remote_uri, @remote_target, @route_set,
      @remote_cseq, @accept, @transport, @flow_id, @source_address, @source_port, @identity, @expires, @expires_at,
      @node_id, @created_at, @updated_at, @last_notify_cseq, @last_notify_reply, @user_agent)`);
    this.insertCountersStmt = db.prepare('INSERT INTO subscription_counters (seq, local_cseq, notify_version) VALUES (?, ?, ?)');
    this.refreshStmt = db.prepare(`UPDATE subscription_dialogs SET expires = ?, expires_at = ?, remote_cseq = ?,
      remote_target = ?, transport = ?, flow_id = ?, source_address = ?, source_port = ?, updated_at = ? WHERE seq = ?`);
    this.countersStmt = db.prepare('UPDATE subscription_counters SET local_cseq = ?, notify_version = ? WHERE seq = ?');
    this.replyStmt = db.prepare(`UPDATE subscription_dialogs SET last_notify_cseq = ?, last_notify_reply = ?,
      last_notify_body = ? WHERE seq = ?`);
    this.deleteDialogStmt = db.prepare('DELETE FROM subscription_dialogs WHERE seq = ?');
    this.deleteCountersStmt = db.prepare('DELETE FROM subscription_counters WHERE seq = ?');
    this.allStmt = db.prepare(`SELECT ${COLUMNS} FROM subscriptions WHERE seq > ? ORDER BY seq LIMIT ${LOAD_CHUNK}`).raw();
    this.bodyStmt = db.prepare('SELECT last_notify_body AS body FROM subscription_dialogs WHERE seq = ?').pluck();
    this.countStmt = db.prepare('SELECT count(*) FROM subscription_dialogs').pluck();
    this.nextSeq = ((db.prepare('SELECT max(seq) FROM subscription_dialogs').pluck().get() as number | null) ?? 0) + 1;
  }

  /**
   * The counters row holds the record's numbers, or those of `initialNotify` when the notifier passes the numbers
   * its initial NOTIFY will carry: then notifySent for that NOTIFY writes nothing and waits for this INSERT
   * (RFC 3261 §12.2.1.1 still holds: they are on disk before it leaves). Gives the record its `seq`.
   */
  insert(s: SubscriptionRecord, initialNotify?: InitialNotify): Promise<void> {
    const seq = (s.seq ??= this.nextSeq++);
    const localCseq = initialNotify?.localCseq ?? s.localCseq;
    const notifyVersion = initialNotify?.notifyVersion ?? s.notifyVersion;
    const params = {
      seq, id: s.id, event: s.event, event_id: s.eventId, presentity: s.presentity, domain: s.domain,
      watcher_uri: s.watcherUri, call_id: s.callId, local_tag: s.localTag, remote_tag: s.remoteTag,
      local_uri: s.localUri, remote_uri: s.remoteUri, remote_target: s.remoteTarget,
      route_set: s.routeSet.length === 0 ? '[]' : JSON.stringify(s.routeSet), remote_cseq: s.remoteCseq,
      accept: s.accept, transport: s.transport, flow_id: s.flowId,
      source_address: s.sourceAddress, source_port: s.sourcePort,
      identity: s.identity,
      expires: s.expires, expires_at: s.expiresAt, node_id: s.nodeId, created_at: s.createdAt,
      updated_at: s.updatedAt, last_notify_cseq: s.lastNotifyCseq, last_notify_reply: s.lastNotifyReply,
      user_agent: s.userAgent,
    };
    const durable = this.commit.write(() => {
      this.insertDialogStmt.run(params);
      this.insertCountersStmt.run(seq, localCseq, notifyVersion);
    });
    if (initialNotify !== undefined) this.initialNotify.set(seq, { localCseq, notifyVersion, durable });
    return durable;
  }

  /** A refresh (RFC 6665 §4.1.2.2) moves the expiry and, as a target refresh, the remote target and flow. */
  refresh(s: SubscriptionRecord): Promise<void> {
    const seq = s.seq;
    if (seq === undefined) return notStored(s);
    const args = [s.expires, s.expiresAt, s.remoteCseq, s.remoteTarget, s.transport, s.flowId, s.sourceAddress,
      s.sourcePort, s.updatedAt, seq] as const;
    return this.commit.write(() => { this.refreshStmt.run(...args); });
  }

  /**
   * Written before a NOTIFY leaves, so a restart never reuses a CSeq or a version (RFC 3261 §12.2.1.1). Every
   * NOTIFY prepared in one event-loop turn (a fan-out) shares one write and one promise; the numbers are read when
   * the transaction runs, and they only ever grow, so a later value is as safe as the one asked for.
   */
  notifySent(s: SubscriptionRecord): Promise<void> {
    const seq = s.seq;
    if (seq === undefined) return notStored(s);
    const initial = this.initialNotify.get(seq);
    if (initial !== undefined) {
      this.initialNotify.delete(seq);
      // The INSERT holds these numbers (or higher): only once, and nothing more to write before sending.
      if (s.localCseq <= initial.localCseq && s.notifyVersion <= initial.notifyVersion) return initial.durable;
    }
    let batch = this.counterBatch;
    if (batch === undefined) {
      const records = new Map<number, SubscriptionRecord>();
      const durable = this.commit.write(() => {
        if (this.counterBatch?.records === records) this.counterBatch = undefined;
        for (const [k, r] of records) this.countersStmt.run(r.localCseq, r.notifyVersion, k);
      });
      batch = this.counterBatch = { records, durable };
    }
    batch.records.set(seq, s);
    return batch.durable;
  }

  /**
   * The last ANSWERED NOTIFY: its CSeq, the answer and its body, together (Kazoo's notify{} reports one NOTIFY).
   * This is what the admin API shows, not what a restart needs (the counters above are), so it is written at most
   * `replyLogIntervalMs` later, many answers in one transaction; after a crash it may be that much older.
   */
  noteReply(s: SubscriptionRecord, cseq: number, status: number, body: Buffer | string): void {
    if (s.seq === undefined) return;
    this.replies.set(s, { cseq, status, body });
    if (this.replyTimer === undefined) {
      this.replyTimer = setTimeout(() => {
        this.replyTimer = undefined;
        this.flushReplies();
      }, this.replyLogIntervalMs);
      this.replyTimer.unref();
    }
  }

  /** Queue the pending answers into the next transaction now (at shutdown; the caller then flushes the commit). */
  flushReplies(): Promise<void> {
    if (this.replyTimer !== undefined) {
      clearTimeout(this.replyTimer);
      this.replyTimer = undefined;
    }
    if (this.replies.size === 0 || !this.db.open) return Promise.resolve();
    const batch = [...this.replies];
    this.replies.clear();
    return this.commit.write(() => {
      for (const [r, p] of batch) {
        this.replyStmt.run(p.cseq, p.status, bodyText(p), r.seq!);
      }
    });
  }

  remove(s: SubscriptionRecord): Promise<void> {
    this.replies.delete(s);
    const seq = s.seq;
    if (seq === undefined) return Promise.resolve();
    this.counterBatch?.records.delete(seq);
    this.initialNotify.delete(seq);
    return this.commit.write(() => {
      this.deleteDialogStmt.run(seq);
      this.deleteCountersStmt.run(seq);
    });
  }

  loadAll(): SubscriptionRecord[] {
    const out: SubscriptionRecord[] = [];
    const intern = interner();
    // In chunks by seq: as fast as one .all(), without holding every raw row of 100k at once.
    let after = 0;
    for (;;) {
      const rows = this.allStmt.all(after) as RawRow[];
      for (const r of rows) out.push(fromRaw(r, intern));
      if (rows.length < LOAD_CHUNK) break;
      after = rows[rows.length - 1]![0];
    }
    return out;
  }

  /** The body of the last answered NOTIFY (the admin API shows it; not kept in memory once written). */
  lastNotifyBody(s: SubscriptionRecord): string | undefined {
    const pending = this.replies.get(s);
    if (pending !== undefined) return bodyText(pending);
    if (s.seq === undefined) return undefined;
    const v = this.bodyStmt.get(s.seq) as string | null | undefined;
    return v ?? undefined;
  }

  /** Initial NOTIFYs whose numbers an INSERT wrote and whose notifySent has not come yet (for tests). */
  get initialNotifyPending(): number {
    return this.initialNotify.size;
  }

  count(): number {
    return this.countStmt.get() as number;
  }
}

function bodyText(p: PendingReply): string {
  return typeof p.body === 'string' ? p.body : p.body.toString('utf8');
}

function notStored(s: SubscriptionRecord): Promise<never> {
  return Promise.reject(new Error(`subscription ${s.id} is not stored`));
}
