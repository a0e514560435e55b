// Source-address matching for config.sip.trustedPublishers: single addresses and CIDR blocks, IPv4 and IPv6.
// An IPv4 peer seen on a dual-stack socket arrives as an IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291
// §2.5.5.2); it is matched as the IPv4 address, so an operator writes "10.0.0.0/8" once.
import { isIPv4, isIPv6 } from 'node:net';

interface Block { family: 4 | 6; bits: bigint; prefix: number }

function v4ToBigint(ip: string): bigint {
  let n = 0n;
  for (const part of ip.split('.')) n = (n << 8n) | BigInt(Number(part));
  return n;
}

function v6ToBigint(ip: string): bigint {
  // An embedded dotted quad (::ffff:1.2.3.4) becomes its two hex groups first.
  let s = ip;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (isIPv4(tail)) {
    const v = v4ToBigint(tail);
    s = `${s.slice(0, lastColon + 1)}${(v >> 16n).toString(16)}:${(v & 0xffffn).toString(16)}`;
  }
  const halves = s.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const groups = halves.length > 1 ? [...head, ...Array(8 - head.length - rest.length).fill('0'), ...rest] : head;
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(parseInt(g, 16));
  return n;
}

/** Parse an address into family + value, unwrapping IPv4-mapped IPv6. Undefined when it is not an IP. */
export function parseAddress(ip: string): { family: 4 | 6; value: bigint } | undefined {
  if (isIPv4(ip)) return { family: 4, value: v4ToBigint(ip) };
  if (isIPv6(ip)) {
    const v = v6ToBigint(ip);
    if (v >> 32n === 0xffffn) return { family: 4, value: v & 0xffffffffn };
    return { family: 6, value: v };
  }
  return undefined;
}

export class CidrList {
  private readonly blocks: Block[] = [];

  /** Throws with the offending entry when one is not an address or CIDR, so a typo fails at start, not silently. */
  constructor(entries: readonly string[]) {
    for (const raw of entries) {
      const entry = raw.trim();
      const slash = entry.indexOf('/');
      const addr = slash >= 0 ? entry.slice(0, slash) : entry;
      const parsed = parseAddress(addr);
      if (!parsed) throw new Error(`not an IP address or CIDR: "${raw}"`);
      // A mapped literal (::ffff:10.0.0.0/104) is kept as IPv4 with the prefix shifted by the 96 mapping bits.
      const mapped = parsed.family === 4 && !isIPv4(addr);
      const width = parsed.family === 4 ? 32 : 128;
      let prefix = width;
      if (slash >= 0) {
        const p = entry.slice(slash + 1);
        if (!/^\d{1,3}$/.test(p)) throw new Error(`bad prefix length in "${raw}"`);
        prefix = Number(p) - (mapped ? 96 : 0);
        if (prefix < 0 || prefix > width) throw new Error(`bad prefix length in "${raw}"`);
      }
      const shift = BigInt(width - prefix);
      this.blocks.push({ family: parsed.family, bits: (parsed.value >> shift) << shift, prefix });
    }
  }

  get size(): number {
    return this.blocks.length;
  }

  contains(ip: string): boolean {
    if (this.blocks.length === 0) return false;
    const a = parseAddress(ip);
    if (!a) return false;
    for (const b of this.blocks) {
      if (b.family !== a.family) continue;
      const shift = BigInt((b.family === 4 ? 32 : 128) - b.prefix);
      if ((a.value >> shift) << shift === b.bits) return true;
    }
    return false;
  }
}

/** An IPv6 host usually owns a whole /64 (RFC 4291 §2.5.4), so back-off counts per /64, not per address. */
export const IPV6_THROTTLE_PREFIX = 64;

/**
 * The key brute-force back-off counts failures under: the IPv4 address itself (also when it arrives IPv4-mapped),
 * or the /64 of an IPv6 address, so an attacker cannot escape a block by rotating through its own prefix.
 */
export function throttleKey(ip: string): string {
  const a = parseAddress(ip);
  if (!a) return ip;
  if (a.family === 4) {
    const v = a.value;
    return `${v >> 24n}.${(v >> 16n) & 255n}.${(v >> 8n) & 255n}.${v & 255n}`;
  }
  const shift = BigInt(128 - IPV6_THROTTLE_PREFIX);
  return `${((a.value >> shift) << shift).toString(16).padStart(32, '0')}/${IPV6_THROTTLE_PREFIX}`;
}
