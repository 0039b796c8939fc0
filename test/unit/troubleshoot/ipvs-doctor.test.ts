// doctor in ipvs mode (src/troubleshoot/ipvs-doctor.ts): the golden "loadbalancer" case rendered, the
// kernel state read back as the tools print it, then drifted on purpose: every difference is named.
import { describe, expect, test } from '@jest/globals';
import { join } from 'node:path';
import { parseIpsetSave } from '../../../src/dataplane/ipset.js';
import { parseLiveIpvsadmSave, type IpvsLiveState } from '../../../src/dataplane/ipvs-live.js';
import { ARP_ANNOUNCE, ARP_IGNORE } from '../../../src/l2/strict-arp.js';
import { loadClusterState } from '../../../src/model/index.js';
import { serializeIpsets, serializeIpvs, type IpvsRuleSet } from '../../../src/render/ipvs/index.js';
import { diagnose, formatDoctor } from '../../../src/troubleshoot/doctor.js';
import {
  diagnoseIpvs,
  ipvsWantedSysctls,
  renderIpvsFamilies,
} from '../../../src/troubleshoot/ipvs-doctor.js';
import { caseConfig, GOLDEN_DIR } from '../../golden/golden-cases.js';

async function desired(): Promise<IpvsRuleSet[]> {
  const { state } = await loadClusterState([join(GOLDEN_DIR, 'loadbalancer', 'input.yaml')]);
  const config = { ...caseConfig('loadbalancer'), mode: 'ipvs' as const };
  return renderIpvsFamilies(state, config, ['IPv4'], config.nodeIPs);
}

/** The kernel exactly as the agent would leave it. */
function liveOf(rs: IpvsRuleSet[]): IpvsLiveState {
  return {
    ipvs: parseLiveIpvsadmSave(rs.map((r) => serializeIpvs(r)).join('')),
    ipsets: parseIpsetSave(rs.map((r) => serializeIpsets(r)).join('')),
    dummy: {
      exists: true,
      addresses: rs.flatMap((r) =>
        r.boundAddresses.map((address) => ({
          ifname: 'kube-ipvs0',
          family: r.family,
          address,
          prefixLength: 32,
          scope: 'global',
        })),
      ),
    },
  };
}

describe('diagnoseIpvs', () => {
  test('a node as the agent leaves it passes every check', async () => {
    const rs = await desired();
    const findings = diagnoseIpvs({ desired: rs, availability: { available: true }, live: liveOf(rs) });
    expect(findings.map((f) => `${f.severity} ${f.check}`)).toEqual([
      'ok ipvs/kernel',
      'ok ipvs/virtual-servers',
      'ok ipvs/ipsets',
      'ok ipvs/addresses',
    ]);
  });

  test('a drifted kernel: each missing or extra virtual server, real server, set entry and address is named', async () => {
    const rs = await desired();
    const live = liveOf(rs);
    const [first, second] = live.ipvs.virtualServers;
    first!.realServers.pop(); // a real server deleted by hand
    first!.realServers.push({ address: '10.244.9.9', port: 8443, weight: 1, forwarding: 'masquerade' });
    live.ipvs.virtualServers.splice(live.ipvs.virtualServers.indexOf(second!), 1);
    live.ipvs.virtualServers.push({ ...first!, address: '10.96.0.99', port: 80, realServers: [] }); // bound below: ours
    live.ipvs.virtualServers.push({ ...first!, address: '192.0.2.77', port: 80, realServers: [] }); // another tool's
    live.dummy.addresses.push({
      ifname: 'kube-ipvs0',
      family: 'IPv4',
      address: '10.96.0.99',
      prefixLength: 32,
      scope: 'global',
    });
    const removedAddress = live.dummy.addresses.shift()!.address;
    const clusterIp = live.ipsets.find((s) => s.name === 'KUBE-CLUSTER-IP')!;
    const removedEntry = clusterIp.entries.shift()!;
    clusterIp.entries.push('10.96.0.98,tcp:80');
    live.ipsets = live.ipsets.filter((s) => s.name !== 'KUBE-LOOP-BACK');
    const findings = diagnoseIpvs({ desired: rs, availability: { available: true }, live });
    const byCheck = Object.fromEntries(findings.map((f) => [f.check, f]));
    expect(byCheck['ipvs/virtual-servers']!.severity).toBe('error');
    expect(byCheck['ipvs/virtual-servers']!.details).toEqual([
      expect.stringMatching(/^missing real server TCP 10\.96\.0\.40:443 -> 10\.244\.2\.42:8443 \(/),
      expect.stringMatching(/^extra real server TCP 10\.96\.0\.40:443 -> 10\.244\.9\.9:8443 \(/),
      expect.stringMatching(/^missing virtual server TCP 10\.99\.0\.2:30443 \(/),
      'extra virtual server TCP 10.96.0.99:80 (its address is on kube-ipvs0 or in a KUBE-* set, no Service asks for it)',
    ]);
    expect(byCheck['ipvs/ipsets']!.details).toEqual([
      expect.stringMatching(/^missing set KUBE-LOOP-BACK /),
      expect.stringContaining(`missing set entry KUBE-CLUSTER-IP ${removedEntry} (`),
      'extra set entry KUBE-CLUSTER-IP 10.96.0.98,tcp:80',
    ]);
    expect(byCheck['ipvs/addresses']!.details).toEqual([
      `missing address ${removedAddress} on kube-ipvs0`,
      'extra address 10.96.0.99 on kube-ipvs0',
    ]);
  });

  test('no IPVS in the kernel is an error saying why; a missing kube-ipvs0 is named', async () => {
    const rs = await desired();
    const [kernel] = diagnoseIpvs({
      desired: rs,
      availability: { available: false, reason: 'the kernel has no IPVS' },
      live: null,
    });
    expect(kernel).toMatchObject({
      severity: 'error',
      check: 'ipvs/kernel',
      message: expect.stringContaining('the kernel has no IPVS'),
    });
    const live = liveOf(rs);
    live.dummy = { exists: false, addresses: [] };
    const addresses = diagnoseIpvs({ desired: rs, availability: { available: true }, live }).find(
      (f) => f.check === 'ipvs/addresses',
    );
    expect(addresses?.details).toEqual(['kube-ipvs0 does not exist']);
  });

  test('diagnose: ipvs findings replace the "not read" warning; strictARP sysctls are wanted in ipvs mode', async () => {
    const rs = await desired();
    const findings = diagnose({
      families: [],
      sysctls: [],
      processes: [],
      backend: { inUse: 'nft', otherBackendHasKubeChains: false },
      mode: 'ipvs',
      ipvs: { desired: rs, availability: { available: true }, live: liveOf(rs) },
    });
    expect(formatDoctor(findings)).toMatch(/All checks passed/);
    const keys = ipvsWantedSysctls(rs, { mode: 'ipvs', ipvs: caseConfig('loadbalancer').ipvs }).map(
      (s) => `${s.key}=${s.value}`,
    );
    expect(keys).toEqual(
      expect.arrayContaining(['net/ipv4/vs/conntrack=1', `${ARP_IGNORE}=1`, `${ARP_ANNOUNCE}=2`]),
    );
    expect(new Set(keys).size).toBe(keys.length);
  });
});
