// `portway cleanup` on a node in ipvs mode, over the validating fakes: ipvs mode's chains, its virtual
// servers (bound on kube-ipvs0 or in a KUBE-* set; another tool's stays), every KUBE-* set of both families
// (after the rules that use them) and kube-ipvs0 go; the sysctls strictARP changed come back.
import { describe, expect, test } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanup } from '../../../src/cli/commands/cleanup.js';
import { createFakeDataplane } from '../../../src/dataplane/index.js';
import { ARP_ANNOUNCE, ARP_IGNORE, ensureStrictArp } from '../../../src/l2/strict-arp.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { MemorySysctlJournal } from '../../../src/sync/sysctls.js';
import { GOLDEN_DIR } from '../../golden/golden-cases.js';

const FIXTURES = join(GOLDEN_DIR, '../fixtures/ipvs-live');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

describe('cleanup of an ipvs-mode node', () => {
  test("removes ipvs mode's chains, virtual servers, sets and kube-ipvs0, restores strictARP — and nothing else", async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'pw-cleanup-ipvs-'));
    try {
      const dp = createFakeDataplane({
        families: ['IPv4'],
        sysctls: { [ARP_IGNORE]: '0', [ARP_ANNOUNCE]: '0' },
      });
      // ipvs mode's rules as rendered (golden), loaded with the sets they match.
      await dp.iptables.IPv4!.restore(readFileSync(join(GOLDEN_DIR, 'nodeport/ipvs-ipv4.rules'), 'utf8'), {
        noflush: true,
      });
      await dp.iptables.IPv4!.restore('*filter\n:DOCKER - [0:0]\n-A FORWARD -j DOCKER\nCOMMIT\n', {
        noflush: true,
      });
      await dp.ipset.restore(readFileSync(join(GOLDEN_DIR, 'nodeport/ipvs-ipv4.ipset'), 'utf8'));
      await dp.ipset.restore(readFileSync(join(GOLDEN_DIR, 'nodeport/ipvs-ipv6.ipset'), 'utf8'));
      await dp.ipset.restore('create my-set hash:ip family inet\n');
      for (const name of dp.ipset.setNames()) if (name.startsWith('KUBE-')) dp.ipset.markInUse(name); // by the rules
      await dp.ip.ensureDummyInterface('kube-ipvs0');
      await dp.ip.addAddress('kube-ipvs0', '10.96.0.10/32');
      await dp.ip.addAddress('kube-ipvs0', '10.96.0.11/32');
      const journal = new MemorySysctlJournal();
      await ensureStrictArp(dp.sysctl, journal);
      await dp.ipvs.restore(fixture('ipvsadm-save-n.txt').replace(/^-A -f .*\n/m, ''));
      // The sets are in use until the rules go: the fake ipset refuses to destroy them before.
      const iptables = dp.iptables.IPv4!;
      const restore = iptables.restore.bind(iptables);
      iptables.restore = async (payload, opts) => {
        await restore(payload, opts);
        if (!iptables.dump().includes('--match-set'))
          for (const n of dp.ipset.setNames()) dp.ipset.markInUse(n, false);
      };
      const report = await cleanup({
        logger: new RecordingLogger(),
        families: ['IPv4'],
        dataplane: dp,
        stateDir,
        sysctlJournal: journal,
      });
      expect(report.errors).toEqual([]);
      expect(iptables.dump()).not.toMatch(/KUBE-/);
      expect(iptables.dump()).toContain('-A FORWARD -j DOCKER');
      expect(report.virtualServersDeleted).toEqual([
        'TCP 10.96.0.10:80',
        'TCP 10.96.0.11:90',
        'UDP 10.96.0.10:53',
        'SCTP 10.96.0.11:7777',
      ]);
      expect(Object.keys(dp.ipvs.dump()).sort()).toEqual(['TCP 192.0.2.50:443', 'TCP [fd00:96::a]:80']);
      expect(report.virtualServersKept).toEqual(['TCP 192.0.2.50:443', 'TCP [fd00:96::a]:80']);
      expect(dp.ipset.setNames()).toEqual(['my-set']);
      expect(report.ipsetsDestroyed).toContain('KUBE-6-CLUSTER-IP');
      expect(report.kubeIpvs0Deleted).toBe(true);
      expect(dp.ip.links.has('kube-ipvs0')).toBe(false);
      expect([await dp.sysctl.get(ARP_IGNORE), await dp.sysctl.get(ARP_ANNOUNCE)]).toEqual(['0', '0']);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
