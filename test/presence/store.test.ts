// The presence store on a real SQLite file: rows round-trip with the whole dialog state, writes are batched by the
// group commit, and a second open of the same file (a restart) sees exactly what was committed.
import { describe, it, expect, afterEach } from 'vitest';
import { openDatabase, GroupCommit, type Db } from '../../src/store/db.js';
import { SubscriptionStore, type SubscriptionRecord } from '../../src/store/subscriptions.js';
import { PublicationStore, type PublicationRecord } from '../../src/store/publications.js';
import { tempDbFile } from '../helpers/server.js';

function sub(id: string, over: Partial<SubscriptionRecord> = {}): SubscriptionRecord {
  return {
    id, event: 'dialog', eventId: null, presentity: '201@example.com', domain: 'example.com', watcherUri: 'sip:100@example.com',
    callId: `call-${id}`, localTag: `lt-${id}`, remoteTag: `rt-${id}`, localUri: `<sip:201@example.com>;tag=lt-${id}`,
    remoteUri: `<sip:100@example.com>;tag=rt-${id}`, remoteTarget: 'sip:100@10.0.0.1:5062', routeSet: ['<sip:p1;lr>', '<sip:p2;lr>'],
    localCseq: 0, remoteCseq: 1, notifyVersion: -1, accept: 'application/dialog-info+xml', transport: 'udp', flowId: 'udp:x',
    sourceAddress: '127.0.0.1', sourcePort: 5062, identity: JSON.stringify({ accountId: 'a', realm: 'example.com', username: '100', via: 'digest' }),
    expires: 3600, expiresAt: 1_000_000, nodeId: 'n1', createdAt: 1, updatedAt: 1, lastNotifyCseq: 0, lastNotifyReply: 0,
    userAgent: 'Yealink', ...over,
  };
}

const cleanups: Array<() => void> = [];
afterEach(() => { while (cleanups.length) cleanups.pop()!(); });

function open(file: string): { db: Db; commit: GroupCommit } {
  const db = openDatabase(file);
  cleanups.unshift(() => db.close());
  return { db, commit: new GroupCommit(db) };
}

describe('SubscriptionStore', () => {
  it('round-trips every dialog field and survives a reopen', async () => {
    const tmp = tempDbFile();
    cleanups.push(tmp.cleanup);
    const a = open(tmp.file);
    const s = new SubscriptionStore(a.db, a.commit);
    const rec = sub('s1');
    await s.insert(rec);
    rec.localCseq = 5; rec.notifyVersion = 4;
    await s.notifySent(rec);
    rec.lastNotifyCseq = 5; rec.lastNotifyReply = 200;
    s.noteReply(rec, 5, 200, '<dialog-info version="4"/>');
    expect(s.lastNotifyBody(rec)).toBe('<dialog-info version="4"/>');
    await s.flushReplies();
    const b = open(tmp.file);
    const loaded = new SubscriptionStore(b.db, b.commit).loadAll();
    expect(loaded).toHaveLength(1);
    expect(loaded[0]).toEqual(rec);
    expect(new SubscriptionStore(b.db, b.commit).lastNotifyBody(loaded[0]!)).toBe('<dialog-info version="4"/>');
  });

  it('batches the writes of one turn into one transaction and removes rows', async () => {
    const tmp = tempDbFile();
    cleanups.push(tmp.cleanup);
    const a = open(tmp.file);
    const commits: number[] = [];
    a.commit.onCommit = (_ms, writes) => commits.push(writes);
    const s = new SubscriptionStore(a.db, a.commit);
    const b = sub('b');
    await Promise.all([s.insert(sub('a')), s.insert(b), s.insert(sub('c'))]);
    expect(commits).toEqual([3]);
    await s.remove(b);
    expect(s.loadAll().map((r) => r.id).sort()).toEqual(['a', 'c']);
    expect(a.db.prepare('SELECT count(*) FROM subscription_counters').pluck().get()).toBe(2);
    // Every lookup is in memory: no secondary index to keep up on each insert (migration 004).
    const indexes = (a.db.prepare("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name LIKE 'subscription%'").pluck().all() as string[]);
    expect(indexes).toEqual([]);
  });

  it('loads every row across the chunk boundaries of the start-up read', async () => {
    const tmp = tempDbFile();
    cleanups.push(tmp.cleanup);
    const a = open(tmp.file);
    const s = new SubscriptionStore(a.db, a.commit);
    const n = 12_345;
    await Promise.all(Array.from({ length: n }, (_, i) => s.insert(sub(`k${i}`, { userAgent: i % 2 ? 'A' : 'B' }))));
    const loaded = s.loadAll();
    expect(loaded).toHaveLength(n);
    expect(new Set(loaded.map((r) => r.id)).size).toBe(n);
    expect(loaded[n - 1]!.id).toBe(`k${n - 1}`);
    expect(loaded.filter((r) => r.userAgent === 'A')).toHaveLength(Math.floor(n / 2));
  });

  it('refresh moves expiry, target and flow', async () => {
    const tmp = tempDbFile();
    cleanups.push(tmp.cleanup);
    const a = open(tmp.file);
    const s = new SubscriptionStore(a.db, a.commit);
    const rec = sub('r');
    await s.insert(rec);
    Object.assign(rec, { expires: 60, expiresAt: 2_000_000, remoteCseq: 7, remoteTarget: 'sip:100@10.0.0.2', transport: 'tcp', flowId: 'tcp:9', sourceAddress: '10.0.0.2', sourcePort: 40000, updatedAt: 9 });
    await s.refresh(rec);
    expect(s.loadAll()[0]).toEqual(rec);
  });
});

describe('PublicationStore', () => {
  it('re-keys on refresh, keeps the oldest-first order, and stores manual states', async () => {
    const tmp = tempDbFile();
    cleanups.push(tmp.cleanup);
    const a = open(tmp.file);
    const p = new PublicationStore(a.db, a.commit);
    const base = { presentity: '201@example.com', event: 'dialog' as const, contentType: 'application/dialog-info+xml', body: Buffer.from('<x/>') };
    const e1: PublicationRecord = { ...base, etag: 'e1', expiresAt: 10, createdAt: 1, updatedAt: 1 };
    const e2: PublicationRecord = { ...base, etag: 'e2', expiresAt: 10, createdAt: 2, updatedAt: 2 };
    await p.insert(e1);
    await p.insert(e2);
    Object.assign(e1, { etag: 'e1b', expiresAt: 20, updatedAt: 3, body: Buffer.from('<y/>') });
    await p.replace(e1);
    const rows = p.loadAll();
    expect(rows.map((r) => r.etag)).toEqual(['e1b', 'e2']);
    expect(rows[0]!.body.toString()).toBe('<y/>');
    expect(rows[0]!.expiresAt).toBe(20);
    await p.remove([e2]);
    expect(p.loadAll().map((r) => r.etag)).toEqual(['e1b']);
    await p.setManual({ presentity: '201@example.com', event: 'dialog', state: 'early', updatedAt: 1 });
    await p.setManual({ presentity: '201@example.com', event: 'dialog', state: 'confirmed', updatedAt: 2 });
    expect(p.loadManual()).toEqual([{ presentity: '201@example.com', event: 'dialog', state: 'confirmed', updatedAt: 2 }]);
    await p.clearManual('201@example.com');
    expect(p.loadManual()).toEqual([]);
  });
});
