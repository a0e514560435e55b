import { describe, expect, it } from 'vitest';
import { CidrList, parseAddress, throttleKey } from '../../src/sip/auth/cidr.js';

describe('CidrList (trusted publishers)', () => {
  it('matches IPv4 addresses and blocks', () => {
    const l = new CidrList(['10.1.0.0/16', '192.0.2.7']);
    expect(l.contains('10.1.255.3')).toBe(true);
    expect(l.contains('10.2.0.1')).toBe(false);
    expect(l.contains('192.0.2.7')).toBe(true);
    expect(l.contains('192.0.2.8')).toBe(false);
  });

  it('matches IPv6 blocks, with :: compression and zone ids', () => {
    const l = new CidrList(['2001:db8:abcd::/48', '::1']);
    expect(l.contains('2001:db8:abcd:12::5')).toBe(true);
    expect(l.contains('2001:0db8:abcd:0000:0000:0000:0000:0001')).toBe(true);
    expect(l.contains('2001:db8:abce::1')).toBe(false);
    expect(l.contains('::1')).toBe(true);
    expect(l.contains('fe80::1%eth0')).toBe(false);
  });

  it('treats IPv4-mapped IPv6 sources as IPv4 (dual-stack sockets)', () => {
    const l = new CidrList(['127.0.0.0/8']);
    expect(l.contains('::ffff:127.0.0.1')).toBe(true);
    expect(l.contains('::ffff:128.0.0.1')).toBe(false);
    expect(new CidrList(['::ffff:10.0.0.0/104']).contains('10.9.9.9')).toBe(true);
  });

  it('/0 matches the whole family only', () => {
    const l = new CidrList(['0.0.0.0/0']);
    expect(l.contains('203.0.113.9')).toBe(true);
    expect(l.contains('2001:db8::1')).toBe(false);
  });

  it('rejects typos at start instead of trusting nothing silently', () => {
    expect(() => new CidrList(['10.0.0.0/33'])).toThrow(/prefix/);
    expect(() => new CidrList(['10.0.0/8'])).toThrow(/not an IP/);
    expect(() => new CidrList(['pbx.example.com'])).toThrow(/not an IP/);
    expect(() => new CidrList(['::1/129'])).toThrow(/prefix/);
  });

  it('never matches something that is not an address', () => {
    expect(new CidrList(['0.0.0.0/0']).contains('not-an-ip')).toBe(false);
    expect(parseAddress('')).toBeUndefined();
  });

  it('counts back-off per IPv4 address and per IPv6 /64', () => {
    expect(throttleKey('192.0.2.1')).toBe('192.0.2.1');
    expect(throttleKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(throttleKey('2001:db8:1:2::1')).toBe(throttleKey('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect(throttleKey('2001:db8:1:2::1')).not.toBe(throttleKey('2001:db8:1:3::1'));
  });
});
