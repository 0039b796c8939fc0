// Addresses a Service, an endpoint or an address pool may never use. Pure.
//
// Kubernetes refuses unspecified, loopback and link-local addresses as endpoints and external IPs
// (ValidateNonSpecialIP / ValidateEndpointIP) and never allocates them as cluster IPs. Rules for them
// would be worse than useless: a DNAT for 127.0.0.1:port captures the node's own local services, one
// for 0.0.0.0 or a multicast or broadcast address matches nothing a client sends. portway refuses
// them wherever it reads a service or endpoint address, and never hands them out from a pool (MetalLB
// has no such check: a pool over 127.0.0.0/8 is a mistake, not a wish).
import type { IPFamily } from './cluster-state.js';
import { ipToBigInt, parseCIDR } from './ip.js';

interface SpecialRange {
  family: IPFamily;
  first: bigint;
  last: bigint;
  /** "127.0.0.0/8 (loopback)" */
  label: string;
}

function range(cidr: string, what: string): SpecialRange {
  const parsed = parseCIDR(cidr)!;
  const bits = parsed.family === 'IPv4' ? 32 : 128;
  const size = 1n << BigInt(bits - parsed.prefix);
  return {
    family: parsed.family,
    first: parsed.network,
    last: parsed.network + size - 1n,
    label: `${cidr} (${what})`,
  };
}

const SPECIAL_RANGES: readonly SpecialRange[] = [
  range('0.0.0.0/8', 'unspecified, "this network"'),
  range('127.0.0.0/8', 'loopback'),
  range('169.254.0.0/16', 'link-local'),
  range('224.0.0.0/4', 'multicast'),
  range('255.255.255.255/32', 'broadcast'),
  range('::/128', 'unspecified'),
  range('::1/128', 'loopback'),
  range('fe80::/10', 'link-local'),
  range('ff00::/8', 'multicast'),
];

/**
 * Why a canonical address may not be a cluster IP, external IP, LoadBalancer address or endpoint,
 * or null when it may: e.g. "127.0.0.1 is in 127.0.0.0/8 (loopback)".
 */
export function specialAddressProblem(ip: string): string | null {
  if (!mayBeSpecial(ip)) return null; // nearly every address: no bigint arithmetic
  const family: IPFamily = ip.includes(':') ? 'IPv6' : 'IPv4';
  const value = ipToBigInt(ip);
  const hit = SPECIAL_RANGES.find((r) => r.family === family && r.first <= value && value <= r.last);
  return hit === undefined ? null : `${ip} is in ${hit.label}, which no Service or endpoint may use`;
}

/** False when the first octet (IPv4) or hextet (IPv6) of a canonical address rules out every special range. */
function mayBeSpecial(ip: string): boolean {
  const colon = ip.indexOf(':');
  if (colon < 0) {
    const first = Number(ip.slice(0, ip.indexOf('.')));
    return first === 0 || first === 127 || first === 169 || first >= 224;
  }
  const first = colon === 0 ? 0 : parseInt(ip.slice(0, colon), 16);
  return first === 0 || (first >= 0xfe80 && first <= 0xfebf) || first >= 0xff00;
}

/** Why the address range first..last may not be handed out (it overlaps a special range), or null. */
export function specialRangeProblem(first: bigint, last: bigint, family: IPFamily): string | null {
  const hit = SPECIAL_RANGES.find((r) => r.family === family && r.first <= last && first <= r.last);
  return hit === undefined ? null : `includes addresses of ${hit.label}, which are never handed out`;
}
