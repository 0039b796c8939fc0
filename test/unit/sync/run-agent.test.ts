// runAgent / cleanup (src/cli/commands) over the fake dataplane: the agent's wiring, without a kernel.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanup } from '../../../src/cli/commands/cleanup.js';
import { nodeIPsFromInterfaces, runAgent } from '../../../src/cli/commands/run.js';
import {
  createFakeDataplane,
  FakeIpLinks,
  FakeIptables,
  type FakeDataplane,
} from '../../../src/dataplane/index.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { MemorySysctlJournal } from '../../../src/sync/sysctls.js';
import { fakeNodeAgentOptions } from '../../fixtures/fake-agent.js';
import { eventually } from '../../fixtures/polling.js';
import { webNodePortYaml } from '../../fixtures/web-nodeport.js';

const web = (endpoints: string[]): string => webNodePortYaml(endpoints);

describe('runAgent', () => {
  let dir: string;
  let stateDir: string;
  let dp: FakeDataplane;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portway-run-'));
    stateDir = await mkdtemp(join(tmpdir(), 'portway-state-'));
    dp = createFakeDataplane({ families: ['IPv4'] });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(stateDir, { recursive: true, force: true });
  });

  const common = (logger: RecordingLogger) => fakeNodeAgentOptions({ dp, manifests: dir, stateDir, logger });

  it('sets route_localnet only when the rules accept NodePorts on 127.0.0.1', async () => {
    await writeFile(join(dir, 'web.yaml'), web(['10.244.1.5']));
    const config = join(stateDir, 'config.yaml');
    await writeFile(config, 'nodePortAddresses: [192.168.50.0/24]\n');
    expect(await runAgent({ ...common(new RecordingLogger()), configPath: config, once: true })).toBe(0);
    expect(await dp.sysctl.get('net/ipv4/ip_forward')).toBe('1');
    expect(await dp.sysctl.get('net/ipv4/conf/all/route_localnet')).not.toBe('1');
  });

  it('--once syncs once and returns 0; node IPs come from the interfaces', async () => {
    await writeFile(join(dir, 'web.yaml'), web(['10.244.1.5']));
    const logger = new RecordingLogger();
    const code = await runAgent({ ...common(logger), once: true });
    expect(code).toBe(0);
    const dump = dp.iptables.IPv4!.dump();
    expect(dump).toMatch(/-A KUBE-SERVICES .*-d 10\.96\.0\.10\/32/);
    expect(dump).toMatch(/-A KUBE-NODEPORTS .*--dport 30080/);
    expect(logger.records.find((r) => r.message === 'portway agent starting')?.fields).toMatchObject({
      nodeName: 'node-a',
      nodeIPs: ['192.168.50.2'],
      families: ['IPv4'],
    });
    expect(await dp.sysctl.get('net/ipv4/ip_forward')).toBe('1');
  });

  it('--once in ipvs mode programs IPVS, the sets, kube-ipvs0 and the constant iptables rules', async () => {
    await writeFile(join(dir, 'web.yaml'), web(['10.244.1.5']));
    const config = join(stateDir, 'config.yaml');
    await writeFile(config, 'mode: ipvs\n');
    dp = createFakeDataplane({
      families: ['IPv4'],
      sysctls: {
        'net/ipv4/ip_forward': '0',
        'net/ipv4/vs/conntrack': '0',
        'net/ipv4/vs/conn_reuse_mode': '1',
        'net/ipv4/vs/expire_nodest_conn': '0',
        'net/ipv4/vs/expire_quiescent_template': '0',
      },
    });
    expect(await runAgent({ ...common(new RecordingLogger()), configPath: config, once: true })).toBe(0);
    expect(dp.ipvs.dump()).toEqual({
      'TCP 10.96.0.10:80': ['10.244.1.5:8080 w1'],
      'TCP 192.168.50.2:30080': ['10.244.1.5:8080 w1'],
    });
    expect(dp.ipset.entriesOf('KUBE-NODE-PORT-TCP')).toEqual(['30080']);
    expect((await dp.ip.listAddresses('kube-ipvs0')).map((a) => a.address)).toEqual(['10.96.0.10']);
    expect(dp.iptables.IPv4!.dump()).toMatch(/-A KUBE-SERVICES .*--match-set KUBE-CLUSTER-IP dst,dst/);
    expect(dp.iptables.IPv4!.dump()).not.toMatch(/KUBE-SVC-/);
    expect(await dp.sysctl.get('net/ipv4/vs/conntrack')).toBe('1');
  });

  it('--once returns 1 when the sync fails, and 2 when it cannot start', async () => {
    await writeFile(join(dir, 'web.yaml'), web(['10.244.1.5']));
    dp.iptables.IPv4!.injectFailure('restore', new Error('iptables-restore: line 1 failed'));
    expect(await runAgent({ ...common(new RecordingLogger()), once: true })).toBe(1);
    const logger = new RecordingLogger();
    const code = await runAgent({
      ...common(logger),
      once: true,
      ipLinks: new FakeIpLinks({ lo: ['127.0.0.1/8'] }),
    });
    expect(code).toBe(2);
    expect(logger.records.at(-1)?.fields).toMatchObject({ err: expect.stringMatching(/no node IPs/) });
  });

  it('refuses to start (exit 2, before touching anything) while another agent runs in the same network namespace, and so does cleanup', async () => {
    await writeFile(join(dir, 'web.yaml'), web(['10.244.1.5']));
    const ports = { metricsBindAddress: '127.0.0.1:0', healthzBindAddress: '127.0.0.1:0' };
    const abort = new AbortController();
    let syncs = 0;
    const first = runAgent({
      ...common(new RecordingLogger()),
      ...ports,
      once: false,
      signal: abort.signal,
      onSync: () => syncs++,
    });
    await eventually('first agent synced', () => syncs >= 1);
    const restoresBefore = dp.iptables.IPv4!.restores().length;
    const logger = new RecordingLogger();
    expect(await runAgent({ ...common(logger), ...ports, once: true })).toBe(2);
    expect(logger.records.at(-1)).toMatchObject({
      message: 'portway agent cannot start',
      fields: {
        err: expect.stringMatching(/a portway agent is already running in this network namespace/),
      },
    });
    expect(dp.iptables.IPv4!.restores().length).toBe(restoresBefore);
    // cleanup refuses too: the running agent would put everything back.
    const refused = await cleanup({
      logger: new RecordingLogger(),
      families: ['IPv4'],
      dataplane: dp,
      stateDir,
    });
    expect(refused.errors).toEqual([
      expect.stringMatching(/a portway agent is already running in this network namespace/),
    ]);
    expect(dp.iptables.IPv4!.dump()).toContain('KUBE-SERVICES');
    expect(await dp.sysctl.get('net/ipv4/ip_forward')).toBe('1');
    abort.abort();
    expect(await first).toBe(0);
    // The lock went with the first agent.
    expect(await runAgent({ ...common(new RecordingLogger()), ...ports, once: true })).toBe(0);
  });

  it('watches the directory and re-syncs on change; stopping leaves the rules in place', async () => {
    await writeFile(join(dir, 'web.yaml'), web(['10.244.1.5']));
    const configPath = join(stateDir, 'config.yaml');
    await writeFile(configPath, 'iptables: { minSyncPeriod: 10ms, syncPeriod: 30s }\n');
    const abort = new AbortController();
    let syncs = 0;
    const running = runAgent({
      ...common(new RecordingLogger()),
      configPath,
      once: false,
      signal: abort.signal,
      onSync: () => syncs++,
    });
    const ipt = dp.iptables.IPv4 as FakeIptables;
    // The default deadline: 5 s was tight for agent start-up on a loaded CI box.
    await eventually('first sync', () => syncs >= 1);
    expect(ipt.dump()).toContain('10.244.1.5');
    // Written beside and renamed in: a reload between writeFile's truncate and its write would see an
    // empty file (a sync removing the rules, then another) and break the count of restores below.
    await writeFile(join(stateDir, 'web.yaml.new'), web(['10.244.1.5', '10.244.1.6']));
    await rename(join(stateDir, 'web.yaml.new'), join(dir, 'web.yaml'));
    await eventually('the re-sync after the change', () => ipt.dump().includes('10.244.1.6'));
    // The rules' restores (the built-in jumps go in a restore of their own after the first).
    const restores = ipt
      .restores()
      .filter((r) => !/^-[IA] (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /m.test(r.payload));
    expect(restores.length).toBe(2);
    expect(restores[1]?.payload).not.toContain('*filter'); // a partial sync
    abort.abort();
    expect(await running).toBe(0);
    expect(ipt.dump()).toContain('10.244.1.6');
  });

  it('SIGTERM during a sync: the agent keeps listening until it has stopped, so a later listener (signal-exit, loaded by execa while a command runs) never finds itself alone and kills the process', async () => {
    await writeFile(join(dir, 'web.yaml'), web(['10.244.1.5']));
    const configPath = join(stateDir, 'config.yaml');
    await writeFile(configPath, 'iptables: { minSyncPeriod: 10ms, syncPeriod: 100ms }\n');
    const ipt = dp.iptables.IPv4 as FakeIptables;
    // The next full sync's iptables-save waits here: a sync in flight when the signal comes.
    let holding = false;
    let inFlight = false;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const save = ipt.save.bind(ipt);
    ipt.save = async (table) => {
      if (holding) {
        inFlight = true;
        await released;
      }
      return save(table);
    };
    const before = process.listeners('SIGTERM');
    let syncs = 0;
    const logger = new RecordingLogger();
    const running = runAgent({
      ...common(logger),
      handleSignals: true,
      metricsBindAddress: '127.0.0.1:0',
      healthzBindAddress: '127.0.0.1:0',
      configPath,
      once: false,
      onSync: () => syncs++,
    });
    // signal-exit's rule: when it is the only listener left (besides those that were there before),
    // it re-raises the signal, which then kills the process (exit 143).
    const agentListening: boolean[] = [];
    const late = (): void => {
      const others = process.listeners('SIGTERM').filter((l) => l !== late && !before.includes(l));
      agentListening.push(others.length > 0);
    };
    try {
      await eventually('first sync', () => syncs >= 1);
      holding = true;
      await eventually('a full sync in flight', () => inFlight);
      process.on('SIGTERM', late);
      process.emit('SIGTERM');
      await eventually('stopping', () => logger.records.some((r) => r.message.startsWith('stopping')));
      process.emit('SIGTERM'); // again, while the stop waits for the sync in flight
      release();
      expect(await running).toBe(0);
      expect(agentListening).toEqual([true, true]);
      // Gone once stopped: nothing is left behind.
      expect(process.listeners('SIGTERM').filter((l) => l !== late)).toEqual(before);
    } finally {
      release();
      process.off('SIGTERM', late);
    }
  });

  describe('a listen address that cannot be bound (issue 9)', () => {
    let occupier: Server;
    let busyPort: number;
    beforeEach(async () => {
      await writeFile(join(dir, 'web.yaml'), web(['10.244.1.5']));
      occupier = createServer();
      await new Promise<void>((resolve) => occupier.listen(0, '127.0.0.1', resolve));
      busyPort = (occupier.address() as AddressInfo).port;
    });
    afterEach(async () => {
      await new Promise((resolve) => occupier.close(resolve));
    });

    it('a port in use: exit 2 naming the key and address, the other server closed, no rule written', async () => {
      const healthz = await freePort();
      const configPath = join(stateDir, 'config.yaml');
      await writeFile(
        configPath,
        `healthzBindAddress: 127.0.0.1:${healthz}\nmetricsBindAddress: 127.0.0.1:${busyPort}\n`,
      );
      const logger = new RecordingLogger();
      // Resolving at all is part of the test: the old agent logged and kept running.
      expect(await runAgent({ ...common(logger), configPath, once: false })).toBe(2);
      expect(logger.records.at(-1)?.fields).toMatchObject({
        err: expect.stringMatching(
          new RegExp(`^metricsBindAddress: cannot listen on 127\\.0\\.0\\.1:${busyPort}: .*EADDRINUSE`),
        ),
      });
      expect((dp.iptables.IPv4 as FakeIptables).restores()).toEqual([]);
      expect(await dp.sysctl.get('net/ipv4/ip_forward')).not.toBe('1');
      // The healthz server that did start is closed again: its port can be taken.
      await expect(listenOnce(healthz)).resolves.toBeUndefined();
    });

    it('names the flag when the address came from one, and an address this host lacks', async () => {
      const logger = new RecordingLogger();
      const code = await runAgent({
        ...common(logger),
        metricsBindAddress: '127.0.0.1:0',
        healthzBindAddress: '192.0.2.1:0',
        once: false,
      });
      expect(code).toBe(2);
      expect(logger.records.at(-1)?.fields).toMatchObject({
        err: expect.stringMatching(
          /^--healthz-bind-address: cannot listen on 192\.0\.2\.1:0: .*EADDRNOTAVAIL/,
        ),
      });
      expect((dp.iptables.IPv4 as FakeIptables).restores()).toEqual([]);
    });
  });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

async function listenOnce(port: number): Promise<void> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, '127.0.0.1', resolve);
  });
  await new Promise((resolve) => s.close(resolve));
}

describe('cleanup', () => {
  it('removes portway’s chains, jumps and sysctl changes and nothing else', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portway-clean-'));
    const stateDir = await mkdtemp(join(tmpdir(), 'portway-state-'));
    try {
      await writeFile(join(dir, 'web.yaml'), web(['10.244.1.5']));
      const dp = createFakeDataplane({ families: ['IPv4'] });
      const ipt = dp.iptables.IPv4 as FakeIptables;
      // someone else's rules: must survive
      await ipt.restore('*nat\n:DOCKER - [0:0]\n-A DOCKER -j RETURN\n-A PREROUTING -j DOCKER\nCOMMIT\n', {
        noflush: true,
      });
      const code = await runAgent({
        manifests: dir,
        logger: new RecordingLogger(),
        stateDir,
        handleSignals: false,
        hostname: 'node-a',
        ipLinks: new FakeIpLinks({ eth0: ['192.168.50.2/24'] }),
        createDataplane: async () => dp,
        once: true,
      });
      expect(code).toBe(0);
      expect(await dp.sysctl.get('net/ipv4/conf/all/route_localnet')).toBe('1');
      const report = await cleanup({
        logger: new RecordingLogger(),
        families: ['IPv4'],
        dataplane: dp,
        stateDir,
      });
      expect(report.errors).toEqual([]);
      const dump = ipt.dump();
      expect(dump).not.toMatch(
        /KUBE-(SERVICES|NODEPORTS|POSTROUTING|MARK-MASQ|SVC|SEP|FORWARD|EXTERNAL|PROXY)/,
      );
      // portway created KUBE-FIREWALL here (no kubelet), so it goes too
      expect(dump).not.toContain('KUBE-FIREWALL');
      expect(dump).toContain('-A PREROUTING -j DOCKER');
      expect(dump).toContain('-A DOCKER -j RETURN');
      expect(report.families[0]?.jumpsRemoved.length).toBeGreaterThan(5);
      expect(report.sysctlsReverted.map((c) => c.key).sort()).toEqual([
        'net/ipv4/conf/all/route_localnet',
        'net/ipv4/ip_forward',
      ]);
      expect(await dp.sysctl.get('net/ipv4/ip_forward')).toBe('0');
      // a second cleanup finds nothing to do
      const again = await cleanup({
        logger: new RecordingLogger(),
        families: ['IPv4'],
        dataplane: dp,
        sysctlJournal: new MemorySysctlJournal(),
      });
      expect(again.families[0]).toEqual({
        family: 'IPv4',
        jumpsRemoved: [],
        chainsDeleted: [],
        chainsRestored: [],
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe('nodeIPsFromInterfaces', () => {
  it('takes global addresses of every interface but lo, in order, without link-local', () => {
    expect(
      nodeIPsFromInterfaces([
        { ifname: 'lo', family: 'IPv4', address: '127.0.0.1', prefixLength: 8, scope: 'host' },
        { ifname: 'eth0', family: 'IPv4', address: '192.168.50.2', prefixLength: 24, scope: 'global' },
        { ifname: 'eth0', family: 'IPv6', address: 'fe80::1', prefixLength: 64, scope: 'link' },
        { ifname: 'eth0', family: 'IPv6', address: 'fd00::2', prefixLength: 64, scope: 'global' },
        { ifname: 'eth1', family: 'IPv4', address: '10.0.0.2', prefixLength: 24, scope: 'global' },
      ]),
    ).toEqual(['192.168.50.2', 'fd00::2', '10.0.0.2']);
  });
});
