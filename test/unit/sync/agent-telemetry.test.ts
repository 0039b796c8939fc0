import { describe, expect, it } from '@jest/globals';
import { emptyClusterState, type Endpoint, type ServicePort } from '../../../src/model/cluster-state.js';
import type { IptablesRuleSet, RenderedChain } from '../../../src/render/types.js';
import { ProxyHealth } from '../../../src/observe/health.js';
import { silentLogger } from '../../../src/observe/logger.js';
import { ProxyMetrics } from '../../../src/observe/metrics.js';
import { changeEventFromRaw, type ChangeEvent } from '../../../src/sync/agent-change-tracker.js';
import type { AgentSource } from '../../../src/sync/agent-source.js';
import { AgentTelemetry, countNoLocalEndpoints, RuleCounter } from '../../../src/sync/agent-telemetry.js';
import type { FamilySyncResult } from '../../../src/sync/iptables-syncer.js';
import { endpoint, servicePort } from '../../fixtures/cluster-state.js';

const chain = (name: string, n: number, asText = false): RenderedChain => {
  const rules = Array.from({ length: n }, (_, i) => `-A ${name} -m comment --comment r${i} -j RETURN`);
  return asText
    ? ({ name, role: 'service', rules, text: rules.map((r) => `${r}\n`).join('') } as RenderedChain)
    : { name, role: 'service', rules };
};
const ruleSet = (nat: RenderedChain[], filter: RenderedChain[] = []): IptablesRuleSet => ({
  family: 'IPv4',
  tables: [
    { name: 'filter', chains: filter },
    { name: 'nat', chains: nat },
  ],
  builtinJumps: [],
});
const noPlan = { changedChains: [], deletedChains: [], flushedChains: [] };

describe('RuleCounter', () => {
  it('counts every rule on a full sync and only the written/removed chains on a partial one', () => {
    const counter = new RuleCounter();
    const first = ruleSet(
      [chain('KUBE-SERVICES', 3), chain('KUBE-SVC-A', 2, true), chain('KUBE-SEP-A', 4)],
      [chain('KUBE-FORWARD', 1)],
    );
    expect(
      counter.update(first, { ...noPlan, changedChains: [{ table: 'nat', chain: 'KUBE-SVC-A' }] }, true),
    ).toEqual([
      { table: 'filter', total: 1, written: 0 },
      { table: 'nat', total: 9, written: 2 },
    ]);
    // Partial: KUBE-SVC-A grew by one rule, KUBE-SEP-A removed, KUBE-SEP-B added.
    const second = ruleSet(
      [chain('KUBE-SERVICES', 3), chain('KUBE-SVC-A', 3, true), chain('KUBE-SEP-B', 5)],
      [chain('KUBE-FORWARD', 1)],
    );
    const partial = {
      changedChains: [
        { table: 'nat', chain: 'KUBE-SVC-A' },
        { table: 'nat', chain: 'KUBE-SEP-B' },
      ],
      deletedChains: [{ table: 'nat', chain: 'KUBE-SEP-A' }],
      flushedChains: [],
    };
    expect(counter.update(second, partial, false)).toEqual([
      { table: 'filter', total: 1, written: 0 },
      { table: 'nat', total: 11, written: 8 },
    ]);
  });
});

const ep = (ip: string, nodeName: string, ready = true, terminating = false): Endpoint =>
  endpoint(ip, 8080, { ready, serving: ready || terminating, terminating, nodeName });
const sp = (over: Partial<ServicePort>): ServicePort =>
  servicePort('ns/a:http', { clusterIPs: ['10.96.0.1'], ...over });

describe('countNoLocalEndpoints', () => {
  it('counts Local policies with endpoints elsewhere only (none at all is a REJECT, not counted)', () => {
    const state = emptyClusterState();
    state.servicePorts = [
      sp({ internalTrafficPolicy: 'Local', endpoints: [ep('10.0.0.1', 'other')] }), // internal
      sp({ internalTrafficPolicy: 'Local', endpoints: [ep('10.0.0.2', 'me')] }), // has a local one
      sp({ internalTrafficPolicy: 'Local', endpoints: [] }), // no endpoints at all
      sp({
        type: 'NodePort',
        nodePort: 30001,
        externalTrafficPolicy: 'Local',
        endpoints: [ep('10.0.0.3', 'other')],
      }), // external
      sp({ externalTrafficPolicy: 'Local', endpoints: [ep('10.0.0.4', 'other')] }), // not externally reachable
      // Only a terminating-but-serving local endpoint: usable by the fallback, so not counted.
      sp({
        type: 'NodePort',
        nodePort: 30002,
        externalTrafficPolicy: 'Local',
        endpoints: [ep('10.0.0.5', 'me', false, true)],
      }),
    ];
    expect(countNoLocalEndpoints(state, 'me')).toEqual({ internal: 1, external: 1 });
  });

  it('keeps a Local policy served by a local terminating endpoint while ready ones are elsewhere (not counted)', () => {
    const state = emptyClusterState();
    const eps = [ep('10.0.0.1', 'other'), ep('10.0.0.2', 'me', false, true)];
    state.servicePorts = [
      sp({ internalTrafficPolicy: 'Local', endpoints: eps }),
      sp({ type: 'NodePort', nodePort: 30001, externalTrafficPolicy: 'Local', endpoints: eps }),
      // Not serving: no fallback, so no local endpoint.
      sp({
        internalTrafficPolicy: 'Local',
        endpoints: [ep('10.0.0.3', 'other'), { ...ep('10.0.0.4', 'me', false, true), serving: false }],
      }),
    ];
    expect(countNoLocalEndpoints(state, 'me')).toEqual({ internal: 1, external: 0 });
  });

  it('counts an externally accessible type with a Local policy before it has a node port or an address', () => {
    const state = emptyClusterState();
    state.servicePorts = [
      // allocateLoadBalancerNodePorts: false and no ingress address yet: kube-proxy still counts it.
      sp({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', endpoints: [ep('10.0.0.1', 'other')] }),
    ];
    expect(countNoLocalEndpoints(state, 'me')).toEqual({ internal: 0, external: 1 });
  });

  it('judges each IP family on its own endpoints, only for the families proxied', () => {
    const state = emptyClusterState();
    state.servicePorts = [
      sp({
        clusterIPs: ['10.96.0.1', 'fd00::1'],
        ipFamilies: ['IPv4', 'IPv6'],
        internalTrafficPolicy: 'Local',
        endpoints: [ep('10.0.0.1', 'me'), ep('fd00:10::1', 'other')],
      }),
    ];
    expect(countNoLocalEndpoints(state, 'me', ['IPv4', 'IPv6'])).toEqual({ internal: 1, external: 0 });
    expect(countNoLocalEndpoints(state, 'me', ['IPv4'])).toEqual({ internal: 0, external: 0 });
  });
});

describe('AgentTelemetry restore failure counters', () => {
  const fam = (family: 'IPv4' | 'IPv6', full: boolean, ok: boolean): FamilySyncResult => ({
    family,
    full,
    ok,
    drift: [],
    jumpsInserted: [],
    jumpsRemoved: [],
    conntrackDeleted: 0,
    stageMs: {},
  });
  const setUp = (families: Array<'IPv4' | 'IPv6'>) => {
    const metrics = new ProxyMetrics({ processMetrics: false });
    const health = new ProxyHealth({ healthTimeoutMs: 60_000, now: () => 1_000 });
    const telemetry = new AgentTelemetry({
      families,
      nodeName: 'me',
      metrics,
      health,
      logger: silentLogger,
      now: () => 1_000,
      startedAtMs: 0,
    });
    return { metrics, telemetry };
  };
  const counter = async (m: ProxyMetrics, name: string) =>
    (await m.registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
  const finish = async (
    telemetry: AgentTelemetry,
    families: FamilySyncResult[],
    restoreFailures: { before: number; after: number },
  ) => {
    const ticket = telemetry.syncStarted(restoreFailures.before);
    await telemetry.syncFinished(ticket, {
      result: { ok: families.every((f) => f.ok), durationMs: 5, families, sysctlsChanged: [] },
      full: families.some((f) => f.full),
      restoreFailures: restoreFailures.after,
      lastApplied: () => null,
      state: emptyClusterState(),
    });
  };

  it('counts a failed partial family next to a full one as a partial failure', async () => {
    const { metrics, telemetry } = setUp(['IPv4', 'IPv6']);
    await finish(telemetry, [fam('IPv4', true, true), fam('IPv6', false, false)], { before: 0, after: 1 });
    expect(await counter(metrics, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total')).toBe(1);
    expect(await counter(metrics, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total')).toBe(
      1,
    );
  });

  it('counts a partial sync that failed after its restore as a partial failure, not a restore failure', async () => {
    const { metrics, telemetry } = setUp(['IPv4']);
    await finish(telemetry, [fam('IPv4', false, false)], { before: 3, after: 3 });
    expect(await counter(metrics, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total')).toBe(0);
    expect(await counter(metrics, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total')).toBe(
      1,
    );
  });

  it('does not count a failed full sync as a partial failure', async () => {
    const { metrics, telemetry } = setUp(['IPv4']);
    await finish(telemetry, [fam('IPv4', true, false)], { before: 0, after: 1 });
    expect(await counter(metrics, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total')).toBe(1);
    expect(await counter(metrics, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total')).toBe(
      0,
    );
  });
});

describe('AgentTelemetry proxy health', () => {
  const result = (ok: boolean, sysctlError?: string) => ({
    ok: ok && sysctlError === undefined,
    durationMs: 5,
    families: [
      { family: 'IPv4' as const, full: true, ok, drift: [], jumpsInserted: [], jumpsRemoved: [], conntrackDeleted: 0, stageMs: {} },
    ],
    sysctlsChanged: [],
    ...(sysctlError !== undefined ? { sysctlError } : {}),
  });

  it.each([
    ['the rules fail to apply', false, undefined],
    ['the sysctls the rules need cannot be set', true, 'not changing net/ipv4/ip_forward: cannot record …'],
  ])('reports the node unhealthy when %s for 2 × syncPeriod with no change queued', async (_what, ok, sysctlError) => {
    let now = 1_000;
    const health = new ProxyHealth({ healthTimeoutMs: 60_000, now: () => now });
    const telemetry = new AgentTelemetry({
      families: ['IPv4'],
      nodeName: 'me',
      metrics: new ProxyMetrics({ processMetrics: false }),
      health,
      logger: silentLogger,
      now: () => now,
      startedAtMs: 0,
    });
    const sync = async (r: ReturnType<typeof result>) =>
      telemetry.syncFinished(telemetry.syncStarted(0), {
        result: r,
        full: true,
        restoreFailures: 0,
        lastApplied: () => null,
        state: emptyClusterState(),
      });
    await sync(result(true));
    expect(health.healthz().status).toBe(200);
    // Periodic full syncs every 30 s, all failing; nothing new arrives from the source.
    for (let i = 0; i < 4; i++) {
      now += 30_000;
      await sync(result(ok, sysctlError));
    }
    expect(health.healthz().status).toBe(503);
    now += 30_000;
    await sync(result(true));
    expect(health.healthz().status).toBe(200);
  });
});

describe('AgentTelemetry health-check node ports', () => {
  it('follows the state only once a family has applied it (kube-proxy syncs them after a successful restore)', async () => {
    const synced: number[] = [];
    const telemetry = new AgentTelemetry({
      families: ['IPv4'],
      nodeName: 'me',
      metrics: new ProxyMetrics({ processMetrics: false }),
      health: new ProxyHealth({ healthTimeoutMs: 60_000, now: () => 1_000 }),
      serviceHealth: { sync: async (state) => void synced.push(state.servicePorts.length) },
      logger: silentLogger,
      now: () => 1_000,
      startedAtMs: 0,
    });
    const state = emptyClusterState();
    state.servicePorts = [sp({})];
    const run = async (ok: boolean) =>
      telemetry.syncFinished(telemetry.syncStarted(0), {
        result: {
          ok,
          durationMs: 5,
          families: [
            {
              family: 'IPv4',
              full: true,
              ok,
              drift: [],
              jumpsInserted: [],
              jumpsRemoved: [],
              conntrackDeleted: 0,
              stageMs: {},
            },
          ],
          sysctlsChanged: [],
        },
        full: true,
        restoreFailures: ok ? 0 : 1,
        lastApplied: () => null,
        state,
      });
    await run(false);
    expect(synced).toEqual([]);
    await run(true);
    expect(synced).toEqual([1]);
  });
});

describe('AgentTelemetry change metrics (kube-proxy: one per event; pending = net, reset by a sync)', () => {
  it('counts a burst of updates to one Service coalesced into one new state, a no-op update, and resets pending', async () => {
    const metrics = new ProxyMetrics({ processMetrics: false });
    const telemetry = new AgentTelemetry({
      families: ['IPv4'],
      nodeName: 'me',
      metrics,
      health: new ProxyHealth({ healthTimeoutMs: 60_000, now: () => 1_000 }),
      logger: silentLogger,
      now: () => 1_000,
      startedAtMs: 0,
    });
    const value = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
    const svc = (rv: string, port: number) => ({
      metadata: { namespace: 'demo', name: 'web', resourceVersion: rv },
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', ports: [{ port }] },
    });
    let events: ChangeEvent[] = [];
    const source = {
      kind: 'api',
      rawObjects: () => [],
      takeChangeEvents: () => {
        const out = events;
        events = [];
        return out;
      },
    } as unknown as AgentSource;
    events = [changeEventFromRaw({ kind: 'Service', current: svc('1', 80) })!];
    telemetry.changeQueued(source);
    telemetry.syncStarted(0);
    // Three updates to one Service and a no-op update of it, all in one new state.
    events = [
      changeEventFromRaw({ kind: 'Service', previous: svc('1', 80), current: svc('2', 81) })!,
      changeEventFromRaw({ kind: 'Service', previous: svc('2', 81), current: svc('3', 82) })!,
      changeEventFromRaw({ kind: 'Service', previous: svc('3', 82), current: svc('4', 83) })!,
      changeEventFromRaw({ kind: 'Service', previous: svc('4', 83), current: svc('4', 83) })!,
    ];
    telemetry.changeQueued(source);
    expect(await value('kubeproxy_sync_proxy_rules_service_changes_total')).toBe(5);
    expect(await value('kubeproxy_sync_proxy_rules_service_changes_pending')).toBe(1);
    telemetry.syncStarted(0);
    expect(await value('kubeproxy_sync_proxy_rules_service_changes_pending')).toBe(0);
    // A no-op update alone: counted, nothing pending.
    events = [changeEventFromRaw({ kind: 'Service', previous: svc('4', 83), current: svc('4', 83) })!];
    telemetry.changeQueued(source);
    expect(await value('kubeproxy_sync_proxy_rules_service_changes_total')).toBe(6);
    expect(await value('kubeproxy_sync_proxy_rules_service_changes_pending')).toBe(0);
  });
});
