// Which interfaces an L2Advertisement without `interfaces` announces on: every suitable one, as MetalLB's
// speaker chooses them (internal/layer2/announcer.go, updateInterfaces). Pure: the shell reads the link
// facts once per refresh (`ip -j -d link show`) and this decides.
//
// MetalLB's rules, in its order:
//   - a name matching the exclusion regexp is skipped (and is not even a known interface);
//   - not administratively UP: skipped;
//   - enslaved (it has a master: a bridge port, a bond slave, a VRF member): skipped — the bridge or bond
//     itself is the interface that owns the addresses and answers;
//   - NOARP set (e.g. dummy, kube-ipvs0, `ip link set X arp off`): skipped;
//   - without BROADCAST (loopback, point-to-point tunnels, wireguard): no ARP responder.
import type { NetworkLink } from '../dataplane/interfaces.js';

/** Why an interface is not announced on by default ('' = it is). */
export type InterfaceSkipReason =
  | ''
  /** Its name matches the configured exclusion (MetalLB's announcedInterfacesToExclude). */
  | 'excluded'
  /** Not administratively up. */
  | 'down'
  /** Enslaved to a bridge, bond, team or VRF: the master answers instead. */
  | 'enslaved'
  /** ARP is off on it (NOARP flag). */
  | 'noArp'
  /** The loopback interface (which also has no BROADCAST). */
  | 'loopback'
  /** Not broadcast-capable (point-to-point, tunnels): ARP does not exist there. */
  | 'noBroadcast';

export interface InterfaceVerdict {
  ifname: string;
  reason: InterfaceSkipReason;
  /** For 'enslaved': the master and its kind, e.g. "br0 (bridge)". */
  detail?: string;
}

export interface InterfaceChoice {
  /** Interfaces an advertisement without `interfaces` announces on, sorted. */
  suitable: string[];
  /** Every interface with its verdict, sorted by name. */
  verdicts: InterfaceVerdict[];
}

/**
 * The exclusion list MetalLB's manifests and Helm chart ship by default (the metallb-excludel2
 * ConfigMap): container, CNI and virtual interfaces that are never a LAN to answer ARP on.
 */
export const DEFAULT_EXCLUDED_INTERFACES: readonly string[] = [
  '^docker.*',
  '^cbr.*',
  '^dummy.*',
  '^virbr.*',
  '^lxcbr.*',
  '^veth.*',
  '^lo$',
  '^cali.*',
  '^tunl.*',
  '^flannel.*',
  '^kube-ipvs.*',
  '^cni.*',
  '^nodelocaldns.*',
];

/**
 * One regexp from a list of patterns, joined as MetalLB joins them: "(a)|(b)", unanchored (a pattern
 * anchors itself with ^ and $). An empty list excludes nothing (null). A bad pattern is an error naming
 * its position and text.
 */
export function compileInterfaceExclusion(
  patterns: readonly string[],
  field = 'excludeInterfaces',
): RegExp | null {
  patterns.forEach((p, i) => {
    try {
      new RegExp(p);
    } catch (e) {
      throw new Error(`${field}[${i}]: "${p}" is not a valid regular expression: ${(e as Error).message}`);
    }
  });
  if (patterns.length === 0) return null;
  return new RegExp(`(${patterns.join(')|(')})`);
}

/** The verdict on one interface. */
export function judgeInterface(link: NetworkLink, exclude: RegExp | null): InterfaceVerdict {
  const verdict = (reason: InterfaceSkipReason, detail?: string): InterfaceVerdict =>
    detail === undefined ? { ifname: link.ifname, reason } : { ifname: link.ifname, reason, detail };
  const flags = new Set(link.flags);
  if (exclude !== null && exclude.test(link.ifname)) return verdict('excluded');
  if (!flags.has('UP')) return verdict('down');
  if (link.master !== null)
    return verdict('enslaved', `${link.master}${link.slaveKind ? ` (${link.slaveKind})` : ''}`);
  if (flags.has('NOARP')) return verdict('noArp');
  if (flags.has('LOOPBACK') || link.linkType === 'loopback') return verdict('loopback');
  if (!flags.has('BROADCAST')) return verdict('noBroadcast');
  return verdict('');
}

/** Judge every interface; the suitable ones are where an advertisement without interfaces answers ARP. */
export function chooseAnnounceInterfaces(
  links: readonly NetworkLink[],
  exclude: RegExp | null,
): InterfaceChoice {
  const verdicts = links
    .map((l) => judgeInterface(l, exclude))
    .sort((a, b) => (a.ifname < b.ifname ? -1 : a.ifname > b.ifname ? 1 : 0));
  return { suitable: verdicts.filter((v) => v.reason === '').map((v) => v.ifname), verdicts };
}

/** "eth2: down, br0-port: enslaved to br0 (bridge)" — for problems and logs. */
export function describeSkipped(verdicts: readonly InterfaceVerdict[]): string {
  return verdicts
    .filter((v) => v.reason !== '')
    .map((v) => `${v.ifname}: ${v.reason === 'enslaved' ? `enslaved to ${v.detail ?? '?'}` : v.reason}`)
    .join(', ');
}
