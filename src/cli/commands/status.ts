// `portway status --manifests DIR [--config FILE]`: what every agent would decide from these manifests —
// the address of each LoadBalancer Service (or why it has none) and, for the Node objects given, which
// node announces each address. The same pure functions as the agent; no kernel, no network.
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { Config } from '../../config/config.js';
import { loadConfigFile } from '../../config/load.js';
import { LoadBalancerController } from '../../lb/lb-controller.js';
import { formatLbStatus } from '../../lb/status.js';
import { collectAnnouncedAddresses, decideOwner, type OwnerDecision } from '../../l2/election.js';
import { type ClusterState, formatProblem, loadClusterState } from '../../model/index.js';
import { CliExit } from '../exit.js';

/**
 * Owner of every allocated address with every given node alive (the steady state). Decided for no node in
 * particular, so each decision carries the owner (or the reason there is none) and the election order.
 */
export function decideAllOwners(
  state: ClusterState,
  allocation: Parameters<typeof collectAnnouncedAddresses>[1],
): OwnerDecision[] {
  const alive = new Set(state.nodes.map((n) => n.name));
  return collectAnnouncedAddresses(state, allocation).map((addr) =>
    decideOwner('', addr, {
      nodes: state.nodes,
      pools: state.addressPools,
      advertisements: state.l2Advertisements,
      aliveNodes: alive,
    }),
  );
}

/** The whole report. Pure. */
export function formatStatusReport(state: ClusterState, config: Pick<Config, 'loadBalancer'>): string {
  const lb = config.loadBalancer;
  if (!lb.enabled)
    return 'LoadBalancer allocation is disabled (loadBalancer.enabled: false): status.loadBalancer.ingress is used as written\n';
  const decision = new LoadBalancerController({ loadBalancerClass: lb.loadBalancerClass }).process(state);
  if (decision.allocation === null) {
    return 'No IPAddressPool in the manifests: portway allocates nothing and uses status.loadBalancer.ingress as written\n';
  }
  const owners = decideAllOwners(state, decision.allocation);
  const lines = [
    formatLbStatus(state.services, decision.allocation, {
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
  return `${lines.join('\n')}\n`;
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('show LoadBalancer address assignments (or why none) and which node announces each address')
    .requiredOption(
      '--manifests <dir>',
      'directory (or file) of manifests: Services, Nodes, IPAddressPools, L2Advertisements',
    )
    .option('--config <file>', 'agent configuration (YAML or JSON)')
    .action(async (opts: { manifests: string; config?: string }) => {
      if (!existsSync(opts.manifests))
        throw new CliExit(2, `--manifests: no such file or directory: ${opts.manifests}`);
      const config = await loadConfigFile(opts.config);
      const { state, problems } = await loadClusterState([opts.manifests]);
      for (const p of problems) process.stderr.write(`portway: skipped: ${formatProblem(p)}\n`);
      process.stdout.write(formatStatusReport(state, config));
    });
}
