import { RestoreError } from '../../../src/dataplane/exec.js';
import { FakeIptables } from '../../../src/dataplane/fake-iptables.js';

const lines = (...l: string[]) => l.join('\n') + '\n';

describe('FakeIptables restore', () => {
  it('declares (creates or flushes) chains and appends rules with --noflush', async () => {
    const ipt = new FakeIptables();
    await ipt.restore(lines('*nat', ':KUBE-SERVICES - [0:0]', ':KUBE-SVC-A - [0:0]', '-A KUBE-SERVICES -d 10.96.0.1 -p tcp --dport 80 -j KUBE-SVC-A', '-A KUBE-SVC-A -j RETURN', 'COMMIT'), { noflush: true });
    expect(ipt.chainNames('nat')).toEqual(['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING', 'KUBE-SERVICES', 'KUBE-SVC-A']);
    expect(ipt.rulesOf('nat', 'KUBE-SERVICES')).toEqual(['-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-A']);
    // A second restore that re-declares only KUBE-SERVICES flushes it and leaves KUBE-SVC-A alone.
    await ipt.restore(lines('*nat', ':KUBE-SERVICES - [0:0]', 'COMMIT'), { noflush: true });
    expect(ipt.rulesOf('nat', 'KUBE-SERVICES')).toEqual([]);
    expect(ipt.rulesOf('nat', 'KUBE-SVC-A')).toEqual(['-A KUBE-SVC-A -j RETURN']);
  });

  it('keeps built-in chain rules when a built-in chain is declared under --noflush', async () => {
    const ipt = new FakeIptables();
    await ipt.restore(lines('*nat', ':KUBE-SERVICES - [0:0]', '-A PREROUTING -j KUBE-SERVICES', 'COMMIT'), { noflush: true });
    await ipt.restore(lines('*nat', ':PREROUTING ACCEPT [0:0]', 'COMMIT'), { noflush: true });
    expect(ipt.rulesOf('nat', 'PREROUTING')).toEqual(['-A PREROUTING -j KUBE-SERVICES']);
  });

  it('without --noflush replaces the whole table', async () => {
    const ipt = new FakeIptables();
    await ipt.restore(lines('*nat', ':OLD - [0:0]', '-A PREROUTING -j OLD', 'COMMIT'), { noflush: true });
    await ipt.restore(lines('*nat', ':NEW - [0:0]', 'COMMIT'), { noflush: false });
    expect(ipt.chainNames('nat')).toEqual(['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING', 'NEW']);
    expect(ipt.rulesOf('nat', 'PREROUTING')).toEqual([]);
  });

  it('deletes an unreferenced chain in the same restore that flushes its referrer', async () => {
    const ipt = new FakeIptables();
    await ipt.restore(lines('*nat', ':KUBE-SERVICES - [0:0]', ':KUBE-SVC-OLD - [0:0]', '-A KUBE-SERVICES -j KUBE-SVC-OLD', 'COMMIT'), { noflush: true });
    await ipt.restore(lines('*nat', ':KUBE-SERVICES - [0:0]', ':KUBE-SVC-OLD - [0:0]', '-X KUBE-SVC-OLD', 'COMMIT'), { noflush: true });
    expect(ipt.chainNames('nat')).not.toContain('KUBE-SVC-OLD');
  });

  it.each([
    ['a jump to an undeclared chain', lines('*nat', ':A - [0:0]', '-A A -j NOPE', 'COMMIT'), 3, /Chain 'NOPE' does not exist/],
    ['a jump to a chain declared later', lines('*nat', ':A - [0:0]', '-A A -j B', ':B - [0:0]', 'COMMIT'), 3, /Chain 'B'/],
    ['a rule in an undeclared chain', lines('*nat', '-A NOPE -j RETURN', 'COMMIT'), 2, /No chain/],
    ['deleting a chain that does not exist', lines('*nat', '-X NOPE', 'COMMIT'), 2, /No chain/],
    ['deleting a built-in chain', lines('*nat', '-X PREROUTING', 'COMMIT'), 2, /busy/],
    ['deleting a chain that still has rules', lines('*nat', ':A - [0:0]', '-A A -j RETURN', '-X A', 'COMMIT'), 4, /busy/],
    ['a missing COMMIT', lines('*nat', ':A - [0:0]'), 3, /COMMIT expected/],
    ['DROP in the nat table', lines('*nat', ':A - [0:0]', '-A A -j DROP', 'COMMIT'), 3, /not intended/],
    ['DNAT in the filter table', lines('*filter', ':A - [0:0]', '-A A -j DNAT --to-destination 1.2.3.4', 'COMMIT'), 3, /not intended/],
    ['an unknown match', lines('*nat', ':A - [0:0]', '-A A -m bogus -j RETURN', 'COMMIT'), 3, /Couldn't load match/],
    ['--dport without a protocol', lines('*nat', ':A - [0:0]', '-A A --dport 80 -j RETURN', 'COMMIT'), 3, /unknown option "--dport"/],
    ['a 29-character chain name', lines('*nat', ':ABCDEFGHIJKLMNOPQRSTUVWXYZ123 - [0:0]', 'COMMIT'), 2, /too long/],
    ['an unknown table', lines('*nope', 'COMMIT'), 1, /does not exist/],
  ])('rejects %s, names the line, and changes nothing', async (_what, payload, line, message) => {
    const ipt = new FakeIptables();
    await ipt.restore(lines('*nat', ':KEEP - [0:0]', '-A KEEP -j RETURN', 'COMMIT'), { noflush: true });
    const before = ipt.dump();
    const err = await ipt.restore(payload, { noflush: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).line).toBe(line);
    expect((err as RestoreError).message).toMatch(message);
    expect(ipt.dump()).toBe(before);
  });

  it('rejects deleting a chain another chain still jumps to', async () => {
    const ipt = new FakeIptables();
    await ipt.restore(lines('*nat', ':A - [0:0]', ':B - [0:0]', '-A A -j B', 'COMMIT'), { noflush: true });
    await expect(ipt.restore(lines('*nat', '-X B', 'COMMIT'), { noflush: true })).rejects.toThrow(/referenced from A/);
  });

  it('accepts the no-op "-S" line of listFirst payloads', async () => {
    const ipt = new FakeIptables();
    await ipt.restore(lines('*nat', '-S', ':A - [0:0]', 'COMMIT'), { noflush: true, listFirst: true });
    expect(ipt.chainNames('nat')).toContain('A');
  });

  it('starts from an initial dump and saves it back in iptables-save form', async () => {
    const dump = lines('*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ':KUBE-SERVICES - [0:0]', '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES', 'COMMIT');
    const ipt = new FakeIptables({ initialDump: dump });
    const saved = await ipt.save('nat');
    expect(saved).toContain(':KUBE-SERVICES - [0:0]\n');
    expect(saved).toContain('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n');
    expect(ipt.calls).toEqual([{ op: 'save', table: 'nat' }]);
  });
});

describe('FakeIptables single-rule operations', () => {
  it('checks, inserts and deletes rules matching by canonical form', async () => {
    const ipt = new FakeIptables();
    await ipt.restore(lines('*nat', ':KUBE-SERVICES - [0:0]', 'COMMIT'), { noflush: true });
    const spec = ['-m', 'comment', '--comment', 'kubernetes service portals', '-j', 'KUBE-SERVICES'];
    expect(await ipt.checkRule('nat', 'OUTPUT', spec)).toBe(false);
    await ipt.insertRule('nat', 'OUTPUT', spec, 'prepend');
    await ipt.insertRule('nat', 'OUTPUT', ['-j', 'RETURN'], 'prepend');
    expect(ipt.rulesOf('nat', 'OUTPUT')[0]).toBe('-A OUTPUT -j RETURN');
    expect(await ipt.checkRule('nat', 'OUTPUT', spec)).toBe(true);
    expect(await ipt.deleteRule('nat', 'OUTPUT', spec)).toBe(true);
    expect(await ipt.deleteRule('nat', 'OUTPUT', spec)).toBe(false);
    await expect(ipt.insertRule('nat', 'NOPE', spec, 'append')).rejects.toThrow(/No chain/);
    await expect(ipt.insertRule('nat', 'OUTPUT', ['-j', 'MISSING'], 'append')).rejects.toThrow(/MISSING/);
  });

  it('fails the next call on demand', async () => {
    const ipt = new FakeIptables();
    ipt.injectFailure('restore', new Error('boom'));
    await expect(ipt.restore(lines('*nat', 'COMMIT'), { noflush: true })).rejects.toThrow('boom');
    await expect(ipt.restore(lines('*nat', 'COMMIT'), { noflush: true })).resolves.toBeUndefined();
    expect(ipt.restores()).toHaveLength(2);
  });
});
