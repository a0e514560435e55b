import { describe, expect, it } from 'vitest';
import { PACKAGES } from '../../src/presence/packages/index.js';
import { parseMessageSummary, type MessageSummaryData } from '../../src/presence/packages/message-summary.js';
import type { PublicationInput } from '../../src/presence/packages/types.js';

const mwi = PACKAGES['message-summary'];
const CT = 'application/simple-message-summary';

function pub(body: string, updatedAt: number): PublicationInput {
  return { etag: `e${updatedAt}`, contentType: CT, body: Buffer.from(body), updatedAt };
}
function render(st: ReturnType<typeof mwi.idle>): string {
  const r = mwi.render(st, 'sip:201@pbx.example.com');
  expect(r.contentType).toBe(CT);
  expect(r.forVersion(3).equals(r.forVersion(0))).toBe(true);
  return r.forVersion(0).toString('utf8');
}

describe('message-summary (RFC 3842)', () => {
  it('idle is Messages-Waiting: no, CRLF-terminated', () => {
    const idle = mwi.idle();
    expect(idle).toMatchObject({ event: 'message-summary', summary: 'no', source: 'none' });
    expect(render(idle)).toBe('Messages-Waiting: no\r\n');
  });

  it('parses and renders the full form with CRLF line endings', () => {
    const body = 'Messages-Waiting: yes\r\nMessage-Account: sip:*97@pbx.example.com\r\nVoice-Message: 2/8 (1/2)\r\n';
    expect(mwi.validate(Buffer.from(body), CT)).toBeNull();
    const st = mwi.compose([pub(body, 1)], null);
    expect(st.summary).toBe('yes');
    expect(st.source).toBe('publication');
    expect(st.data).toEqual({
      messagesWaiting: true, account: 'sip:*97@pbx.example.com',
      lines: [{ messageClass: 'voice-message', newMessages: 2, oldMessages: 8, urgentNew: 1, urgentOld: 2 }],
    } satisfies MessageSummaryData);
    const out = render(st);
    expect(out).toBe(body);
    expect(out.split('\r\n').every((l) => !l.includes('\n'))).toBe(true);
  });

  it('tolerates LF endings, any case and spacing, and renders canonically', () => {
    const body = 'messages-waiting:YES\nvoice-message :  3 / 0\nFAX-MESSAGE: 1/1 ( 0 / 0 )\n\nTo: <sip:201@x>\nSubject: hi\n';
    expect(mwi.validate(Buffer.from(body), 'Application/Simple-Message-Summary')).toBeNull();
    const out = render(mwi.compose([pub(body, 1)], null));
    // The optional message headers after the blank line are not relayed.
    expect(out).toBe('Messages-Waiting: yes\r\nVoice-Message: 3/0\r\nFax-Message: 1/1 (0/0)\r\n');
  });

  it('the newest publication wins whole (no double counting of a stale publication)', () => {
    const st = mwi.compose([
      pub('Messages-Waiting: yes\r\nVoice-Message: 5/0\r\n', 20),
      pub('Messages-Waiting: yes\r\nVoice-Message: 4/0\r\n', 10),
      pub('Messages-Waiting: no\r\nVoice-Message: 0/9\r\n', 30),
    ], null);
    expect(render(st)).toBe('Messages-Waiting: no\r\nVoice-Message: 0/9\r\n');
    expect(st.summary).toBe('no');
  });

  it('a manual lamp state never changes MWI', () => {
    const st = mwi.compose([pub('Messages-Waiting: yes\r\n', 1)], 'confirmed');
    expect(st.summary).toBe('yes');
    expect(mwi.compose([], 'early').summary).toBe('no');
  });

  it('a stored state with a forged account cannot inject lines', () => {
    const out = render({ event: 'message-summary', summary: 'yes', source: 'publication',
      data: { messagesWaiting: true, account: 'sip:a@b\r\nVoice-Message: 99/99', lines: [] } });
    expect(out).toBe('Messages-Waiting: yes\r\n');
  });

  it.each([
    ['no status line', 'Voice-Message: 1/0\r\n', /Messages-Waiting/],
    ['bad status', 'Messages-Waiting: maybe\r\n', /yes or no/],
    ['bad counts', 'Messages-Waiting: yes\r\nVoice-Message: 1-0\r\n', /counts/],
    ['huge count', 'Messages-Waiting: yes\r\nVoice-Message: 12345678901/0\r\n', /counts/],
    ['unknown class', 'Messages-Waiting: yes\r\nHologram-Message: 1/0\r\n', /message-context-class/],
    ['class twice', 'Messages-Waiting: yes\r\nVoice-Message: 1/0\r\nvoice-message: 2/0\r\n', /twice/],
    ['account not a URI', 'Messages-Waiting: yes\r\nMessage-Account: not a uri\r\n', /URI/],
    ['garbage line', 'Messages-Waiting: yes\r\n<xml/>\r\n', /malformed/],
    ['control char', 'Messages-Waiting: yes\r\nVoice-Message: 1/0\x00\r\n', /control/],
    ['too large', `Messages-Waiting: yes\r\n${'x'.repeat(9000)}`, /larger/],
    ['too many lines', `Messages-Waiting: yes\r\n${'None: 0/0\r\n'.repeat(100)}`, /lines/],
  ])('refuses %s', (_n, body, reason) => {
    expect(mwi.validate(Buffer.from(body), CT)).toMatch(reason);
  });

  it('refuses invalid UTF-8 and other content types', () => {
    expect(mwi.validate(Buffer.from([0x4d, 0xff, 0xfe]), CT)).toMatch(/UTF-8/);
    expect(mwi.validate(Buffer.from('Messages-Waiting: no\r\n'), 'text/plain')).toMatch(/content type/);
  });

  it('parse is linear on long runs of spaces (no regex backtracking)', () => {
    const body = `Messages-Waiting: yes\r\nVoice-Message: 1${' '.repeat(7000)}x\r\n`;
    const t = performance.now();
    expect(parseMessageSummary(body).ok).toBe(false);
    expect(performance.now() - t).toBeLessThan(1000);
  });
});
