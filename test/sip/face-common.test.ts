// Small helpers of the SIP faces: ownString keeps a value exactly as it was, whatever it holds.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ownString } from '../../src/sip/face-common.js';

describe('ownString', () => {
  it('gives back the same value: short, long, non-ASCII, a lone surrogate, longer than its scratch space', () => {
    const head = 'SUBSCRIBE sip:201@example.com SIP/2.0\r\nFrom: "Zoë 🎧" <sip:w@example.com>;tag=abcdef0123456789\r\n';
    const cases = ['', 'short', head.slice(40, 90), head.slice(45), `x\uD800${'y'.repeat(20)}`, 'é'.repeat(3000), 'a'.repeat(5000)];
    for (const s of cases) expect(ownString(s)).toBe(s);
  });

  it('for any string (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), fc.nat({ max: 20 }), (s, cut) => {
      const slice = (`${'-'.repeat(cut)}${s}`).slice(cut);
      expect(ownString(slice)).toBe(s);
    }), { numRuns: 500 });
  });
});
