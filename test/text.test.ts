// hasControlChar, the one control-character check of SIP header values (RFC 3261 §25.1) and message-summary lines
// (RFC 3842 §5.2): every C0 control but HTAB, and DEL, is refused; everything else (HTAB, space, printable ASCII,
// C1 controls and any other Unicode) is accepted. The oracle below reads code units, not a regular expression.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { hasControlChar } from '../src/text.js';

function refusedCodeUnit(u: number): boolean {
  return (u <= 0x1f && u !== 0x09) || u === 0x7f;
}

function oracle(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (refusedCodeUnit(s.charCodeAt(i))) return true;
  return false;
}

describe('hasControlChar', () => {
  it('refuses exactly U+0000..U+0008, U+000A..U+001F and U+007F, each alone and inside text', () => {
    for (let u = 0; u <= 0xff; u++) {
      const ch = String.fromCharCode(u);
      expect(hasControlChar(ch), `U+${u.toString(16).padStart(4, '0')}`).toBe(refusedCodeUnit(u));
      expect(hasControlChar(`sip:201@example.com${ch}x`)).toBe(refusedCodeUnit(u));
    }
    expect(hasControlChar('')).toBe(false);
    expect(hasControlChar('Voice-Message: 2/8 (0/2)\t')).toBe(false);
    expect(hasControlChar('<sip:201@example.com>;tag=a\r\nVia: forged')).toBe(true);
  });

  it('agrees with the code-unit oracle on any string (also astral characters and lone surrogates)', () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: fc.integer({ min: 0, max: 0x9f }).map((u) => String.fromCharCode(u)) }),
    );
    fc.assert(fc.property(text, (s) => hasControlChar(s) === oracle(s)), { numRuns: 2000 });
  });

  it('is not fooled by a refused character after many accepted ones (no state kept between calls)', () => {
    fc.assert(fc.property(
      fc.string({ unit: 'grapheme-ascii' }).filter((s) => !oracle(s)),
      fc.constantFrom(...[0x00, 0x08, 0x0a, 0x0d, 0x1f, 0x7f].map((u) => String.fromCharCode(u))),
      (clean, bad) => {
        expect(hasControlChar(clean)).toBe(false);
        expect(hasControlChar(clean + bad)).toBe(true);
        expect(hasControlChar(bad + clean)).toBe(true);
        expect(hasControlChar(clean)).toBe(false);
      },
    ), { numRuns: 500 });
  });
});
