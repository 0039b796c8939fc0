// Real traffic through IPVS as portway renders it, in the IPVS test VM: a ClusterIP + NodePort Service
// with two endpoints is rendered here (renderIpvs, as `portway run` will), its three parts shipped into
// the guest and loaded into a node namespace there — kube-ipvs0 holding the bound addresses, the
// rendered sysctls (net.ipv4.vs.conntrack=1 among them: the masquerade of IPVS traffic needs it), ipset
// restore, ipvsadm -R, iptables-restore. Then requests go from a client namespace to the NodePort, from
// the node to the ClusterIP, and from a backend pod to the ClusterIP (half of them come back to itself:
// KUBE-LOOP-BACK's hairpin masquerade). IPVS round-robin is exact, so each path's 10 requests must land
// 5 and 5.
//
//   client 10.99.0.100 ── eth0 ─ node 10.99.0.2, cbr0 10.244.1.1/24 ─┬─ pod1 10.244.1.11 (httpd :8080)
//                                 kube-ipvs0: 10.96.0.10             └─ pod2 10.244.1.12 (httpd :8080)
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../../src/config/config.js';
import { formatProblem, loadClusterState } from '../../../src/model/index.js';
import {
  ipvsRenderOptionsFromConfig,
  renderIpvs,
  serializeIpsets,
  serializeIpvs,
  serializeIpvsIptables,
  type IpvsRuleSet,
} from '../../../src/render/ipvs/index.js';
import { webNodePortYaml } from '../../fixtures/web-nodeport.js';
import { TWO_POD_NODE_PRELUDE } from './guest-topology.js';
import { prepareIpvsVm, runInIpvsVm, warnIpvsVmSkipped, type IpvsVmRun } from './vm.js';

const vm = await prepareIpvsVm();
if (!vm.ok) warnIpvsVmSkipped('traffic-ipvs-vm', vm.reason);
const maybe = vm.ok ? describe : describe.skip;

const MANIFEST = webNodePortYaml([
  ['10.244.1.11', 'node-a'],
  ['10.244.1.12', 'node-a'],
]);

async function renderNode(): Promise<IpvsRuleSet> {
  const dir = await mkdtemp(join(tmpdir(), 'pw-ipvs-traffic-'));
  try {
    const path = join(dir, 'web.yaml');
    await writeFile(path, MANIFEST);
    const { state, problems } = await loadClusterState([path]);
    if (problems.length > 0) throw new Error(problems.map(formatProblem).join('\n'));
    const config = parseConfig(
      { mode: 'ipvs', nodeName: 'node-a', nodeIPs: ['10.99.0.2'], clusterCIDRs: ['10.244.0.0/16'] },
      'traffic-ipvs-vm',
    );
    return renderIpvs(state, ipvsRenderOptionsFromConfig(config, 'IPv4', ['10.99.0.2']));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The guest builds the namespaces, loads the rendered parts into the node and sends the requests. */
const GUEST_SCRIPT =
  TWO_POD_NODE_PRELUDE +
  String.raw`
set -eu
make_two_pod_node
httpd_pods
x node sysctl -qw net.ipv4.ip_forward=1
while read -r key value; do x node sysctl -qw "$key=$value"; done <sysctls
ip -n node link add kube-ipvs0 type dummy
while read -r address; do ip -n node addr add "$address/32" dev kube-ipvs0; done <bound-addresses
x node ipset restore <node.ipset
x node ipvsadm -R <node.ipvs
x node iptables-restore -w <node.rules
for i in 1 2; do # the servers are up
  for try in $(seq 50); do x node timeout 3 wget -q -O - http://10.244.1.1$i:8080/ >/dev/null 2>&1 && break; sleep 0.1; done
done
get() { # NS URL: one request, its answer (or "failed")
  x "$1" timeout 5 wget -q -O - "$2" 2>/dev/null || echo failed
}
for n in $(seq 10); do echo "client-nodeport $(get client http://10.99.0.2:30080/)"; done
for n in $(seq 10); do echo "node-clusterip $(get node http://10.96.0.10/)"; done
for n in $(seq 10); do echo "pod1-clusterip $(get pod1 http://10.96.0.10/)"; done
echo "@@@ ipvsadm"
x node ipvsadm -Ln --stats
`;

maybe('real traffic through IPVS in the IPVS test VM (rendered ClusterIP + NodePort)', () => {
  let run: IpvsVmRun;
  let answers: Record<string, Record<string, number>>;

  beforeAll(async () => {
    const rs = await renderNode();
    run = await runInIpvsVm({
      script: GUEST_SCRIPT,
      files: {
        'node.ipset': serializeIpsets(rs),
        'node.ipvs': serializeIpvs(rs),
        'node.rules': serializeIpvsIptables(rs, { includeBuiltinJumps: true }),
        'bound-addresses': rs.boundAddresses.map((a) => `${a}\n`).join(''),
        sysctls: rs.sysctls.map((s) => `${s.key.replaceAll('/', '.')} ${s.value}\n`).join(''),
      },
      timeoutMs: 600_000,
    });
    answers = {};
    for (const line of run.output.split('\n')) {
      const m = /^(client-nodeport|node-clusterip|pod1-clusterip) (.*)$/.exec(line);
      if (m) {
        const path = (answers[m[1]!] ??= {});
        path[m[2]!] = (path[m[2]!] ?? 0) + 1;
      }
    }
    console.log(`traffic-ipvs-vm: guest run ${run.durationMs} ms`);
  }, 900_000);

  test('the rendered node loads and the guest script completes', () => {
    expect({ exitCode: run.exitCode, output: run.exitCode === 0 ? '' : run.output }).toEqual({
      exitCode: 0,
      output: '',
    });
  });

  test('rendering gives what the guest relies on: conntrack for IPVS, the ClusterIP on kube-ipvs0', async () => {
    const rs = await renderNode();
    expect(rs.sysctls).toContainEqual(expect.objectContaining({ key: 'net/ipv4/vs/conntrack', value: '1' }));
    expect(rs.boundAddresses).toEqual(['10.96.0.10']);
  });

  test.each(['client-nodeport', 'node-clusterip', 'pod1-clusterip'])(
    '%s: 10 requests, round-robin 5 and 5',
    (path) => {
      expect({ [path]: answers[path] }).toEqual({ [path]: { pod1: 5, pod2: 5 } });
    },
  );
});
