// The syncer keeps a render cache per family and hands it to the renderer: a sync after one
// endpoint change re-renders one service port, and the kernel ends up exactly where a syncer without
// a cache puts it. Full syncs compare the dump chain by chain and still find and repair drift.
import { describe, expect, it } from '@jest/globals';
import { defaultConfig } from '../../../src/config/config.js';
import { FakeIptables } from '../../../src/dataplane/fake-iptables.js';
import type { TableName } from '../../../src/render/types.js';
import { ClusterStateBuilder } from '../../../src/model/incremental.js';
import { parseManifestText, type ClusterState } from '../../../src/model/index.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { renderIptables, renderOptionsFromConfig, type IptablesRenderCache } from '../../../src/render/iptables/index.js';
import { ManualClock } from '../../../src/sync/clock.js';
import { IptablesSyncer, SyncFailedError } from '../../../src/sync/iptables-syncer.js';

const NODE_IP = '192.168.50.2';
const config = { ...defaultConfig(), nodeName: 'node-a' };

const manifests = (endpointsOfSvc3: string[]) =>
  Array.from({ length: 6 }, (_, i) => {
    const eps = i === 3 ? endpointsOfSvc3 : [`10.244.${i}.5`, `10.244.${i}.6`];
    return `
apiVersion: v1
kind: Service
metadata: { name: svc${i}, namespace: demo }
spec: { clusterIP: 10.96.0.${10 + i}, ports: [{ name: p, port: 80, targetPort: 8080 }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: svc${i}-1, namespace: demo, labels: { kubernetes.io/service-name: svc${i} } }
addressType: IPv4
ports: [{ name: p, port: 8080 }]
endpoints: [${eps.map((e) => `{ addresses: [${e}], conditions: { ready: true }, nodeName: node-a }`).join(', ')}]
`;
  }).join('---\n');

/** States as the agent's sources produce them: one builder, unchanged ServicePorts kept by identity. */
function stateSource() {
  const builder = new ClusterStateBuilder();
  return (text: string): ClusterState => {
    for (const o of parseManifestText(text, 'm.yaml').objects) builder.upsert(o);
    return builder.build().state;
  };
}

class GatedSaveIptables extends FakeIptables {
  failSave = false;
  override async save(table: TableName): Promise<string> {
    await new Promise((r) => setTimeout(r, 5));
    if (this.failSave) throw new Error('iptables-save: killed');
    return super.save(table);
  }
}

function setup(useCache: boolean) {
  const iptables = new GatedSaveIptables();
  const misses: number[] = [];
  const syncer = new IptablesSyncer({
    families: [{ family: 'IPv4', iptables }],
    render: (state, family, cache: IptablesRenderCache) => {
      const rs = renderIptables(state, renderOptionsFromConfig(config, family, [NODE_IP]), useCache ? cache : undefined);
      misses.push(cache.misses);
      return rs;
    },
    clock: new ManualClock(0),
    logger: new RecordingLogger(),
  });
  return { iptables, syncer, misses };
}

describe('IptablesSyncer with its render cache', () => {
  it('re-renders only the changed service port and leaves the kernel as an uncached syncer does', async () => {
    const cached = setup(true);
    const plain = setup(false);
    const next = stateSource();
    const steps = [['10.244.3.5'], ['10.244.3.5', '10.244.3.7'], ['10.244.3.7'], []];
    for (const [i, eps] of steps.entries()) {
      const state = next(manifests(eps));
      cached.syncer.setState(state);
      plain.syncer.setState(state);
      const r = await cached.syncer.sync();
      await plain.syncer.sync();
      expect(cached.iptables.dump()).toBe(plain.iptables.dump());
      if (i === 0) expect(cached.misses.at(-1)).toBe(6);
      else {
        expect(r.families[0]?.full).toBe(false);
        expect(cached.misses.at(-1)).toBe(1);
      }
      expect(r.families[0]?.stageMs).toHaveProperty('render');
    }
    // A full sync re-reads the kernel, finds nothing wrong, and still renders nothing again.
    const full = await cached.syncer.sync({ full: true });
    expect(full.families[0]?.drift).toEqual([]);
    expect(cached.misses.at(-1)).toBe(0);
    expect(full.families[0]?.stageMs).toHaveProperty(['drift (during restore)']);
  });

  it('a full sync finds a rule changed behind its back and restores the chain', async () => {
    const h = setup(true);
    h.syncer.setState(stateSource()(manifests(['10.244.3.5'])));
    await h.syncer.sync();
    const good = h.iptables.dump();
    const sep = /^-A (KUBE-SEP-\S+) -s 10\.244\.3\.5\/32 /m.exec(good)![1]!;
    // Someone rewrites an endpoint chain's DNAT target.
    await h.iptables.restore(`*nat\n:${sep} - [0:0]\n-A ${sep} -s 10.244.3.5/32 -j KUBE-MARK-MASQ\n-A ${sep} -p tcp -m tcp -j DNAT --to-destination 10.9.9.9:8080\nCOMMIT\n`, { noflush: true });
    const r = await h.syncer.sync({ full: true });
    expect(r.families[0]?.drift.map((d) => [d.chain, d.kind])).toEqual([[sep, 'rulesDiffer']]);
    expect(h.iptables.dump()).toBe(good);
  });

  it('a save failing while the expected texts are prepared fails the sync cleanly (no unhandled rejection)', async () => {
    const h = setup(true);
    h.syncer.setState(stateSource()(manifests(['10.244.3.5'])));
    await h.syncer.sync();
    h.iptables.failSave = true;
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const err = await h.syncer.sync({ full: true }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SyncFailedError);
      expect((err as Error).message).toBe('IPv4 iptables-save: iptables-save: killed');
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
