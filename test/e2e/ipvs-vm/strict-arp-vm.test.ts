// strictARP in the IPVS test VM (the host kernel has no dummy links): two nodes and a client on one bridge,
// the LoadBalancer address bound on kube-ipvs0 of both nodes as ipvs mode binds it. A client's arping then
//   1. without strictARP gets an answer from BOTH nodes' kernels (arp_ignore=0 answers for any local
//      address, kube-ipvs0's included): two MACs — why layer2 on ipvs mode needs strictARP;
//   2. with arp_ignore=1 / arp_announce=2 gets no answer from the kernels (the address is not on eth0);
//   3. with portway's layer2 announcer (src/l2/standalone-main.ts: election, member health, the AF_PACKET
//      responder) running on both nodes gets exactly ONE MAC: the elected owner's.
// Setting the two sysctls through ensureStrictArp and restoring them on cleanup is covered by
// test/unit/l2/strict-arp.test.ts; here the kernel's and the responder's behaviour is the point.
//
//   client 10.99.0.100 ─┐
//   node-a 10.99.0.11  ─┼─ br0 (namespace lan)      kube-ipvs0 on node-a and node-b: 10.99.0.200/32
//   node-b 10.99.0.12  ─┘
import { rankNodes } from '../../../src/l2/election.js';
import { PORTWAY_GUEST_PRELUDE, portwayGuestPaths } from './portway-in-guest.js';
import { prepareIpvsVm, runInIpvsVm, warnIpvsVmSkipped, type IpvsVmRun } from './vm.js';

const vm = await prepareIpvsVm();
if (!vm.ok) warnIpvsVmSkipped('strict-arp-vm', vm.reason);
const maybe = vm.ok ? describe : describe.skip;

const VIP = '10.99.0.200';

const GUEST_SCRIPT =
  PORTWAY_GUEST_PRELUDE +
  String.raw`
set -eu
ip netns add lan
ip -n lan link set lo up
ip -n lan link add br0 type bridge
ip -n lan link set br0 up
n=0
for host in client node-a node-b; do
  n=$((n + 1))
  ip netns add $host
  ip -n $host link set lo up
  ip link add eth0 netns $host type veth peer name p$n netns lan
  ip -n lan link set p$n master br0 up
  ip -n $host link set eth0 up
done
ip -n client addr add 10.99.0.100/24 dev eth0
ip -n node-a addr add 10.99.0.11/24 dev eth0
ip -n node-b addr add 10.99.0.12/24 dev eth0
for node in node-a node-b; do
  ip -n $node link add kube-ipvs0 type dummy
  ip -n $node addr add ${VIP}/32 dev kube-ipvs0
  echo "mac $node $(ip netns exec $node cat /sys/class/net/eth0/address)"
done
macs() { # STEP: the distinct MACs answering the client's ARP for the VIP
  ip -n client neigh flush dev eth0 2>/dev/null || true
  ip netns exec client arping -c 2 -w 3 -I eth0 ${VIP} 2>&1 | sed -n 's/.*\[\(..:..:..:..:..:..\)\].*/\1/p' | sort -u |
    while read -r mac; do echo "answer $1 $mac"; done
  echo "step $1 done"
}
macs kernel-default
for node in node-a node-b; do
  ip netns exec $node sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
done
macs kernel-strict
peers=node-a=10.99.0.11,node-b=10.99.0.12
ip netns exec node-a bash -c "l2_announcer --node node-a --interface eth0 --vip ${VIP} --bind 10.99.0.11 --peers $peers >/tmp/a.log 2>&1 &"
ip netns exec node-b bash -c "l2_announcer --node node-b --interface eth0 --vip ${VIP} --bind 10.99.0.12 --peers $peers >/tmp/b.log 2>&1 &"
# Both announcers up and past their start-up hold: the owner's gratuitous ARP says it answers now.
for try in $(seq 240); do
  grep -qh '"gratuitous ARP"' /tmp/a.log /tmp/b.log 2>/dev/null && break
  sleep 0.5
done
echo "announcing after $try polls"
macs portway-strict
echo "--- announcer logs"; tail -n 5 /tmp/a.log /tmp/b.log
`;

maybe('strictARP with two nodes holding the VIP on kube-ipvs0 (IPVS test VM)', () => {
  let run: IpvsVmRun;
  const answers = new Map<string, string[]>();
  const macOf = new Map<string, string>();

  beforeAll(async () => {
    run = await runInIpvsVm({ script: GUEST_SCRIPT, paths: await portwayGuestPaths(), timeoutMs: 600_000 });
    for (const line of run.output.split('\n')) {
      const mac = /^mac (\S+) (\S+)$/.exec(line);
      if (mac) macOf.set(mac[2]!, mac[1]!);
      const answer = /^answer (\S+) (\S+)$/.exec(line);
      if (answer)
        answers.set(answer[1]!, [...(answers.get(answer[1]!) ?? []), macOf.get(answer[2]!) ?? answer[2]!]);
      const done = /^step (\S+) done$/.exec(line);
      if (done && !answers.has(done[1]!)) answers.set(done[1]!, []);
    }
    console.log(`strict-arp-vm: guest run ${run.durationMs} ms`);
  }, 900_000);

  test('the guest script completes', () => {
    expect({ exitCode: run.exitCode, output: run.exitCode === 0 ? '' : run.output }).toEqual({
      exitCode: 0,
      output: '',
    });
  });

  test('without strictARP both nodes’ kernels answer for the kube-ipvs0 address', () => {
    expect(answers.get('kernel-default')?.sort()).toEqual(['node-a', 'node-b']);
  });

  test('with arp_ignore=1 / arp_announce=2 no kernel answers', () => {
    expect(answers.get('kernel-strict')).toEqual([]);
  });

  test('with portway’s responders on both nodes exactly one MAC answers: the elected owner’s', () => {
    const [owner] = rankNodes(VIP, ['node-a', 'node-b']);
    expect({
      answers: answers.get('portway-strict'),
      output: answers.get('portway-strict')?.length === 1 ? '' : run.output,
    }).toEqual({
      answers: [owner],
      output: '',
    });
  });
});
