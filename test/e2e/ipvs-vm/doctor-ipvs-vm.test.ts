// `portway doctor` in ipvs mode against a real IPVS kernel (the IPVS test VM): the golden "loadbalancer"
// case loaded into a node namespace as the agent programs it (both families, strictARP's sysctls set), the
// real CLI (bundled, see portway-in-guest.ts) run there — every check passes — then the kernel drifted by
// hand and doctor run again: each difference is named (a real server deleted, a virtual server and an
// address added, a set entry deleted, an address removed, a chain of the constant rules flushed,
// arp_ignore put back to 0), and it exits 1. In between, `trace --live` walks a packet through that kernel
// after a real server the manifests do not have was added to a virtual server: the trace names it.
import { guestSection, runOnIpvsNode } from './ipvs-node.js';
import { prepareIpvsVm, warnIpvsVmSkipped, type IpvsVmRun } from './vm.js';

const vm = await prepareIpvsVm();
if (!vm.ok) warnIpvsVmSkipped('doctor-ipvs-vm', vm.reason);
const maybe = vm.ok ? describe : describe.skip;

/** Run on namespace "node" programmed with the golden case (runOnIpvsNode: set -eu, x CMD… runs in node). */
const GUEST_SCRIPT = String.raw`
x sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
doctor() { x bash -c 'portway doctor --manifests input.yaml --config config.yaml; echo "exit $?"' 2>&1; }
echo "@@@ clean"; doctor
x ipvsadm -a -t 10.96.0.40:443 -r 10.244.9.9:8443 -m -w 1
echo "@@@ trace"
x bash -c 'portway trace --live --config config.yaml --src 10.244.1.5 --dst 10.96.0.40 --dport 443; echo "exit $?"' 2>&1
x ipvsadm -d -t 10.96.0.40:443 -r 10.244.2.42:8443
x ipvsadm -A -t 10.96.0.99:80 -s rr
x ip addr add 10.96.0.99/32 dev kube-ipvs0
x ipset del KUBE-CLUSTER-IP 10.96.0.40,tcp:443
x ip addr del 192.0.2.40/32 dev kube-ipvs0
x iptables -t nat -F KUBE-LOAD-BALANCER
x sysctl -qw net.ipv4.conf.all.arp_ignore=0
echo "@@@ drifted"; doctor
echo "@@@ end"
`;

maybe('portway doctor in ipvs mode (IPVS test VM)', () => {
  let run: IpvsVmRun;

  beforeAll(async () => {
    run = await runOnIpvsNode('loadbalancer', GUEST_SCRIPT);
    console.log(`doctor-ipvs-vm: guest run ${run.durationMs} ms`);
  }, 900_000);

  test('a node as the agent programs it: every check passes, IPVS is available', () => {
    const clean = guestSection(run.output, 'clean');
    expect({
      exitCode: run.exitCode,
      clean: /All checks passed\.\nexit 0\n/.test(clean) ? 'passed' : clean,
    }).toEqual({
      exitCode: 0,
      clean: 'passed',
    });
    expect(clean).toContain('ok   ipvs/kernel: IPVS is available');
  });

  test("trace --live walks the kernel's IPVS table: the real server only the kernel has is reached", () => {
    const trace = guestSection(run.output, 'trace');
    expect(trace).toContain('verdict: ACCEPT');
    expect(trace).toContain('ipvs virtual server: TCP 10.96.0.40:443, scheduler rr');
    expect(trace).toContain('10.244.9.9:8443 weight 1: 25.0% of new connections');
    expect(trace).toContain('exit 0\n');
  });

  test('a drifted kernel: every difference named, exit 1', () => {
    const drifted = guestSection(run.output, 'drifted');
    const expected = [
      /FAIL ipvs\/virtual-servers: .*\n(.*\n)*\s+missing real server TCP 10\.96\.0\.40:443 -> 10\.244\.2\.42:8443 /,
      /\s+extra real server TCP 10\.96\.0\.40:443 -> 10\.244\.9\.9:8443 /,
      /\s+extra virtual server TCP 10\.96\.0\.99:80 /,
      /FAIL ipvs\/ipsets: .*\n(.*\n)*\s+missing set entry KUBE-CLUSTER-IP 10\.96\.0\.40,tcp:443 /,
      /FAIL ipvs\/addresses: .*\n(.*\n)*\s+missing address 192\.0\.2\.40 on kube-ipvs0/,
      /\s+extra address 10\.96\.0\.99 on kube-ipvs0/,
      /FAIL rules\/IPv4: .*\n(.*\n)*\s+nat KUBE-LOAD-BALANCER: rules differ/,
      /FAIL sysctl\/net\/ipv4\/conf\/all\/arp_ignore: .*is 0, needs 1/,
      /exit 1\n/,
    ];
    const unmatched = expected.filter((re) => !re.test(drifted)).map(String);
    expect({ unmatched, output: unmatched.length === 0 ? '' : drifted }).toEqual({
      unmatched: [],
      output: '',
    });
  });
});
