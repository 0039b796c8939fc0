// `portway trace`: which rules a packet meets and where it ends up — either in the rules portway would
// render from manifests (dry run) or in the rules live in this network namespace's kernel.
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfigFile } from '../../config/load.js';
import type { IPFamily } from '../../model/cluster-state.js';
import { canonicalIP, ipAddressHint, ipFamilyOf } from '../../model/ip.js';
import { printableLines, quoteText } from '../../model/names.js';
import { formatProblem, loadClusterState } from '../../model/index.js';
import { createRunner } from '../../dataplane/exec.js';
import { createIptables, detectIptablesBackend } from '../../dataplane/iptables.js';
import { RealIpLinks } from '../../dataplane/ip.js';
import { traceServicePacket, type TraceRules } from '../../troubleshoot/index.js';
import { CliExit } from '../exit.js';
import { renderModeFamily, withAllocatedAddresses } from './dry-run.js';
import { formatUrlTrace, traceUrl } from './trace-url.js';

interface TraceFlags {
  filename?: string[];
  live: boolean;
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
    if (flags.config !== undefined && (await loadConfigFile(flags.config)).mode === 'ipvs') {
      // The live walk reads iptables only; ipvs mode also needs the kernel's sets and virtual servers.
      throw new CliExit(
        2,
        'trace --live does not read ipsets and IPVS virtual servers yet (ipvs mode live state is issue 11): ' +
          'trace the rules portway would program with -f MANIFESTS --config FILE',
      );
    }
    const runner = createRunner({});
    const backend = (await detectIptablesBackend(runner)).backend;
    const iptables = await createIptables({ family, backend, runner });
    const text = (await iptables.save('filter')) + (await iptables.save('nat'));
    const addresses = await new RealIpLinks({ runner }).listAddresses();
    return { rules: text, localAddresses: addresses.map((a) => a.address) };
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
  if (flags.live) {
    // The hops need the Ingresses, Services, EndpointSlices and Nodes: a live trace would list them from
    // the API as well as read this kernel's rules. Not built yet; the dry run answers the same question.
    throw new CliExit(
      2,
      'trace --url works on manifests only: give -f MANIFESTS --config FILE (with --live, trace one packet with --dst/--dport)',
    );
  }
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
  const { config, state } = await loadManifestsAndConfig(flags);
  const report = traceUrl(url, src, state, config, flags.down);
  process.stdout.write(
    flags.output === 'json' ? JSON.stringify(report, null, 2) + '\n' : printableLines(formatUrlTrace(report)),
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
      'instead of --dst/--dport: the access path of this URL through its Ingress, hop by hop (dry run only)',
    )
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
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (flags: TraceFlags) => {
      if (flags.live === (flags.filename !== undefined))
        throw new CliExit(2, 'give exactly one of -f PATH… or --live');
      if (!['tcp', 'udp', 'sctp'].includes(flags.protocol.toLowerCase())) {
        throw new CliExit(2, `--protocol must be tcp, udp or sctp (got "${flags.protocol}")`);
      }
      if (flags.output !== 'text' && flags.output !== 'json')
        throw new CliExit(2, '--output must be text or json');
      const src = parseAddress('--src', flags.src);
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
        flags.output === 'json'
          ? JSON.stringify({ packet: result.packet, outcome: result.outcome }, null, 2) + '\n'
          : // Live rules may carry any comment bytes: no control character reaches the terminal.
            printableLines(result.explanation),
      );
    });
}
