// FakeIptables must accept and reject what the real iptables-restore accepts and rejects, and end
// in the same rules. The same sequence of payloads goes through both, in a throwaway namespace,
// for each backend (nft and legacy) and both families.
import { execa } from 'execa';
import { FakeIptables } from '../../../src/dataplane/fake-iptables.js';
import { createRunner } from '../../../src/dataplane/exec.js';
import { RealIptables } from '../../../src/dataplane/iptables.js';
import { formatSavedRule, parseIptablesSave } from '../../../src/dataplane/iptables-text.js';
import type { Iptables } from '../../../src/dataplane/interfaces.js';
import type { IPFamily } from '../../../src/model/cluster-state.js';
import { deleteNetns, NETNS_PREFIX } from '../harness/topology.js';

const p = (...lines: string[]) => lines.join('\n') + '\n';

interface Step {
  what: string;
  payload: string;
  noflush?: boolean;
  listFirst?: boolean;
  accept: boolean;
}

const V4_STEPS: Step[] = [
  {
    what: 'a kube-proxy-shaped full load',
    accept: true,
    payload: p(
      '*filter',
      ':KUBE-FORWARD - [0:0]',
      ':KUBE-SERVICES - [0:0]',
      '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
      '-A KUBE-SERVICES -m comment --comment "default/empty:http has no endpoints" -m tcp -p tcp -d 10.96.0.20 --dport 80 -j REJECT --reject-with icmp-port-unreachable',
      '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
      'COMMIT',
      '*nat',
      ':KUBE-SERVICES - [0:0]',
      ':KUBE-MARK-MASQ - [0:0]',
      ':KUBE-POSTROUTING - [0:0]',
      ':KUBE-SVC-ABCDEFGHIJKLMNOP - [0:0]',
      ':KUBE-SEP-AAAAAAAAAAAAAAAA - [0:0]',
      ':KUBE-SEP-BBBBBBBBBBBBBBBB - [0:0]',
      '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
      '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
      '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
      '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
      '-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j KUBE-SVC-ABCDEFGHIJKLMNOP',
      '-A KUBE-SVC-ABCDEFGHIJKLMNOP -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ',
      '-A KUBE-SVC-ABCDEFGHIJKLMNOP -m comment --comment "default/web:http -> 10.244.1.11:8080" -m recent --name KUBE-SEP-AAAAAAAAAAAAAAAA --rcheck --seconds 10800 --reap -j KUBE-SEP-AAAAAAAAAAAAAAAA',
      '-A KUBE-SVC-ABCDEFGHIJKLMNOP -m comment --comment "default/web:http -> 10.244.1.11:8080" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-AAAAAAAAAAAAAAAA',
      '-A KUBE-SVC-ABCDEFGHIJKLMNOP -m comment --comment "default/web:http -> 10.244.2.11:8080" -j KUBE-SEP-BBBBBBBBBBBBBBBB',
      '-A KUBE-SEP-AAAAAAAAAAAAAAAA -m comment --comment default/web:http -s 10.244.1.11 -j KUBE-MARK-MASQ',
      '-A KUBE-SEP-AAAAAAAAAAAAAAAA -m comment --comment default/web:http -m recent --name KUBE-SEP-AAAAAAAAAAAAAAAA --set -m tcp -p tcp -j DNAT --to-destination 10.244.1.11:8080',
      '-A KUBE-SEP-BBBBBBBBBBBBBBBB -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.2.11:8080',
      '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j RETURN',
      '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
      'COMMIT',
    ),
  },
  {
    what: 'a partial sync that drops an endpoint (listFirst)',
    accept: true,
    listFirst: true,
    payload: p(
      '*nat',
      ':KUBE-SVC-ABCDEFGHIJKLMNOP - [0:0]',
      ':KUBE-SEP-BBBBBBBBBBBBBBBB - [0:0]',
      '-A KUBE-SVC-ABCDEFGHIJKLMNOP -m comment --comment "default/web:http -> 10.244.1.11:8080" -j KUBE-SEP-AAAAAAAAAAAAAAAA',
      '-X KUBE-SEP-BBBBBBBBBBBBBBBB',
      'COMMIT',
    ),
  },
  { what: 'a jump to an undeclared chain', accept: false, payload: p('*nat', ':KUBE-SVC-ABCDEFGHIJKLMNOP - [0:0]', '-A KUBE-SVC-ABCDEFGHIJKLMNOP -j KUBE-SEP-MISSING', 'COMMIT') },
  { what: 'a jump to a chain declared later', accept: false, payload: p('*nat', ':X1 - [0:0]', '-A X1 -j X2', ':X2 - [0:0]', 'COMMIT') },
  { what: 'a rule in an undeclared chain', accept: false, payload: p('*nat', '-A KUBE-NOPE -j RETURN', 'COMMIT') },
  { what: 'deleting a referenced chain', accept: false, payload: p('*nat', ':KUBE-SEP-AAAAAAAAAAAAAAAA - [0:0]', '-X KUBE-SEP-AAAAAAAAAAAAAAAA', 'COMMIT') },
  { what: 'deleting a chain that does not exist', accept: false, payload: p('*nat', '-X KUBE-SEP-GONE', 'COMMIT') },
  { what: 'deleting a chain with rules', accept: false, payload: p('*nat', '-X KUBE-MARK-MASQ', 'COMMIT') },
  { what: 'DROP in nat', accept: false, payload: p('*nat', ':X1 - [0:0]', '-A X1 -j DROP', 'COMMIT') },
  { what: 'an unknown match', accept: false, payload: p('*nat', ':X1 - [0:0]', '-A X1 -m nosuchmatch -j RETURN', 'COMMIT') },
  { what: '--dport without a protocol', accept: false, payload: p('*nat', ':X1 - [0:0]', '-A X1 --dport 80 -j RETURN', 'COMMIT') },
  { what: 'a missing COMMIT', accept: false, payload: p('*nat', ':X1 - [0:0]') },
  { what: 'a 29-character chain name', accept: false, payload: p('*nat', ':KUBE-SVC-ABCDEFGHIJKLMNOPQRST - [0:0]', 'COMMIT') },
  { what: 'a 28-character chain name', accept: true, payload: p('*nat', ':KUBE-SVC-ABCDEFGHIJKLMNOPQRS - [0:0]', 'COMMIT') },
  {
    what: 'deleting a chain after flushing its only referrer',
    accept: true,
    payload: p('*nat', ':KUBE-SVC-ABCDEFGHIJKLMNOP - [0:0]', ':KUBE-SEP-AAAAAAAAAAAAAAAA - [0:0]', '-X KUBE-SEP-AAAAAAAAAAAAAAAA', '-X KUBE-SVC-ABCDEFGHIJKLMNOPQRS', 'COMMIT'),
  },
  {
    what: 'a built-in chain declaration under --noflush (keeps its rules)',
    accept: true,
    payload: p('*nat', ':PREROUTING ACCEPT [0:0]', 'COMMIT'),
  },
  {
    what: 'a filter table load without --noflush (replaces the table)',
    accept: true,
    noflush: false,
    payload: p('*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':KUBE-FIREWALL - [0:0]', '-A INPUT -j KUBE-FIREWALL', 'COMMIT'),
  },
];

const V6_STEPS: Step[] = [
  {
    what: 'an IPv6 service',
    accept: true,
    payload: p(
      '*nat',
      ':KUBE-SERVICES - [0:0]',
      ':KUBE-SVC-ABCDEFGHIJKLMNOP - [0:0]',
      ':KUBE-SEP-AAAAAAAAAAAAAAAA - [0:0]',
      '-A KUBE-SERVICES -m comment --comment "default/web6:http cluster IP" -m tcp -p tcp -d fd00:10:96::10 --dport 80 -j KUBE-SVC-ABCDEFGHIJKLMNOP',
      '-A KUBE-SVC-ABCDEFGHIJKLMNOP -m recent --name KUBE-SEP-AAAAAAAAAAAAAAAA --rcheck --seconds 10800 --reap -j KUBE-SEP-AAAAAAAAAAAAAAAA',
      '-A KUBE-SEP-AAAAAAAAAAAAAAAA -m tcp -p tcp -j DNAT --to-destination [fd44::11]:8080',
      'COMMIT',
    ),
  },
  { what: 'an IPv6 jump to an undeclared chain', accept: false, payload: p('*nat', ':KUBE-SERVICES - [0:0]', '-A KUBE-SERVICES -j KUBE-SVC-NOPE', 'COMMIT') },
];

/** Chains and rules per table in iptables-save form, comparable between fake and real. */
function normalise(dump: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const t of parseIptablesSave(dump).values()) {
    out[t.name] = [...t.chains.map((c) => `:${c.name} ${c.policy ?? '-'}`), ...t.rules.map((r) => formatSavedRule(r.chain, r.spec))];
  }
  return out;
}

async function snapshot(ipt: Iptables): Promise<Record<string, string[]>> {
  return { ...normalise(await ipt.save('filter')), ...normalise(await ipt.save('nat')) };
}

const cases: Array<[IPFamily, 'nft' | 'legacy', Step[]]> = [
  ['IPv4', 'nft', V4_STEPS],
  ['IPv4', 'legacy', V4_STEPS],
  ['IPv6', 'nft', V6_STEPS],
  ['IPv6', 'legacy', V6_STEPS],
];

describe.each(cases)('FakeIptables vs real %s %s', (family, backend, steps) => {
  const netns = `${NETNS_PREFIX}${process.pid}-fvr-${family === 'IPv4' ? 4 : 6}${backend}`;
  let real: RealIptables;
  let fake: FakeIptables;
  beforeAll(async () => {
    await execa('ip', ['netns', 'add', netns]);
    real = new RealIptables({ family, backend, runner: createRunner({ netns }) });
    fake = new FakeIptables({ family, backend });
  });
  afterAll(() => deleteNetns(netns));

  it.each(steps.map((s, i) => [i + 1, s.what, s] as const))('step %i: %s', async (_i, _what, step) => {
    const opts = { noflush: step.noflush ?? true, ...(step.listFirst ? { listFirst: true } : {}) };
    const before = await snapshot(real);
    const realResult = await real.restore(step.payload, opts).then(() => 'accepted', (e: Error) => `rejected: ${e.message}`);
    const fakeResult = await fake.restore(step.payload, opts).then(() => 'accepted', (e: Error) => `rejected: ${e.message}`);
    expect({ real: realResult.startsWith('accepted'), fake: fakeResult.startsWith('accepted') }).toEqual({ real: step.accept, fake: step.accept });
    const after = await snapshot(real);
    if (!step.accept) expect(after).toEqual(before);
    expect(await snapshot(fake)).toEqual(after);
  });
});
