// Publications held by the event state compositor (RFC 3903 §6) and the admin's manual states. Prepared
// statements only; writes go through the group commit. Rows are keyed by `seq` (migration 005): a refresh or modify
// issues a new entity-tag (§6 step 8), which is then an ordinary column update.
import type { Db, GroupCommit } from './db.js';

export interface PublicationRecord {
  /** The row key on disk, given by the store when the publication is first inserted; absent until then. */
  seq?: number;
  etag: string;
  /** `user@domain` */
  presentity: string;
  event: 'dialog' | 'presence' | 'message-summary';
  expiresAt: number;
  contentType: string;
  body: Buffer;
  createdAt: number;
  updatedAt: number;
}

export interface ManualStateRecord {
  presentity: string;
  event: string;
  state: string;
  updatedAt: number;
}

interface Row {
  seq: number; etag: string; presentity: string; event: string; expires_at: number; content_type: string; body: Buffer;
  created_at: number; updated_at: number;
}

export class PublicationStore {
  private readonly insertStmt;
  private readonly rekeyStmt;
  private readonly deleteStmt;
  private readonly allStmt;
  private readonly setManualStmt;
  private readonly clearManualStmt;
  private readonly allManualStmt;
  private nextSeq: number;

  constructor(private readonly db: Db, private readonly commit: GroupCommit) {
    this.insertStmt = db.prepare(`INSERT INTO publications (seq, etag, presentity, event, expires_at, content_type, body,
      created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.rekeyStmt = db.prepare(`UPDATE publications SET etag = ?, expires_at = ?, content_type = ?, body = ?,
      updated_at = ? WHERE seq = ?`);
    this.deleteStmt = db.prepare('DELETE FROM publications WHERE seq = ?');
    this.allStmt = db.prepare(`SELECT seq, etag, presentity, event, expires_at, content_type, body, created_at, updated_at
      FROM publications ORDER BY created_at, seq`);
    this.nextSeq = ((db.prepare('SELECT max(seq) FROM publications').pluck().get() as number | null) ?? 0) + 1;
    this.setManualStmt = db.prepare(`INSERT INTO manual_states (presentity, event, state, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (presentity, event) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`);
    this.clearManualStmt = db.prepare('DELETE FROM manual_states WHERE presentity = ?');
    this.allManualStmt = db.prepare('SELECT presentity, event, state, updated_at FROM manual_states');
  }

  /** Gives the record its `seq`. */
  insert(p: PublicationRecord): Promise<void> {
    const args = [(p.seq ??= this.nextSeq++), p.etag, p.presentity, p.event, p.expiresAt, p.contentType, p.body, p.createdAt, p.updatedAt] as const;
    return this.commit.write(() => { this.insertStmt.run(...args); });
  }

  /** Refresh or modify: the publication gets its new entity-tag, expiry and (for a modify) body. */
  replace(p: PublicationRecord): Promise<void> {
    if (p.seq === undefined) return Promise.reject(new Error(`publication ${p.etag} is not stored`));
    const args = [p.etag, p.expiresAt, p.contentType, p.body, p.updatedAt, p.seq] as const;
    return this.commit.write(() => { this.rekeyStmt.run(...args); });
  }

  remove(pubs: PublicationRecord[]): Promise<void> {
    const seqs = pubs.flatMap((p) => (p.seq === undefined ? [] : [p.seq]));
    if (seqs.length === 0) return Promise.resolve();
    return this.commit.write(() => { for (const seq of seqs) this.deleteStmt.run(seq); });
  }

  loadAll(): PublicationRecord[] {
    return (this.allStmt.all() as Row[]).map((r) => ({
      seq: r.seq, etag: r.etag, presentity: r.presentity, event: r.event as PublicationRecord['event'], expiresAt: r.expires_at,
      contentType: r.content_type, body: r.body, createdAt: r.created_at, updatedAt: r.updated_at,
    }));
  }

  setManual(m: ManualStateRecord): Promise<void> {
    return this.commit.write(() => { this.setManualStmt.run(m.presentity, m.event, m.state, m.updatedAt); });
  }

  clearManual(presentity: string): Promise<void> {
    return this.commit.write(() => { this.clearManualStmt.run(presentity); });
  }

  loadManual(): ManualStateRecord[] {
    return (this.allManualStmt.all() as Array<{ presentity: string; event: string; state: string; updated_at: number }>)
      .map((r) => ({ presentity: r.presentity, event: r.event, state: r.state, updatedAt: r.updated_at }));
  }
}
