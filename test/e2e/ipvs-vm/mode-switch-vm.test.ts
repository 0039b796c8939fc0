// A mode switch iptables → ipvs under traffic, in the IPVS test VM with the real agent (bundled, see
// portway-in-guest.ts): `portway run` in iptables mode programs a node namespace; a client sends a request
// to the NodePort every ~50 ms; the agent is stopped (SIGTERM: its rules stay) and started again with
// mode: ipvs. Its first sync puts IPVS, the sets, kube-ipvs0 and ipvs mode's rules in place, and only then
// removes iptables mode's KUBE-SVC/SEP/NODEPORTS chains (src/sync/mode-takeover.ts). No request may fail.
//
//   client 10.99.0.100 ── eth0 ─ node 10.99.0.2, cbr0 10.244.1.1/24 ─┬─ pod1 10.244.1.11 (httpd :8080)
//                                                                    └─ pod2 10.244.1.12 (httpd :8080)
import { webNodePortYaml } from '../../fixtures/web-nodeport.js';
import { TWO_POD_NODE_PRELUDE } from './guest-topology.js';
import { guestSection } from './ipvs-node.js';
import { PORTWAY_GUEST_PRELUDE, portwayGuestPaths } from './portway-in-guest.js';
import { prepareIpvsVm, runInIpvsVm, warnIpvsVmSkipped, type IpvsVmRun } from './vm.js';

const vm = await prepareIpvsVm();
if (!vm.ok) warnIpvsVmSkipped('mode-switch-vm', vm.reason);
const maybe = vm.ok ? describe : describe.skip;

const MANIFEST = webNodePortYaml([
  ['10.244.1.11', 'node-a'],
  ['10.244.1.12', 'node-a'],
]);

const config = (mode: string): string => `
mode: ${mode}
nodeName: node-a
nodeIPs: [10.99.0.2]
clusterCIDRs: [10.244.0.0/16]
loadBalancer: { layer2: false }
`;

const GUEST_SCRIPT =
  PORTWAY_GUEST_PRELUDE +
  TWO_POD_NODE_PRELUDE +
  String.raw`
set -eu
make_two_pod_node
httpd_pods
mkdir -p /tmp/manifests && cp web.yaml /tmp/manifests/
get() { x client timeout 3 wget -q -O - http://10.99.0.2:30080/ 2>/dev/null || echo failed; }
agent() { # MODE LOG: start the agent in the node namespace, print its pid
  ip netns exec node "$PORTWAY_NODE" "$PORTWAY_CLI" run --manifests /tmp/manifests --config "$1.yaml" --log-level info >"$2" 2>&1 &
  echo $!
}
first=$(agent iptables /tmp/agent-iptables.log)
served_by_iptables() { ip netns exec node iptables-save -t nat | grep -q '^:KUBE-SVC-' && [ "$(get)" != failed ]; }
wait_for 120 served_by_iptables || { echo "iptables mode never served"; cat /tmp/agent-iptables.log; exit 1; }
echo "@@@ iptables mode serving"
( while [ ! -f /tmp/stop ]; do echo "req $(get)" >>/tmp/traffic; sleep 0.05; done ) &
loop=$!
sleep 2
kill -TERM "$first"
wait "$first" || true
echo "@@@ iptables agent stopped"
second=$(agent ipvs /tmp/agent-ipvs.log)
# Leftovers go after the first ipvs sync: wait until no KUBE-SVC chain is left, then keep the traffic on a while.
# The agent's own full sync already drops the per-service chains; the fixed iptables-only chains
# (KUBE-NODEPORTS, KUBE-EXTERNAL-SERVICES) and their built-in jumps go by the takeover, seconds later here.
leftovers_gone() { ! ip netns exec node iptables-save | grep -q '^:KUBE-SVC-\|^:KUBE-NODEPORTS\|^:KUBE-EXTERNAL-SERVICES'; }
wait_for 180 leftovers_gone || { echo "iptables mode's chains were never removed"; cat /tmp/agent-ipvs.log; }
sleep 2
touch /tmp/stop
wait "$loop" || true
kill -TERM "$second"; wait "$second" || true
echo "@@@ requests"; sort /tmp/traffic | uniq -c
echo "@@@ ipvs"; x node ipvsadm -S -n
echo "@@@ nat"; x node iptables-save | grep '^:KUBE-SVC-\|^:KUBE-SEP-\|^:KUBE-EXT-\|^:KUBE-NODEPORTS\|^:KUBE-EXTERNAL-SERVICES\|KUBE-SVC-' || true
echo "@@@ agent logs"; grep -i "leftover\\|error" /tmp/agent-ipvs.log | cut -c1-600 || true
echo "@@@ end"
`;

maybe('mode switch iptables → ipvs under traffic (IPVS test VM)', () => {
  let run: IpvsVmRun;
  const answers: Record<string, number> = {};

  beforeAll(async () => {
    run = await runInIpvsVm({
      script: GUEST_SCRIPT,
      files: { 'web.yaml': MANIFEST, 'iptables.yaml': config('iptables'), 'ipvs.yaml': config('ipvs') },
      paths: await portwayGuestPaths(),
      timeoutMs: 600_000,
    });
    for (const m of guestSection(run.output, 'requests').matchAll(/^\s*(\d+) req (.*)$/gm))
      answers[m[2]!] = Number(m[1]);
    console.log(`mode-switch-vm: guest run ${run.durationMs} ms, answers ${JSON.stringify(answers)}`);
  }, 900_000);

  test('the guest script completes; both agents served', () => {
    expect({ exitCode: run.exitCode, output: run.exitCode === 0 ? '' : run.output }).toEqual({
      exitCode: 0,
      output: '',
    });
    expect(run.output).toContain('@@@ iptables agent stopped');
  });

  test('no request failed across the switch, and both pods answered', () => {
    expect({ failed: answers.failed ?? 0, output: (answers.failed ?? 0) === 0 ? '' : run.output }).toEqual({
      failed: 0,
      output: '',
    });
    expect(answers.pod1).toBeGreaterThan(10);
    expect(answers.pod2).toBeGreaterThan(10);
  });

  test('afterwards IPVS serves the Service and iptables mode’s chains are gone', () => {
    expect(guestSection(run.output, 'ipvs')).toContain('-A -t 10.99.0.2:30080 -s rr');
    const left = guestSection(run.output, 'nat').trim();
    expect({ left, output: left === '' ? '' : run.output }).toEqual({ left: '', output: '' });
  });
});
