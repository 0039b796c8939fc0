// Every golden case's ipvs-mode parts applied to a kernel that has IPVS (the QEMU guest of hack/ipvs-vm),
// each family in a fresh network namespace of the guest, as the apply side will: `kube-ipvs0` created
// (dummy), the .ipset part by `ipset restore`, the .ipvs part by `ipvsadm-restore`, the .rules part by
// iptables-restore/ip6tables-restore — `-m ipvs` rules included, which this machine's
// kernel cannot load. Read back: `ipvsadm-save -n` holds the golden .ipvs's virtual and real servers,
// read by the same parser the apply side will use (its `--set` line is checked through
// `ipvsadm -L --timeout`, which is where the kernel reports it), `ipset save` holds
// the same sets, types, options and members, iptables-save the same chains and rule counts. All cases
// run in two guest boots (one per core): a boot costs seconds under emulation, a case well under one.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseIpvsadmRules,
  type ParsedIpvsTable,
  type ParsedVirtualServer,
} from '../../../src/render/ipvs/index.js';
import { GOLDEN_DIR, goldenCases, IPVS_FILES } from '../../golden/golden-cases.js';
import { chainSummary } from '../harness/restore-check.js';
import { prepareIpvsVm, runInIpvsVm, warnIpvsVmSkipped, type IpvsVmRun } from './vm.js';

const vm = await prepareIpvsVm();
if (!vm.ok) warnIpvsVmSkipped('golden-ipvs-vm', vm.reason);
const maybe = vm.ok ? describe : describe.skip;

const FAMILIES = [
  { family: 'IPv4', tag: 'ipv4', iptables: 'iptables' },
  { family: 'IPv6', tag: 'ipv6', iptables: 'ip6tables' },
] as const;
// The guest's iptables backend is nft, as on the host; the legacy backend's loading of the same rules is
// covered on the host (golden-ipvs-load), where only the `-m ipvs` lines cannot load.
const BACKENDS = ['nft'] as const;

/**
 * The guest's script: per case and family a namespace, the loads, then the read-backs; every step's
 * output framed by "@@@ begin KEY" / "@@@ end KEY EXITCODE" lines.
 */
const GUEST_SCRIPT = String.raw`
set -u
step() { # KEY STDIN-FILE|- COMMAND...
  local key=$1 input=$2
  shift 2
  echo "@@@ begin $key"
  if [ "$input" = - ]; then "$@" 2>&1; else "$@" <"$input" 2>&1; fi
  echo "@@@ end $key $?"
}
# One case and family, in a namespace of its own (unshare -n). Every exec costs ~0.1-0.3 s under
# emulation, so: one bash per namespace, one ip batch, and ipvsadm -R / -S -n directly (what the
# ipvsadm-restore / ipvsadm-save scripts run, after a bash, a grep and an ipvsadm -C of their own).
# Loopback up as on any node: IPVS refuses real servers (EINVAL) in a namespace whose lo is down.
one() {
  local dir=$1 f=$2 k ipt
  k="$(basename "$dir") $f"
  ipt=$([ "$f" = ipv4 ] && echo iptables || echo ip6tables)
  step "$k dummy" - ip -batch - <<<$'link set lo up\nlink add kube-ipvs0 type dummy'
  step "$k ipset-restore" "$dir/ipvs-$f.ipset" ipset restore
  step "$k ipvsadm-restore" "$dir/ipvs-$f.ipvs" ipvsadm -R
  step "$k nft-restore" "$dir/ipvs-$f.rules" "$ipt-nft-restore" -w
  step "$k ipvsadm-save" /dev/null ipvsadm -S -n
  if grep -q '^--set ' "$dir/ipvs-$f.ipvs"; then step "$k timeout" /dev/null ipvsadm -L --timeout; fi
  step "$k ipset-save" /dev/null ipset save
  step "$k nft-save" /dev/null "$ipt-nft-save"
}
export -f step one
for dir in golden/*/; do
  for f in ipv4 ipv6; do unshare -n bash -c 'one "$@"' one "$dir" "$f"; done
done
`;

interface StepResult {
  exitCode: number;
  output: string;
}

/** "KEY" → its step's exit code and output, from the framed guest output. */
function parseSteps(output: string): Map<string, StepResult> {
  const steps = new Map<string, StepResult>();
  let key: string | null = null;
  let lines: string[] = [];
  for (const line of output.split('\n')) {
    const begin = /^@@@ begin (.+)$/.exec(line);
    const end = /^@@@ end (.+) (\d+)$/.exec(line);
    if (begin) {
      key = begin[1]!;
      lines = [];
    } else if (end && end[1] === key) {
      steps.set(key, { exitCode: Number(end[2]), output: lines.join('\n') });
      key = null;
    } else if (key !== null) {
      lines.push(line);
    }
  }
  return steps;
}

/** name → type, creation options (ipset's own bucketsize/initval left out) and sorted members. */
function ipsetState(text: string): Record<string, { type: string; options: string; members: string[] }> {
  const sets: Record<string, { type: string; options: string; members: string[] }> = {};
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    const name = words[1];
    if (name === undefined) continue;
    if (words[0] === 'create') {
      const options: string[] = [];
      for (let i = 3; i < words.length; i++) {
        const w = words[i]!;
        if (w === '-exist') continue;
        if (w === 'bucketsize' || w === 'initval') i++;
        else options.push(w);
      }
      sets[name] = { type: words[2] ?? '', options: options.join(' '), members: [] };
    } else if (words[0] === 'add') {
      sets[name]?.members.push(words.slice(2).join(' '));
    }
  }
  for (const set of Object.values(sets)) set.members.sort();
  return sets;
}

/** Virtual servers in protocol, address, port order; each one's real servers as the kernel keeps them (added order). */
function sortedVirtualServers(table: ParsedIpvsTable): ParsedVirtualServer[] {
  const key = (vs: ParsedVirtualServer): string => `${vs.protocol} ${vs.address} ${vs.port}`;
  return [...table.virtualServers].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

const golden = (name: string, tag: string, part: 'ipset' | 'ipvs' | 'rules'): string =>
  readFileSync(join(GOLDEN_DIR, name, `ipvs-${tag}.${part}`), 'utf8');

maybe('ipvs golden parts applied in the IPVS test VM (real IPVS, ipset and iptables)', () => {
  const cases = goldenCases();
  let runs: IpvsVmRun[];
  let steps: Map<string, StepResult>;

  beforeAll(async () => {
    // Two guests in parallel, each with half of the cases: CI has two cores and a guest uses one.
    const shards = [0, 1].map((shard) => cases.filter((_, i) => i % 2 === shard));
    runs = await Promise.all(
      shards.map((shardCases) => {
        const files: Record<string, string> = {};
        for (const name of shardCases)
          for (const { file } of IPVS_FILES)
            files[`golden/${name}/${file}`] = readFileSync(join(GOLDEN_DIR, name, file), 'utf8');
        return runInIpvsVm({ script: GUEST_SCRIPT, files, timeoutMs: 600_000 });
      }),
    );
    steps = new Map(runs.flatMap((r) => [...parseSteps(r.output)]));
    console.log(
      `golden-ipvs-vm: ${cases.length} cases x 2 families in ${runs.length} parallel guests: ` +
        runs.map((r) => `${r.durationMs} ms`).join(', '),
    );
  }, 900_000);

  const withTimeouts = cases
    .flatMap((name) => FAMILIES.map(({ tag }) => golden(name, tag, 'ipvs')))
    .filter((text) => text.startsWith('--set ')).length;

  test('the guest scripts ran to their end', () => {
    expect({ exitCodes: runs.map((r) => r.exitCode), steps: steps.size }).toEqual({
      exitCodes: runs.map(() => 0),
      steps: cases.length * FAMILIES.length * 7 + withTimeouts,
    });
  });

  test.each(cases)('%s', (name) => {
    for (const { tag } of FAMILIES) {
      const step = (what: string): StepResult => {
        const s = steps.get(`${name} ${tag} ${what}`);
        if (s === undefined) throw new Error(`${name} ${tag}: no "${what}" step in the guest output`);
        return s;
      };
      const loads = ['dummy', 'ipset-restore', 'ipvsadm-restore', ...BACKENDS.map((b) => `${b}-restore`)];
      expect({ [`${name} ${tag}`]: loads.map((what) => ({ what, ...step(what) })) }).toEqual({
        [`${name} ${tag}`]: loads.map((what) => ({ what, exitCode: 0, output: '' })),
      });

      // Compared parsed: the kernel lists virtual servers in its hash order, not the file's, and
      // ipvsadm-save prints "-p" before "-b" where the golden file has them the other way round.
      const goldenTable = parseIpvsadmRules(golden(name, tag, 'ipvs'));
      const kernelTable = parseIpvsadmRules(step('ipvsadm-save').output);
      expect({ [`${name} ${tag} ipvsadm-save -n`]: sortedVirtualServers(kernelTable) }).toEqual({
        [`${name} ${tag} ipvsadm-save -n`]: sortedVirtualServers(goldenTable),
      });
      if (goldenTable.timeouts !== null) {
        const { tcpSeconds, tcpFinSeconds, udpSeconds } = goldenTable.timeouts;
        expect(step('timeout').output).toContain(
          `Timeout (tcp tcpfin udp): ${tcpSeconds} ${tcpFinSeconds} ${udpSeconds}`,
        );
      }

      expect({ [`${name} ${tag} ipset save`]: ipsetState(step('ipset-save').output) }).toEqual({
        [`${name} ${tag} ipset save`]: ipsetState(golden(name, tag, 'ipset')),
      });

      const rules = golden(name, tag, 'rules');
      for (const backend of BACKENDS) {
        expect({ [`${name} ${tag} ${backend}`]: chainSummary(step(`${backend}-save`).output) }).toEqual({
          [`${name} ${tag} ${backend}`]: chainSummary(rules),
        });
      }
    }
  });
});
