// `portway cleanup` on a real ipvs-mode node in the IPVS test VM: the golden "loadbalancer" case's ipvs
// parts (both families) loaded into a node namespace as the agent programs them — kube-ipvs0 holding the
// bound addresses, ipset restore, ipvsadm -R, iptables-restore — beside another tool's state: a virtual
// server on an address neither bound nor in a KUBE-* set, its own ipset and iptables chain. Then the
// real CLI (bundled, see portway-in-guest.ts) runs `portway cleanup` there. Afterwards only the other
// tool's virtual server, set and chain are left: no KUBE-* chain, set or virtual server, no kube-ipvs0.
import { guestSection, runOnIpvsNode } from './ipvs-node.js';
import { prepareIpvsVm, warnIpvsVmSkipped, type IpvsVmRun } from './vm.js';

const vm = await prepareIpvsVm();
if (!vm.ok) warnIpvsVmSkipped('cleanup-ipvs-vm', vm.reason);
const maybe = vm.ok ? describe : describe.skip;

/** Run on namespace "node" programmed with the golden case (runOnIpvsNode: set -eu, x CMD… runs in node). */
const GUEST_SCRIPT = String.raw`
# Another tool's state: a virtual server, a set, a chain with a built-in jump.
x ipvsadm -A -t 192.0.2.50:443 -s wlc
x ipvsadm -a -t 192.0.2.50:443 -r 10.1.0.1:443 -m -w 1
x ipset create other-tool hash:ip
x iptables -N OTHER-TOOL
x iptables -A OTHER-TOOL -j RETURN
x iptables -A INPUT -j OTHER-TOOL
echo "@@@ before"; x ipvsadm -S -n | grep -c '^-A' || true
echo "@@@ cleanup"; x bash -c 'portway cleanup --log-level warn' 2>&1; echo "exit $?"
echo "@@@ ipvs"; x ipvsadm -S -n
echo "@@@ ipset"; x ipset list -n
echo "@@@ link"; x ip -o link show dev kube-ipvs0 2>&1 || true
echo "@@@ iptables"; x iptables-save; x ip6tables-save
echo "@@@ end"
`;

maybe('portway cleanup on an ipvs-mode node (IPVS test VM)', () => {
  let run: IpvsVmRun;

  beforeAll(async () => {
    run = await runOnIpvsNode('loadbalancer', GUEST_SCRIPT);
    console.log(`cleanup-ipvs-vm: guest run ${run.durationMs} ms`);
  }, 900_000);

  test('the node was programmed and cleanup exited 0', () => {
    const before = Number(guestSection(run.output, 'before').trim());
    // The case's ClusterIP, NodePort and LoadBalancer virtual servers, and the other tool's.
    expect({ exitCode: run.exitCode, before: before === 4 ? 'programmed' : run.output }).toEqual({
      exitCode: 0,
      before: 'programmed',
    });
    expect(guestSection(run.output, 'cleanup')).toMatch(
      /removed \d+ chain\(s\), \d+ built-in jump\(s\), \d+ ipset\(s\), 3 IPVS virtual server\(s\), kube-ipvs0;.*\nexit 0\n/,
    );
  });

  test('only the other tool’s virtual server is left', () => {
    expect(guestSection(run.output, 'ipvs').trim().split('\n')).toEqual([
      '-A -t 192.0.2.50:443 -s wlc',
      '-a -t 192.0.2.50:443 -r 10.1.0.1:443 -m -w 1',
    ]);
  });

  test('only the other tool’s set is left, and kube-ipvs0 is gone', () => {
    expect(guestSection(run.output, 'ipset').trim().split('\n')).toEqual(['other-tool']);
    expect(guestSection(run.output, 'link')).toMatch(/does not exist/);
  });

  test('no KUBE-* chain or jump is left; the other tool’s chain and jump are', () => {
    const rules = guestSection(run.output, 'iptables');
    expect(rules).not.toMatch(/KUBE-/);
    expect(rules).toContain('-A INPUT -j OTHER-TOOL');
    expect(rules).toContain(':OTHER-TOOL - [0:0]');
  });
});
