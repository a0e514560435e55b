import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { challenge, digestHash, digestResponse, parseAlgorithm, parseDigestCredentials, quote } from '../../src/sip/auth/digest.js';

describe('digest computations', () => {
  // RFC 7616 §3.9.1: the worked example, for both algorithms.
  const example = {
    nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v', nc: '00000001', cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
    qop: 'auth' as const, method: 'GET', uri: '/dir/index.html',
  };
  it('matches the RFC 7616 §3.9.1 MD5 example', () => {
    const ha1 = digestHash('MD5', 'Mufasa:http-auth@example.org:Circle of Life');
    expect(digestResponse({ ...example, algorithm: 'MD5', ha1 })).toBe('8ca523f5e9506fed4657c9700eebdbec');
  });
  it('matches the RFC 7616 §3.9.1 SHA-256 example', () => {
    const ha1 = digestHash('SHA-256', 'Mufasa:http-auth@example.org:Circle of Life');
    expect(digestResponse({ ...example, algorithm: 'SHA-256', ha1 })).toBe('753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
  });
  it('knows MD5 (also when absent) and SHA-256, nothing else', () => {
    expect(parseAlgorithm(undefined)).toBe('MD5');
    expect(parseAlgorithm('md5')).toBe('MD5');
    expect(parseAlgorithm('sha-256')).toBe('SHA-256');
    expect(parseAlgorithm('MD5-sess')).toBeUndefined();
    expect(parseAlgorithm('SHA-512-256')).toBeUndefined();
  });
});

describe('credentials parser', () => {
  it('reads quoted and token values, case-insensitive names, LWS around separators', () => {
    const p = parseDigestCredentials('Digest  Username = "100" ,realm="acme.test",\tnc=00000001 , qop=auth,uri="sip:201@acme.test;user=phone"')!;
    expect(Object.fromEntries(p)).toEqual({ username: '100', realm: 'acme.test', nc: '00000001', qop: 'auth', uri: 'sip:201@acme.test;user=phone' });
    expect(parseDigestCredentials('digest username="a\\"b\\\\c"')!.get('username')).toBe('a"b\\c');
  });

  it('refuses other schemes, duplicates and broken syntax', () => {
    for (const bad of ['Basic abc', 'Digest', 'Digest a', 'Digest a=', 'Digest a="x', 'Digest a=b c=d', 'Digest a=1, a=2', 'Digest =x']) {
      expect(parseDigestCredentials(bad), bad).toBeUndefined();
    }
  });

  it('round-trips any values written with quote()', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
    fc.assert(fc.property(fc.uniqueArray(fc.tuple(name, fc.string({ maxLength: 40 })), { selector: (t) => t[0], minLength: 1, maxLength: 8 }), (pairs) => {
      const text = `Digest ${pairs.map(([k, v]) => `${k}=${quote(v)}`).join(', ')}`;
      const parsed = parseDigestCredentials(text);
      expect(parsed).toBeDefined();
      expect(Object.fromEntries(parsed!)).toEqual(Object.fromEntries(pairs));
    }), { numRuns: 500 });
  });

  it('never throws on arbitrary input', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => {
      parseDigestCredentials(s);
      parseDigestCredentials(`Digest ${s}`);
    }), { numRuns: 3000 });
  });

  it('builds challenges with quoted realm and nonce', () => {
    expect(challenge({ realm: 'a"b', nonce: 'n', algorithm: 'SHA-256', stale: true }))
      .toBe('Digest realm="a\\"b", qop="auth", nonce="n", algorithm=SHA-256, stale=true');
  });
});
