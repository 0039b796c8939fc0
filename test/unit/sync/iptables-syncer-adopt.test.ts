// A process's first sync onto a kernel that already holds owned chains adopts the ones that print as
// desired and writes only the rest; the kernel must end up exactly as a full rewrite would leave it.
import { describe, expect, it } from '@jest/globals';
import { defaultConfig } from '../../../src/config/config.js';
import { FakeIptables } from '../../../src/dataplane/fake-iptables.js';
import type { ClusterState } from '../../../src/model/cluster-state.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { renderIptables, renderOptionsFromConfig } from '../../../src/render/iptables/index.js';
import { ManualClock } from '../../../src/sync/clock.js';
import { IptablesSyncer } from '../../../src/sync/iptables-syncer.js';
import { endpoint, servicePort, stateOf } from '../../fixtures/cluster-state.js';

const config = { ...defaultConfig(), nodeName: 'node-a', clusterCIDRs: ['10.244.0.0/16'] };

/** One syncer = one agent process (its own lastApplied), on the kernel `iptables`. */
function agent(iptables: FakeIptables, state: ClusterState) {
  const logger = new RecordingLogger();
  const syncer = new IptablesSyncer({
    families: [{ family: 'IPv4', iptables }],
    render: (s, family) => renderIptables(s, renderOptionsFromConfig(config, family, ['192.168.50.2'])),
    clock: new ManualClock(0),
    logger,
  });
  syncer.setState(state);
  return { syncer, logger };
}

function web(n: number, endpoints: string[]) {
  return servicePort(`demo/web${n}:http`, {
    type: 'NodePort',
    nodePort: 30000 + n,
    clusterIPs: [`10.96.0.${n}`],
    endpoints: endpoints.map((ip) => endpoint(ip, 8080, { nodeName: 'node-b' })),
  });
}

const cluster = (): ClusterState =>
  stateOf(...Array.from({ length: 8 }, (_, i) => web(i + 1, [`10.244.1.${i + 1}`, `10.244.2.${i + 1}`])));

/** What a fresh process leaves on an empty kernel for `state`: the reference result. */
async function freshKernelFor(state: ClusterState): Promise<string> {
  const ipt = new FakeIptables();
  await agent(ipt, state).syncer.sync();
  return ipt.dump();
}

describe('IptablesSyncer: the first sync adopts what the kernel already holds', () => {
  it('a restart with nothing changed sends no restore and inserts no jump', async () => {
    const kernel = new FakeIptables();
    await agent(kernel, cluster()).syncer.sync();
    const before = kernel.dump();
    const restores = kernel.restores().length;

    const restarted = agent(kernel, cluster());
    const result = await restarted.syncer.sync();
    const fam = result.families[0]!;
    expect(fam.ok).toBe(true);
    expect(fam.full).toBe(true);
    expect(fam.adopted?.rewritten).toBe(0);
    expect(fam.adopted?.deleted).toBe(0);
    expect(fam.adopted?.kept).toBeGreaterThan(20);
    expect(fam.plan?.bytes).toBe(0);
    expect(fam.jumpsInserted).toEqual([]);
    expect(kernel.restores().length).toBe(restores);
    expect(kernel.dump()).toBe(before);
    expect(restarted.logger.records.some((r) => r.message === 'iptables already up to date')).toBe(true);

    // Afterwards it is an ordinary agent: a change is a partial sync of the changed chains only.
    const changed = cluster();
    changed.servicePorts[0] = web(1, ['10.244.1.1', '10.244.3.1']);
    restarted.syncer.setState(changed);
    const next = (await restarted.syncer.sync()).families[0]!;
    expect(next.full).toBe(false);
    expect(next.plan?.changedChains.length).toBeGreaterThan(0);
    expect(next.plan?.changedChains.length).toBeLessThan(5);
    expect(kernel.dump()).toBe(await freshKernelFor(changed));
  });

  it('writes only the chains that changed while it was down, deletes the ones that went away, and repairs edits', async () => {
    const kernel = new FakeIptables();
    await agent(kernel, cluster()).syncer.sync();
    // Behind its back: a rule appended to one service chain, and a stale endpoint chain.
    const svc = kernel.chainNames('nat').find((c) => c.startsWith('KUBE-SVC-'))!;
    await kernel.restore(`*nat\n-A ${svc} -j RETURN\n:KUBE-SEP-STALE0000000000 - [0:0]\nCOMMIT\n`, {
      noflush: true,
    });
    // While it was down: one service gone, one with a new endpoint.
    const now = cluster();
    now.servicePorts.splice(7, 1);
    now.servicePorts[1] = web(2, ['10.244.1.2', '10.244.2.2', '10.244.3.2']);

    const restarted = agent(kernel, now);
    const fam = (await restarted.syncer.sync()).families[0]!;
    expect(fam.ok).toBe(true);
    expect(fam.adopted).toBeDefined();
    expect(fam.plan?.changedChains.map((c) => c.chain)).toContain(svc);
    expect(fam.plan?.deletedChains.map((c) => c.chain)).toContain('KUBE-SEP-STALE0000000000');
    // Every desired chain not written was already right: far fewer written than a full rewrite.
    expect(fam.adopted!.rewritten).toBe(fam.plan!.changedChains.length);
    expect(fam.adopted!.rewritten).toBeLessThan(fam.adopted!.kept);
    expect(kernel.dump()).toBe(await freshKernelFor(now));
    // What it found is not drift (nothing was applied by this process yet).
    expect(fam.drift).toEqual([]);
  });

  it('onto an empty kernel it loads everything with the streamed full restore, as before', async () => {
    const kernel = new FakeIptables();
    const fam = (await agent(kernel, cluster()).syncer.sync()).families[0]!;
    expect(fam.adopted).toBeUndefined();
    expect(fam.full).toBe(true);
    expect(kernel.dump()).toBe(await freshKernelFor(cluster()));
  });

  it('when most chains differ (another renderer, another cluster) it rewrites everything instead', async () => {
    const kernel = new FakeIptables();
    await agent(kernel, cluster()).syncer.sync();
    const other = stateOf(...Array.from({ length: 8 }, (_, i) => web(i + 21, [`10.245.9.${i + 1}`])));
    const fam = (await agent(kernel, other).syncer.sync()).families[0]!;
    expect(fam.adopted).toBeUndefined();
    expect(kernel.dump()).toBe(await freshKernelFor(other));
  });
});
