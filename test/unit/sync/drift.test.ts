// What detectDrift (parsed dump, doctor) and detectDriftInScan (scanned dump, the agent's full sync)
// report, finding by finding, on a hand-written dump with one instance of every kind of drift. Both
// entry points share one per-chain comparison; this pins what that comparison says.
import { describe, expect, it } from '@jest/globals';
import { BUILTIN_CHAINS, parseIptablesSave } from '../../../src/dataplane/iptables-text.js';
import type { IptablesRuleSet } from '../../../src/render/types.js';
import {
  canonicalRuleLine,
  detectDrift,
  detectDriftInScan,
  savedHasJump,
  scanIptablesSave,
  scannedHasJump,
  type DriftFinding,
} from '../../../src/sync/drift.js';

const applied: IptablesRuleSet = {
  family: 'IPv4',
  builtinJumps: [
    { table: 'nat', chain: 'PREROUTING', spec: '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES', position: 'prepend' },
    { table: 'nat', chain: 'OUTPUT', spec: '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES', position: 'prepend' },
    { table: 'filter', chain: 'FORWARD', spec: '-j KUBE-FORWARD', position: 'prepend' },
  ],
  tables: [
    {
      name: 'filter',
      chains: [
        { name: 'KUBE-FORWARD', role: 'static', rules: ['-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP'] },
        { name: 'KUBE-SERVICES', role: 'static', rules: ['-A KUBE-SERVICES -d 10.96.0.30 -p tcp --dport 80 -j REJECT'] },
      ],
    },
    {
      name: 'nat',
      chains: [
        { name: 'KUBE-SERVICES', role: 'static', rules: ['-A KUBE-SERVICES -d 10.96.0.10/32 -p udp --dport 53 -j KUBE-SVC-AAAAAAAAAAAAAAAA'] },
        {
          name: 'KUBE-SVC-AAAAAAAAAAAAAAAA',
          role: 'service',
          rules: [
            '-A KUBE-SVC-AAAAAAAAAAAAAAAA -m statistic --mode random --probability 0.5 -j KUBE-SEP-BBBBBBBBBBBBBBBB',
            '-A KUBE-SVC-AAAAAAAAAAAAAAAA -j KUBE-SEP-CCCCCCCCCCCCCCCC',
          ],
        },
        { name: 'KUBE-SEP-BBBBBBBBBBBBBBBB', role: 'endpoint', rules: ['-A KUBE-SEP-BBBBBBBBBBBBBBBB -p udp -j DNAT --to-destination 10.244.1.2:53'] },
        { name: 'KUBE-SEP-CCCCCCCCCCCCCCCC', role: 'endpoint', rules: ['-A KUBE-SEP-CCCCCCCCCCCCCCCC -p udp -j DNAT --to-destination 10.244.2.2:53'] },
      ],
    },
  ],
};

const builtinDeclarations = (table: string): string[] => (BUILTIN_CHAINS[table] ?? []).map((c) => `:${c} ACCEPT [0:0]`);

// As the kernel would print it after someone: deleted KUBE-SEP-CCCC…, rewrote one endpoint's DNAT,
// added a rule to KUBE-SVC-AAAA…, left a stale service chain, added a foreign chain, removed the
// OUTPUT jump. Rules of untouched chains are printed in save's canonical form.
const dump = [
  '*filter',
  ...builtinDeclarations('filter'),
  ':KUBE-FORWARD - [0:0]',
  ':KUBE-SERVICES - [0:0]',
  '-A FORWARD -j KUBE-FORWARD',
  '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
  '-A KUBE-SERVICES -d 10.96.0.30/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable',
  'COMMIT',
  '*nat',
  ...builtinDeclarations('nat'),
  ':DOCKER - [0:0]',
  ':KUBE-SEP-BBBBBBBBBBBBBBBB - [0:0]',
  ':KUBE-SERVICES - [0:0]',
  ':KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]',
  ':KUBE-SVC-STALESTALESTALE - [0:0]',
  '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A DOCKER -j RETURN',
  '-A KUBE-SEP-BBBBBBBBBBBBBBBB -p udp -m udp -j DNAT --to-destination 10.244.9.9:53',
  '-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m udp --dport 53 -j KUBE-SVC-AAAAAAAAAAAAAAAA',
  '-A KUBE-SVC-AAAAAAAAAAAAAAAA -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-BBBBBBBBBBBBBBBB',
  '-A KUBE-SVC-AAAAAAAAAAAAAAAA -j KUBE-SEP-CCCCCCCCCCCCCCCC',
  '-A KUBE-SVC-AAAAAAAAAAAAAAAA -j ACCEPT',
  '-A KUBE-SVC-STALESTALESTALE -j RETURN',
  'COMMIT',
  '',
].join('\n');

const line = (rule: string): string => canonicalRuleLine(rule, 'IPv4');

const expected: DriftFinding[] = [
  {
    table: 'nat',
    chain: 'KUBE-SVC-AAAAAAAAAAAAAAAA',
    kind: 'rulesDiffer',
    missingRules: [],
    extraRules: [line('-A KUBE-SVC-AAAAAAAAAAAAAAAA -j ACCEPT')],
  },
  {
    table: 'nat',
    chain: 'KUBE-SEP-BBBBBBBBBBBBBBBB',
    kind: 'rulesDiffer',
    missingRules: [line('-A KUBE-SEP-BBBBBBBBBBBBBBBB -p udp -j DNAT --to-destination 10.244.1.2:53')],
    extraRules: [line('-A KUBE-SEP-BBBBBBBBBBBBBBBB -p udp -m udp -j DNAT --to-destination 10.244.9.9:53')],
  },
  {
    table: 'nat',
    chain: 'KUBE-SEP-CCCCCCCCCCCCCCCC',
    kind: 'missingChain',
    missingRules: [line('-A KUBE-SEP-CCCCCCCCCCCCCCCC -p udp -j DNAT --to-destination 10.244.2.2:53')],
    extraRules: [],
  },
  {
    table: 'nat',
    chain: 'KUBE-SVC-STALESTALESTALE',
    kind: 'unexpectedChain',
    missingRules: [],
    extraRules: ['-A KUBE-SVC-STALESTALESTALE -j RETURN'],
  },
  {
    table: 'nat',
    chain: 'OUTPUT',
    kind: 'missingJump',
    missingRules: [line('-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES')],
    extraRules: [],
  },
];

describe('drift findings', () => {
  it('the parsed-dump path reports every kind of drift, in table and chain order, jumps last', () => {
    expect(detectDrift(applied, parseIptablesSave(dump))).toEqual(expected);
  });

  it('the scanned-dump path reports the same findings', () => {
    expect(detectDriftInScan(applied, scanIptablesSave(dump))).toEqual(expected);
  });

  it('a table missing from the dump makes every chain of it missing and its jumps missing', () => {
    const natOnly = dump.slice(dump.indexOf('*nat'));
    const findings = detectDrift(applied, parseIptablesSave(natOnly));
    expect(findings.filter((f) => f.table === 'filter')).toEqual([
      { table: 'filter', chain: 'KUBE-FORWARD', kind: 'missingChain', missingRules: [line(applied.tables[0]!.chains[0]!.rules[0]!)], extraRules: [] },
      { table: 'filter', chain: 'KUBE-SERVICES', kind: 'missingChain', missingRules: [line(applied.tables[0]!.chains[1]!.rules[0]!)], extraRules: [] },
      { table: 'filter', chain: 'FORWARD', kind: 'missingJump', missingRules: ['-A FORWARD -j KUBE-FORWARD'], extraRules: [] },
    ]);
    expect(detectDriftInScan(applied, scanIptablesSave(natOnly))).toEqual(findings);
  });

  it('rule order within a chain is compared', () => {
    const swapped = dump
      .replace('-A KUBE-SVC-AAAAAAAAAAAAAAAA -j KUBE-SEP-CCCCCCCCCCCCCCCC\n', '')
      .replace('-A KUBE-SVC-AAAAAAAAAAAAAAAA -m statistic', '-A KUBE-SVC-AAAAAAAAAAAAAAAA -j KUBE-SEP-CCCCCCCCCCCCCCCC\n-A KUBE-SVC-AAAAAAAAAAAAAAAA -m statistic');
    const svc = (findings: DriftFinding[]): DriftFinding | undefined => findings.find((f) => f.chain === 'KUBE-SVC-AAAAAAAAAAAAAAAA');
    // Same multiset apart from the added ACCEPT, so only that is listed; the order change alone still makes it differ.
    expect(svc(detectDrift(applied, parseIptablesSave(swapped)))).toEqual(expected[0]);
    const onlySwapped = swapped.replace('-A KUBE-SVC-AAAAAAAAAAAAAAAA -j ACCEPT\n', '');
    const finding = svc(detectDrift(applied, parseIptablesSave(onlySwapped)));
    expect(finding).toEqual({ table: 'nat', chain: 'KUBE-SVC-AAAAAAAAAAAAAAAA', kind: 'rulesDiffer', missingRules: [], extraRules: [] });
    expect(svc(detectDriftInScan(applied, scanIptablesSave(onlySwapped)))).toEqual(finding);
  });

  it('a built-in jump counts as present in any spelling that canonicalises the same', () => {
    const [prerouting, output, forward] = applied.builtinJumps as [never, never, never];
    const parsed = parseIptablesSave(dump);
    const scanned = scanIptablesSave(dump);
    expect([prerouting, output, forward].map((j) => savedHasJump(parsed, j, 'IPv4'))).toEqual([true, false, true]);
    expect([prerouting, output, forward].map((j) => scannedHasJump(scanned, j, 'IPv4'))).toEqual([true, false, true]);
  });
});
