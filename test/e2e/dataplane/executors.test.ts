// The real ipset, sysctl, ip and conntrack executors inside a namespace of the e2e topology.
import { RealConntrack } from '../../../src/dataplane/conntrack.js';
import { createRunner } from '../../../src/dataplane/exec.js';
import { createDataplane } from '../../../src/dataplane/index.js';
import { RealIpLinks } from '../../../src/dataplane/ip.js';
import { FakeIpset, RealIpset } from '../../../src/dataplane/ipset.js';
import { RealIptables } from '../../../src/dataplane/iptables.js';
import { CommandSysctl } from '../../../src/dataplane/sysctl.js';
import { ECHO_UDP_PORT, Topology } from '../harness/topology.js';

describe('real executors in a namespace', () => {
  let topo: Topology;
  let netns: string;
  beforeAll(async () => {
    topo = await Topology.create({ nodes: 1, podsPerNode: 1, ipv6: false });
    netns = topo.node(1).netns;
  }, 60_000);
  afterAll(() => topo?.teardown());

  it('ipset: restore, list and destroy agree with the fake', async () => {
    const payload = [
      'create PW-TEST hash:ip,port family inet hashsize 1024 maxelem 65536 comment',
      'add PW-TEST 10.96.0.10,80 comment "cluster ip"',
      'add PW-TEST 10.96.0.11,udp:53 comment "cluster ip"',
      'create PW-TEST-NET hash:net family inet',
      'add PW-TEST-NET 10.0.0.0/8',
      'add PW-TEST-NET 192.168.1.1/32',
      '',
    ].join('\n');
    const real = new RealIpset({ netns });
    const fake = new FakeIpset();
    await real.restore(payload);
    await real.restore(payload); // -exist: idempotent
    await fake.restore(payload);
    const sortSets = (s: Awaited<ReturnType<RealIpset['list']>>) =>
      s.map((x) => ({ ...x, entries: [...x.entries].sort() })).sort((a, b) => a.name.localeCompare(b.name));
    expect(sortSets(await real.list())).toEqual(sortSets(await fake.list()));
    const err = await real.restore('add PW-TEST not-an-ip,80\n').catch((e: unknown) => e);
    expect(err).toMatchObject({ line: 1 });
    await expect(fake.restore('add PW-TEST not-an-ip,80\n')).rejects.toMatchObject({ line: 1 });
    await real.destroy('PW-TEST');
    await real.destroy('PW-TEST'); // already gone: fine
    expect((await real.list()).map((s) => s.name)).toEqual(['PW-TEST-NET']);
  });

  it('sysctl: reads and writes in the namespace, null for unknown keys', async () => {
    const s = new CommandSysctl(createRunner({ netns }));
    expect(await s.get('net.ipv4.ip_forward')).toBe('1');
    await s.set('net/ipv4/conf/all/route_localnet', '1');
    expect(await s.get('net.ipv4.conf.all.route_localnet')).toBe('1');
    expect(await s.get('net/ipv4/vs/conntrack')).toBeNull(); // no IPVS on this kernel
  });

  it('ip: dummy interface (when the kernel has it), addresses in and out', async () => {
    const links = new RealIpLinks({ netns });
    // This machine's kernel lacks CONFIG_DUMMY: then the error must say so, and addresses are
    // exercised on a veth instead (ipvs mode needs kube-ipvs0; it is detected at run time).
    const dummy = await links.ensureDummyInterface('kube-ipvs0').then(
      () => true,
      (e: Error) => {
        expect(e.message).toMatch(/no dummy interface support/);
        return false;
      },
    );
    const dev = dummy ? 'kube-ipvs0' : 'veth1';
    if (dummy) await links.ensureDummyInterface('kube-ipvs0'); // exists: fine
    await links.addAddress(dev, '10.96.0.10');
    await links.addAddress(dev, '10.96.0.10'); // exists: fine
    await links.addAddress(dev, 'fd00:10:96::10');
    const addrs = (await links.listAddresses(dev)).filter(
      (a) => a.scope !== 'link' && a.address !== topo.node(1).podGateway,
    );
    expect(addrs.map((a) => `${a.address}/${a.prefixLength}`).sort()).toEqual([
      '10.96.0.10/32',
      'fd00:10:96::10/128',
    ]);
    expect(await links.deleteAddress(dev, '10.96.0.10')).toBe(true);
    expect(await links.deleteAddress(dev, '10.96.0.10')).toBe(false);
    expect(await links.deleteAddress(dev, 'fd00:10:96::10')).toBe(true);
    expect(
      (await links.listAddresses()).some((a) => a.ifname === 'eth0' && a.address === topo.node(1).ip),
    ).toBe(true);
    expect(await links.deleteInterface('kube-ipvs0')).toBe(dummy);
    expect(await links.deleteInterface('kube-ipvs0')).toBe(false);
  });

  it('conntrack: deletes the flows of a destination and counts them; none is not an error', async () => {
    // Conntrack only tracks in a namespace once a rule needs it.
    const ipt = new RealIptables({ family: 'IPv4', backend: 'nft', runner: createRunner({ netns }) });
    await ipt.insertRule(
      'filter',
      'OUTPUT',
      ['-m', 'conntrack', '--ctstate', 'NEW', '-j', 'ACCEPT'],
      'append',
    );
    const pod = topo.pod('node1-pod1');
    await topo.udpRequest(netns, pod.ip, ECHO_UDP_PORT);
    const ct = new RealConntrack({ netns });
    expect(
      await ct.deleteEntries({
        family: 'IPv4',
        protocol: 'udp',
        origDst: pod.ip,
        origDstPort: ECHO_UDP_PORT,
      }),
    ).toBe(1);
    expect(await ct.deleteEntries({ family: 'IPv4', protocol: 'udp', origDst: pod.ip })).toBe(0);
  });

  it.each(['nft', 'legacy'] as const)(
    'iptables %s: a streamed restore commits head and rest together, and nothing when the rest fails',
    async (backend) => {
      const ipt = new RealIptables({ family: 'IPv4', backend, runner: createRunner({ netns }) });
      const chain = `KUBE-SVC-STREAMED${backend.toUpperCase().padEnd(7, 'X')}`;
      let release!: (rest: string) => void;
      const rest = new Promise<string>((r) => (release = r));
      const done = ipt.restoreStreamed(`*nat\n:${chain} - [0:0]\n-A ${chain} -j RETURN\n`, rest, {
        noflush: true,
        listFirst: true,
      });
      // The head alone is not committed while the rest is pending.
      await new Promise((r) => setTimeout(r, 300));
      expect(await ipt.save('nat')).not.toContain(chain);
      release(`-A ${chain} -j ACCEPT\nCOMMIT\n`);
      await done;
      const saved = await ipt.save('nat');
      expect(saved).toContain(`-A ${chain} -j RETURN`);
      expect(saved).toContain(`-A ${chain} -j ACCEPT`);

      const other = `${chain.slice(0, -1)}Y`;
      const failing = ipt.restoreStreamed(
        `*nat\n:${other} - [0:0]\n:${chain} - [0:0]\n`,
        Promise.reject(new Error('iptables-save failed')),
        { noflush: true },
      );
      await expect(failing).rejects.toThrow('iptables-save failed');
      const after = await ipt.save('nat');
      expect(after).not.toContain(other);
      expect(after).toContain(`-A ${chain} -j RETURN`);
      await ipt.restore(`*nat\n:${chain} - [0:0]\n-X ${chain}\nCOMMIT\n`, { noflush: true });
    },
  );

  it('createDataplane detects the backend and wires every executor to the namespace', async () => {
    const dp = await createDataplane({ families: ['IPv4', 'IPv6'], netns });
    expect(dp.iptables.IPv4?.backend).toBe('nft'); // the rule added above lives in nft; host default is nft
    expect(await dp.sysctl.get('net.ipv4.ip_forward')).toBe('1');
    expect((await dp.ip.listAddresses('eth0')).map((a) => a.address)).toContain(topo.node(1).ip);
  });
});
