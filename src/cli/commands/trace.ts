// `portway trace`: which rules a packet meets and where it ends up — either in the rules portway would
// render from manifests (dry run) or in the rules live in this network namespace's kernel.
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Command } from 'commander';
import type { Config } from '../../config/config.js';
import type { InterfaceAddress } from '../../dataplane/interfaces.js';
import type { IpvsLiveReader } from '../../dataplane/ipvs-live.js';
import type { createRunner } from '../../dataplane/exec.js';
import { loadConfigFile } from '../../config/load.js';
import type { IPFamily } from '../../model/cluster-state.js';
import { canonicalIP, ipAddressHint, ipFamilyOf } from '../../model/ip.js';
import { printableLines, quoteText } from '../../model/names.js';
import { formatProblem, loadClusterState } from '../../model/index.js';
import { traceServicePacket, type LiveIpvsState, type TraceRules } from '../../troubleshoot/index.js';
import { CliExit } from '../exit.js';
import { renderModeFamily, withAllocatedAddresses } from './dry-run.js';
import { formatUrlTrace, liveHopRules, traceUrl, type LiveNode } from './trace-url.js';
import { readClusterInput } from '../cluster-input.js';
import { formatStructured, isStructured, outputOption } from '../output.js';
import { chooseNodeName, nodeIPsFromInterfaces } from '../node-identity.js';

interface TraceFlags {
  filename?: string[];
  live: boolean;
  kubeconfig?: string;
  master?: string;
  requestTimeout?: string;
  config?: string;
  protocol: string;
  src: string;
  dst?: string;
  dport?: string;
  url?: string;
  down: string[];
  sport?: string;
  fromNode: boolean;
  inInterface?: string;
  localAddress: string[];
  recent: string[];
  output: string;
}

function parseAddress(flag: string, text: string): string {
  const ip = canonicalIP(text);
  if (ip === null)
    throw new CliExit(2, `${flag} must be an IP address (got ${quoteText(text)})${ipAddressHint(text)}`);
  return ip;
}

/** A decimal port 1-65535. Number() would also read "0x50", "1e2", " 80 " and "0b1010000": refused. */
export function parsePort(flag: string, text: string): number {
  const n = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 65535))
    throw new CliExit(2, `${flag} must be a decimal port 1-65535 (got ${quoteText(text)})`);
  return n;
}

/** What --live reads from this network namespace (an interface: tests give a kernel of their own). */
export interface LiveKernel {
  /** filter + nat tables of one family, as iptables-save prints them. */
  ruleDump(family: IPFamily): Promise<string>;
  /** Every address on the namespace's interfaces. */
  interfaceAddresses(): Promise<InterfaceAddress[]>;
  /** ipvs mode's other half: IPVS's virtual servers, the ipsets and kube-ipvs0's addresses. */
  ipvs(): Promise<IpvsLiveReader>;
}

/** This network namespace's kernel through the real tools (imported on first use: a dry run needs none). */
function realLiveKernel(): LiveKernel {
  let shared: ReturnType<typeof createRunner> | undefined;
  const getRunner = async () => (shared ??= (await import('../../dataplane/exec.js')).createRunner({}));
  return {
    async ruleDump(family) {
      const { createIptables, detectIptablesBackend } = await import('../../dataplane/iptables.js');
      const backend = (await detectIptablesBackend(await getRunner())).backend;
      const iptables = await createIptables({ family, backend, runner: await getRunner() });
      return (await iptables.save('filter')) + (await iptables.save('nat'));
    },
    async interfaceAddresses() {
      const { RealIpLinks } = await import('../../dataplane/ip.js');
      return new RealIpLinks({ runner: await getRunner() }).listAddresses();
    },
    async ipvs() {
      const { RealIpvsLiveReader } = await import('../../dataplane/ipvs-live.js');
      return new RealIpvsLiveReader({ runner: await getRunner() });
    },
  };
}

/**
 * ipvs mode's kernel state besides iptables, shaped as the walk takes it: the kernel's virtual and
 * real servers (not the ones the manifests ask for), every set by name, kube-ipvs0's addresses.
 * Firewall-mark services and unknown schedulers (another tool's) are left out: no packet the walk
 * follows reaches them through portway's rules.
 */
export async function readLiveIpvs(reader: IpvsLiveReader): Promise<LiveIpvsState> {
  const availability = await reader.checkIpvsAvailable();
  if (!availability.available)
    throw new CliExit(1, `trace --live (mode ipvs): cannot read IPVS: ${availability.reason}`);
  const { readIpvsLiveState } = await import('../../dataplane/ipvs-live.js');
  const state = await readIpvsLiveState(reader);
  return {
    ipsets: Object.fromEntries(state.ipsets.map((set) => [set.name, set.entries])),
    virtualServers: state.ipvs.virtualServers,
    boundAddresses: state.dummy.addresses.map((a) => a.address),
  };
}

/**
 * The rules --live walks for one family: the kernel's iptables rules, and in ipvs mode also its sets,
 * IPVS table and kube-ipvs0 addresses; with the node's own addresses (what `--dst-type LOCAL` means).
 */
export async function liveTraceRules(
  mode: Config['mode'],
  family: IPFamily,
  kernel: LiveKernel,
): Promise<{ rules: TraceRules; localAddresses: string[] }> {
  const dump = await kernel.ruleDump(family);
  const localAddresses = (await kernel.interfaceAddresses()).map((a) => a.address);
  if (mode !== 'ipvs') return { rules: dump, localAddresses };
  return {
    rules: { kind: 'live-ipvs', iptables: dump, ...(await readLiveIpvs(await kernel.ipvs())) },
    localAddresses,
  };
}

/**
 * --live --url: the API objects from the cluster (--kubeconfig/--master, else in-cluster), the kernel
 * side from this node. This node is the agent's: nodeName, else $NODE_NAME, else the host name; its
 * addresses the configured nodeIPs, else its interfaces'.
 */
async function liveUrlInputs(flags: TraceFlags, kernel: LiveKernel) {
  const config = await loadConfigFile(flags.config);
  const state = await readClusterInput(
    { kubeconfig: flags.kubeconfig, master: flags.master, requestTimeout: flags.requestTimeout },
    { inCluster: true },
  );
  const nodeName = chooseNodeName(config.nodeName, process.env, hostname());
  const interfaces = await kernel.interfaceAddresses();
  const nodeIPs = config.nodeIPs.length > 0 ? config.nodeIPs : nodeIPsFromInterfaces(interfaces);
  const families = (['IPv4', 'IPv6'] as const).filter((f) => nodeIPs.some((ip) => ipFamilyOf(ip) === f));
  const dumps: LiveNode['dumps'] = {};
  for (const family of families.length > 0 ? families : (['IPv4'] as const))
    dumps[family] = await kernel.ruleDump(family);
  const live: LiveNode = {
    name: nodeName,
    dumps,
    addresses: interfaces.map((a) => a.address),
    ...(config.mode === 'ipvs' ? { ipvs: await readLiveIpvs(await kernel.ipvs()) } : {}),
  };
  return { config: { ...config, nodeName, nodeIPs }, state, live };
}

/** The dry run's inputs: the config and the manifests (objects that fail to load are reported and skipped). */
async function loadManifestsAndConfig(flags: TraceFlags) {
  const paths = flags.filename ?? [];
  for (const p of paths)
    if (p !== '-' && !existsSync(p)) throw new CliExit(2, `no such file or directory: ${p}`);
  const config = await loadConfigFile(flags.config);
  const { state, problems } = await loadClusterState(paths);
  for (const p of problems) process.stderr.write(`portway: skipped: ${formatProblem(p)}\n`);
  return { config, state };
}

/** The rules to walk and the node's own addresses (what `--dst-type LOCAL` means). */
async function loadRules(
  flags: TraceFlags,
  family: IPFamily,
): Promise<{ rules: TraceRules; localAddresses: string[] }> {
  if (flags.live) {
    // The mode says what the kernel holds: without --config, iptables mode (the agent's default).
    const mode = flags.config !== undefined ? (await loadConfigFile(flags.config)).mode : 'iptables';
    return liveTraceRules(mode, family, realLiveKernel());
  }
  const { config, state } = await loadManifestsAndConfig(flags);
  const nodeIPs = config.nodeIPs.filter((ip) => ipFamilyOf(ip) === family);
  const desired = withAllocatedAddresses(state, config);
  return {
    rules: renderModeFamily(desired, config, family),
    localAddresses: nodeIPs,
  };
}

function parseInterfaceName(text: string): string {
  // The kernel's limit (IFNAMSIZ − 1) and no '+': the packet arrives on one real interface, not a pattern.
  if (!/^[^\s/:+]{1,15}$/.test(text)) {
    throw new CliExit(
      2,
      `--in-interface must be an interface name (1-15 characters, no '/', ':', '+' or space; got "${text}")`,
    );
  }
  return text;
}

async function traceUrlCommand(flags: TraceFlags, src: string): Promise<void> {
  if (flags.dst !== undefined || flags.dport !== undefined)
    throw new CliExit(2, '--url replaces --dst and --dport: give one or the other');
  const url = flags.url!;
  if (!/^https?:\/\//i.test(url))
    throw new CliExit(2, `--url must be an http:// or https:// URL (got ${quoteText(url)})`);
  try {
    new URL(url);
  } catch {
    throw new CliExit(2, `--url must be an http:// or https:// URL (got ${quoteText(url)})`);
  }
  let report;
  if (flags.live) {
    const { config, state, live } = await liveUrlInputs(flags, realLiveKernel());
    report = traceUrl(url, src, state, config, flags.down, liveHopRules(live));
  } else {
    const { config, state } = await loadManifestsAndConfig(flags);
    report = traceUrl(url, src, state, config, flags.down);
  }
  process.stdout.write(
    isStructured(flags.output)
      ? await formatStructured(report, flags.output)
      : printableLines(formatUrlTrace(report)),
  );
}

export function registerTraceCommand(program: Command): void {
  program
    .command('trace')
    .description(
      'walk one packet through the rules (rendered from manifests, or --live from this kernel) and explain it',
    )
    .option('-f, --filename <paths...>', 'manifests to render the rules from (dry run)')
    .option('--live', "trace through the rules currently in this network namespace's kernel", false)
    .option('--config <file>', 'agent configuration (dry run: nodeName, nodeIPs, clusterCIDRs, …)')
    .option('-p, --protocol <proto>', 'tcp, udp or sctp', 'tcp')
    .requiredOption('--src <ip>', 'source address of the packet')
    .option('--dst <ip>', 'destination address (a cluster IP, node IP, external or LoadBalancer IP)')
    .option('--dport <port>', 'destination port')
    .option(
      '--url <url>',
      'instead of --dst/--dport: the access path of this URL through its Ingress, hop by hop',
    )
    .option(
      '--kubeconfig <file>',
      'with --live --url: read the API objects from this cluster (default: in-cluster)',
    )
    .option('--master <url>', "with --live --url: API server URL (overrides the kubeconfig's server)")
    .option('--request-timeout <seconds>', 'with --live --url: how long to wait for the API lists', '30')
    .option('--down <nodes...>', 'with --url: nodes whose agent is not running (they answer no ARP)', [])
    .option('--sport <port>', 'source port')
    .option('--from-node', 'the packet is generated on the node itself (nat OUTPUT path)', false)
    .option(
      '--in-interface <name>',
      'interface the packet arrives on (needed when rules match -i, e.g. detectLocalMode BridgeInterface)',
    )
    .option('--local-address <ips...>', 'extra addresses this node owns', [])
    .option(
      '--recent <lists...>',
      'session-affinity lists (KUBE-SEP-… names) that already hold the source',
      [],
    )
    .addOption(outputOption(['text', 'json', 'yaml'], 'text'))
    .action(async (flags: TraceFlags) => {
      if (flags.live === (flags.filename !== undefined))
        throw new CliExit(2, 'give exactly one of -f PATH… or --live');
      if (!['tcp', 'udp', 'sctp'].includes(flags.protocol.toLowerCase())) {
        throw new CliExit(2, `--protocol must be tcp, udp or sctp (got "${flags.protocol}")`);
      }
      const src = parseAddress('--src', flags.src);
      if (
        (flags.kubeconfig !== undefined || flags.master !== undefined) &&
        (!flags.live || flags.url === undefined)
      )
        throw new CliExit(
          2,
          '--kubeconfig/--master go with --live --url (a dry run reads -f PATH…, a packet trace only the kernel)',
        );
      if (flags.url !== undefined) {
        await traceUrlCommand(flags, src);
        return;
      }
      if (flags.dst === undefined || flags.dport === undefined)
        throw new CliExit(2, 'give --dst and --dport (or --url URL)');
      if (flags.down.length > 0) throw new CliExit(2, '--down goes with --url');
      const dst = parseAddress('--dst', flags.dst);
      const family = ipFamilyOf(dst)!;
      if (ipFamilyOf(src) !== family) throw new CliExit(2, '--src and --dst must be of the same IP family');
      const { rules, localAddresses } = await loadRules(flags, family);
      const result = traceServicePacket(
        rules,
        {
          protocol: flags.protocol.toUpperCase(),
          sourceIP: src,
          destIP: dst,
          destPort: parsePort('--dport', flags.dport),
          ...(flags.sport !== undefined ? { sourcePort: parsePort('--sport', flags.sport) } : {}),
          ...(flags.inInterface !== undefined ? { inInterface: parseInterfaceName(flags.inInterface) } : {}),
        },
        {
          localAddresses: [
            ...localAddresses,
            ...flags.localAddress.map((a) => parseAddress('--local-address', a)),
          ],
          locallyGenerated: flags.fromNode,
          recentEntries: flags.recent,
        },
      );
      process.stdout.write(
        isStructured(flags.output)
          ? await formatStructured({ packet: result.packet, outcome: result.outcome }, flags.output)
          : // Live rules may carry any comment bytes: no control character reaches the terminal.
            printableLines(result.explanation),
      );
    });
}
