// Shared by the golden runner and the e2e loader: discover cases and render their payloads.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { parseConfig, type Config } from '../../src/config/config.js';
import type { IPFamily } from '../../src/model/cluster-state.js';
import { ipFamilyOf } from '../../src/model/ip.js';
import { formatProblem, loadClusterState } from '../../src/model/index.js';
import {
  renderIptables,
  renderOptionsFromConfig,
  serializeRuleSet,
} from '../../src/render/iptables/index.js';
import {
  nftablesRenderOptionsFromConfig,
  renderNftables,
  serializeNftables,
} from '../../src/render/nftables/index.js';
import {
  ipvsRenderOptionsFromConfig,
  renderIpvs,
  serializeIpsets,
  serializeIpvs,
  serializeIpvsIptables,
} from '../../src/render/ipvs/index.js';

export const GOLDEN_DIR = dirname(fileURLToPath(import.meta.url));

/** The node every case renders for unless its config.yaml says otherwise. */
export const DEFAULT_GOLDEN_CONFIG = {
  nodeName: 'node-a',
  nodeIPs: ['10.99.0.2', 'fd00:99::2'],
  clusterCIDRs: ['10.244.0.0/16', 'fd00:244::/56'],
};

export const FAMILY_FILES: Array<{ family: IPFamily; file: string }> = [
  { family: 'IPv4', file: 'ipv4.rules' },
  { family: 'IPv6', file: 'ipv6.rules' },
];

/** ipvs mode's three parts per family: ipset restore input, ipvsadm-restore input, iptables-restore input. */
export type IpvsPart = 'ipset' | 'ipvs' | 'rules';
export const IPVS_FILES: Array<{ family: IPFamily; part: IpvsPart; file: string }> = (
  ['IPv4', 'IPv6'] as const
).flatMap((family) =>
  (['ipset', 'ipvs', 'rules'] as const).map((part) => ({
    family,
    part,
    file: `ipvs-${family === 'IPv4' ? 'ipv4' : 'ipv6'}.${part}`,
  })),
);

/** nftables mode: the `nft -f` input of portway's table per family (test/e2e/golden-nft-load.test.ts loads them). */
export const NFTABLES_FILES: Array<{ family: IPFamily; file: string }> = [
  { family: 'IPv4', file: 'nftables-ipv4.nft' },
  { family: 'IPv6', file: 'nftables-ipv6.nft' },
];

export function goldenCases(): string[] {
  return readdirSync(GOLDEN_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(GOLDEN_DIR, d.name, 'input.yaml')))
    .map((d) => d.name)
    .sort();
}

export function caseConfig(name: string): Config {
  const path = join(GOLDEN_DIR, name, 'config.yaml');
  const raw = existsSync(path) ? (parseYaml(readFileSync(path, 'utf8')) as Record<string, unknown>) : {};
  return parseConfig({ ...DEFAULT_GOLDEN_CONFIG, ...raw }, path);
}

/** Render both families of a case; any input problem is an error (golden inputs must be valid). */
export async function renderCase(name: string): Promise<Record<string, string>> {
  const { state, problems } = await loadClusterState([join(GOLDEN_DIR, name, 'input.yaml')]);
  if (problems.length > 0)
    throw new Error(`${name}: invalid input:\n${problems.map(formatProblem).join('\n')}`);
  const config = caseConfig(name);
  const out: Record<string, string> = {};
  for (const { family, file } of FAMILY_FILES) {
    const nodeIPs = config.nodeIPs.filter((ip) => ipFamilyOf(ip) === family);
    const rs = renderIptables(state, renderOptionsFromConfig(config, family, nodeIPs));
    out[file] = serializeRuleSet(rs, { includeBuiltinJumps: true });
    // ipvs mode of the same node and cluster (the kernel version is unknown: conn_reuse_mode left alone).
    const ipvs = renderIpvs(state, ipvsRenderOptionsFromConfig(config, family, nodeIPs));
    for (const part of IPVS_FILES.filter((f) => f.family === family)) {
      out[part.file] =
        part.part === 'ipset'
          ? serializeIpsets(ipvs)
          : part.part === 'ipvs'
            ? serializeIpvs(ipvs)
            : serializeIpvsIptables(ipvs, { includeBuiltinJumps: true });
    }
    // nftables mode of the same node and cluster.
    const nft = renderNftables(state, nftablesRenderOptionsFromConfig(config, family, nodeIPs));
    out[NFTABLES_FILES.find((f) => f.family === family)?.file ?? ''] = serializeNftables(nft);
  }
  return out;
}
