// Which node addresses take NodePorts (kube-proxy's NodePortAddresses), for one family.
import { cidrContains, compareIPs, parseCIDR, type ParsedCIDR } from '../model/ip.js';
import { RenderInputError } from './input-checks.js';
import type { ProxyOptions } from './options.js';

export const IPV4_LOOPBACK_CIDR = '127.0.0.0/8';
export const IPV6_LOOPBACK_CIDR = '::1/128';

/** Which node addresses take NodePorts, as kube-proxy's NodePortAddresses decides for one family. */
export interface NodePortAddressing {
  /** Every local address takes NodePorts (nodePortAddresses empty, or a /0 of the family). */
  matchAll: boolean;
  /** For !matchAll: the addresses that take NodePorts (127.0.0.1 only with localhostNodePorts). */
  ips: string[];
  /** The effective localhost-NodePorts setting (IPv4, enabled, and the CIDRs include loopback). */
  localhostNodePorts: boolean;
}

/**
 * Whether the rules accept NodePorts on 127.0.0.1 (kube-proxy: localhostNodePorts and nodePortAddresses
 * overlapping 127.0.0.0/8, an empty list meaning every address): exactly then the kernel must route
 * DNATed loopback traffic off the host, i.e. route_localnet=1. IPv4 options only; IPv6 never does.
 */
export function acceptsLocalhostNodePorts(opts: ProxyOptions): boolean {
  return resolveNodePortAddresses(opts).localhostNodePorts;
}

export function resolveNodePortAddresses(opts: ProxyOptions): NodePortAddressing {
  const { family } = opts;
  let cidrs: ParsedCIDR[];
  if (opts.nodePortAddresses.length === 1 && opts.nodePortAddresses[0] === 'primary') {
    // kube-proxy turns "primary" into the node's primary IP of each family as a host CIDR, skipping
    // a family whose primary IP is unknown or loopback; that family then gets the default below
    // (every local address), exactly as if no CIDR of it had been given.
    const primary = opts.nodeIPs[0];
    cidrs = primary === undefined || isLoopback(primary) ? [] : [parseCIDR(primary) as ParsedCIDR];
  } else {
    cidrs = opts.nodePortAddresses.map((text, i) => {
      const parsed = parseCIDR(text);
      if (parsed === null)
        throw new RenderInputError('options', `nodePortAddresses[${i}]`, `"${text}" is not a CIDR`);
      return parsed;
    });
    cidrs = cidrs.filter((c) => c.family === family);
  }
  if (cidrs.length === 0) {
    cidrs = [parseCIDR(family === 'IPv4' ? '0.0.0.0/0' : '::/0') as ParsedCIDR];
  }
  // kube-proxy's ContainsIPv4Loopback: the CIDR's address is a loopback one or the CIDR contains
  // 127.0.0.0, i.e. the CIDR overlaps 127.0.0.0/8 (127.0.0.2/32 counts, though it lacks 127.0.0.1).
  const overlapsIPv4Loopback = (c: ParsedCIDR): boolean =>
    cidrContains(c, '127.0.0.0') || cidrContains(IPV4_LOOPBACK_CIDR, c.text.slice(0, c.text.indexOf('/')));
  const containsIPv4Loopback = family === 'IPv4' && cidrs.some(overlapsIPv4Loopback);
  const localhostNodePorts = family === 'IPv4' && opts.localhostNodePorts && containsIPv4Loopback;
  const matchAll = cidrs.some((c) => c.prefix === 0);
  if (matchAll) return { matchAll, ips: [], localhostNodePorts };
  // The loopback interface always holds 127.0.0.1; kube-proxy finds it when listing interfaces.
  const candidates = family === 'IPv4' ? [...opts.nodeIPs, '127.0.0.1'] : [...opts.nodeIPs];
  const ips = [...new Set(candidates)]
    .filter((ip) => cidrs.some((c) => cidrContains(c, ip)))
    .filter((ip) => !isLoopback(ip) || localhostNodePorts)
    .sort(compareIPs);
  return { matchAll, ips, localhostNodePorts };
}

export function isLoopback(ip: string): boolean {
  return ip === '::1' || cidrContains(IPV4_LOOPBACK_CIDR, ip);
}
