// Adoption (the first sync keeps chains that print as desired) must leave the kernel exactly as a full
// rewrite of the same desired rules onto the same kernel would: checked here on kernels that differ
// from the desired rules in the ways a restart or a kube-proxy takeover meets them.
import { describe, expect, it } from '@jest/globals';
import { defaultConfig } from '../../../src/config/config.js';
import { FakeIptables } from '../../../src/dataplane/fake-iptables.js';
import type { ClusterState, IPFamily } from '../../../src/model/cluster-state.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { planIptablesRestore } from '../../../src/plan/iptables-plan.js';
import { renderIptables, renderOptionsFromConfig } from '../../../src/render/iptables/index.js';
import { ManualClock } from '../../../src/sync/clock.js';
import { IptablesSyncer } from '../../../src/sync/iptables-syncer.js';
import { endpoint, servicePort, stateOf } from '../../fixtures/cluster-state.js';

const config = { ...defaultConfig(), nodeName: 'node-a', clusterCIDRs: ['10.244.0.0/16', 'fd00:244::/48'] };
const nodeIP = (family: IPFamily) => (family === 'IPv4' ? '192.168.50.2' : 'fd00:50::2');
const render = (s: ClusterState, family: IPFamily) =>
  renderIptables(s, renderOptionsFromConfig(config, family, [nodeIP(family)]));

function agent(iptables: FakeIptables, family: IPFamily, state: ClusterState) {
  const syncer = new IptablesSyncer({
    families: [{ family, iptables }],
    render: (s, f) => render(s, f),
    clock: new ManualClock(0),
    logger: new RecordingLogger(),
  });
  syncer.setState(state);
  return syncer;
}

function cluster(family: IPFamily, n = 8, extra = 0): ClusterState {
  const ip = (a: number, b: number) => (family === 'IPv4' ? `10.244.${a}.${b}` : `fd00:244::${a}:${b}`);
  return stateOf(
    ...Array.from({ length: n }, (_, i) =>
      servicePort(`demo/web${i + 1}:${i % 2 === 0 ? 'dns' : 'http'}`, {
        type: 'NodePort',
        protocol: i % 2 === 0 ? 'UDP' : 'TCP',
        nodePort: 30000 + i + 1,
        clusterIPs: [family === 'IPv4' ? `10.96.0.${i + 1}` : `fd00:96::${i + 1}`],
        endpoints:
          i === 3
            ? []
            : [ip(1, i + 1), ip(2, i + 1), ...(i < extra ? [ip(3, i + 1)] : [])].map((e) =>
                endpoint(e, 8080, { nodeName: 'node-b' }),
              ),
      }),
    ),
  );
}

/** The same desired rules written whole (every chain declared, stale owned chains removed) onto a copy. */
async function fullRewriteOnto(dump: string, family: IPFamily, state: ClusterState): Promise<string> {
  const ipt = new FakeIptables({ family, initialDump: dump });
  const desired = render(state, family);
  const observed = { filter: ipt.chainNames('filter'), nat: ipt.chainNames('nat') };
  const plan = planIptablesRestore(desired, null, { full: true, observedChains: observed });
  await ipt.restore(plan.payload, { noflush: true });
  // The jumps as the syncer ensures them (absent ones appended/inserted).
  for (const j of desired.builtinJumps) {
    const spec = j.spec.match(/"[^"]*"|\S+/g)!.map((t) => t.replace(/^"(.*)"$/, '$1'));
    if (!(await ipt.checkRule(j.table, j.chain, spec))) await ipt.insertRule(j.table, j.chain, spec, j.position);
  }
  return ipt.dump();
}

const mutations: Record<string, (family: IPFamily) => string> = {
  'KUBE-SERVICES rules in another order': () => '',
  'a stale service tree still referenced from KUBE-SERVICES': (f) => {
    const d = f === 'IPv4' ? '10.96.9.9/32' : 'fd00:96::99/128';
    return `*nat\n:KUBE-SEP-OLD0000000000000 - [0:0]\n:KUBE-SVC-OLD0000000000000 - [0:0]\n-A KUBE-SEP-OLD0000000000000 -j KUBE-MARK-MASQ\n-A KUBE-SVC-OLD0000000000000 -j KUBE-SEP-OLD0000000000000\n-A KUBE-SERVICES -d ${d} -p udp -m udp --dport 53 -j KUBE-SVC-OLD0000000000000\nCOMMIT\n`;
  },
  'kube-proxy’s filter chains with other rules': () =>
    '*filter\n:KUBE-PROXY-FIREWALL - [0:0]\n:KUBE-EXTERNAL-SERVICES - [0:0]\n-A KUBE-PROXY-FIREWALL -j DROP\n-A KUBE-EXTERNAL-SERVICES -j DROP\nCOMMIT\n',
  'a built-in jump somewhere else in its chain': () =>
    '*nat\n-I PREROUTING 1 -s 192.0.2.1/32 -j RETURN\nCOMMIT\n',
  'KUBE-MARK-MASQ edited': () => '*nat\n-A KUBE-MARK-MASQ -j RETURN\nCOMMIT\n',
};

describe('adoption leaves the kernel as a full rewrite would', () => {
  for (const family of ['IPv4', 'IPv6'] as const) {
    for (const [name, mutate] of Object.entries(mutations)) {
      it(`${family}: ${name}`, async () => {
        const kernel = new FakeIptables({ family });
        await agent(kernel, family, cluster(family)).sync();
        let text = mutate(family);
        if (name.startsWith('KUBE-SERVICES')) {
          const rules = kernel.rulesOf('nat', 'KUBE-SERVICES');
          text = `*nat\n:KUBE-SERVICES - [0:0]\n${[...rules.slice(0, -1).reverse(), rules.at(-1)].join('\n')}\nCOMMIT\n`;
        }
        if (name.startsWith('a built-in jump') && family === 'IPv6') text = text.replace('192.0.2.1/32', '2001:db8::1/128');
        await kernel.restore(text, { noflush: true });
        const before = kernel.dump();
        // While it was down: one endpoint added to two services.
        const now = cluster(family, 8, 2);
        const reference = await fullRewriteOnto(before, family, now);
        const fam = (await agent(kernel, family, now).sync()).families[0]!;
        expect(fam.ok).toBe(true);
        expect(fam.adopted).toBeDefined();
        expect(fam.adopted!.rewritten).toBeGreaterThan(0);
        if (name.includes('stale service')) expect(fam.adopted!.deleted).toBeGreaterThan(0);
        expect(kernel.dump()).toBe(reference);
      });
    }
  }

  it('a failed restore leaves the next sync to adopt again; a failure after it (the jumps) makes the next sync full', async () => {
    const kernel = new FakeIptables();
    await agent(kernel, 'IPv4', cluster('IPv4')).sync();
    // Behind its back: a jump removed, a rule edited.
    const jump = kernel.rulesOf('nat', 'PREROUTING').find((r) => r.includes('KUBE-SERVICES'))!;
    await kernel.restore(`*nat\n-D PREROUTING ${jump.replace(/^-A PREROUTING /, '')}\n-A KUBE-MARK-MASQ -j RETURN\nCOMMIT\n`, { noflush: true });
    const now = cluster('IPv4', 8, 2);
    const reference = await fullRewriteOnto(kernel.dump(), 'IPv4', now);
    // The kernel, with the restore that inserts built-in jumps failing while `failJumps` is set.
    let failJumps = false;
    const flaky = Object.assign(Object.create(kernel) as FakeIptables, {
      restore: async (payload: string, opts: Parameters<FakeIptables['restore']>[1]) => {
        if (failJumps && /^-I (PREROUTING|OUTPUT) /m.test(payload)) throw new Error('jumps failed');
        return kernel.restore(payload, opts);
      },
    });
    const restarted = agent(flaky, 'IPv4', now);

    kernel.injectFailure('restore', new Error('xtables lock'));
    await expect(restarted.sync()).rejects.toThrow('xtables lock');
    expect(restarted.lastApplied('IPv4')).toBeNull();

    failJumps = true;
    await expect(restarted.sync()).rejects.toThrow('jumps failed');
    expect(restarted.lastApplied('IPv4')).not.toBeNull();

    failJumps = false;
    const third = (await restarted.sync()).families[0]!;
    expect(third).toMatchObject({ ok: true, full: true });
    expect(third.adopted).toBeUndefined();
    expect(kernel.dump()).toBe(reference);
  });
});
