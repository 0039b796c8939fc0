// `portway trace --url URL --src CLIENT`: the access path of a URL through an Ingress. The hop-by-hop
// decisions come from the pure core (src/ingress/url-trace.ts); this shell walks hop 2 (client ->
// published address, on the node that answers for it) and hop 4 (a controller pod -> the backend
// Service's cluster IP, on that pod's node) with the packet walker, through the rules of a HopRules:
// the rules portway would render for that node (dry run), or this node's kernel (--live), which is
// also compared with what the cluster asks for, so stale or missing rules are named at their hop.
import type { Config } from '../../config/config.js';
import { traceIngressUrl, type UrlHop, type UrlHopPacket, type UrlTrace } from '../../ingress/url-trace.js';
import type { ClusterState, IPFamily } from '../../model/cluster-state.js';
import { ipFamilyOf, joinHostPort } from '../../model/ip.js';
import { traceServicePacket, type LiveIpvsState, type TraceRules } from '../../troubleshoot/index.js';
import { CliExit } from '../exit.js';
import { renderModeFamily } from './dry-run.js';
import { decideLoadBalancers } from './status.js';

export interface UrlRuleWalk {
  /** The node whose rules were walked. */
  node: string;
  packet: string;
  verdict: string;
  endpoints: string[];
  endpointProbabilities: Array<{ endpoint: string; probability: number }>;
  /** ipvs mode: the virtual server that scheduled the packet ("TCP addr:port"). */
  ipvsVirtualServer?: string;
  /**
   * --live: where the kernel's endpoints differ from those the cluster's objects ask for on this node
   * (absent when they agree). kernelOnly: stale rules (an endpoint the cluster no longer serves from);
   * clusterOnly: rules not programmed yet.
   */
  differsFromCluster?: { kernelOnly: string[]; clusterOnly: string[] };
  /** --live: the packet arrives at another node; its rules were walked on this node's kernel. */
  note?: string;
}

/** The rules a hop's packet is walked through. */
export interface HopRules {
  walk(state: ClusterState, config: Config, packet: UrlHopPacket & { src: string }): UrlRuleWalk;
  /**
   * Live: the objects are the cluster's, so the Ingress's written status is compared with the address
   * hop 1 decides (a dry run's manifests rarely carry a status: nothing to compare).
   */
  readonly live?: boolean;
}

export interface UrlTraceReport extends Omit<UrlTrace, 'packets' | 'hops' | 'published'> {
  src: string;
  hops: Array<UrlHop & { rules?: UrlRuleWalk }>;
}

/** Walk a TCP packet through `rules` with `localAddresses` as the node's own. */
function walkRules(rules: TraceRules, packet: UrlHopPacket & { src: string }, localAddresses: string[]) {
  return traceServicePacket(
    rules,
    { protocol: 'TCP', sourceIP: packet.src, destIP: packet.dst, destPort: packet.dport },
    { localAddresses, locallyGenerated: false, recentEntries: [] },
  ).outcome;
}

const packetText = (p: UrlHopPacket & { src: string }) => `tcp ${p.src} -> ${joinHostPort(p.dst, p.dport)}`;

/** The configuration as node `node` (null: the configured node) has it: its name and its addresses. */
function nodeConfigOf(state: ClusterState, config: Config, node: string | null, family: IPFamily): Config {
  const nodeName = node ?? config.nodeName;
  const onThisNode = node === null || node === config.nodeName;
  // Another node's addresses come from its Node object: they are what --dst-type LOCAL means there.
  const nodeIPs = (
    onThisNode ? config.nodeIPs : (state.nodes.find((n) => n.name === nodeName)?.addresses ?? [])
  ).filter((ip) => ipFamilyOf(ip) === family);
  return { ...config, nodeName, nodeIPs };
}

/** Dry run: each packet through the rules portway would program on `packet.node`. */
export const renderedHopRules: HopRules = {
  walk(state, config, packet) {
    const nodeConfig = nodeConfigOf(state, config, packet.node, ipFamilyOf(packet.dst)!);
    const outcome = walkRules(
      renderModeFamily(state, nodeConfig, ipFamilyOf(packet.dst)!),
      packet,
      nodeConfig.nodeIPs,
    );
    return {
      node: nodeConfig.nodeName || '(this node)',
      packet: packetText(packet),
      verdict: outcome.verdict,
      endpoints: outcome.endpoints,
      endpointProbabilities: outcome.endpointProbabilities,
      ...(outcome.ipvs ? { ipvsVirtualServer: outcome.ipvs.virtualServer } : {}),
    };
  },
};

/** What --live reads from this node: its iptables dump per family and its addresses. */
export interface LiveNode {
  /** This node's name (config nodeName, $NODE_NAME or the host name). */
  name: string;
  /** filter + nat tables as iptables-save prints them, per family read. */
  dumps: Partial<Record<IPFamily, string>>;
  /** The addresses on this network namespace's interfaces. */
  addresses: string[];
  /** ipvs mode: the kernel's IPVS table, sets and kube-ipvs0 addresses (walked with the dumps). */
  ipvs?: LiveIpvsState;
}

/**
 * --live: each packet through this node's kernel rules — the only kernel trace can read. The rules
 * portway would render for this node from the cluster's objects are walked too: where the endpoints
 * differ, the kernel decides what the packet meets (it is what the traffic meets) and the difference
 * is reported. A packet that arrives at another node (a node port on that node's address, or a
 * LoadBalancer address another node answers ARP for) is walked here as if it had arrived here, with
 * its destination taken as local, and says so: kube-proxy-style rules are the same on every node
 * except for externalTrafficPolicy: Local, whose endpoints are per node.
 */
export function liveHopRules(live: LiveNode): HopRules {
  return {
    live: true,
    walk(state, config, packet) {
      const family = ipFamilyOf(packet.dst)!;
      const dump = live.dumps[family];
      if (dump === undefined)
        throw new CliExit(2, `trace --live: no ${family} rules were read from this node`);
      const elsewhere = packet.node !== null && packet.node !== live.name;
      const local = [
        ...live.addresses.filter((ip) => ipFamilyOf(ip) === family),
        ...(elsewhere && !live.addresses.includes(packet.dst) ? [packet.dst] : []),
      ];
      const kernel = walkRules(
        live.ipvs !== undefined ? { kind: 'live-ipvs', iptables: dump, ...live.ipvs } : dump,
        packet,
        local,
      );
      const thisNodeConfig = nodeConfigOf(state, { ...config, nodeName: live.name }, null, family);
      const desired = walkRules(renderModeFamily(state, thisNodeConfig, family), packet, [
        ...new Set([...thisNodeConfig.nodeIPs, ...local]),
      ]);
      const kernelOnly = kernel.endpoints.filter((e) => !desired.endpoints.includes(e));
      const clusterOnly = desired.endpoints.filter((e) => !kernel.endpoints.includes(e));
      return {
        node: `${live.name} (kernel)`,
        packet: packetText(packet),
        verdict: kernel.verdict,
        endpoints: kernel.endpoints,
        endpointProbabilities: kernel.endpointProbabilities,
        ...(kernel.ipvs ? { ipvsVirtualServer: kernel.ipvs.virtualServer } : {}),
        ...(kernelOnly.length + clusterOnly.length > 0
          ? { differsFromCluster: { kernelOnly, clusterOnly } }
          : {}),
        ...(elsewhere
          ? {
              note: `the packet arrives at ${packet.node}; walked through this node's kernel as if it had arrived here (run trace --live on ${packet.node} for its own kernel)`,
            }
          : {}),
      };
    },
  };
}

/** The whole URL trace: the pure hops, with the rule walks of hops 2 and 4 attached; stops at the first failure. */
export function traceUrl(
  url: string,
  src: string,
  state: ClusterState,
  config: Config,
  down: readonly string[] = [],
  hopRules: HopRules = renderedHopRules,
): UrlTraceReport {
  if (config.ingress.classes.length === 0)
    throw new CliExit(
      2,
      'trace --url needs ingress.classes in --config: which controller Service serves which IngressClass',
    );
  const unknown = down.filter((n) => !state.nodes.some((node) => node.name === n));
  if (unknown.length > 0)
    throw new CliExit(2, `--down: no Node named ${unknown.map((n) => `"${n}"`).join(', ')} in the manifests`);
  const decided = decideLoadBalancers(state, config.loadBalancer, down);
  const trace = traceIngressUrl(
    url,
    decided.state,
    config.ingress.classes,
    decided.owners,
    config.nodePortAddresses,
  );
  const hops: UrlTraceReport['hops'] = [];
  for (const pure of trace.hops) {
    const hop = pure.hop === 1 && hopRules.live ? withWrittenStatus(pure, trace.published) : pure;
    const packet =
      hop.hop === 2
        ? trace.packets.toController && { src, ...trace.packets.toController }
        : hop.hop === 4
          ? trace.packets.toBackend
          : undefined;
    if (packet !== undefined && ipFamilyOf(packet.src) !== ipFamilyOf(packet.dst)) {
      hops.push({
        ...hop,
        ok: false,
        detail: `${hop.detail}; but ${packet.src} is ${ipFamilyOf(packet.src)} and ${packet.dst} is ${ipFamilyOf(packet.dst)}: no route between them`,
      });
      break;
    }
    if (!hop.ok || packet === undefined) {
      hops.push(hop);
      if (!hop.ok) break;
      continue;
    }
    const rules = hopRules.walk(decided.state, config, packet);
    if (rules.endpoints.length === 0) {
      hops.push({
        ...hop,
        ok: false,
        detail: `${hop.detail}; but the rules on ${rules.node} do not send ${rules.packet} to any endpoint (verdict ${rules.verdict})${differenceText(rules)}`,
        rules,
      });
      break;
    }
    // Stale kernel rules send a share of the requests to an endpoint the cluster no longer serves from
    // (a deleted or unready pod): those requests fail, so the hop does. Rules not yet programmed only
    // leave an endpoint unused: the request still gets through, and the difference is reported.
    const stale = rules.differsFromCluster?.kernelOnly ?? [];
    if (stale.length > 0) {
      const share = rules.endpointProbabilities
        .filter((e) => stale.includes(e.endpoint))
        .reduce((n, e) => n + e.probability, 0);
      hops.push({
        ...hop,
        ok: false,
        detail: `${hop.detail}; but the kernel on ${rules.node} still sends ${pct(share)} of new connections to ${stale.join(', ')}, which the cluster no longer has as serving endpoints (stale rules: is portway running and syncing there?)${differenceText(rules, 'clusterOnly')}`,
        rules,
      });
      break;
    }
    hops.push({
      ...hop,
      ...(rules.differsFromCluster ? { detail: `${hop.detail}${differenceText(rules)}` } : {}),
      rules,
    });
  }
  const failed = hops.find((h) => !h.ok);
  return { url: trace.url, src, hops, failedAt: failed ? failed.hop : null };
}

/**
 * Live hop 1: what the Ingress's status.loadBalancer.ingress says, where it differs from the address
 * decided. A client that finds the name through DNS (external-dns and the like publish that status) goes
 * where the status says, so a stale or missing status is named; the hop still passes (by address the
 * path works).
 */
function withWrittenStatus(hop: UrlHop, published: UrlTrace['published']): UrlHop {
  if (!published || !hop.ok) return hop;
  const { ingress, decided, written } = published;
  const same = written.length === decided.length && decided.every((ip) => written.includes(ip));
  if (same) return hop;
  const says =
    written.length === 0
      ? `the status of Ingress ${ingress} holds no address yet (written by the elected agent: is one running?)`
      : `the status of Ingress ${ingress} says ${written.join(', ')}, not ${decided.join(', ')} (not rewritten yet?)`;
  return { ...hop, detail: `${hop.detail}; ${says}` };
}

/** The kernel/cluster difference of a live walk as a clause ('' when they agree). */
function differenceText(rules: UrlRuleWalk, only?: 'clusterOnly'): string {
  const d = rules.differsFromCluster;
  if (!d) return '';
  const parts = [
    ...(only === undefined && d.kernelOnly.length > 0
      ? [`the kernel has ${d.kernelOnly.join(', ')} which the cluster does not`]
      : []),
    ...(d.clusterOnly.length > 0
      ? [`the cluster has ${d.clusterOnly.join(', ')} which the kernel lacks (not programmed yet?)`]
      : []),
  ];
  return parts.length > 0 ? `; kernel differs from the cluster: ${parts.join('; ')}` : '';
}

function pct(p: number): string {
  return `${(p * 100).toFixed(p === 1 || p === 0 ? 0 : 1)}%`;
}

export function formatUrlTrace(r: UrlTraceReport): string {
  const lines = [`url: ${r.url} from ${r.src}`];
  for (const h of r.hops) {
    lines.push(`hop ${h.hop} ${h.what}: ${h.ok ? 'ok' : 'FAILS'}: ${h.detail}`);
    if (h.rules) {
      const eps = h.rules.endpointProbabilities
        .map((e) => `${e.endpoint} (${pct(e.probability)})`)
        .join(', ');
      const vs = h.rules.ipvsVirtualServer ? ` via ipvs ${h.rules.ipvsVirtualServer}` : '';
      lines.push(
        `  rules on ${h.rules.node}: ${h.rules.packet}: ${h.rules.verdict}${vs}${eps ? ` -> ${eps}` : ''}`,
      );
      if (h.rules.note) lines.push(`  (${h.rules.note})`);
    }
  }
  const last = r.hops[r.hops.length - 1];
  lines.push(
    r.failedAt === null
      ? `result: the request reaches the backend${last?.rules ? ` (${last.rules.endpoints.join(', ')})` : ''}`
      : `result: fails at hop ${r.failedAt}`,
  );
  return lines.join('\n') + '\n';
}
