// An independent SIP implementation against the engine alone: a SIP.js Subscriber over WebSocket, with a tiny
// notifier as the handler (200 with a To-tag, then NOTIFY in the dialog over the flow the SUBSCRIBE came on).
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startEngine, until, type EngineUnderTest } from './engine-harness.js';
import { header } from '../../src/sip/stack/message.js';
import type { ServerTransaction } from '../../src/sip/port.js';

(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('SIP.js subscriber over WS against the embedded engine', () => {
  it('gets the 200, then a NOTIFY over the same WebSocket, and answers it 200', async () => {
    const { UserAgent, Subscriber } = await import('sip.js');
    let engineRef: EngineUnderTest | undefined;
    const outcomes: number[] = [];
    const dialogs = new Map<string, { toTag: string; cseq: number }>();
    const notifier = (tx: ServerTransaction) => {
      const e = engineRef!;
      if (tx.request.method !== 'SUBSCRIBE') { tx.respond({ status: 405, headers: [['Allow', 'SUBSCRIBE']] }); return; }
      const callId = header(tx.request, 'call-id')!;
      const d = dialogs.get(callId) ?? { toTag: 'n' + Math.random().toString(16).slice(2, 10), cseq: 0 };
      dialogs.set(callId, d);
      const expires = header(tx.request, 'expires') ?? '600';
      tx.respond({ status: 200, toTag: d.toTag, headers: [['Expires', expires], ['Contact', `<${e.engine.contactUri('ws')}>`]] });
      const contact = /<([^>]+)>/.exec(header(tx.request, 'contact') ?? '')![1]!;
      const from = header(tx.request, 'to')!;
      void e.engine.sendRequest({
        method: 'NOTIFY', requestUri: contact, callId,
        from: from.includes(';tag=') ? from : `${from};tag=${d.toTag}`, to: header(tx.request, 'from')!, cseq: ++d.cseq, routeSet: [],
        transport: 'ws', flowId: tx.flow.id,
        headers: [['Event', 'dialog'], ['Subscription-State', expires === '0' ? 'terminated;reason=timeout' : `active;expires=${expires}`], ['Contact', `<${e.engine.contactUri('ws')}>`], ['Content-Type', 'application/dialog-info+xml']],
        body: '<?xml version="1.0"?>\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:201@example.test"/>',
      }).then((o) => outcomes.push(o.status));
    };
    const e = await startEngine({ handler: notifier });
    engineRef = e;
    cleanups.push(() => e.stop());

    const ua = new UserAgent({
      uri: UserAgent.makeURI('sip:watcher@example.test'),
      transportOptions: { server: `ws://127.0.0.1:${e.addr('ws').port}` },
      logLevel: 'error',
    });
    await ua.start();
    cleanups.push(() => ua.stop());
    const bodies: string[] = [];
    const sub = new Subscriber(ua, UserAgent.makeURI('sip:201@example.test')!, 'dialog', { expires: 600 });
    sub.delegate = { onNotify: (n) => { bodies.push(n.request.body); n.accept(); } };
    await sub.subscribe();
    await until(() => outcomes.length === 1, 5000, 'NOTIFY outcome');
    expect(outcomes).toEqual([200]);
    expect(bodies[0]).toContain('dialog-info');
    expect(String(sub.state)).toBe('Subscribed');
    expect(e.seen[0]!.flow.transport).toBe('ws');
    await sub.unsubscribe();
    await until(() => outcomes.length === 2, 5000, 'final NOTIFY outcome');
    expect(outcomes).toEqual([200, 200]);
  });
});
