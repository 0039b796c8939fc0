import { mkdtemp, mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conntrackDeleteArgs, FakeConntrack, parseDeletedCount, RealConntrack } from '../../../src/dataplane/conntrack.js';
import { RecordingRunner, RestoreError } from '../../../src/dataplane/exec.js';
import { createFakeDataplane } from '../../../src/dataplane/index.js';
import { FakeIpLinks, parseIpAddrJson, RealIpLinks } from '../../../src/dataplane/ip.js';
import { canonicalIpsetEntry, FakeIpset, parseIpsetSave, RealIpset } from '../../../src/dataplane/ipset.js';
import { CommandSysctl, FakeSysctl, FileSysctl, sysctlPath } from '../../../src/dataplane/sysctl.js';

describe('ipset', () => {
  it('parses ipset save output', () => {
    const sets = parseIpsetSave(
      'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 comment bucketsize 12 initval 0x1\n' +
        'add KUBE-CLUSTER-IP 10.96.0.1,tcp:443 comment "Kubernetes service cluster ip + port"\n' +
        'create KUBE-6 hash:ip family inet6 hashsize 1024 maxelem 65536\n',
    );
    expect(sets).toEqual([
      { name: 'KUBE-CLUSTER-IP', type: 'hash:ip,port', family: 'inet', entries: ['10.96.0.1,tcp:443'], comment: 'Kubernetes service cluster ip + port' },
      { name: 'KUBE-6', type: 'hash:ip', family: 'inet6', entries: [] },
    ]);
  });
  it('runs ipset restore -exist and reports the failing line', async () => {
    const runner = new RecordingRunner().on('ipset restore', { exitCode: 1, stderr: 'ipset v7.17: Error in line 2: Syntax error\n' });
    const err = await new RealIpset({ runner }).restore('create A hash:ip\nadd A nope\n').catch((e: unknown) => e);
    expect(runner.commandLines()).toEqual(['ipset restore -exist']);
    expect((err as RestoreError).lineText).toBe('add A nope');
  });
  it('treats destroying a missing set as done', async () => {
    const runner = new RecordingRunner().on('ipset destroy', { exitCode: 1, stderr: 'ipset v7.17: The set with the given name does not exist\n' });
    await expect(new RealIpset({ runner }).destroy('GONE')).resolves.toBeUndefined();
  });
  it('canonicalises entries like ipset prints them and rejects misfits', () => {
    expect(canonicalIpsetEntry('hash:ip,port', 'inet', '10.0.0.1,80')).toBe('10.0.0.1,tcp:80');
    expect(canonicalIpsetEntry('hash:ip,port,ip', 'inet', '10.0.0.1,udp:53,10.0.0.1')).toBe('10.0.0.1,udp:53,10.0.0.1');
    expect(canonicalIpsetEntry('hash:ip,port,net', 'inet', '10.0.0.1,tcp:80,10.1.2.3/16')).toBe('10.0.0.1,tcp:80,10.1.0.0/16');
    expect(canonicalIpsetEntry('hash:net', 'inet6', 'FD00::1/128')).toBe('fd00::1');
    expect(() => canonicalIpsetEntry('hash:ip', 'inet', 'fd00::1')).toThrow(/not a valid IPv4/);
    expect(() => canonicalIpsetEntry('hash:ip,port', 'inet', '10.0.0.1')).toThrow(/does not fit/);
  });
  it('the fake applies create/add/del/swap/destroy with -exist semantics', async () => {
    const s = new FakeIpset();
    await s.restore('create A hash:ip,port family inet comment\ncreate A hash:ip,port family inet\nadd A 10.0.0.1,80 comment "svc"\nadd A 10.0.0.1,tcp:80\ncreate T hash:ip,port\nadd T 10.0.0.2,udp:53\nswap A T\ndestroy T\ndel A 10.9.9.9,1\n');
    expect(s.setNames()).toEqual(['A']);
    expect(s.entriesOf('A')).toEqual(['10.0.0.2,udp:53']);
    s.markInUse('A');
    await expect(s.destroy('A')).rejects.toThrow(/in use/);
    const err = await s.restore('add A 10.0.0.3,1\ncreate B hash:ip,port family inet\nadd B bogus\nadd A 10.0.0.4,1\n').catch((e: unknown) => e);
    expect((err as RestoreError).line).toBe(3);
    // Like the real tool, the lines before the failing one stay applied.
    expect(s.entriesOf('A')).toEqual(['10.0.0.2,udp:53', '10.0.0.3,tcp:1']);
    expect(s.setNames()).toEqual(['A', 'B']);
  });
});

describe('sysctl', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'portway-sysctl-'));
    await mkdir(join(root, 'net/ipv4/conf/eth0.100'), { recursive: true });
    await writeFile(join(root, 'net/ipv4/ip_forward'), '0\n');
    await writeFile(join(root, 'net/ipv4/conf/eth0.100/arp_ignore'), '0\n');
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('reads and writes files under an injected root; missing keys read as null', async () => {
    const s = new FileSysctl(root);
    expect(await s.get('net.ipv4.ip_forward')).toBe('0');
    await s.set('net/ipv4/ip_forward', '1');
    expect(await readFile(join(root, 'net/ipv4/ip_forward'), 'utf8')).toBe('1\n');
    expect(await s.get('net/ipv4/conf/eth0.100/arp_ignore')).toBe('0');
    expect(await s.get('net/ipv4/vs/conntrack')).toBeNull();
  });
  it('rejects malformed keys', () => {
    expect(() => sysctlPath('net..ipv4')).toThrow(/not a valid key/);
    expect(() => sysctlPath('net/ipv4; rm')).toThrow(/not a valid key/);
  });
  it('uses cat and sysctl -w through a runner', async () => {
    const runner = new RecordingRunner().on('cat /proc/sys/net/ipv4/ip_forward', { stdout: '1\n' }).on('cat', { exitCode: 1, stderr: 'cat: x: No such file or directory' });
    const s = new CommandSysctl(runner);
    expect(await s.get('net.ipv4.ip_forward')).toBe('1');
    expect(await s.get('net.ipv4.vs.conntrack')).toBeNull();
    await s.set('net.ipv4.ip_forward', '1');
    expect(runner.commandLines().at(-1)).toBe('sysctl -q -w net/ipv4/ip_forward=1');
  });
  it('the fake refuses keys the kernel does not have', async () => {
    const s = new FakeSysctl({ 'net.ipv4.ip_forward': '0' });
    await s.set('net.ipv4.ip_forward', '1');
    expect(s.writes).toEqual([{ key: 'net/ipv4/ip_forward', value: '1' }]);
    await expect(s.set('net.ipv4.vs.conntrack', '1')).rejects.toThrow(/no such key/);
  });
});

describe('conntrack', () => {
  it('builds -D arguments and refuses an empty filter or a wrong family', () => {
    expect(conntrackDeleteArgs({ family: 'IPv4', protocol: 'udp', origDst: '10.96.0.10', origDstPort: 53 })).toEqual([
      '-D', '-f', 'ipv4', '-p', 'udp', '--orig-dst', '10.96.0.10', '--orig-port-dst', '53',
    ]);
    expect(conntrackDeleteArgs({ family: 'IPv6', protocol: 'udp', replySrc: 'fd00::5' })).toEqual(['-D', '-f', 'ipv6', '-p', 'udp', '--reply-src', 'fd00::5']);
    expect(() => conntrackDeleteArgs({ family: 'IPv4', protocol: 'udp' })).toThrow(/at least one/);
    expect(() => conntrackDeleteArgs({ family: 'IPv4', protocol: 'udp', origDst: 'fd00::1' })).toThrow(/not an IPv4 address/);
  });
  it('counts deleted entries and treats "0 flow entries" (exit 1) as zero', async () => {
    expect(parseDeletedCount('conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.')).toBe(3);
    const zero = new RecordingRunner().on('conntrack', { exitCode: 1, stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n' });
    expect(await new RealConntrack({ runner: zero }).deleteEntries({ family: 'IPv4', protocol: 'udp', origDst: '10.0.0.1' })).toBe(0);
    const bad = new RecordingRunner().on('conntrack', { exitCode: 1, stderr: 'conntrack v1.4.7 (conntrack-tools): Operation failed: invalid parameters\n' });
    await expect(new RealConntrack({ runner: bad }).deleteEntries({ family: 'IPv4', protocol: 'udp', origDst: '10.0.0.1' })).rejects.toThrow(/invalid parameters/);
  });
  it('the fake deletes matching flows only', async () => {
    const flow = { family: 'IPv4' as const, protocol: 'udp' as const, origDst: '10.96.0.10', origDstPort: 53, replySrc: '10.244.1.5', replySrcPort: 53 };
    const ct = new FakeConntrack([flow, { ...flow, replySrc: '10.244.2.6' }, { ...flow, protocol: 'tcp' }]);
    expect(await ct.deleteEntries({ family: 'IPv4', protocol: 'udp', replySrc: '10.244.1.5' })).toBe(1);
    expect(ct.flows).toHaveLength(2);
  });
});

describe('ip links', () => {
  it('parses ip -j addr', () => {
    const json = JSON.stringify([
      { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }] },
      { ifname: 'kube-ipvs0', addr_info: [{ family: 'inet6', local: 'FD00:0::1', prefixlen: 128, scope: 'global' }] },
    ]);
    expect(parseIpAddrJson(json)).toEqual([
      { ifname: 'lo', family: 'IPv4', address: '127.0.0.1', prefixLength: 8, scope: 'host' },
      { ifname: 'kube-ipvs0', family: 'IPv6', address: 'fd00::1', prefixLength: 128, scope: 'global' },
    ]);
  });
  it('adds host addresses idempotently and deletes them', async () => {
    const runner = new RecordingRunner()
      .on('ip addr add 10.96.0.1/32', { exitCode: 2, stderr: 'RTNETLINK answers: File exists' })
      .on('ip addr del', { exitCode: 2, stderr: 'RTNETLINK answers: Cannot assign requested address' });
    const ip = new RealIpLinks({ runner });
    await ip.addAddress('kube-ipvs0', '10.96.0.1');
    await ip.addAddress('kube-ipvs0', 'fd00::1');
    expect(await ip.deleteAddress('kube-ipvs0', '10.96.0.9')).toBe(false);
    await ip.ensureDummyInterface('kube-ipvs0', { up: true });
    expect(runner.commandLines()).toEqual([
      'ip addr add 10.96.0.1/32 dev kube-ipvs0',
      'ip addr add fd00::1/128 dev kube-ipvs0 nodad',
      'ip addr del 10.96.0.9/32 dev kube-ipvs0',
      'ip link add kube-ipvs0 type dummy',
      'ip link set kube-ipvs0 up',
    ]);
    await expect(ip.addAddress('bad name!', '10.0.0.1')).rejects.toThrow(/interface name "bad name!"/);
    await expect(ip.addAddress('eth0', '10.0.0.300')).rejects.toThrow(/not an IP address/);
  });
  it('the fake behaves like the real one', async () => {
    const ip = new FakeIpLinks({ eth0: ['192.168.1.10/24'] });
    await ip.ensureDummyInterface('kube-ipvs0');
    await ip.addAddress('kube-ipvs0', '10.96.0.1');
    await ip.addAddress('kube-ipvs0', '10.96.0.1');
    expect((await ip.listAddresses('kube-ipvs0')).map((a) => `${a.address}/${a.prefixLength}`)).toEqual(['10.96.0.1/32']);
    expect(await ip.deleteAddress('kube-ipvs0', '10.96.0.1')).toBe(true);
    await expect(ip.addAddress('nope0', '10.0.0.1')).rejects.toThrow(/Cannot find device/);
  });
});

describe('createFakeDataplane', () => {
  it('builds one fake per executor', async () => {
    const dp = createFakeDataplane({ families: ['IPv4', 'IPv6'] });
    expect(dp.iptables.IPv6?.family).toBe('IPv6');
    expect(await dp.sysctl.get('net/ipv4/ip_forward')).toBe('0');
  });
});
