// A node namespace in the IPVS test VM programmed with a golden case's ipvs mode as the agent would
// program it: the files (rendered here) and the guest's bash function that loads them. Shared by the
// ipvs-vm tests that run portway's own commands (cleanup, doctor) against such a node.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump as toYaml, load as parseYaml } from 'js-yaml';
import { existsSync } from 'node:fs';
import { formatProblem, loadClusterState } from '../../../src/model/index.js';
import { ipFamilyOf } from '../../../src/model/ip.js';
import { serializeIpsets, serializeIpvs, serializeIpvsIptables } from '../../../src/render/ipvs/index.js';
import { renderIpvsFamilies } from '../../../src/troubleshoot/ipvs-doctor.js';
import { caseConfig, DEFAULT_GOLDEN_CONFIG, GOLDEN_DIR } from '../../golden/golden-cases.js';
import { PORTWAY_GUEST_PRELUDE, portwayGuestPaths } from './portway-in-guest.js';
import { runInIpvsVm, type IpvsVmRun } from './vm.js';

/**
 * The case's input, an ipvs-mode configuration of its node (config.yaml), and per family the three parts,
 * the kube-ipvs0 addresses (ipv4.bound) and the sysctls (sysctls: "key value" lines) — all for
 * `load_ipvs_node` in IPVS_NODE_PRELUDE.
 */
export async function ipvsNodeFiles(caseName: string): Promise<Record<string, string>> {
  const input = join(GOLDEN_DIR, caseName, 'input.yaml');
  const { state, problems } = await loadClusterState([input]);
  if (problems.length > 0) throw new Error(problems.map(formatProblem).join('\n'));
  const config = { ...caseConfig(caseName), mode: 'ipvs' as const };
  const caseYaml = join(GOLDEN_DIR, caseName, 'config.yaml');
  const raw = existsSync(caseYaml)
    ? (parseYaml(readFileSync(caseYaml, 'utf8')) as Record<string, unknown>)
    : {};
  const families = (['IPv4', 'IPv6'] as const).filter((f) =>
    config.nodeIPs.some((ip) => ipFamilyOf(ip) === f),
  );
  const ruleSets = renderIpvsFamilies(state, config, families, config.nodeIPs);
  const files: Record<string, string> = {
    'input.yaml': readFileSync(input, 'utf8'),
    'config.yaml': toYaml({ ...DEFAULT_GOLDEN_CONFIG, ...raw, mode: 'ipvs' }),
    sysctls: [
      ...new Map(ruleSets.flatMap((rs) => rs.sysctls.map((s) => [s.key, s.value] as const))).entries(),
    ]
      .map(([k, v]) => `${k.replaceAll('/', '.')} ${v}\n`)
      .join(''),
  };
  for (const rs of ruleSets) {
    const tag = rs.family === 'IPv4' ? 'ipv4' : 'ipv6';
    files[`${tag}.ipset`] = serializeIpsets(rs);
    files[`${tag}.ipvs`] = serializeIpvs(rs);
    files[`${tag}.rules`] = serializeIpvsIptables(rs, { includeBuiltinJumps: true });
    files[`${tag}.bound`] = rs.boundAddresses.map((a) => `${a}\n`).join('');
  }
  return files;
}

/** Bash: `load_ipvs_node NS` makes namespace NS and programs it from ipvsNodeFiles' files in the cwd. */
export const IPVS_NODE_PRELUDE = String.raw`
load_ipvs_node() {
  local ns=$1 f a key value
  ip netns add "$ns"
  ip netns exec "$ns" bash -euc '
    ip link set lo up # IPVS refuses real servers while lo is down
    ip link add kube-ipvs0 type dummy
    while read -r key value; do sysctl -qw "$key=$value"; done <sysctls
    for f in ipv4 ipv6; do
      [ -f $f.ipset ] || continue
      while read -r a; do
        if [ $f = ipv6 ]; then ip addr add "$a/128" dev kube-ipvs0 nodad; else ip addr add "$a/32" dev kube-ipvs0; fi
      done <$f.bound
      ipset restore <$f.ipset
      ipvsadm -R <$f.ipvs
    done
    iptables-restore -w --noflush <ipv4.rules
    if [ -f ipv6.rules ]; then ip6tables-restore -w --noflush <ipv6.rules; fi
  '
}
`;

/**
 * One guest boot: namespace "node" programmed with the golden case's ipvs mode (load_ipvs_node), then
 * the bash `body` (set -eu) with `portway` (PORTWAY_GUEST_PRELUDE) and `x CMD…` (CMD in node) defined.
 */
export async function runOnIpvsNode(caseName: string, body: string): Promise<IpvsVmRun> {
  return runInIpvsVm({
    script: `${PORTWAY_GUEST_PRELUDE}${IPVS_NODE_PRELUDE}
set -eu
load_ipvs_node node
x() { ip netns exec node "$@"; }
${body}`,
    files: await ipvsNodeFiles(caseName),
    paths: await portwayGuestPaths(),
    timeoutMs: 600_000,
  });
}

/** The lines a guest script printed between "@@@ NAME" and the next "@@@ " line. */
export function guestSection(output: string, name: string): string {
  const start = output.indexOf(`@@@ ${name}\n`);
  if (start < 0) return '';
  const rest = output.slice(start + name.length + 5);
  const end = rest.indexOf('@@@ ');
  return end < 0 ? rest : rest.slice(0, end);
}
