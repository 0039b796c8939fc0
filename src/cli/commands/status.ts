// `portway status (-f PATH… | --kubeconfig FILE) [--config FILE]`: what every agent would decide from these
// manifests or from the live cluster's objects — the address of each LoadBalancer Service (or why it has
// none) and, for the Node objects given, which node announces each address. The same pure functions as
// the agent; no kernel.
import type { Command } from 'commander';
import type { Config } from '../../config/config.js';
import { loadConfigFile } from '../../config/load.js';
import { LoadBalancerController } from '../../lb/lb-controller.js';
import { formatLbStatus } from '../../lb/status.js';
import { collectAnnouncedAddresses, decideOwner, type OwnerDecision } from '../../l2/election.js';
import type { ClusterState } from '../../model/index.js';
import { evaluateIngresses, formatIngressStatus, ingressStatusRecords } from '../../ingress/index.js';
import { addInputOptions, readCommandInput, type ClusterInputFlags } from '../cluster-input.js';
import { formatStructured, isStructured, outputOption } from '../output.js';

/**
 * Owner of every allocated address with every given node alive (the steady state), or with the nodes in
 * `down` taken as having no running agent. Decided for no node in particular, so each decision carries
 * the owner (or the reason there is none) and the election order.
 */
export function decideAllOwners(
  state: ClusterState,
  allocation: Parameters<typeof collectAnnouncedAddresses>[1],
  down: readonly string[] = [],
): OwnerDecision[] {
  const alive = new Set(state.nodes.map((n) => n.name).filter((n) => !down.includes(n)));
  return collectAnnouncedAddresses(state, allocation).map((addr) =>
    decideOwner('', addr, {
      nodes: state.nodes,
      pools: state.addressPools,
      advertisements: state.l2Advertisements,
      aliveNodes: alive,
    }),
  );
}

/** The LoadBalancer decision and the steady-state layer2 owners, shared by every view. */
export function decideLoadBalancers(
  state: ClusterState,
  lb: Config['loadBalancer'],
  down: readonly string[] = [],
) {
  if (!lb.enabled) return { state, allocation: null, owners: [] as OwnerDecision[] };
  const decision = new LoadBalancerController({ loadBalancerClass: lb.loadBalancerClass }).process(state);
  const owners = decision.allocation === null ? [] : decideAllOwners(state, decision.allocation, down);
  return { state: decision.state, allocation: decision.allocation, owners };
}

type StatusConfig = Pick<Config, 'loadBalancer'> & Partial<Pick<Config, 'ingress' | 'nodePortAddresses'>>;

/** The whole report as text. Pure. */
export function formatStatusReport(state: ClusterState, config: StatusConfig): string {
  const lb = config.loadBalancer;
  const decided = decideLoadBalancers(state, lb);
  const ingress = formatIngressStatus(
    ingressStatusRecords(
      evaluateIngresses(decided.state, config.ingress?.classes ?? [], config.nodePortAddresses),
      decided.owners,
    ),
  );
  if (!lb.enabled)
    return `LoadBalancer allocation is disabled (loadBalancer.enabled: false): status.loadBalancer.ingress is used as written\n\n${ingress}`;
  if (decided.allocation === null) {
    return `No IPAddressPool in the manifests: portway allocates nothing and uses status.loadBalancer.ingress as written\n\n${ingress}`;
  }
  const owners = decided.owners;
  const lines = [
    formatLbStatus(state.services, decided.allocation, {
      l2Decisions: owners,
      loadBalancerClass: lb.loadBalancerClass,
    }).trimEnd(),
  ];
  const nodes = state.nodes.map((n) => {
    const marks = [
      ...(n.ready ? [] : ['not Ready']),
      ...(n.networkUnavailable ? ['NetworkUnavailable'] : []),
    ];
    return marks.length > 0 ? `${n.name} (${marks.join(', ')})` : n.name;
  });
  lines.push('', `Layer2 (nodes: ${nodes.join(', ') || 'none'}; every agent assumed alive):`);
  if (owners.length === 0) lines.push('  no addresses allocated');
  for (const d of owners) {
    const who = d.owner ? `owner ${d.owner}` : `no owner (${d.reason})`;
    const order = d.eligible.length > 0 ? `; election order ${d.eligible.join(' > ')}` : '';
    lines.push(`  ${d.ip}: ${who}${order}`);
  }
  lines.push('', ingress.trimEnd());
  return `${lines.join('\n')}\n`;
}

/** The whole report as one JSON document (`-o json`): the same decisions as the text. Pure. */
export function statusReportJson(state: ClusterState, config: StatusConfig): unknown {
  const lb = config.loadBalancer;
  const decided = decideLoadBalancers(state, lb);
  const allocation = decided.allocation;
  return {
    loadBalancer: {
      enabled: lb.enabled,
      allocating: allocation !== null,
      services:
        allocation === null
          ? []
          : [
              ...[...allocation.assignments].map(([service, a]) => ({
                service,
                addresses: a.ips,
                pool: a.pool,
                reason: '',
              })),
              ...[...allocation.reasons].map(([service, reason]) => ({
                service,
                addresses: [],
                pool: null,
                reason,
              })),
            ].sort((x, y) => (x.service < y.service ? -1 : x.service > y.service ? 1 : 0)),
      problems: allocation?.problems ?? [],
    },
    layer2: {
      nodes: state.nodes.map((n) => ({
        name: n.name,
        ready: n.ready,
        networkUnavailable: n.networkUnavailable === true,
      })),
      addresses: decided.owners.map((d) => ({
        ip: d.ip,
        owner: d.owner,
        reason: d.reason,
        electionOrder: d.eligible,
      })),
    },
    ingresses: ingressStatusRecords(
      evaluateIngresses(decided.state, config.ingress?.classes ?? [], config.nodePortAddresses),
      decided.owners,
    ),
  };
}

export function registerStatusCommand(program: Command): void {
  const cmd = program
    .command('status')
    .description(
      'show LoadBalancer address assignments (or why none), which node announces each address, and Ingress addresses and backends',
    );
  addInputOptions(cmd, {
    cluster: true,
    alias: '--manifests',
    description:
      'manifest files or directories: Services, Nodes, IPAddressPools, L2Advertisements, Ingresses, IngressClasses',
  });
  cmd
    .option('--config <file>', 'agent configuration (YAML or JSON)')
    .addOption(outputOption(['text', 'json', 'yaml'], 'text'))
    .action(async (opts: ClusterInputFlags & { manifests?: string[]; config?: string; output: string }) => {
      const config = await loadConfigFile(opts.config);
      const state = await readCommandInput(opts);
      if (isStructured(opts.output))
        process.stdout.write(await formatStructured(statusReportJson(state, config), opts.output));
      else process.stdout.write(formatStatusReport(state, config));
    });
}
