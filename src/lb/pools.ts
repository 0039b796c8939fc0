// Address pools: validation and the compiled form the allocator searches. Pure.
import type { AddressPool, IPFamily, InputProblem } from '../model/cluster-state.js';
import { specialRangeProblem } from '../model/address-rules.js';
import { bigIntToIP, canonicalIP, ipFamilyOf, ipToBigInt, parseCIDR } from '../model/ip.js';

export interface PoolRange {
  family: IPFamily;
  first: bigint;
  last: bigint;
  text: string;
}

export interface CompiledPool {
  name: string;
  pool: AddressPool;
  ranges: PoolRange[];
}

/** Result of checking pools: the usable ones (sorted by name) and a problem per rejected pool. */
export interface PoolValidation {
  pools: CompiledPool[];
  problems: InputProblem[];
}

function problem(pool: string, field: string, message: string): InputProblem {
  return {
    source: 'address-pools',
    kind: 'IPAddressPool',
    object: pool,
    field,
    message: `IPAddressPool ${pool}: ${field}: ${message}`,
  };
}

/**
 * Parse one entry of spec.addresses as MetalLB accepts it: a CIDR ("10.0.0.0/24"), a range
 * ("10.0.0.10-10.0.0.20", spaces allowed around '-'), or a single address. Throws a message naming
 * what is wrong (the caller adds the object and field).
 */
export function parsePoolAddress(text: string): {
  first: string;
  last: string;
  family: IPFamily;
  text: string;
} {
  const trimmed = text.trim();
  if (trimmed.includes('-')) {
    const [a = '', b = '', extra] = trimmed.split('-').map((s) => s.trim());
    if (extra !== undefined) throw new Error(`"${text}" is not a range (expected first-last)`);
    const first = canonicalIP(a);
    const last = canonicalIP(b);
    if (first === null) throw new Error(`"${a}" in "${text}" is not an IP address`);
    if (last === null) throw new Error(`"${b}" in "${text}" is not an IP address`);
    const family = ipFamilyOf(first) as IPFamily;
    if (ipFamilyOf(last) !== family) throw new Error(`range "${text}" mixes IPv4 and IPv6`);
    if (ipToBigInt(first) > ipToBigInt(last))
      throw new Error(`range "${text}" has its first address after its last`);
    return { first, last, family, text: trimmed };
  }
  const cidr = parseCIDR(trimmed);
  if (cidr === null) throw new Error(`"${text}" is neither a CIDR nor a first-last range`);
  const bits = cidr.family === 'IPv4' ? 32 : 128;
  const last = cidr.network | ((1n << BigInt(bits - cidr.prefix)) - 1n);
  return {
    first: bigIntToIP(cidr.network, cidr.family),
    last: bigIntToIP(last, cidr.family),
    family: cidr.family,
    text: trimmed,
  };
}

function compileRanges(pool: AddressPool): { ranges: PoolRange[]; problems: InputProblem[] } {
  const ranges: PoolRange[] = [];
  const problems: InputProblem[] = [];
  if (pool.addresses.length === 0) {
    problems.push(problem(pool.name, 'spec.addresses', 'no addresses'));
  }
  pool.addresses.forEach((a, i) => {
    const field = `spec.addresses[${i}]`;
    const first = canonicalIP(a.first);
    const last = canonicalIP(a.last);
    if (first === null || last === null) {
      problems.push(problem(pool.name, field, `"${a.text}" does not hold valid IP addresses`));
      return;
    }
    if (ipFamilyOf(first) !== a.family || ipFamilyOf(last) !== a.family) {
      problems.push(problem(pool.name, field, `"${a.text}" is not all ${a.family}`));
      return;
    }
    const range = { family: a.family, first: ipToBigInt(first), last: ipToBigInt(last), text: a.text };
    if (range.first > range.last) {
      problems.push(problem(pool.name, field, `range "${a.text}" has its first address after its last`));
      return;
    }
    const special = specialRangeProblem(range.first, range.last, range.family);
    if (special !== null) {
      problems.push(problem(pool.name, field, `"${a.text}" ${special}`));
      return;
    }
    const clash = ranges.find(
      (r) => r.family === range.family && r.first <= range.last && range.first <= r.last,
    );
    if (clash) {
      problems.push(problem(pool.name, field, `"${a.text}" overlaps "${clash.text}" of the same pool`));
      return;
    }
    ranges.push(range);
  });
  return { ranges, problems };
}

/**
 * Check every pool on its own (malformed or reversed ranges) and against the others (overlaps). A bad
 * pool is left out with a problem naming it and the field; the other pools keep working. Of two
 * overlapping pools the one whose name sorts first is kept, so every node makes the same choice.
 */
export function validatePools(pools: AddressPool[]): PoolValidation {
  const sorted = [...pools].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const accepted: CompiledPool[] = [];
  const problems: InputProblem[] = [];
  const seen = new Set<string>();
  for (const pool of sorted) {
    if (seen.has(pool.name)) {
      problems.push(problem(pool.name, 'metadata.name', 'duplicate pool name; only the first is used'));
      continue;
    }
    seen.add(pool.name);
    const { ranges, problems: own } = compileRanges(pool);
    if (own.length > 0) {
      problems.push(...own);
      continue;
    }
    let overlap: InputProblem | undefined;
    for (const [i, r] of ranges.entries()) {
      for (const other of accepted) {
        const hit = other.ranges.find((o) => o.family === r.family && o.first <= r.last && r.first <= o.last);
        if (hit) {
          overlap = problem(
            pool.name,
            `spec.addresses[${i}]`,
            `"${r.text}" overlaps "${hit.text}" of IPAddressPool ${other.name}`,
          );
          break;
        }
      }
      if (overlap) break;
    }
    if (overlap) {
      problems.push(overlap);
      continue;
    }
    accepted.push({ name: pool.name, pool, ranges });
  }
  return { pools: accepted, problems };
}

/** IPv4 addresses ending in .0 or .255 upset the smurf protection of some CPE firmware (MetalLB's avoidBuggyIPs). */
export function isBuggyIPv4(value: bigint, family: IPFamily): boolean {
  if (family !== 'IPv4') return false;
  const last = value & 0xffn;
  return last === 0n || last === 255n;
}

/** Number of assignable addresses of a pool (for metrics/status); IPv6 ranges can exceed 2^53, hence bigint. */
export function poolCapacity(pool: CompiledPool): bigint {
  let total = 0n;
  for (const r of pool.ranges) {
    let n = r.last - r.first + 1n;
    if (pool.pool.avoidBuggyIPs && r.family === 'IPv4') {
      // Count .0/.255 inside [first, last] arithmetically: values ≡ 0 or 255 (mod 256).
      const count = (k: bigint) =>
        (r.last >= k ? (r.last - k) / 256n + 1n : 0n) - (r.first > k ? (r.first - 1n - k) / 256n + 1n : 0n);
      n -= count(0n) + count(255n);
    }
    total += n;
  }
  return total;
}
