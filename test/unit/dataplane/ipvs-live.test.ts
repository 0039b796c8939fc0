// The live ipvs-mode readers on output captured in the IPVS test VM (test/fixtures/ipvs-live/README.md).
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RecordingRunner } from '../../../src/dataplane/exec.js';
import { FakeIpLinks } from '../../../src/dataplane/ip.js';
import { FakeIpset } from '../../../src/dataplane/ipset.js';
import {
  connectionCountsByRealServer,
  FakeIpvsLiveReader,
  IpvsadmListParseError,
  parseIpvsadmList,
  parseLiveIpvsadmSave,
  readIpvsLiveState,
  RealIpvsLiveReader,
  realServerKey,
} from '../../../src/dataplane/ipvs-live.js';
import { IpvsadmParseError } from '../../../src/render/ipvs/index.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/ipvs-live');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

describe('ipvsadm -S -n', () => {
  test('reads the captured table; the firewall-mark service is kept apart as foreign', () => {
    const table = parseLiveIpvsadmSave(fixture('ipvsadm-save-n.txt'));
    expect(table.foreign).toEqual(['-A -f 7 -s rr']);
    expect(
      table.virtualServers.map((vs) => `${vs.protocol} ${vs.address}:${vs.port} ${vs.scheduler}`),
    ).toEqual([
      'TCP 192.0.2.50:443 wlc',
      'TCP 10.96.0.10:80 rr',
      'TCP 10.96.0.11:90 rr',
      'UDP 10.96.0.10:53 sh',
      'SCTP 10.96.0.11:7777 rr',
      'TCP fd00:96::a:80 wrr',
    ]);
    const web = table.virtualServers[1]!;
    expect(web.realServers).toEqual([
      { address: '10.244.1.11', port: 8080, weight: 1, forwarding: 'masquerade' },
      { address: '10.244.1.12', port: 8080, weight: 0, forwarding: 'masquerade' },
    ]);
    expect(table.virtualServers[2]!.persistenceTimeoutSeconds).toBe(10800);
    expect(table.virtualServers[3]!.flags).toEqual(['sh-fallback', 'sh-port']);
    expect(table.virtualServers[0]!.realServers[0]!.forwarding).toBe('gatewaying');
  });

  test('a scheduler portway does not know is foreign, with its real servers', () => {
    const table = parseLiveIpvsadmSave(
      '-A -t 10.0.0.1:80 -s fo\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1\n-A -t 10.0.0.2:80 -s rr\n',
    );
    expect(table.foreign).toEqual(['-A -t 10.0.0.1:80 -s fo']);
    expect(table.virtualServers.map((vs) => vs.address)).toEqual(['10.0.0.2']);
  });

  test('an empty table is empty; a bad line is an error naming its line', () => {
    expect(parseLiveIpvsadmSave('')).toEqual({ virtualServers: [], foreign: [] });
    expect(() => parseLiveIpvsadmSave('-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r nonsense -m\n')).toThrow(
      IpvsadmParseError,
    );
    expect(() => parseLiveIpvsadmSave('-A -f 7 -s rr\n\n-X\n')).toThrow(/line 3/);
  });
});

describe('ipvsadm -Ln', () => {
  test('reads every virtual server with its real servers, weights and connection counts', () => {
    const listing = parseIpvsadmList(fixture('ipvsadm-Ln.txt'));
    expect(listing.firewallMarks).toEqual([7]);
    expect(listing.virtualServers).toEqual([
      {
        protocol: 'TCP',
        address: '192.0.2.50',
        port: 443,
        scheduler: 'wlc',
        flags: [],
        persistenceTimeoutSeconds: null,
        realServers: [
          {
            address: '10.244.1.11',
            port: 443,
            forwarding: 'gatewaying',
            weight: 2,
            activeConnections: 0,
            inactiveConnections: 0,
          },
        ],
      },
      {
        protocol: 'TCP',
        address: '10.96.0.10',
        port: 80,
        scheduler: 'rr',
        flags: [],
        persistenceTimeoutSeconds: null,
        realServers: [
          {
            address: '10.244.1.11',
            port: 8080,
            forwarding: 'masquerade',
            weight: 1,
            activeConnections: 0,
            inactiveConnections: 3,
          },
          {
            address: '10.244.1.12',
            port: 8080,
            forwarding: 'masquerade',
            weight: 0,
            activeConnections: 0,
            inactiveConnections: 0,
          },
        ],
      },
      {
        protocol: 'TCP',
        address: '10.96.0.11',
        port: 90,
        scheduler: 'rr',
        flags: [],
        persistenceTimeoutSeconds: 10800,
        realServers: [
          {
            address: '10.244.1.11',
            port: 9090,
            forwarding: 'masquerade',
            weight: 1,
            activeConnections: 1,
            inactiveConnections: 0,
          },
        ],
      },
      {
        protocol: 'UDP',
        address: '10.96.0.10',
        port: 53,
        scheduler: 'sh',
        flags: ['sh-fallback', 'sh-port'],
        persistenceTimeoutSeconds: null,
        realServers: [
          {
            address: '10.244.1.11',
            port: 53,
            forwarding: 'masquerade',
            weight: 1,
            activeConnections: 0,
            inactiveConnections: 0,
          },
        ],
      },
      {
        protocol: 'SCTP',
        address: '10.96.0.11',
        port: 7777,
        scheduler: 'rr',
        flags: [],
        persistenceTimeoutSeconds: null,
        realServers: [],
      },
      {
        protocol: 'TCP',
        address: 'fd00:96::a',
        port: 80,
        scheduler: 'wrr',
        flags: [],
        persistenceTimeoutSeconds: null,
        realServers: [
          {
            address: 'fd00:244::b',
            port: 8080,
            forwarding: 'masquerade',
            weight: 3,
            activeConnections: 0,
            inactiveConnections: 0,
          },
        ],
      },
    ]);
  });

  test('connection counts by real server key', () => {
    const counts = connectionCountsByRealServer(parseIpvsadmList(fixture('ipvsadm-Ln.txt')));
    expect(counts.get('TCP 10.96.0.11:90 -> 10.244.1.11:9090')).toEqual({ active: 1, inactive: 0 });
    expect(counts.get('TCP 10.96.0.10:80 -> 10.244.1.11:8080')).toEqual({ active: 0, inactive: 3 });
    expect(
      counts.get(
        realServerKey(
          { protocol: 'TCP', address: 'fd00:96:0::a', port: 80 },
          { address: 'fd00:244::b', port: 8080 },
        ),
      ),
    ).toEqual({ active: 0, inactive: 0 });
  });

  test('the empty listing (headers only) has nothing', () => {
    expect(parseIpvsadmList(fixture('ipvsadm-Ln-empty.txt'))).toEqual({
      virtualServers: [],
      firewallMarks: [],
    });
  });

  test('persistence mask, pe and ops are read past; a firewall-mark service keeps its real servers out', () => {
    const listing = parseIpvsadmList(
      'FWM  7 rr\n  -> 10.0.0.9:80 Masq 1 0 0\nUDP  10.0.0.1:53 rr persistent 60 mask 255.255.255.0 ops\n  -> 10.0.0.2:53 Local 1 0 4\n',
    );
    expect(listing.firewallMarks).toEqual([7]);
    expect(listing.virtualServers).toEqual([
      {
        protocol: 'UDP',
        address: '10.0.0.1',
        port: 53,
        scheduler: 'rr',
        flags: [],
        persistenceTimeoutSeconds: 60,
        realServers: [
          {
            address: '10.0.0.2',
            port: 53,
            forwarding: 'local',
            weight: 1,
            activeConnections: 0,
            inactiveConnections: 4,
          },
        ],
      },
    ]);
  });

  test.each([
    ['  -> 10.0.0.2:80 Masq 1 0 0', 'a real server before any virtual server'],
    ['TCP  10.0.0.1:80 rr\n  -> 10.0.0.2:80 Teleport 1 0 0', 'unknown forwarding Teleport'],
    ['TCP  10.0.0.1:80 rr\n  -> 10.0.0.2:80 Masq 1 x 0', 'expected weight'],
    ['TCP  10.0.0.1:80 rr bogus', 'unknown service option bogus'],
    ['ICMP 10.0.0.1:80 rr', 'unknown protocol ICMP'],
    ['TCP  10.0.0.1 rr', 'a service address is host:port'],
  ])('%j is refused: %s', (text, detail) => {
    expect(() => parseIpvsadmList(text)).toThrow(IpvsadmListParseError);
    expect(() => parseIpvsadmList(text)).toThrow(detail);
  });
});

describe('RealIpvsLiveReader (recording runner with the captured outputs)', () => {
  function runner(): RecordingRunner {
    return new RecordingRunner()
      .on('ipvsadm -S -n', { stdout: fixture('ipvsadm-save-n.txt') })
      .on('ipvsadm -L -n', { stdout: fixture('ipvsadm-Ln.txt') })
      .on('ipset save', { stdout: fixture('ipset-save.txt') })
      .on('ip -j addr show dev kube-ipvs0', { stdout: fixture('ip-addr-kube-ipvs0.json') });
  }

  test('reads all three parts, with the exact commands', async () => {
    const r = runner();
    const state = await readIpvsLiveState(new RealIpvsLiveReader({ runner: r }));
    expect(r.commandLines().sort()).toEqual([
      'ip -j addr show dev kube-ipvs0',
      'ipset save',
      'ipvsadm -S -n',
    ]);
    expect(state.ipvs.virtualServers).toHaveLength(6);
    expect(state.ipsets.map((s) => `${s.name} ${[...s.entries].sort().join(' ')}`)).toEqual([
      'KUBE-CLUSTER-IP 10.96.0.10,tcp:80 10.96.0.10,udp:53',
      'KUBE-NODE-PORT-TCP 30080',
      'KUBE-6-CLUSTER-IP fd00:96::a,tcp:80',
      'KUBE-LOOP-BACK 10.244.1.11,tcp:8080,10.244.1.11',
    ]);
    expect(state.dummy).toEqual({
      exists: true,
      addresses: [
        { ifname: 'kube-ipvs0', family: 'IPv4', address: '10.96.0.10', prefixLength: 32, scope: 'global' },
        { ifname: 'kube-ipvs0', family: 'IPv4', address: '10.96.0.11', prefixLength: 32, scope: 'global' },
        { ifname: 'kube-ipvs0', family: 'IPv6', address: 'fd00:96::a', prefixLength: 128, scope: 'global' },
      ],
    });
  });

  test('a missing kube-ipvs0 is an empty, absent link, not an error; an empty one exists', async () => {
    const missing = new RecordingRunner().on('ip -j addr show', {
      exitCode: 1,
      stderr: fixture('ip-addr-missing-stderr.txt'),
    });
    expect(await new RealIpvsLiveReader({ runner: missing }).readDummyLink()).toEqual({
      exists: false,
      addresses: [],
    });
    const empty = new RecordingRunner().on('ip -j addr show', {
      stdout: fixture('ip-addr-kube-ipvs0-empty.json'),
    });
    expect(await new RealIpvsLiveReader({ runner: empty }).readDummyLink()).toEqual({
      exists: true,
      addresses: [],
    });
  });

  test('any other ip failure is an error', async () => {
    const broken = new RecordingRunner().on('ip -j addr show', {
      exitCode: 255,
      stderr: 'RTNETLINK answers: Operation not permitted',
    });
    await expect(new RealIpvsLiveReader({ runner: broken }).readDummyLink()).rejects.toThrow(
      /Operation not permitted/,
    );
  });

  test('listing gives connection counts', async () => {
    const listing = await new RealIpvsLiveReader({ runner: runner() }).readListing();
    expect(connectionCountsByRealServer(listing).get('TCP 10.96.0.11:90 -> 10.244.1.11:9090')).toEqual({
      active: 1,
      inactive: 0,
    });
  });

  test("IPVS availability: the kernel without IPVS (this host's message), ipvsadm missing, available", async () => {
    const noIpvs = new RecordingRunner().on('ipvsadm', {
      exitCode: 2,
      stderr:
        "Can't initialize ipvs: Protocol not available\nAre you sure that IP Virtual Server is built in the kernel or as module?\n",
    });
    expect(await new RealIpvsLiveReader({ runner: noIpvs }).checkIpvsAvailable()).toEqual({
      available: false,
      reason: expect.stringMatching(/no IPVS/),
    });
    const noTool = {
      run: async () => {
        throw new (await import('../../../src/dataplane/exec.js')).CommandError({
          command: 'ipvsadm',
          args: [],
          exitCode: null,
          stderr: '',
          durationMs: 0,
          code: 'ENOENT',
        });
      },
    };
    expect(await new RealIpvsLiveReader({ runner: noTool }).checkIpvsAvailable()).toEqual({
      available: false,
      reason: 'ipvsadm is not installed',
    });
    expect(await new RealIpvsLiveReader({ runner: runner() }).checkIpvsAvailable()).toEqual({
      available: true,
    });
  });
});

describe('FakeIpvsLiveReader', () => {
  test('reads back its table with counts, and what was written through the fake ipset and links', async () => {
    const ipset = new FakeIpset();
    const ip = new FakeIpLinks({ lo: ['127.0.0.1/8'] });
    const reader = new FakeIpvsLiveReader(ipset, ip);
    expect((await readIpvsLiveState(reader)).dummy).toEqual({ exists: false, addresses: [] });
    await ipset.restore(
      'create KUBE-CLUSTER-IP hash:ip,port family inet\nadd KUBE-CLUSTER-IP 10.96.0.10,tcp:80\n',
    );
    await ip.ensureDummyInterface('kube-ipvs0');
    await ip.addAddress('kube-ipvs0', '10.96.0.10/32');
    reader.virtualServers = parseLiveIpvsadmSave(fixture('ipvsadm-save-n.txt')).virtualServers;
    reader.connections.set('TCP 10.96.0.10:80 -> 10.244.1.12:8080', { active: 2, inactive: 1 });
    const state = await readIpvsLiveState(reader);
    expect(state.ipsets.map((s) => s.entries)).toEqual([['10.96.0.10,tcp:80']]);
    expect(state.dummy.addresses.map((a) => a.address)).toEqual(['10.96.0.10']);
    const counts = connectionCountsByRealServer(await reader.readListing());
    expect(counts.get('TCP 10.96.0.10:80 -> 10.244.1.12:8080')).toEqual({ active: 2, inactive: 1 });
    expect(counts.get('TCP 10.96.0.10:80 -> 10.244.1.11:8080')).toEqual({ active: 0, inactive: 0 });
  });
});
