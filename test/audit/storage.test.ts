// Audit of issue 2, "Storage": WAL mode, versioned migrations applied once, the complete dialog state of a
// subscription on disk, and group commit (one transaction per event-loop turn, not one per message), seen from
// outside: the database file and the commit histogram on /metrics.
import { describe, it, expect, afterAll } from 'vitest';
import { startTestServer, tempDbFile, type TestServer } from '../helpers/server.js';
import { subscribeText, randomTag } from '../helpers/raw-sip.js';
import { Peers, dbRows, until, toTagOf, isNotify, cseqOf, versionOf } from './util.js';

const peers = new Peers();
const servers: TestServer[] = [];
const cleanups: Array<() => void> = [];
afterAll(async () => {
  peers.closeAll();
  for (const s of servers) await s.stop();
  for (const c of cleanups) c();
});

async function commits(ts: TestServer): Promise<number> {
  const text = await (await fetch(`${ts.apiUrl}/metrics`)).text();
  const m = /^lamplighter_sqlite_commit_seconds_count(?:\{[^}]*\})? (\d+)/m.exec(text);
  if (!m) throw new Error('no lamplighter_sqlite_commit_seconds_count on /metrics');
  return Number(m[1]);
}

describe('the database file', () => {
  it('is in WAL mode, has migrations 1..5 applied once (also after a restart), and holds the whole dialog of a subscription', async () => {
    const tmp = tempDbFile();
    cleanups.push(tmp.cleanup);
    let ts = await startTestServer({ dbFile: tmp.file });
    const p = await peers.open(ts.sip('tcp').port, 'tcp');
    const callId = `${randomTag()}@audit`;
    const fromTag = randomTag();
    const rr = `<sip:127.0.0.1:${p.localPort};transport=tcp;lr>`;
    const ok = await p.request(subscribeText(p, { user: '601', callId, fromTag, expires: 600, extra: [`Record-Route: ${rr}`, 'User-Agent: Audit/1'] }));
    expect(ok.status).toBe(200);
    const n = await p.waitFor(isNotify(callId), 5000, 0);
    await ts.stop();
    ts = await startTestServer({ dbFile: tmp.file });
    servers.push(ts);

    expect(dbRows(tmp.file, 'PRAGMA journal_mode')[0].journal_mode).toBe('wal');
    const versions = dbRows(tmp.file, 'SELECT version FROM schema_migrations ORDER BY version').map((r) => r.version);
    expect(versions).toEqual([1, 2, 3, 4, 5]);
    const row = dbRows(tmp.file, 'SELECT * FROM subscriptions WHERE call_id = ?', callId)[0];
    // Everything an in-dialog NOTIFY needs after a restart (RFC 3261 §12.1.1): Call-ID, both tags, both URIs,
    // remote target, route set, both CSeqs, flow, version, event, Accept, watcher, presentity, expiry, owner node.
    expect(row).toMatchObject({
      event: 'dialog', presentity: '601@example.test', call_id: callId, local_tag: toTagOf(ok), remote_tag: fromTag,
      remote_target: `sip:watcher@127.0.0.1:${p.localPort};transport=tcp`, local_cseq: cseqOf(n), remote_cseq: 1,
      notify_version: versionOf(n), transport: 'tcp', node_id: 'test-node', watcher_uri: 'sip:watcher@example.test',
      expires: 600,
    });
    expect(JSON.parse(row.route_set)).toEqual([rr]);
    expect(row.local_uri).toContain(`tag=${toTagOf(ok)}`);
    expect(row.remote_uri).toContain(`tag=${fromTag}`);
    expect(row.accept).toContain('application/dialog-info+xml');
    expect(row.expires_at).toBeGreaterThan(Date.now() + 590_000);
    expect(row.flow_id).toBeTruthy();
  });
});

describe('group commit', () => {
  it('a burst of 150 SUBSCRIBEs over TCP is written in far fewer transactions than writes (one per event-loop turn)', async () => {
    const ts = await startTestServer();
    servers.push(ts);
    // TCP, so that no 200 or NOTIFY of the burst is lost in a full UDP receive buffer of this test process.
    const p = await peers.open(ts.sip('tcp').port, 'tcp');
    const before = await commits(ts);
    const N = 150;
    const callIds = Array.from({ length: N }, (_, i) => `${randomTag()}-${i}@burst`);
    const answered = callIds.map((c) => p.waitFor((m) => m.status === 200 && m.get('call-id') === c, 10_000));
    p.sendRaw(callIds.map((c, i) => subscribeText(p, { user: `70${i % 10}`, callId: c, watcher: `b${i}` })).join(''));
    await Promise.all(answered);
    // Each subscription is at least three writes: the row, the initial NOTIFY's CSeq/version, its answer.
    await until(() => callIds.every((c) => p.received.some((m) => isNotify(c)(m))) || undefined, 10_000, 'all initial NOTIFYs');
    await until(() => dbRows(ts.dbFile, 'SELECT count(*) AS n FROM subscriptions WHERE call_id LIKE ? AND last_notify_reply = 200', '%@burst')[0].n === N || undefined, 5000, 'answers recorded');
    const used = (await commits(ts)) - before;
    const writes = 3 * N;
    expect(used).toBeGreaterThan(0);
    if (process.env.AUDIT_FIGURES) console.log(`group commit: ${used} transactions for ${writes} writes`);
    expect(used).toBeLessThan(writes / 2);
  });
});
