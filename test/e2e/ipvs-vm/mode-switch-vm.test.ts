// A mode switch iptables → ipvs under traffic, in the IPVS test VM with the real agent (bundled, see
// portway-in-guest.ts): `portway run` in iptables mode programs a node namespace; a client sends a request
// to the NodePort every ~50 ms; the agent is stopped (SIGTERM: its rules stay) and started again with
// mode: ipvs. Its first sync puts IPVS, the sets, kube-ipvs0 and ipvs mode's rules in place, and only then
// removes iptables mode's KUBE-SVC/SEP/NODEPORTS chains (src/sync/mode-takeover.ts). No request may fail.
//
//   client 10.99.0.100 ── eth0 ─ node 10.99.0.2, cbr0 10.244.1.1/24 ─┬─ pod1 10.244.1.11 (httpd :8080)
//                                                                    └─ pod2 10.244.1.12 (httpd :8080)
import { guestSection } from './ipvs-node.js';
import { PORTWAY_GUEST_PRELUDE, portwayGuestPaths } from './portway-in-guest.js';
import { prepareIpvsVm, runInIpvsVm, warnIpvsVmSkipped, type IpvsVmRun } from './vm.js';

const vm = await prepareIpvsVm();
if (!vm.ok) warnIpvsVmSkipped('mode-switch-vm', vm.reason);
const maybe = vm.ok ? describe : describe.skip;

const MANIFEST = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: demo }
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  ports: [{ name: http, port: 80, targetPort: 8080, nodePort: 30080 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: demo, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
  - { addresses: [10.244.1.11], conditions: { ready: true }, nodeName: node-a }
  - { addresses: [10.244.1.12], conditions: { ready: true }, nodeName: node-a }
`;

const config = (mode: string): string => `
mode: ${mode}
nodeName: node-a
nodeIPs: [10.99.0.2]
clusterCIDRs: [10.244.0.0/16]
loadBalancer: { layer2: false }
`;

const GUEST_SCRIPT =
  PORTWAY_GUEST_PRELUDE +
  String.raw`
set -eu
x() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
for ns in client node pod1 pod2; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add eth0 netns client type veth peer name eth0 netns node
ip -n client addr add 10.99.0.100/24 dev eth0
ip -n client link set eth0 up
ip -n node addr add 10.99.0.2/24 dev eth0
ip -n node link set eth0 up
ip -n node link add cbr0 type bridge
ip -n node addr add 10.244.1.1/24 dev cbr0
ip -n node link set cbr0 up
for i in 1 2; do
  ip link add eth0 netns pod$i type veth peer name veth$i netns node
  ip -n pod$i addr add 10.244.1.1$i/24 dev eth0
  ip -n pod$i link set eth0 up
  ip -n pod$i route add default via 10.244.1.1
  ip -n node link set veth$i master cbr0 up
  mkdir -p /tmp/www$i && echo pod$i >/tmp/www$i/index.html
  x pod$i httpd -p 8080 -h /tmp/www$i
done
x node sysctl -qw net.bridge.bridge-nf-call-iptables=1
mkdir -p /tmp/manifests && cp web.yaml /tmp/manifests/
get() { x client timeout 3 wget -q -O - http://10.99.0.2:30080/ 2>/dev/null || echo failed; }
agent() { # MODE LOG: start the agent in the node namespace, print its pid
  ip netns exec node "$PORTWAY_NODE" "$PORTWAY_CLI" run --manifests /tmp/manifests --config "$1.yaml" --log-level info >"$2" 2>&1 &
  echo $!
}
wait_for() { # SECONDS COMMAND…: poll every 0.2 s
  local n=$(($1 * 5)); shift
  for _ in $(seq $n); do if "$@" >/dev/null 2>&1; then return 0; fi; sleep 0.2; done
  return 1
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
