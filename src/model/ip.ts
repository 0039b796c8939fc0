// Address helpers used by the model and the renderers. Pure.
import { isIPv4, isIPv6 } from 'node:net';
import type { IPFamily } from './cluster-state.js';

/**
 * Canonical form of an IP address, or null when it is not one.
 * IPv4 octets with leading zeros ("010.0.0.1") are read as decimal, as kube-proxy's
 * ParseIPSloppy does (Go's pre-1.17 behaviour), so they mean 10.0.0.1, not octal 8.
 * IPv6 is compressed and lower-cased (RFC 5952). IPv4-mapped IPv6 and zones are not addresses here.
 */
export function canonicalIP(text: string): string | null {
  const s = text.trim();
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) {
    const octets = s.split('.').map(Number);
    if (octets.some((o) => o > 255)) return null;
    return octets.join('.');
  }
  // node:net accepts a zone ("fe80::1%eth0") that no rule can carry: refused, not silently dropped.
  if (s.includes(':') && !s.includes('%') && isIPv6(s)) {
    const value = ipv6ToBigInt(s);
    // IPv4-mapped IPv6 (::ffff:a.b.c.d) is refused, as Kubernetes' strict IP validation refuses it:
    // it means an IPv4 address to some readers and an IPv6 one to others.
    if (value >> 32n === 0xffffn) return null;
    return compressIPv6(value);
  }
  return null;
}

/** Why `text` is not accepted as an IP address, beyond "not valid", when there is more to say. */
export function ipAddressHint(text: string): string {
  const s = text.trim();
  if (s.includes('%') && isIPv6(s)) return ' (a zone such as %eth0 is not accepted)';
  if (s.includes(':') && isIPv6(s) && ipv6ToBigInt(s) >> 32n === 0xffffn) {
    const v4 = bigIntToIP(ipv6ToBigInt(s) & 0xffffffffn, 'IPv4');
    return ` (IPv4-mapped IPv6 addresses are not accepted: write ${v4})`;
  }
  return '';
}

export function ipFamilyOf(ip: string): IPFamily | null {
  if (isIPv4(ip)) return 'IPv4';
  if (isIPv6(ip)) return 'IPv6';
  return null;
}

export function ipToBigInt(ip: string): bigint {
  if (isIPv4(ip)) return ip.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  return ipv6ToBigInt(ip);
}

export function bigIntToIP(value: bigint, family: IPFamily): string {
  if (family === 'IPv4') {
    return [24n, 16n, 8n, 0n].map((shift) => Number((value >> shift) & 0xffn)).join('.');
  }
  return compressIPv6(value);
}

function ipv6ToBigInt(ip: string): bigint {
  let text = ip;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const n = Number(ipToBigInt(v4[1]));
    text = text.slice(0, -v4[1].length) + ((n >>> 16) & 0xffff).toString(16) + ':' + (n & 0xffff).toString(16);
  }
  const [head = '', tail] = text.split('::');
  const headParts = head === '' ? [] : head.split(':');
  const tailParts = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headParts.length - tailParts.length;
  const parts = [...headParts, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailParts];
  return parts.reduce((acc, p) => (acc << 16n) | BigInt(parseInt(p, 16)), 0n);
}

function compressIPv6(value: bigint): string {
  const hextets: number[] = [];
  for (let i = 7; i >= 0; i--) hextets.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // Longest run of zero hextets (length ≥ 2) becomes "::" (RFC 5952 §4.2).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (hextets[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && hextets[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = hextets.map((h) => h.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export interface ParsedCIDR {
  /** Canonical masked form, e.g. "10.0.0.0/8". */
  text: string;
  family: IPFamily;
  network: bigint;
  prefix: number;
}

/** Parse and mask a CIDR ("10.1.2.3/8" → "10.0.0.0/8"); a bare address is a host route. Null if invalid. */
export function parseCIDR(text: string): ParsedCIDR | null {
  const [addrText = '', prefixText, extra] = text.trim().split('/');
  if (extra !== undefined) return null;
  const addr = canonicalIP(addrText);
  if (addr === null) return null;
  const family = ipFamilyOf(addr);
  if (family === null) return null;
  const bits = family === 'IPv4' ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return null;
  const mask = prefixMask(prefix, bits);
  const network = ipToBigInt(addr) & mask;
  return { text: `${bigIntToIP(network, family)}/${prefix}`, family, network, prefix };
}

function prefixMask(prefix: number, bits: number): bigint {
  const all = (1n << BigInt(bits)) - 1n;
  return prefix === 0 ? 0n : (all >> BigInt(bits - prefix)) << BigInt(bits - prefix);
}

export function cidrContains(cidr: ParsedCIDR | string, ip: string): boolean {
  const c = typeof cidr === 'string' ? parseCIDR(cidr) : cidr;
  if (c === null || ipFamilyOf(ip) !== c.family) return false;
  const bits = c.family === 'IPv4' ? 32 : 128;
  return (ipToBigInt(ip) & prefixMask(c.prefix, bits)) === c.network;
}

/** "ip:port" for IPv4, "[ip]:port" for IPv6: the form kube-proxy hashes into KUBE-SEP names. */
export function joinHostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Order addresses numerically within a family, IPv4 before IPv6. */
export function compareIPs(a: string, b: string): number {
  const fa = ipFamilyOf(a) === 'IPv4' ? 0 : 1;
  const fb = ipFamilyOf(b) === 'IPv4' ? 0 : 1;
  if (fa !== fb) return fa - fb;
  const x = ipToBigInt(a);
  const y = ipToBigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
