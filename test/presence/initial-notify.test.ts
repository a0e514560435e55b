// The initial NOTIFY of a subscription (RFC 6665 §4.2.1.2) carries the CSeq and version its INSERT wrote: they are
// on disk before it leaves (RFC 3261 §12.2.1.1), and written once, not again by an UPDATE. The next NOTIFY gets one
// UPDATE of its own, also committed before it leaves. Observed from a second connection at the moment the server
// hands each NOTIFY to its engine, from a trigger log of every write to the counters, and on the wire.
import { describe, it, expect } from 'vitest';
import Database from 'better-sqlite3';
import { startTestServer } from '../helpers/server.js';
import { RawPeer, subscribeText, publishText } from '../helpers/raw-sip.js';
import type { DialogRequestSpec } from '../../src/sip/port.js';

interface CounterWrite { op: string; local_cseq: number; notify_version: number }
interface AtSend { cseq: number; version: number; row: { local_cseq: number; notify_version: number } | undefined; writes: CounterWrite[] }

function versionOf(body: string): number {
  const m = /<dialog-info\b[^>]*\bversion="(\d+)"/.exec(body);
  if (!m) throw new Error(`no dialog-info version in ${body}`);
  return Number(m[1]);
}

describe('initial NOTIFY numbers ride in the INSERT', () => {
  it('are committed before the NOTIFY leaves and written once; the next NOTIFY gets exactly one UPDATE', async () => {
    const srv = await startTestServer();
    const reader = new Database(srv.dbFile, { readonly: true });
    const peer = await RawPeer.open({ port: srv.sip('udp').port });
    try {
      srv.server.db.exec(`
        CREATE TABLE test_counter_writes (n INTEGER PRIMARY KEY, op TEXT, local_cseq INTEGER, notify_version INTEGER);
        CREATE TRIGGER test_counters_insert AFTER INSERT ON subscription_counters BEGIN
          INSERT INTO test_counter_writes (op, local_cseq, notify_version) VALUES ('insert', NEW.local_cseq, NEW.notify_version);
        END;
        CREATE TRIGGER test_counters_update AFTER UPDATE ON subscription_counters BEGIN
          INSERT INTO test_counter_writes (op, local_cseq, notify_version) VALUES ('update', NEW.local_cseq, NEW.notify_version);
        END;`);
      const rowStmt = reader.prepare('SELECT local_cseq, notify_version FROM subscriptions WHERE call_id = ?');
      const writesStmt = reader.prepare('SELECT op, local_cseq, notify_version FROM test_counter_writes ORDER BY n');
      // What another connection sees committed at the moment each NOTIFY is handed to the engine.
      const atSend: AtSend[] = [];
      const engine = srv.server.engine;
      const send = engine.sendRequest.bind(engine);
      engine.sendRequest = (spec: DialogRequestSpec) => {
        if (spec.method === 'NOTIFY') {
          atSend.push({
            cseq: spec.cseq, version: versionOf(String(spec.body)),
            row: rowStmt.get(spec.callId) as AtSend['row'], writes: writesStmt.all() as CounterWrite[],
          });
        }
        return send(spec);
      };

      const callId = 'initial-notify-1@127.0.0.1';
      expect((await peer.request(subscribeText(peer, { user: '501', expires: 600, callId }))).status).toBe(200);
      const first = await peer.waitFor((m) => m.method === 'NOTIFY', 5000, 0);
      expect(atSend).toHaveLength(1);
      const initial = atSend[0]!;
      // On the wire: the numbers the server handed to the engine.
      expect(first.get('cseq')).toBe(`${initial.cseq} NOTIFY`);
      expect(versionOf(first.body)).toBe(initial.version);
      expect(initial.version).toBe(0); // RFC 4235 §4.1: the first version is 0.
      // Committed before it left, by the INSERT alone.
      expect(initial.row).toEqual({ local_cseq: initial.cseq, notify_version: initial.version });
      expect(initial.writes).toEqual([{ op: 'insert', local_cseq: initial.cseq, notify_version: initial.version }]);

      const mark = peer.received.length;
      expect((await peer.request(publishText(peer, { user: '501', state: 'confirmed' }))).status).toBe(200);
      const second = await peer.waitFor((m) => m.method === 'NOTIFY', 5000, mark);
      expect(atSend).toHaveLength(2);
      const next = atSend[1]!;
      expect(next).toMatchObject({ cseq: initial.cseq + 1, version: initial.version + 1 });
      expect(second.get('cseq')).toBe(`${next.cseq} NOTIFY`);
      expect(versionOf(second.body)).toBe(next.version);
      expect(next.row).toEqual({ local_cseq: next.cseq, notify_version: next.version });
      // The initial NOTIFY's numbers were never written again; the second NOTIFY's once.
      expect(next.writes).toEqual([
        { op: 'insert', local_cseq: initial.cseq, notify_version: initial.version },
        { op: 'update', local_cseq: next.cseq, notify_version: next.version },
      ]);
    } finally {
      peer.close();
      reader.close();
      await srv.stop();
    }
  });
});
