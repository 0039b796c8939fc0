// A full sync starts iptables-save before rendering (the dump is read by another process while this one
// renders) and reads both tables at once; a render failure while a save is under way is the error
// reported, and the save's own failure is not left unhandled.
import { describe, expect, it } from '@jest/globals';
import { FakeIptables } from '../../../src/dataplane/fake-iptables.js';
import type { RestoreOptions, RestoreText } from '../../../src/dataplane/interfaces.js';
import type { TableName } from '../../../src/render/types.js';
import { defaultConfig } from '../../../src/config/config.js';
import { emptyClusterState } from '../../../src/model/cluster-state.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { renderIptables, renderOptionsFromConfig } from '../../../src/render/iptables/index.js';
import { ManualClock } from '../../../src/sync/clock.js';
import { endpoint, servicePort, stateOf } from '../../fixtures/cluster-state.js';
import { IptablesSyncer, SyncFailedError } from '../../../src/sync/iptables-syncer.js';

/** Records the order of events; save() resolves only when released, so concurrency is visible. */
class GatedIptables extends FakeIptables {
  readonly events: string[] = [];
  private releases: Array<() => void> = [];
  failSave = false;
  override async save(table: TableName): Promise<string> {
    this.events.push(`save ${table} start`);
    await new Promise<void>((r) => this.releases.push(r));
    this.events.push(`save ${table} end`);
    if (this.failSave) throw new Error('save failed');
    return super.save(table);
  }
  override async restoreStreamed(head: RestoreText, rest: Promise<string>, opts: RestoreOptions): Promise<void> {
    this.events.push('restore reading head');
    await super.restoreStreamed(
      head,
      rest.finally(() => this.events.push('restore reading rest')),
      opts,
    );
    this.events.push('restore committed');
  }
  releaseAll(): void {
    const r = this.releases;
    this.releases = [];
    for (const f of r) f();
  }
}

function setup(renderFails = false, state = emptyClusterState()) {
  const iptables = new GatedIptables();
  const config = { ...defaultConfig(), nodeName: 'node-a' };
  const syncer = new IptablesSyncer({
    families: [{ family: 'IPv4', iptables }],
    render: (state, family) => {
      iptables.events.push('render');
      if (renderFails) throw new Error('render exploded');
      return renderIptables(state, renderOptionsFromConfig(config, family, ['192.168.50.2']));
    },
    clock: new ManualClock(0),
    logger: new RecordingLogger(),
  });
  syncer.setState(state);
  return { iptables, syncer };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('IptablesSyncer full sync: iptables-save overlaps render', () => {
  it('starts both saves before rendering and applies after they finish', async () => {
    const { iptables, syncer } = setup();
    const done = syncer.sync({ full: true });
    await tick();
    expect(iptables.events.slice(0, 3)).toEqual(['save filter start', 'save nat start', 'render']);
    iptables.releaseAll();
    const result = await done;
    expect(result.ok).toBe(true);
    expect(iptables.events.indexOf('render')).toBeLessThan(iptables.events.indexOf('save filter end'));
  });

  it('reports the render error, not the failed save, and leaves no unhandled rejection', async () => {
    const { iptables, syncer } = setup(true);
    iptables.failSave = true;
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const done = syncer.sync({ full: true }).then(
        () => null,
        (e: unknown) => e,
      );
      await tick();
      iptables.releaseAll();
      const err = await done;
      expect(err).toBeInstanceOf(SyncFailedError);
      expect((err as Error).message).toBe('IPv4 render: render exploded');
      for (let i = 0; i < 5; i++) await tick();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a re-sync starts the restore while iptables-save runs and commits only after the dump is read', async () => {
    const { iptables, syncer } = setup();
    // The process's first sync reads the dump before anything else (it may adopt the kernel's rules).
    const first = syncer.sync({ full: true });
    for (let i = 0; i < 5; i++) await tick();
    expect(iptables.events).not.toContain('restore reading head');
    iptables.releaseAll();
    expect((await first).ok).toBe(true);
    iptables.events.length = 0;
    syncer.setState(
      stateOf(
        servicePort('demo/web:http', {
          clusterIPs: ['10.96.0.9'],
          endpoints: [endpoint('10.244.1.9', 8080)],
        }),
      ),
    );
    const svcChain = (): string[] => iptables.chainNames('nat').filter((c) => c.startsWith('KUBE-SVC-'));
    const done = syncer.sync({ full: true });
    for (let i = 0; i < 5; i++) await tick();
    // The head is with iptables-restore, the dump is not read yet, nothing is committed.
    expect(iptables.events).toContain('restore reading head');
    expect(iptables.events).not.toContain('save nat end');
    expect(svcChain()).toEqual([]);
    iptables.releaseAll();
    expect((await done).ok).toBe(true);
    const e = iptables.events;
    expect(e.indexOf('save nat end')).toBeLessThan(e.indexOf('restore reading rest'));
    expect(e.indexOf('restore reading rest')).toBeLessThan(e.indexOf('restore committed'));
    expect(svcChain()).toHaveLength(1);
  });

  it('a failed save stops the restore uncommitted: rules stay, the failure is the save’s, next sync is full', async () => {
    const { iptables, syncer } = setup();
    const first = syncer.sync({ full: true });
    for (let i = 0; i < 5; i++) await tick();
    iptables.releaseAll();
    await first;
    const before = iptables.dump();
    iptables.failSave = true;
    const failed = syncer.sync({ full: true }).then(
      () => null,
      (e: unknown) => e,
    );
    for (let i = 0; i < 5; i++) await tick();
    iptables.releaseAll();
    const err = await failed;
    expect(err).toBeInstanceOf(SyncFailedError);
    expect((err as Error).message).toBe('IPv4 iptables-save: save failed');
    expect(iptables.dump()).toBe(before);
    expect(iptables.events.filter((e) => e === 'restore committed')).toHaveLength(1);
    expect(syncer.stats.restoreFailures).toBe(0);
    expect(syncer.stats.failures).toBe(1);
  });
});
