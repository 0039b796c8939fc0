// The syncer's conntrack cleanup: when it runs relative to the rest of a sync, and the sweep of the
// listed table on full syncs (src/sync/conntrack-cleanup.ts plans, the syncer runs the deletions).
import { describe, expect, it } from '@jest/globals';
import { defaultConfig } from '../../../src/config/config.js';
import { FakeConntrack, type FakeFlow } from '../../../src/dataplane/conntrack.js';
import { FakeIptables } from '../../../src/dataplane/fake-iptables.js';
import { splitRuleSpec } from '../../../src/dataplane/iptables-text.js';
import { buildClusterState, parseManifestText, type ClusterState } from '../../../src/model/index.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { renderIptables, renderOptionsFromConfig } from '../../../src/render/iptables/index.js';
import { ManualClock } from '../../../src/sync/clock.js';
import { IptablesSyncer } from '../../../src/sync/iptables-syncer.js';

const NODE_IP = '192.168.50.2';

/** UDP Service dns (cluster IP 10.96.0.53, port 53 → 5353, node port 30053) with these endpoints. */
function dns(endpoints: string[]): ClusterState {
  const text = `
apiVersion: v1
kind: Service
metadata: { name: dns, namespace: demo }
spec:
  type: NodePort
  clusterIP: 10.96.0.53
  ports: [{ name: p, port: 53, targetPort: 5353, protocol: UDP, nodePort: 30053 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: dns-1, namespace: demo, labels: { kubernetes.io/service-name: dns } }
addressType: IPv4
ports: [{ name: p, port: 5353, protocol: UDP }]
endpoints: [${endpoints.map((e) => `{ addresses: [${e}], conditions: { ready: true }, nodeName: node-a }`).join(', ')}]
`;
  const loaded = parseManifestText(text, 'test.yaml');
  const built = buildClusterState(loaded.objects);
  expect([...loaded.problems, ...built.problems]).toEqual([]);
  return built.state;
}

const flow = (origDst: string, origDstPort: number, replySrc: string): FakeFlow => ({
  family: 'IPv4',
  protocol: 'udp',
  origDst,
  origDstPort,
  replySrc,
  replySrcPort: 5353,
});

/** `list: false`: a conntrack without listEntries (change-driven cleanup only). */
function setup(flows: FakeFlow[] = [], opts: { list?: boolean } = {}) {
  const config = { ...defaultConfig(), nodeName: 'node-a' };
  const iptables = new FakeIptables();
  const conntrack = new FakeConntrack(flows);
  const logger = new RecordingLogger();
  const syncer = new IptablesSyncer({
    families: [
      {
        family: 'IPv4',
        iptables,
        conntrack: opts.list === false ? { deleteEntries: (f) => conntrack.deleteEntries(f) } : conntrack,
      },
    ],
    render: (state, family) => renderIptables(state, renderOptionsFromConfig(config, family, [NODE_IP])),
    clock: new ManualClock(1000),
    logger,
  });
  return { iptables, conntrack, logger, syncer };
}

describe('IptablesSyncer conntrack cleanup', () => {
  it('a sync that fails after the restore (built-in jumps) does not lose the cleanup: the next sync makes it', async () => {
    const h = setup([], { list: false });
    h.syncer.setState(dns(['10.244.1.5', '10.244.1.6']));
    await h.syncer.sync();
    // Someone deletes kube's PREROUTING jump; the full sync that re-inserts it fails to probe it.
    const jump = h.iptables.dump().split('\n').find((l) => /^-A PREROUTING .*-j KUBE-SERVICES$/.test(l))!;
    expect(await h.iptables.deleteRule('nat', 'PREROUTING', splitRuleSpec(jump.replace(/^-A PREROUTING /, '')))).toBe(true);
    h.iptables.injectFailure('checkRule', new Error('xtables lock held'));
    h.syncer.setState(dns(['10.244.1.5']));
    h.conntrack.flows = [flow('10.96.0.53', 53, '10.244.1.6'), flow('10.96.0.53', 53, '10.244.1.5')];
    await expect(h.syncer.sync({ full: true })).rejects.toThrow(/built-in jumps: xtables lock held/);
    h.conntrack.deletions.length = 0;
    await h.syncer.sync();
    expect(h.conntrack.deletions).toContainEqual({
      family: 'IPv4', protocol: 'udp', origDst: '10.96.0.53', origDstPort: 53, replySrc: '10.244.1.6',
    });
    expect(h.conntrack.flows).toEqual([flow('10.96.0.53', 53, '10.244.1.5')]);
  });

  it('the first sync sweeps entries DNATed to an endpoint removed while the agent was not running', async () => {
    const live = flow('10.96.0.53', 53, '10.244.1.5');
    const other = flow('10.0.0.9', 53, '10.0.0.9'); // not a Service: untouched
    const h = setup([flow('10.96.0.53', 53, '10.244.1.6'), flow(NODE_IP, 30053, '10.244.1.6'), live, other]);
    h.syncer.setState(dns(['10.244.1.5']));
    const r = await h.syncer.sync();
    expect(h.conntrack.flows).toEqual([live, other]);
    expect(r.families[0]?.conntrackDeleted).toBe(2);
  });

  it('partial syncs do not list the table; full ones sweep what a failed deletion left', async () => {
    const h = setup();
    h.syncer.setState(dns(['10.244.1.5', '10.244.1.6']));
    await h.syncer.sync();
    const stale = flow('10.96.0.53', 53, '10.244.1.6');
    h.conntrack.flows = [stale];
    const deleteEntries = h.conntrack.deleteEntries.bind(h.conntrack);
    let failures = 1;
    h.conntrack.deleteEntries = async (f) => {
      if (failures-- > 0) throw new Error('conntrack: Operation not permitted');
      return deleteEntries(f);
    };
    let lists = 0;
    const listEntries = h.conntrack.listEntries.bind(h.conntrack);
    h.conntrack.listEntries = async (family, protocol) => {
      lists++;
      return listEntries(family, protocol);
    };
    h.syncer.setState(dns(['10.244.1.5']));
    await h.syncer.sync(); // partial: the one deletion fails (logged, counted)
    expect(h.syncer.stats.conntrackFailures).toBe(1);
    expect(h.conntrack.flows).toEqual([stale]);
    expect(lists).toBe(0);
    await h.syncer.sync({ full: true });
    expect(lists).toBe(1);
    expect(h.conntrack.flows).toEqual([]);
  });
});
