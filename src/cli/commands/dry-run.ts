// `portway render` and `portway diff`: the dry-run path. Same render() as the agent, no kernel.
// The configuration's `mode` decides what is rendered: iptables mode's restore payload, or ipvs mode's
// three parts (ipsets, IPVS virtual servers, the constant iptables rules).
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfigFile } from '../../config/load.js';
import type { Config } from '../../config/config.js';
import type { ClusterState, IPFamily, InputProblem } from '../../model/cluster-state.js';
import { ipFamilyOf } from '../../model/ip.js';
import { formatProblem, loadClusterState } from '../../model/index.js';
import { renderIptables, renderOptionsFromConfig, serializeRuleSet } from '../../render/iptables/index.js';
import type { IptablesRuleSet } from '../../render/types.js';
import {
  diffIsEmpty,
  diffRuleSets,
  formatDiffMarkdown,
  formatDiffText,
  type SkippedObject,
} from '../../plan/diff.js';
import {
  diffIpvsRuleSets,
  formatIpvsDiffMarkdown,
  formatIpvsDiffText,
  ipvsDiffIsEmpty,
} from '../../plan/ipvs-diff.js';
import {
  ipvsRenderOptionsFromConfig,
  renderIpvs,
  serializeIpsets,
  serializeIpvs,
  serializeIpvsIptables,
  type IpvsRuleSet,
} from '../../render/ipvs/index.js';
import {
  diffNftRuleSets,
  formatNftDiffMarkdown,
  formatNftDiffText,
  nftDiffIsEmpty,
} from '../../plan/nftables-diff.js';
import {
  nftablesRenderOptionsFromConfig,
  renderNftables,
  serializeNftables,
  type NftRuleSet,
} from '../../render/nftables/index.js';
import { LoadBalancerController } from '../../lb/lb-controller.js';
import { CliExit } from '../exit.js';
import { formatStructured, isStructured, outputOption } from '../output.js';

const FAMILIES: Record<string, IPFamily> = { ipv4: 'IPv4', ipv6: 'IPv6' };

/**
 * The state the agent would render: with IPAddressPools in the input, LoadBalancer Services get the
 * addresses the allocator gives them (as every agent computes them), exactly as `portway run` does.
 */
export function withAllocatedAddresses(state: ClusterState, config: Config): ClusterState {
  const lb = config.loadBalancer;
  return new LoadBalancerController({ enabled: lb.enabled, loadBalancerClass: lb.loadBalancerClass }).process(
    state,
  ).state;
}

export function renderFamily(state: ClusterState, config: Config, family: IPFamily): IptablesRuleSet {
  const nodeIPs = config.nodeIPs.filter((ip) => ipFamilyOf(ip) === family);
  return renderIptables(state, renderOptionsFromConfig(config, family, nodeIPs));
}

/**
 * ipvs mode of one family as the agent would program it. The kernel version (which decides
 * conn_reuse_mode) is not read: a dry run touches no kernel, so that sysctl is left out, as on a
 * kernel with the fix.
 */
export function renderIpvsFamily(state: ClusterState, config: Config, family: IPFamily): IpvsRuleSet {
  const nodeIPs = config.nodeIPs.filter((ip) => ipFamilyOf(ip) === family);
  return renderIpvs(state, ipvsRenderOptionsFromConfig(config, family, nodeIPs));
}

/** nftables mode of one family: portway's own table (dry run only for now, issue 14). */
export function renderNftablesFamily(state: ClusterState, config: Config, family: IPFamily): NftRuleSet {
  const nodeIPs = config.nodeIPs.filter((ip) => ipFamilyOf(ip) === family);
  return renderNftables(state, nftablesRenderOptionsFromConfig(config, family, nodeIPs));
}

/** The rules of one family in the configured mode: what `trace` walks. */
export function renderModeFamily(
  state: ClusterState,
  config: Config,
  family: IPFamily,
): IptablesRuleSet | IpvsRuleSet {
  if (config.mode === 'nftables') {
    throw new CliExit(
      2,
      'trace does not walk nftables rulesets yet (mode: nftables; `portway render` prints them)',
    );
  }
  return config.mode === 'ipvs'
    ? renderIpvsFamily(state, config, family)
    : renderFamily(state, config, family);
}

/** The parts of ipvs mode `render --part` can print, each in its tool's input format. */
export const IPVS_PARTS = ['ipset', 'ipvs', 'iptables'] as const;
export type IpvsPart = (typeof IPVS_PARTS)[number];

const IPVS_PART_HEADERS: Record<IpvsPart, string> = {
  ipset: '# ipset restore input',
  ipvs: '# ipvsadm-restore input (as ipvsadm-save -n prints it)',
  iptables: '# iptables-restore input',
};

function serializeIpvsPart(rs: IpvsRuleSet, part: IpvsPart): string {
  switch (part) {
    case 'ipset':
      return serializeIpsets(rs);
    case 'ipvs':
      return serializeIpvs(rs);
    case 'iptables':
      return serializeIpvsIptables(rs, { includeBuiltinJumps: true });
  }
}

/**
 * `render` output of ipvs mode: one part as its tool takes it (so it can be piped), or all three, each
 * under a one-line `#` header naming the family and the tool.
 */
export function formatIpvsRender(rs: IpvsRuleSet, part: IpvsPart | undefined): string {
  if (part !== undefined) return serializeIpvsPart(rs, part);
  return IPVS_PARTS.map((p) => `${IPVS_PART_HEADERS[p]}, ${rs.family}\n${serializeIpvsPart(rs, p)}`).join(
    '\n',
  );
}

/** Load manifests, print each problem (file, object, field) to stderr; --strict makes any problem fatal. */
async function loadReported(
  paths: string[],
  config: Config,
  strict: boolean,
  label = '',
): Promise<ClusterState> {
  return (await loadWithProblems(paths, config, strict, label)).state;
}

async function loadWithProblems(
  paths: string[],
  config: Config,
  strict: boolean,
  label = '',
): Promise<{ state: ClusterState; problems: InputProblem[] }> {
  // A path that is not there is a mistake in the command line, not a malformed object: always fatal.
  for (const p of paths)
    if (p !== '-' && !existsSync(p)) throw new CliExit(2, `${label}no such file or directory: ${p}`);
  const { state, problems } = await loadClusterState(paths);
  reportProblems(problems, label);
  if (strict && problems.length > 0) {
    throw new CliExit(2, `${problems.length} invalid object(s) and --strict is set`);
  }
  return { state: withAllocatedAddresses(state, config), problems };
}

function reportProblems(problems: InputProblem[], label: string): void {
  for (const p of problems) process.stderr.write(`portway: ${label}skipped: ${formatProblem(p)}\n`);
}

export function registerDryRunCommands(program: Command): void {
  program
    .command('render')
    .description(
      'print what portway would program on a node (no kernel touched): the iptables-restore payload, in ipvs mode its ipsets, IPVS virtual servers and iptables rules, in nftables mode the nft -f input of its table',
    )
    .requiredOption(
      '-f, --filename <paths...>',
      'manifest files or directories (YAML/JSON, kind: List), - for stdin',
    )
    .option(
      '--config <file>',
      'agent configuration (YAML or JSON); its mode picks iptables, ipvs or nftables',
    )
    .option('--family <family>', 'ipv4 or ipv6', 'ipv4')
    .addOption(outputOption(['rules', 'text', 'json', 'yaml'], 'rules', "rules = text: the tools' input"))
    .option(
      '--part <part>',
      'ipvs mode: print only ipset (ipset restore), ipvs (ipvsadm-restore) or iptables (iptables-restore); iptables mode has only the iptables part',
    )
    .option('--strict', 'exit 2 (printing nothing) when any object is invalid', false)
    .action(
      async (opts: {
        filename: string[];
        config?: string;
        family: string;
        output: string;
        part?: string;
        strict: boolean;
      }) => {
        const family = FAMILIES[opts.family];
        if (!family) throw new CliExit(2, `--family must be ipv4 or ipv6 (got "${opts.family}")`);
        const part = opts.part as IpvsPart | undefined;
        if (part !== undefined && !IPVS_PARTS.includes(part)) {
          throw new CliExit(2, `--part must be ipset, ipvs or iptables (got "${opts.part}")`);
        }
        if (part !== undefined && isStructured(opts.output)) {
          throw new CliExit(
            2,
            `--part selects one text part; -o ${opts.output} prints the whole structure (leave out --part)`,
          );
        }
        const config = await loadConfigFile(opts.config);
        if (config.mode === 'iptables' && part !== undefined && part !== 'iptables') {
          // iptables mode programs no ipsets and no IPVS: an empty part would read as "nothing to do".
          throw new CliExit(
            2,
            `--part ${part}: mode iptables has no ${part} part (only iptables; set mode: ipvs in --config)`,
          );
        }
        if (config.mode === 'nftables' && part !== undefined) {
          throw new CliExit(
            2,
            `--part ${part}: mode nftables has one part, the nft -f input (leave out --part)`,
          );
        }
        const state = await loadReported(opts.filename, config, opts.strict);
        if (config.mode === 'nftables') {
          const ruleSet = renderNftablesFamily(state, config, family);
          process.stdout.write(
            opts.output === 'json' ? JSON.stringify(ruleSet, null, 2) + '\n' : serializeNftables(ruleSet),
          );
          return;
        }
        if (config.mode === 'ipvs') {
          const ruleSet = renderIpvsFamily(state, config, family);
          process.stdout.write(
            isStructured(opts.output)
              ? await formatStructured(ruleSet, opts.output)
              : formatIpvsRender(ruleSet, part),
          );
          return;
        }
        const ruleSet = renderFamily(state, config, family);
        process.stdout.write(
          isStructured(opts.output)
            ? await formatStructured(ruleSet, opts.output)
            : serializeRuleSet(ruleSet, { includeBuiltinJumps: true }),
        );
      },
    );

  program
    .command('diff')
    .description(
      'show what would change on a node between two sets of manifests; exit 1 when something changes',
    )
    .requiredOption('--before <paths...>', 'manifests before the change')
    .option('-f, --filename <paths...>', 'manifests after the change')
    .option('--after <paths...>', 'the same as -f')
    .option('--config <file>', 'agent configuration (YAML or JSON)')
    .addOption(outputOption(['text', 'json', 'yaml', 'markdown'], 'text'))
    .option('--strict', 'exit 2 when any object is invalid', false)
    .action(
      async (opts: {
        before: string[];
        filename?: string[];
        after?: string[];
        config?: string;
        output: string;
        strict: boolean;
      }) => {
        const afterPaths = [...(opts.filename ?? []), ...(opts.after ?? [])];
        if (afterPaths.length === 0)
          throw new CliExit(2, 'give the manifests after the change: -f PATH… (or --after)');
        const config = await loadConfigFile(opts.config);
        const before = await loadWithProblems(opts.before, config, opts.strict, 'before: ');
        const after = await loadWithProblems(afterPaths, config, opts.strict, 'after: ');
        const skipped: SkippedObject[] = [
          ...before.problems.map((p) => ({ side: 'before' as const, problem: formatProblem(p) })),
          ...after.problems.map((p) => ({ side: 'after' as const, problem: formatProblem(p) })),
        ];
        const families: IPFamily[] = ['IPv4', 'IPv6'];
        if (config.mode === 'nftables') {
          const diff = diffNftRuleSets(
            families.map((f) => renderNftablesFamily(before.state, config, f)),
            families.map((f) => renderNftablesFamily(after.state, config, f)),
          );
          process.stdout.write(
            opts.output === 'json'
              ? JSON.stringify({ mode: 'nftables', ...diff, skipped }, null, 2) + '\n'
              : opts.output === 'markdown'
                ? formatNftDiffMarkdown(diff, skipped)
                : formatNftDiffText(diff, skipped),
          );
          if (!nftDiffIsEmpty(diff)) throw new CliExit(1);
          return;
        }
        if (config.mode === 'ipvs') {
          const diff = diffIpvsRuleSets(
            families.map((f) => renderIpvsFamily(before.state, config, f)),
            families.map((f) => renderIpvsFamily(after.state, config, f)),
          );
          process.stdout.write(
            isStructured(opts.output)
              ? await formatStructured({ mode: 'ipvs', ...diff, skipped }, opts.output)
              : opts.output === 'markdown'
                ? formatIpvsDiffMarkdown(diff, skipped)
                : formatIpvsDiffText(diff, skipped),
          );
          if (!ipvsDiffIsEmpty(diff)) throw new CliExit(1);
          return;
        }
        const diff = diffRuleSets(
          families.map((f) => renderFamily(before.state, config, f)),
          families.map((f) => renderFamily(after.state, config, f)),
        );
        const text = isStructured(opts.output)
          ? await formatStructured({ ...diff, skipped }, opts.output)
          : opts.output === 'markdown'
            ? formatDiffMarkdown(diff, skipped)
            : formatDiffText(diff, skipped);
        process.stdout.write(text);
        if (!diffIsEmpty(diff)) throw new CliExit(1);
      },
    );
}
