// Migration 004 and the write pattern it exists for: the dialog and the NOTIFY counters in two tables keyed by an
// INTEGER seq, the `subscriptions` view joining them, a fan-out's counters in ONE write, and answers to NOTIFYs
// written later in one batch. Real SQLite files, reopened as a restart would.
import { describe, it, expect, afterEach } from 'vitest';
import Database from 'better-sqlite3';
import { openDatabase, migrate, GroupCommit, type Db } from '../../src/store/db.js';
import { MIGRATIONS } from '../../src/store/migrations/index.js';
import { SubscriptionStore, type SubscriptionRecord } from '../../src/store/subscriptions.js';
import { PublicationStore } from '../../src/store/publications.js';
import { tempDbFile } from '../helpers/server.js';

function sub(id: string, over: Partial<SubscriptionRecord> = {}): SubscriptionRecord {
  return {
    id, event: 'dialog', eventId: null, presentity: '201@example.com', domain: 'example.com', watcherUri: `sip:${id}@example.com`,
    callId: `call-${id}`, localTag: `lt-${id}`, remoteTag: `rt-${id}`, localUri: `<sip:201@example.com>;tag=lt-${id}`,
    remoteUri: `<sip:${id}@example.com>;tag=rt-${id}`, remoteTarget: 'sip:100@10.0.0.1:5062', routeSet: [],
    localCseq: 0, remoteCseq: 1, notifyVersion: -1, accept: null, transport: 'udp', flowId: null,
    sourceAddress: '127.0.0.1', sourcePort: 5062, identity: null,
    expires: 3600, expiresAt: 1_000_000, nodeId: 'n1', createdAt: 1, updatedAt: 1, lastNotifyCseq: 0, lastNotifyReply: 0,
    userAgent: null, ...over,
  };
}

const cleanups: Array<() => void> = [];
afterEach(() => { while (cleanups.length) cleanups.pop()!(); });

function open(file: string): { db: Db; commit: GroupCommit; writes: number[] } {
  const db = openDatabase(file);
  cleanups.unshift(() => { if (db.open) db.close(); });
  const commit = new GroupCommit(db);
  const writes: number[] = [];
  commit.onCommit = (_ms, n) => writes.push(n);
  return { db, commit, writes };
}

describe('migration 004 (subscription split)', () => {
  it('moves every row of an older database into the two tables, keeps its values, and leaves a view with the old columns', async () => {
    const tmp = tempDbFile();
    cleanups.push(tmp.cleanup);
    // A database as migrations 1..3 left it, with two subscriptions in the old wide table.
    const old = new Database(tmp.file);
    migrate(old, MIGRATIONS.filter((m) => m.version <= 3));
    const cols = (old.prepare('PRAGMA table_info(subscriptions)').all() as Array<{ name: string }>).map((c) => c.name);
    const insert = old.prepare(`INSERT INTO subscriptions (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`);
    const row = (id: string, cseq: number, version: number) => ({
      id, event: 'dialog', event_id: null, presentity: '201@example.com', domain: 'example.com', watcher_uri: 'sip:w@example.com',
      call_id: `c-${id}`, local_tag: 'lt', remote_tag: 'rt', local_uri: '<sip:201@example.com>;tag=lt', remote_uri: '<sip:w@example.com>;tag=rt',
      remote_target: 'sip:w@127.0.0.1:5070', route_set: '["<sip:p;lr>"]', local_cseq: cseq, remote_cseq: 3, notify_version: version,
      accept: null, transport: 'tcp', flow_id: 'tcp:1', source_address: '127.0.0.1', source_port: 5070, identity: null,
      expires: 600, expires_at: 9_999_999_999_999, node_id: 'n0', created_at: 5, updated_at: 6, last_notify_cseq: cseq,
      last_notify_reply: 200, last_notify_body: `<body ${id}/>`, user_agent: 'Snom',
    });
    insert.run(row('a', 7, 6));
    insert.run(row('b', 2, 1));
    old.close();

    const { db } = open(tmp.file);
    expect(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).toBe(MIGRATIONS.at(-1)!.version);
    expect(db.prepare("SELECT type FROM sqlite_master WHERE name = 'subscriptions'").pluck().get()).toBe('view');
    const rows = db.prepare('SELECT * FROM subscriptions ORDER BY id').all() as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(2);
    const { seq: _seq, ...a } = rows[0]!;
    expect(a).toEqual(row('a', 7, 6));
    expect(rows[1]).toMatchObject({ id: 'b', local_cseq: 2, notify_version: 1, last_notify_body: '<body b/>' });
    // The store picks up after the highest seq, and loads both with their counters.
    const store = new SubscriptionStore(db, new GroupCommit(db));
    const loaded = store.loadAll();
    expect(loaded.map((r) => [r.id, r.localCseq, r.notifyVersion, r.routeSet])).toEqual([['a', 7, 6, ['<sip:p;lr>']], ['b', 2, 1, ['<sip:p;lr>']]]);
    const c = sub('c');
    await store.insert(c);
    expect(c.seq).toBe(Math.max(...loaded.map((r) => r.seq!)) + 1);
  });
});

describe('migration 005 (publication keys)', () => {
  it('keeps every publication of an older database, in order, re-keyed by seq without secondary indexes', async () => {
    const tmp = tempDbFile();
    cleanups.push(tmp.cleanup);
    const old = new Database(tmp.file);
    migrate(old, MIGRATIONS.filter((m) => m.version <= 4));
    const ins = old.prepare('INSERT INTO publications (etag, presentity, event, expires_at, content_type, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    ins.run('e-new', '201@x', 'dialog', 99, 'application/dialog-info+xml', Buffer.from('<b/>'), 20, 20);
    ins.run('e-old', '201@x', 'dialog', 99, 'application/dialog-info+xml', Buffer.from('<a/>'), 10, 10);
    old.close();
    const { db, commit } = open(tmp.file);
    const store = new PublicationStore(db, commit);
    const loaded = store.loadAll();
    expect(loaded.map((p) => [p.etag, p.body.toString()])).toEqual([['e-old', '<a/>'], ['e-new', '<b/>']]);
    expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'publications'").pluck().get()).toBe(0);
    // A refresh re-tags the same row (RFC 3903 §6 step 8); the old tag is gone from disk.
    const p = loaded[0]!;
    p.etag = 'e-old-2';
    await store.replace(p);
    expect(db.prepare('SELECT etag FROM publications ORDER BY seq').pluck().all()).toEqual(['e-new', 'e-old-2']);
    await store.remove([p]);
    expect(db.prepare('SELECT etag FROM publications').pluck().all()).toEqual(['e-new']);
  });
});

describe('SubscriptionStore writes', () => {
  it('commits the counters of a whole fan-out in one write, with the numbers the NOTIFYs carry', async () => {
    const tmp = tempDbFile();
    cleanups.push(tmp.cleanup);
    const { db, commit, writes } = open(tmp.file);
    const store = new SubscriptionStore(db, commit);
    const subs = Array.from({ length: 50 }, (_, i) => sub(`w${i}`));
    await Promise.all(subs.map((s) => store.insert(s)));
    writes.length = 0;
    const durable = subs.map((s, i) => {
      s.localCseq = 2 + i;
      s.notifyVersion = 1;
      return store.notifySent(s);
    });
    expect(new Set(durable).size).toBe(1);
    await Promise.all(durable);
    expect(writes).toEqual([1]);
    const rows = db.prepare('SELECT id, local_cseq, notify_version FROM subscriptions ORDER BY seq').all() as Array<{ id: string; local_cseq: number; notify_version: number }>;
    expect(rows).toEqual(subs.map((s, i) => ({ id: s.id, local_cseq: 2 + i, notify_version: 1 })));
    // The next turn's NOTIFYs get a new write of their own.
    subs[0]!.localCseq = 100;
    await store.notifySent(subs[0]!);
    expect(writes).toEqual([1, 1]);
    expect(db.prepare('SELECT local_cseq FROM subscriptions WHERE id = ?').pluck().get('w0')).toBe(100);
  });

  it('needs no write for the initial NOTIFY whose numbers the INSERT holds, and keeps nothing of a removed one', async () => {
    const tmp = tempDbFile();
    cleanups.push(tmp.cleanup);
    const { db, commit, writes } = open(tmp.file);
    const store = new SubscriptionStore(db, commit);
    const [a, b, c] = [sub('a'), sub('b'), sub('c')];
    const inserted = [a, b, c].map((s) => store.insert(s, { localCseq: s.localCseq + 1, notifyVersion: s.notifyVersion + 1 }));
    expect(store.initialNotifyPending).toBe(3);
    // a: its initial NOTIFY waits for the INSERT itself, and nothing else is queued for it.
    a.localCseq += 1;
    a.notifyVersion += 1;
    expect(store.notifySent(a)).toBe(inserted[0]);
    // c: the state changed before its first NOTIFY was prepared, so it carries higher numbers: those are written.
    c.localCseq += 2;
    c.notifyVersion += 2;
    const cDurable = store.notifySent(c);
    expect(cDurable).not.toBe(inserted[2]);
    // b: removed before its initial NOTIFY (an unsubscribe in the same turn): nothing of it stays in memory.
    const removed = store.remove(b);
    expect(store.initialNotifyPending).toBe(0);
    await Promise.all([...inserted, cDurable, removed]);
    const rows = db.prepare('SELECT id, local_cseq, notify_version FROM subscriptions ORDER BY seq').all();
    expect(rows).toEqual([{ id: 'a', local_cseq: 1, notify_version: 0 }, { id: 'c', local_cseq: 2, notify_version: 1 }]);
    // a's next NOTIFY is no longer covered by the INSERT: it gets a write of its own.
    writes.length = 0;
    a.localCseq += 1;
    a.notifyVersion += 1;
    const next = store.notifySent(a);
    expect(next).not.toBe(inserted[0]);
    await next;
    expect(writes).toEqual([1]);
    expect(db.prepare("SELECT local_cseq, notify_version FROM subscriptions WHERE id = 'a'").get()).toEqual({ local_cseq: 2, notify_version: 1 });
  });

  it('writes answers to NOTIFYs later, many in one write, shows the pending one meanwhile, and forgets removed rows', async () => {
    const tmp = tempDbFile();
    cleanups.push(tmp.cleanup);
    const { db, commit, writes } = open(tmp.file);
    const store = new SubscriptionStore(db, commit, { replyLogIntervalMs: 40 });
    const [a, b, c] = [sub('a'), sub('b'), sub('c')];
    await Promise.all([a, b, c].map((s) => store.insert(s)));
    writes.length = 0;
    store.noteReply(a, 1, 200, Buffer.from('<a v=0/>'));
    store.noteReply(b, 1, 486, '<b v=0/>');
    store.noteReply(a, 2, 200, Buffer.from('<a v=1/>'));
    store.noteReply(c, 1, 200, '<c/>');
    await store.remove(c);
    const reply = (id: string) => db.prepare('SELECT last_notify_cseq AS cseq, last_notify_reply AS reply, last_notify_body AS body FROM subscriptions WHERE id = ?').get(id);
    expect(reply('a')).toEqual({ cseq: 0, reply: 0, body: null });
    expect(store.lastNotifyBody(a)).toBe('<a v=1/>');
    writes.length = 0;
    await new Promise((r) => setTimeout(r, 120));
    expect(writes).toEqual([1]);
    expect(reply('a')).toEqual({ cseq: 2, reply: 200, body: '<a v=1/>' });
    expect(reply('b')).toEqual({ cseq: 1, reply: 486, body: '<b v=0/>' });
    expect(db.prepare('SELECT count(*) FROM subscription_dialogs').pluck().get()).toBe(2);
    expect(store.lastNotifyBody(b)).toBe('<b v=0/>');
  });

  it('flushReplies writes what is pending at once (shutdown), and nothing after the database is closed', async () => {
    const tmp = tempDbFile();
    cleanups.push(tmp.cleanup);
    const { db, commit } = open(tmp.file);
    const store = new SubscriptionStore(db, commit, { replyLogIntervalMs: 60_000 });
    const a = sub('a');
    await store.insert(a);
    store.noteReply(a, 1, 200, '<a/>');
    void store.flushReplies();
    commit.flush();
    db.close();
    const again = open(tmp.file);
    expect(again.db.prepare('SELECT last_notify_body FROM subscriptions').pluck().get()).toBe('<a/>');
    store.noteReply(a, 2, 200, '<late/>');
    await expect(store.flushReplies()).resolves.toBeUndefined();
  });
});
