// Mode switches and takeover (src/sync/mode-takeover.ts) over the validating fakes; the ipvs state is the
// one captured in the IPVS test VM (test/fixtures/ipvs-live).
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAgent } from '../../../src/cli/commands/run.js';
import { CommandError, createFakeDataplane, type FakeDataplane } from '../../../src/dataplane/index.js';
import { parseIpAddrJson } from '../../../src/dataplane/ip.js';
import { parseIpsetSave } from '../../../src/dataplane/ipset.js';
import { parseIpvsadmList } from '../../../src/dataplane/ipvs-live.js';
import { parseIptablesSave } from '../../../src/dataplane/iptables-text.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { isServiceChainName } from '../../../src/plan/iptables-plan.js';
import {
  isOtherModeChain,
  MODE_CHAINS,
  ownedVirtualServers,
  removeOtherModeLeftovers,
} from '../../../src/sync/mode-takeover.js';
import { fakeNodeAgentOptions } from '../../fixtures/fake-agent.js';
import { webNodePortYaml } from '../../fixtures/web-nodeport.js';
import { GOLDEN_DIR, goldenCases } from '../../golden/golden-cases.js';

const FIXTURES = join(GOLDEN_DIR, '../fixtures/ipvs-live');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

/** The captured table without its firewall-mark service (the fake IPVS executor takes address services only). */
const CAPTURED_TABLE = fixture('ipvsadm-save-n.txt').replace(/^-A -f .*\n/m, '');

describe('which chains belong to which mode', () => {
  /** Declared chains per table, read straight from the payload (goldens also hold -I lines). */
  const chainsOf = (file: string): Array<[string, string]> => {
    const out: Array<[string, string]> = [];
    let table = '';
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line.startsWith('*')) table = line.slice(1);
      else if (line.startsWith(':')) out.push([table, line.slice(1).split(' ')[0]!]);
    }
    return out;
  };
  test.each(goldenCases())(
    'golden case %s: each mode writes only chains MODE_CHAINS gives it, none it would remove',
    (name) => {
      for (const [mode, files] of [
        ['iptables', ['ipv4.rules', 'ipv6.rules']],
        ['ipvs', ['ipvs-ipv4.rules', 'ipvs-ipv6.rules']],
      ] as const) {
        for (const file of files) {
          for (const [table, chain] of chainsOf(join(GOLDEN_DIR, name, file))) {
            if (chain === 'KUBE-FIREWALL' || /^[A-Z]+$/.test(chain)) continue; // kubelet's, built-ins
            const known =
              (mode === 'iptables' && isServiceChainName(chain)) ||
              MODE_CHAINS[mode][table as 'nat' | 'filter'].has(chain);
            expect({ mode, table, chain, known }).toEqual({ mode, table, chain, known: true });
            expect(isOtherModeChain(mode, table as 'nat', chain)).toBe(false);
          }
        }
      }
    },
  );

  test("leftovers: per-service chains and iptables-only fixed chains in ipvs mode; ipvs-only chains in iptables mode; never kubelet's", () => {
    expect(isOtherModeChain('ipvs', 'nat', 'KUBE-SVC-AAAAAAAAAAAAAAAA')).toBe(true);
    expect(isOtherModeChain('ipvs', 'nat', 'KUBE-NODEPORTS')).toBe(true);
    expect(isOtherModeChain('ipvs', 'filter', 'KUBE-SERVICES')).toBe(true);
    expect(isOtherModeChain('ipvs', 'filter', 'KUBE-EXTERNAL-SERVICES')).toBe(true);
    expect(isOtherModeChain('ipvs', 'nat', 'KUBE-SERVICES')).toBe(false);
    expect(isOtherModeChain('iptables', 'filter', 'KUBE-IPVS-FILTER')).toBe(true);
    expect(isOtherModeChain('iptables', 'nat', 'KUBE-NODE-PORT')).toBe(true);
    expect(isOtherModeChain('iptables', 'nat', 'KUBE-SVC-AAAAAAAAAAAAAAAA')).toBe(false);
    for (const mode of ['ipvs', 'iptables'] as const)
      for (const chain of ['KUBE-FIREWALL', 'KUBE-MARK-DROP', 'KUBE-KUBELET-CANARY', 'DOCKER', 'INPUT'])
        expect(isOtherModeChain(mode, 'filter', chain)).toBe(false);
  });
});

describe('ownedVirtualServers', () => {
  const listing = parseIpvsadmList(fixture('ipvsadm-Ln.txt'));
  const ipsets = parseIpsetSave(fixture('ipset-save.txt'));
  const dummy = parseIpAddrJson(fixture('ip-addr-kube-ipvs0.json'));
  const keys = (r: ReturnType<typeof ownedVirtualServers>) => ({
    owned: r.owned.map((v) => `${v.protocol} ${v.address}:${v.port}`),
    foreign: r.foreign.map((v) => `${v.protocol} ${v.address}:${v.port}`),
  });

  test("bound on kube-ipvs0: portway's/kube-proxy's; the 192.0.2.50 virtual server is another tool's", () => {
    expect(keys(ownedVirtualServers(listing.virtualServers, ipsets, dummy))).toEqual({
      owned: [
        'TCP 10.96.0.10:80',
        'TCP 10.96.0.11:90',
        'UDP 10.96.0.10:53',
        'SCTP 10.96.0.11:7777',
        'TCP fd00:96::a:80',
      ],
      foreign: ['TCP 192.0.2.50:443'],
    });
  });

  test('without kube-ipvs0, the sets still tell: address+protocol+port entries, and NodePort bitmap ports on any address', () => {
    const nodePort = parseIpvsadmList(
      'TCP  10.99.0.2:30080 rr\nUDP  10.99.0.2:30080 rr\nTCP  10.99.0.2:30081 rr\n',
    );
    expect(
      keys(ownedVirtualServers([...listing.virtualServers, ...nodePort.virtualServers], ipsets, [])),
    ).toEqual({
      owned: ['TCP 10.96.0.10:80', 'UDP 10.96.0.10:53', 'TCP fd00:96::a:80', 'TCP 10.99.0.2:30080'],
      foreign: [
        'TCP 192.0.2.50:443',
        'TCP 10.96.0.11:90',
        'SCTP 10.96.0.11:7777',
        'UDP 10.99.0.2:30080',
        'TCP 10.99.0.2:30081',
      ],
    });
  });

  test("a set that is not kube-proxy's does not make a virtual server ours", () => {
    const other = [
      { name: 'my-lb', type: 'hash:ip,port', family: 'inet' as const, entries: ['192.0.2.50,tcp:443'] },
    ];
    expect(keys(ownedVirtualServers(listing.virtualServers, other, [])).owned).toEqual([]);
  });
});

/** A node that ran in iptables mode (kube-proxy or portway) and has now been synced in ipvs mode. */
const IPTABLES_THEN_IPVS = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-IPVS-FILTER - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -j KUBE-EXTERNAL-SERVICES
-A INPUT -j KUBE-IPVS-FILTER
-A INPUT -j KUBE-FIREWALL
-A FORWARD -j KUBE-FORWARD
-A OUTPUT -m conntrack --ctstate NEW -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.99/32 -p tcp -m tcp --dport 80 -j REJECT
-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-AAAAAAAAAAAAAAAA - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A OUTPUT -j KUBE-SERVICES
-A POSTROUTING -j KUBE-POSTROUTING
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
-A KUBE-SERVICES -j KUBE-NODE-PORT
-A KUBE-SVC-AAAAAAAAAAAAAAAA -j KUBE-SEP-AAAAAAAAAAAAAAAA
-A KUBE-SEP-AAAAAAAAAAAAAAAA -p tcp -m tcp -j DNAT --to-destination 10.244.1.11:8080
-A KUBE-NODEPORTS -p tcp -m tcp --dport 30080 -j KUBE-SVC-AAAAAAAAAAAAAAAA
COMMIT
`;

/** A node that ran in ipvs mode and has now been synced in iptables mode (its chains rewritten). */
const IPVS_THEN_IPTABLES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-IPVS-FILTER - [0:0]
:KUBE-IPVS-OUT-FILTER - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SOURCE-RANGES-FIREWALL - [0:0]
-A INPUT -m conntrack --ctstate NEW -j KUBE-EXTERNAL-SERVICES
-A INPUT -j KUBE-IPVS-FILTER
-A INPUT -j KUBE-NODE-PORT
-A INPUT -j KUBE-FIREWALL
-A FORWARD -j KUBE-FORWARD
-A OUTPUT -j KUBE-IPVS-OUT-FILTER
-A OUTPUT -m conntrack --ctstate NEW -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.99/32 -p tcp -m tcp --dport 80 -j REJECT
-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN
-A KUBE-NODE-PORT -m set --match-set KUBE-NODE-PORT-TCP dst -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-LOAD-BALANCER - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-AAAAAAAAAAAAAAAA - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A OUTPUT -j KUBE-SERVICES
-A POSTROUTING -j KUBE-POSTROUTING
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-AAAAAAAAAAAAAAAA
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-AAAAAAAAAAAAAAAA -j KUBE-SEP-AAAAAAAAAAAAAAAA
-A KUBE-SEP-AAAAAAAAAAAAAAAA -p tcp -m tcp -j DNAT --to-destination 10.244.1.11:8080
-A KUBE-NODEPORTS -p tcp -m tcp --dport 30080 -j KUBE-SVC-AAAAAAAAAAAAAAAA
-A KUBE-NODE-PORT -p tcp -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
COMMIT
`;

function chains(dump: string): string[] {
  const out: string[] = [];
  for (const [table, t] of parseIptablesSave(dump))
    for (const c of t.chains) if (c.name.startsWith('KUBE-')) out.push(`${table} ${c.name}`);
  return out.sort();
}

describe('removeOtherModeLeftovers', () => {
  test("ipvs mode: iptables mode's chains and the built-in jumps into them go; its own, kubelet's and the ipvs state stay", async () => {
    const dp = createFakeDataplane({ families: ['IPv4'] });
    dp.iptables.IPv4!.load(IPTABLES_THEN_IPVS);
    await dp.ipset.restore('create KUBE-CLUSTER-IP hash:ip,port family inet\n');
    const report = await removeOtherModeLeftovers('ipvs', {
      iptables: dp.iptables,
      ipset: dp.ipset,
      ip: dp.ip,
      ipvs: dp.ipvs,
      logger: new RecordingLogger(),
    });
    expect(report.errors).toEqual([]);
    expect(chains(dp.iptables.IPv4!.dump())).toEqual([
      'filter KUBE-FIREWALL',
      'filter KUBE-FORWARD',
      'filter KUBE-IPVS-FILTER',
      'filter KUBE-PROXY-FIREWALL',
      'nat KUBE-MARK-MASQ',
      'nat KUBE-NODE-PORT',
      'nat KUBE-POSTROUTING',
      'nat KUBE-SERVICES',
    ]);
    const dump = dp.iptables.IPv4!.dump();
    expect(dump).not.toContain('KUBE-EXTERNAL-SERVICES');
    expect(dump).toContain('-A INPUT -j KUBE-IPVS-FILTER');
    expect(dump).toContain('-A PREROUTING -j KUBE-SERVICES');
    expect(dp.ipset.setNames()).toEqual(['KUBE-CLUSTER-IP']);
    expect(dp.ipvs.calls).toEqual([]);
    expect(report.ipvs).toBeNull();
  });

  test("iptables mode: ipvs mode's chains, then its virtual servers (not another tool's), sets (not others') and kube-ipvs0", async () => {
    const dp = createFakeDataplane({ families: ['IPv4'] });
    dp.iptables.IPv4!.load(IPVS_THEN_IPTABLES);
    await dp.ipset.restore(
      fixture('ipset-save.txt').replace(/ bucketsize \d+ initval 0x[0-9a-f]+/g, '') +
        'create my-set hash:ip family inet\n',
    );
    await dp.ip.ensureDummyInterface('kube-ipvs0');
    for (const a of ['10.96.0.10/32', '10.96.0.11/32', 'fd00:96::a/128'])
      await dp.ip.addAddress('kube-ipvs0', a);
    await dp.ipvs.restore(CAPTURED_TABLE + '-A -t 10.96.0.10:8080 -s fo\n');
    dp.ipvs.calls.length = 0;
    const report = await removeOtherModeLeftovers('iptables', {
      iptables: dp.iptables,
      ipset: dp.ipset,
      ip: dp.ip,
      ipvs: dp.ipvs,
    });
    expect(report.errors).toEqual([]);
    const dump = dp.iptables.IPv4!.dump();
    expect(chains(dump)).toEqual([
      'filter KUBE-EXTERNAL-SERVICES',
      'filter KUBE-FIREWALL',
      'filter KUBE-FORWARD',
      'filter KUBE-NODEPORTS',
      'filter KUBE-PROXY-FIREWALL',
      'filter KUBE-SERVICES',
      'nat KUBE-MARK-MASQ',
      'nat KUBE-NODEPORTS',
      'nat KUBE-POSTROUTING',
      'nat KUBE-SEP-AAAAAAAAAAAAAAAA',
      'nat KUBE-SERVICES',
      'nat KUBE-SVC-AAAAAAAAAAAAAAAA',
    ]);
    expect(dump).not.toMatch(/-A (INPUT|OUTPUT) -j KUBE-(IPVS|NODE-PORT)/);
    expect(dump).toContain('-A INPUT -m conntrack --ctstate NEW -j KUBE-EXTERNAL-SERVICES');
    // A virtual server with a scheduler portway does not use, bound on kube-ipvs0, goes too.
    expect(dp.ipvs.calls.filter((c) => c.op === 'restore')).toEqual([
      {
        op: 'restore',
        payload:
          '-D -t 10.96.0.10:80\n-D -t 10.96.0.11:90\n-D -u 10.96.0.10:53\n-D --sctp-service 10.96.0.11:7777\n-D -t [fd00:96::a]:80\n-D -t 10.96.0.10:8080\n',
      },
    ]);
    expect(await dp.ipvs.save()).toBe(
      '-A -t 192.0.2.50:443 -s wlc\n-a -t 192.0.2.50:443 -r 10.244.1.11:443 -g -w 2\n',
    );
    expect(report.ipvs?.virtualServersKept).toEqual(['TCP 192.0.2.50:443']);
    expect(dp.ipset.setNames()).toEqual(['my-set']);
    expect(report.ipvs?.ipsetsDestroyed.sort()).toEqual([
      'KUBE-6-CLUSTER-IP',
      'KUBE-CLUSTER-IP',
      'KUBE-LOOP-BACK',
      'KUBE-NODE-PORT-TCP',
    ]);
    expect(dp.ip.links.has('kube-ipvs0')).toBe(false);
    expect(report.ipvs?.linkDeleted).toBe(true);
  });

  test('iptables mode on a node ipvs mode never programmed (no KUBE set, no kube-ipvs0): no table is read', async () => {
    const dp = createFakeDataplane({ families: ['IPv4'] });
    dp.iptables.IPv4!.load(IPVS_THEN_IPTABLES);
    await dp.ipset.restore('create my-set hash:ip family inet\n');
    const iptables = dp.iptables.IPv4!;
    const saved: string[] = [];
    const save = iptables.save.bind(iptables);
    iptables.save = async (table) => {
      saved.push(table);
      return save(table);
    };
    const report = await removeOtherModeLeftovers('iptables', {
      iptables: dp.iptables,
      ipset: dp.ipset,
      ip: dp.ip,
      ipvs: dp.ipvs,
    });
    expect(saved).toEqual([]);
    expect(dp.ipvs.calls).toEqual([]);
    expect(report).toMatchObject({ chainsDeleted: [], errors: [], ipvs: { virtualServersDeleted: [] } });
    expect(dp.ipset.setNames()).toEqual(['my-set']);
  });

  test('a kernel without IPVS: nothing to delete there, not an error; a set still in use is reported, the rest goes on', async () => {
    const dp = createFakeDataplane({ families: ['IPv4'] });
    await dp.ipset.restore(
      'create KUBE-CLUSTER-IP hash:ip,port family inet\ncreate KUBE-LOOP-BACK hash:ip,port,ip family inet\n',
    );
    dp.ipset.markInUse('KUBE-LOOP-BACK');
    const noIpvs = {
      save: async (): Promise<string> => {
        throw new CommandError({
          command: 'ipvsadm',
          args: ['-S', '-n'],
          exitCode: 2,
          stderr: "Can't initialize ipvs: Protocol not available\n",
          durationMs: 0,
        });
      },
      restore: async (): Promise<void> => undefined,
    };
    const report = await removeOtherModeLeftovers('iptables', {
      iptables: dp.iptables,
      ipset: dp.ipset,
      ip: dp.ip,
      ipvs: noIpvs,
    });
    expect(report.ipvs?.ipsetsDestroyed).toEqual(['KUBE-CLUSTER-IP']);
    expect(report.errors).toEqual([expect.stringMatching(/^ipset KUBE-LOOP-BACK: .*in use/)]);
  });
});

describe('mode switches through runAgent (fake dataplane)', () => {
  const WEB = webNodePortYaml(['10.244.1.5']);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pw-mode-switch-'));
    await writeFile(join(dir, 'web.yaml'), WEB);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const once = async (dp: FakeDataplane, mode: 'iptables' | 'ipvs'): Promise<number> => {
    const config = join(dir, `${mode}.config.yaml`);
    await writeFile(config, `mode: ${mode}\n`);
    return runAgent({
      ...fakeNodeAgentOptions({
        dp,
        manifests: join(dir, 'web.yaml'),
        stateDir: join(dir, 'state'),
        logger: new RecordingLogger(),
      }),
      configPath: config,
      once: true,
    });
  };
  const ipvsSysctls = {
    'net/ipv4/ip_forward': '0',
    'net/ipv4/conf/all/route_localnet': '0',
    'net/ipv4/vs/conntrack': '0',
    'net/ipv4/vs/conn_reuse_mode': '1',
    'net/ipv4/vs/expire_nodest_conn': '0',
    'net/ipv4/vs/expire_quiescent_template': '0',
    'net/ipv4/conf/all/arp_ignore': '0',
    'net/ipv4/conf/all/arp_announce': '0',
  };

  test('ipvs → iptables: once iptables mode has synced, IPVS virtual servers, sets and kube-ipvs0 are gone', async () => {
    const dp = createFakeDataplane({ families: ['IPv4'], sysctls: ipvsSysctls });
    expect(await once(dp, 'ipvs')).toBe(0);
    expect(Object.keys(dp.ipvs.dump())).toEqual(['TCP 10.96.0.10:80', 'TCP 192.168.50.2:30080']);
    expect(await once(dp, 'iptables')).toBe(0);
    expect(dp.ipvs.dump()).toEqual({});
    expect(dp.ipset.setNames()).toEqual([]);
    expect(dp.ip.links.has('kube-ipvs0')).toBe(false);
    const dump = dp.iptables.IPv4!.dump();
    expect(dump).toMatch(/-A KUBE-SVC-/);
    expect(dump).not.toMatch(/KUBE-IPVS-FILTER|KUBE-NODE-PORT |--match-set/);
  });

  test("iptables → ipvs: once ipvs mode has synced, iptables mode's chains are gone", async () => {
    const dp = createFakeDataplane({ families: ['IPv4'], sysctls: ipvsSysctls });
    expect(await once(dp, 'iptables')).toBe(0);
    expect(dp.iptables.IPv4!.dump()).toMatch(/KUBE-SVC-/);
    expect(await once(dp, 'ipvs')).toBe(0);
    const dump = dp.iptables.IPv4!.dump();
    expect(dump).not.toMatch(/KUBE-(SVC|SEP|EXT)-|KUBE-NODEPORTS|KUBE-EXTERNAL-SERVICES/);
    expect(dump).toMatch(/--match-set KUBE-CLUSTER-IP/);
    expect(Object.keys(dp.ipvs.dump())).toEqual(['TCP 10.96.0.10:80', 'TCP 192.168.50.2:30080']);
  });
});
