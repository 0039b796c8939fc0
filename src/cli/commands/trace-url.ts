// `portway trace --url URL --src CLIENT` (dry run): the access path of a URL through an Ingress. The
// hop-by-hop decisions come from the pure core (src/ingress/url-trace.ts); this shell renders the node
// rules and walks hop 2 (client -> published address, on the node that answers for it) and hop 4
// (a controller pod -> the backend Service's cluster IP, on that pod's node) with the packet walker.
import type { Config } from '../../config/config.js';
import { traceIngressUrl, type UrlHop, type UrlHopPacket, type UrlTrace } from '../../ingress/url-trace.js';
import type { ClusterState } from '../../model/cluster-state.js';
import { ipFamilyOf, joinHostPort } from '../../model/ip.js';
import { traceServicePacket } from '../../troubleshoot/index.js';
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
}

export interface UrlTraceReport extends Omit<UrlTrace, 'packets' | 'hops'> {
  src: string;
  hops: Array<UrlHop & { rules?: UrlRuleWalk }>;
}

/** Walk one packet through the rules portway would program on `packet.node` (null: the configured node). */
function walkOnNode(
  state: ClusterState,
  config: Config,
  packet: UrlHopPacket & { src: string },
): UrlRuleWalk {
  const family = ipFamilyOf(packet.dst)!;
  const nodeName = packet.node ?? config.nodeName;
  const onThisNode = packet.node === null || packet.node === config.nodeName;
  // Another node's addresses come from its Node object: they are what --dst-type LOCAL means there.
  const nodeIPs = (
    onThisNode ? config.nodeIPs : (state.nodes.find((n) => n.name === nodeName)?.addresses ?? [])
  ).filter((ip) => ipFamilyOf(ip) === family);
  const nodeConfig: Config = { ...config, nodeName, nodeIPs };
  const rules = renderModeFamily(state, nodeConfig, family);
  const result = traceServicePacket(
    rules,
    { protocol: 'TCP', sourceIP: packet.src, destIP: packet.dst, destPort: packet.dport },
    { localAddresses: nodeIPs, locallyGenerated: false, recentEntries: [] },
  );
  return {
    node: nodeName || '(this node)',
    packet: `tcp ${packet.src} -> ${joinHostPort(packet.dst, packet.dport)}`,
    verdict: result.outcome.verdict,
    endpoints: result.outcome.endpoints,
    endpointProbabilities: result.outcome.endpointProbabilities,
    ...(result.outcome.ipvs ? { ipvsVirtualServer: result.outcome.ipvs.virtualServer } : {}),
  };
}

/** The whole URL trace: the pure hops, with the rule walks of hops 2 and 4 attached; stops at the first failure. */
export function traceUrl(
  url: string,
  src: string,
  state: ClusterState,
  config: Config,
  down: readonly string[] = [],
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
  for (const hop of trace.hops) {
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
    const rules = walkOnNode(decided.state, config, packet);
    if (rules.endpoints.length === 0) {
      hops.push({
        ...hop,
        ok: false,
        detail: `${hop.detail}; but the rules on ${rules.node} do not send ${rules.packet} to any endpoint (verdict ${rules.verdict})`,
        rules,
      });
      break;
    }
    hops.push({ ...hop, rules });
  }
  const failed = hops.find((h) => !h.ok);
  return { url: trace.url, src, hops, failedAt: failed ? failed.hop : null };
}

const pct = (p: number): string => `${(p * 100).toFixed(p === 1 || p === 0 ? 0 : 1)}%`;

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
