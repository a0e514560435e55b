// Body helpers by property: the depth scan agrees with the real nesting of any JSON value, and Kazoo field errors
// never carry the value of a secret field.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonDepthExceeds, parseJson } from '../../src/api/body.js';
import { schemaErrors } from '../../src/api/validate.js';
import { ApiError } from '../../src/api/envelope.js';

function depth(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depth));
  if (v && typeof v === 'object') return 1 + Math.max(0, ...Object.values(v).map(depth));
  return 0;
}

describe('jsonDepthExceeds', () => {
  it('matches the nesting of any JSON value, strings with brackets and escapes included', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 9 }), (v, limit) => {
      expect(jsonDepthExceeds(JSON.stringify(v), limit)).toBe(depth(v) > limit);
    }), { numRuns: 2000 });
  });

  it('parseJson refuses past the limit with parse_error and parses within it', () => {
    expect(() => parseJson(Buffer.from('[[[1]]]'), 2)).toThrowError(ApiError);
    expect(parseJson(Buffer.from('[[1]]'), 2)).toEqual([[1]]);
    expect(parseJson(Buffer.from('  '), 2)).toBeUndefined();
  });
});

describe('schemaErrors', () => {
  it('never echoes a password, sip.password, api_key or credentials value', () => {
    fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 80 }).map((s) => `S3CR3T${s}`), fc.integer({ min: 0, max: 200 }), (secret, n) => {
      const long = secret.padEnd(n + 70, 'x');
      const docs: Array<[Parameters<typeof schemaErrors>[0], unknown]> = [
        ['devices', { sip: { password: long } }],
        ['users', { password: long.repeat(4) }],
        ['api_auth', { api_key: `${secret}${'x'.repeat(64)}` }],
        ['user_auth', { credentials: long }],
      ];
      for (const [schema, doc] of docs) {
        const out = JSON.stringify(schemaErrors(schema, doc));
        expect(out).not.toBe('{}');
        expect(out).not.toContain('S3CR3T');
      }
    }), { numRuns: 200 });
    // Too short to carry the marker: the value itself must be absent.
    expect(JSON.stringify(schemaErrors('devices', { name: 'd', sip: { password: 'Q9z!' } }))).not.toContain('Q9z!');
  });
});
