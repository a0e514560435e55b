// Property test of the notifier's rules under random interleavings of state changes and NOTIFY answers:
// never more than one NOTIFY in flight per subscription, CSeq and version up by exactly one each time, and once
// everything is answered the last NOTIFY of every watcher carries the newest state.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { openDatabase, GroupCommit } from '../../src/store/db.js';
import { createMetrics } from '../../src/metrics.js';
import { silentLogger } from '../../src/log.js';
import { Presence } from '../../src/presence/presence.js';
import { PACKAGES } from '../../src/presence/packages/index.js';
import { createSipFace } from '../../src/sip/index.js';
import { openAuthenticator } from '../../src/sip/auth/types.js';
import { testConfig, tempDbFile } from '../helpers/server.js';
import { dialogInfoBody } from '../helpers/raw-sip.js';
import { FakeEngine, tag, type SentRequest } from './fake-engine.js';

const STATES = ['early', 'confirmed', 'terminated'] as const;
type Step = { kind: 'publish'; state: (typeof STATES)[number] } | { kind: 'answer'; pick: number; status: 200 | 500 } | { kind: 'turn' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('publish' as const), state: fc.constantFrom(...STATES) }),
  fc.record({ kind: fc.constant('answer' as const), pick: fc.nat(), status: fc.constantFrom(200 as const, 500 as const) }),
  fc.constant({ kind: 'turn' as const }),
);

const turn = () => new Promise((r) => setImmediate(r));

describe('notifier under random interleavings', () => {
  it('one in flight, +1 sequences, newest state last', async () => {
    await fc.assert(fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 3 }), async (steps, watchers) => {
      const tmp = tempDbFile();
      const db = openDatabase(tmp.file);
      const commit = new GroupCommit(db);
      // Failures never remove a subscription here: the property is about sequencing, not the failure policy.
      const config = testConfig(tmp.file, { sip: { notify: { maxFailuresUdp: 1000, maxFailuresReliable: 1000 } } });
      const metrics = createMetrics();
      const presence = new Presence({ db, commit, logger: silentLogger, metrics, nodeId: 'n', packages: PACKAGES });
      const engine = new FakeEngine();
      engine.answer = () => null; // every NOTIFY is held until the steps answer it
      const face = createSipFace({ engine, presence, auth: openAuthenticator, config, db, commit, logger: silentLogger, metrics });
      await face.start();
      try {
        const open: SentRequest[] = [];
        const inFlight = new Map<string, number>();
        let seen = 0;
        const track = () => {
          for (; seen < engine.sent.length; seen++) {
            const s = engine.sent[seen]!;
            const n = (inFlight.get(s.spec.callId) ?? 0) + 1;
            expect(n).toBe(1); // never two NOTIFYs in flight on one subscription
            inFlight.set(s.spec.callId, n);
            open.push(s);
          }
        };
        const answer = (s: SentRequest, status: number) => {
          open.splice(open.indexOf(s), 1);
          inFlight.set(s.spec.callId, 0);
          s.resolve({ status, reason: status === 200 ? 'OK' : 'Error' });
        };
        for (let i = 0; i < watchers; i++) {
          await engine.request({ method: 'SUBSCRIBE', uri: 'sip:201@example.com', headers: {
            from: `<sip:w${i}@example.com>;tag=${tag()}`, to: '<sip:201@example.com>', 'call-id': `c${i}`, cseq: '1 SUBSCRIBE',
            contact: `<sip:w${i}@127.0.0.1:5062>`, event: 'dialog', expires: '600',
          } });
        }
        let last: string | undefined;
        for (const st of steps) {
          if (st.kind === 'publish') {
            const body = dialogInfoBody('sip:201@example.com', st.state, 'call-x');
            const r = await engine.request({ method: 'PUBLISH', uri: 'sip:201@example.com', body, headers: {
              from: `<sip:pbx@example.com>;tag=${tag()}`, to: '<sip:201@example.com>', 'call-id': tag(), cseq: '1 PUBLISH',
              event: 'dialog', expires: '600', 'content-type': 'application/dialog-info+xml',
            } });
            expect(r.status).toBe(200);
            last = st.state;
          } else if (st.kind === 'answer' && open.length > 0) {
            answer(open[st.pick % open.length]!, st.status);
          }
          await turn();
          await turn();
          track();
        }
        // Drain: answer everything until nothing more is sent.
        for (let guard = 0; guard < 200; guard++) {
          await turn();
          await turn();
          track();
          if (open.length === 0) break;
          answer(open[0]!, 200);
        }
        expect(open).toHaveLength(0);
        for (let i = 0; i < watchers; i++) {
          const mine = engine.sent.filter((s) => s.spec.callId === `c${i}`);
          expect(mine.length).toBeGreaterThanOrEqual(1);
          mine.forEach((s, k) => {
            expect(s.spec.cseq).toBe(k + 1);
            expect(Number(/version="(\d+)"/.exec(s.body)![1])).toBe(k);
          });
          const tail = mine[mine.length - 1]!.body;
          if (last) expect(tail).toContain(`<state>${last}</state>`);
        }
      } finally {
        await face.stop();
        commit.flush();
        metrics.stop();
        db.close();
        tmp.cleanup();
      }
    }), { numRuns: 40 });
  }, 60_000);
});
