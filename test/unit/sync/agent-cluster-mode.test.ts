// runAgent in cluster mode against the in-process API stand-in (loopback HTTPS), over the fake
// dataplane: metrics and health scraped over HTTP from the running agent.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAgent } from '../../../src/cli/commands/run.js';
import {
  createFakeDataplane,
  FakeIpLinks,
  type FakeDataplane,
  type FakeIptables,
} from '../../../src/dataplane/index.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { createApiSource } from '../../../src/sources/api/index.js';
import { LAST_CHANGE_TRIGGER_TIME_ANNOTATION } from '../../../src/sync/agent-change-tracker.js';
import { StandInApiServer, writeKubeconfig } from '../../stand-in/api-server.js';
import { httpGetOrDown } from '../../fixtures/loopback-http.js';
import { eventually } from '../../fixtures/polling.js';
import { httpEndpointSlice, httpService, readyAddress } from '../../fixtures/k8s-objects.js';

/** The value of one sample line ("name{labels} value") in a Prometheus text exposition. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

const service = httpService('demo', 'web', '10.96.0.10');
const slice = (ips: string[], trigger?: string) =>
  httpEndpointSlice({
    namespace: 'demo',
    name: 'web-1',
    service: 'web',
    endpoints: ips.map((ip) => readyAddress(ip, 'node-a')),
    ...(trigger ? { annotations: { [LAST_CHANGE_TRIGGER_TIME_ANNOTATION]: trigger } } : {}),
  });
const node = (taints: Array<{ key: string; effect: string }> = []) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: 'node-a', labels: { 'topology.kubernetes.io/zone': 'z1' } },
  spec: { taints },
  status: {
    conditions: [{ type: 'Ready', status: 'True' }],
    addresses: [{ type: 'InternalIP', address: '192.168.50.2' }],
  },
});

describe('runAgent in cluster mode', () => {
  let dir: string;
  let api: StandInApiServer;
  let dp: FakeDataplane;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portway-cluster-'));
    api = new StandInApiServer();
    await api.start();
    await writeKubeconfig(api, join(dir, 'kubeconfig'));
    dp = createFakeDataplane({ families: ['IPv4'] });
  });
  afterEach(async () => {
    await api.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (logger: RecordingLogger, signal: AbortSignal, syncPeriod = '30s') => {
    await writeFile(
      join(dir, 'config.yaml'),
      `iptables: { minSyncPeriod: 10ms, syncPeriod: ${syncPeriod} }\n`,
    );
    let syncs = 0;
    let ports: { metricsPort: number; healthzPort: number } | undefined;
    const done = runAgent({
      kubeconfig: join(dir, 'kubeconfig'),
      configPath: join(dir, 'config.yaml'),
      metricsBindAddress: '127.0.0.1:0',
      healthzBindAddress: '127.0.0.1:0',
      once: false,
      logger,
      stateDir: dir,
      handleSignals: false,
      signal,
      hostname: 'not-this-one',
      env: { NODE_NAME: 'node-a' },
      ipLinks: new FakeIpLinks({ lo: ['127.0.0.1/8'], eth0: ['192.168.50.2/24'] }),
      createDataplane: async () => dp,
      createApiSource: (o) => createApiSource({ ...o, backoff: { initialMs: 20, maxMs: 200 } }),
      onServing: (p) => (ports = p),
      onSync: () => syncs++,
    });
    await eventually('servers', () => ports !== undefined);
    return { done, ports: ports!, syncs: () => syncs };
  };

  it('syncs the listed state, reports kube-proxy metrics, and measures network programming latency', async () => {
    api.put(service);
    api.put(slice(['10.244.1.5']));
    api.put(node());
    const logger = new RecordingLogger();
    const abort = new AbortController();
    const agent = await start(logger, abort.signal);
    const ipt = dp.iptables.IPv4 as FakeIptables;
    try {
      await eventually('first sync', () => agent.syncs() >= 1);
      // The first restore already had everything: it waited for the initial lists.
      expect(ipt.restores()[0]?.payload).toContain('10.244.1.5');
      expect(logger.records.find((r) => r.message === 'portway agent starting')?.fields).toMatchObject({
        mode: 'cluster',
        nodeName: 'node-a',
        families: ['IPv4'],
        api: api.url,
      });
      expect(logger.records.find((r) => r.message === 'this node’s Node object')?.fields).toMatchObject({
        node: 'ready=true zone=z1',
      });

      let text = (await httpGetOrDown(agent.ports.metricsPort, '/metrics')).body;
      expect(sample(text, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds')).toBeGreaterThan(1e9);
      expect(sample(text, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds')).toBeGreaterThan(1e9);
      expect(sample(text, 'kubeproxy_sync_full_proxy_rules_duration_seconds_count')).toBe(1);
      expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}')).toBeGreaterThan(5);
      expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_total{table="filter"}')).toBeGreaterThan(0);
      expect(sample(text, 'kubeproxy_sync_proxy_rules_service_changes_total')).toBe(1);
      expect(sample(text, 'kubeproxy_sync_proxy_rules_endpoint_changes_total')).toBe(1);
      expect(sample(text, 'kubeproxy_network_programming_duration_seconds_count')).toBe(0);
      expect(sample(text, 'portway_api_connected')).toBe(1);
      expect(sample(text, 'portway_api_synced')).toBe(1);
      expect((await httpGetOrDown(agent.ports.metricsPort, '/proxyMode')).body).toBe('iptables');
      expect((await httpGetOrDown(agent.ports.healthzPort, '/healthz')).status).toBe(200);
      expect((await httpGetOrDown(agent.ports.healthzPort, '/readyz')).status).toBe(200);

      // A change triggered 300 ms ago (after the agent started: older ones are not measured), programmed
      // now: the latency is at least 0.3 s.
      await new Promise((r) => setTimeout(r, 350));
      const trigger = new Date(Date.now() - 300).toISOString();
      api.put(slice(['10.244.1.5', '10.244.1.6'], trigger));
      await eventually('the change applied', () => ipt.dump().includes('10.244.1.6'));
      await eventually('latency observed', async () => {
        text = (await httpGetOrDown(agent.ports.metricsPort, '/metrics')).body;
        return sample(text, 'kubeproxy_network_programming_duration_seconds_count') === 1;
      });
      const seconds = sample(text, 'kubeproxy_network_programming_duration_seconds_sum')!;
      expect(seconds).toBeGreaterThanOrEqual(0.3);
      expect(seconds).toBeLessThan(5);
      expect(sample(text, 'kubeproxy_network_programming_duration_seconds_bucket{le="0.25"}')).toBe(0);
      expect(
        sample(text, 'kubeproxy_sync_partial_proxy_rules_duration_seconds_count'),
      ).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'kubeproxy_sync_proxy_rules_endpoint_changes_total')).toBe(2);
      expect(sample(text, 'kubeproxy_sync_proxy_rules_endpoint_changes_pending')).toBe(0);
      expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_last{table="nat"}')).toBeGreaterThan(0);

      // A burst of informer events in one tick (one new state): each counts, as in kube-proxy —
      // two real updates of the Service and one re-put of the same content (a no-op update).
      api.put({ ...service, metadata: { ...service.metadata, labels: { burst: '1' } } });
      api.put({ ...service, metadata: { ...service.metadata, labels: { burst: '2' } } });
      api.put({ ...service, metadata: { ...service.metadata, labels: { burst: '2' } } });
      await eventually('three Service events counted', async () => {
        text = (await httpGetOrDown(agent.ports.metricsPort, '/metrics')).body;
        return sample(text, 'kubeproxy_sync_proxy_rules_service_changes_total') === 4;
      });
      // Labels are not part of what the proxy builds: nothing is pending.
      expect(sample(text, 'kubeproxy_sync_proxy_rules_service_changes_pending')).toBe(0);

      // The node is about to be deleted by the autoscaler: /healthz says so (kube-proxy's nodeEligible).
      api.put(node([{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }]));
      await eventually(
        'healthz 503 for a node being deleted',
        async () => (await httpGetOrDown(agent.ports.healthzPort, '/healthz')).status === 503,
      );
      expect((await httpGetOrDown(agent.ports.healthzPort, '/healthz')).body).toContain(
        '"nodeEligible": false',
      );
      api.put(node());
      await eventually(
        'healthz back',
        async () => (await httpGetOrDown(agent.ports.healthzPort, '/healthz')).status === 200,
      );
    } finally {
      abort.abort();
      expect(await agent.done).toBe(0);
    }
    // Stopped cleanly: servers closed, rules left in place.
    expect((await httpGetOrDown(agent.ports.metricsPort, '/metrics')).status).toBe(0);
    expect(ipt.dump()).toContain('10.244.1.6');
    expect(logger.records.some((r) => r.message === 'stopping; rules stay in place')).toBe(true);
  });

  it('turns /healthz 503 when queued changes stay unapplied for 2 × syncPeriod, and recovers', async () => {
    api.put(service);
    api.put(slice(['10.244.1.5']));
    const abort = new AbortController();
    const agent = await start(new RecordingLogger(), abort.signal, '1s');
    const ipt = dp.iptables.IPv4 as FakeIptables;
    try {
      await eventually('first sync', () => agent.syncs() >= 1);
      expect((await httpGetOrDown(agent.ports.healthzPort, '/healthz')).status).toBe(200);
      // Four failing restores: retried every second (the retry cap is syncPeriod), so ~4 s without success.
      for (let i = 0; i < 4; i++) ipt.injectFailure('restore', new Error('iptables-restore: stuck'));
      const queuedAt = Date.now();
      api.put(slice(['10.244.1.5', '10.244.1.7']));
      await eventually(
        'healthz 503',
        async () => (await httpGetOrDown(agent.ports.healthzPort, '/healthz')).status === 503,
        8000,
      );
      expect(Date.now() - queuedAt).toBeGreaterThanOrEqual(1900);
      const text = (await httpGetOrDown(agent.ports.metricsPort, '/metrics')).body;
      expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total')).toBeGreaterThan(0);
      expect(sample(text, 'kubeproxy_proxy_healthz_total{code="503"}')).toBeGreaterThan(0);
      expect((await httpGetOrDown(agent.ports.healthzPort, '/livez')).status).toBe(503);
      await eventually(
        'recovered after a successful retry',
        async () => (await httpGetOrDown(agent.ports.healthzPort, '/healthz')).status === 200,
        8000,
      );
      expect(ipt.dump()).toContain('10.244.1.7');
    } finally {
      abort.abort();
      expect(await agent.done).toBe(0);
    }
  });

  it('keeps the last good rules through an API outage, says so in metrics, and resumes after it', async () => {
    api.put(service);
    api.put(slice(['10.244.1.5']));
    const abort = new AbortController();
    const agent = await start(new RecordingLogger(), abort.signal);
    const ipt = dp.iptables.IPv4 as FakeIptables;
    try {
      await eventually('first sync', () => agent.syncs() >= 1);
      const restores = ipt.restores().length;
      const rules = ipt.dump();
      await api.stop();
      let text = '';
      await eventually('metrics show the outage', async () => {
        text = (await httpGetOrDown(agent.ports.metricsPort, '/metrics')).body;
        return sample(text, 'portway_api_connected') === 0;
      });
      expect(sample(text, 'portway_api_disconnected_since_timestamp_seconds')).toBeGreaterThan(1e9);
      await new Promise((r) => setTimeout(r, 500));
      expect(ipt.restores().length).toBe(restores);
      expect(ipt.dump()).toBe(rules);
      expect((await httpGetOrDown(agent.ports.healthzPort, '/healthz')).status).toBe(200);
      api.put(slice(['10.244.1.5', '10.244.1.6'])); // changed while the agent could not see it
      await api.start();
      await eventually('reconnected and caught up', () => ipt.dump().includes('10.244.1.6'));
      // Each informer reconnects on its own backoff: the EndpointSlice one can catch up before the
      // others are back, so "connected" (all of them) may follow the caught-up rules a little later.
      await eventually('metrics show every informer reconnected', async () => {
        text = (await httpGetOrDown(agent.ports.metricsPort, '/metrics')).body;
        return sample(text, 'portway_api_connected') === 1;
      });
      expect(sample(text, 'portway_api_disconnected_since_timestamp_seconds')).toBe(0);
    } finally {
      abort.abort();
      expect(await agent.done).toBe(0);
    }
  });

  it('in a pod (no flags): the in-cluster service account and KUBERNETES_SERVICE_HOST/PORT', async () => {
    api.put(service);
    api.put(slice(['10.244.1.8']));
    const sa = join(dir, 'serviceaccount');
    await mkdir(sa);
    await writeFile(join(sa, 'token'), api.token);
    await writeFile(join(sa, 'ca.crt'), api.caCert);
    const logger = new RecordingLogger();
    const code = await runAgent({
      once: true,
      logger,
      stateDir: dir,
      handleSignals: false,
      env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) },
      serviceAccountRoot: sa,
      ipLinks: new FakeIpLinks({ lo: ['127.0.0.1/8'], eth0: ['192.168.50.2/24'] }),
      createDataplane: async () => dp,
    });
    expect(code).toBe(0);
    expect(logger.records.find((r) => r.message === 'portway agent starting')?.fields).toMatchObject({
      mode: 'cluster',
      inCluster: true,
    });
    expect(dp.iptables.IPv4!.dump()).toContain('10.244.1.8');
  });

  it('manifest mode serves the same metrics and health', async () => {
    const manifests = join(dir, 'manifests');
    await mkdir(manifests);
    await writeFile(
      join(manifests, 'web.json'),
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [service, slice(['10.244.1.5'])] }),
    );
    let ports: { metricsPort: number; healthzPort: number } | undefined;
    let syncs = 0;
    const abort = new AbortController();
    const done = runAgent({
      manifests,
      once: false,
      logger: new RecordingLogger(),
      stateDir: dir,
      handleSignals: false,
      signal: abort.signal,
      metricsBindAddress: '127.0.0.1:0',
      healthzBindAddress: '127.0.0.1:0',
      ipLinks: new FakeIpLinks({ lo: ['127.0.0.1/8'], eth0: ['192.168.50.2/24'] }),
      createDataplane: async () => dp,
      onServing: (p) => (ports = p),
      onSync: () => syncs++,
    });
    try {
      await eventually('first sync', () => syncs >= 1 && ports !== undefined);
      const text = (await httpGetOrDown(ports!.metricsPort, '/metrics')).body;
      expect(sample(text, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds')).toBeGreaterThan(1e9);
      expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}')).toBeGreaterThan(5);
      expect((await httpGetOrDown(ports!.healthzPort, '/healthz')).status).toBe(200);
      expect((await httpGetOrDown(ports!.healthzPort, '/readyz')).status).toBe(200);
    } finally {
      abort.abort();
      expect(await done).toBe(0);
    }
  });

  it('cannot start with a missing kubeconfig: exit 2 naming the flag', async () => {
    const logger = new RecordingLogger();
    const code = await runAgent({
      kubeconfig: join(dir, 'nope'),
      once: true,
      logger,
      stateDir: dir,
      handleSignals: false,
      ipLinks: new FakeIpLinks({ lo: ['127.0.0.1/8'], eth0: ['192.168.50.2/24'] }),
      createDataplane: async () => dp,
    });
    expect(code).toBe(2);
    expect(logger.records.at(-1)?.fields).toMatchObject({
      err: expect.stringMatching(/--kubeconfig: file not found/),
    });
  });

  it('--once in cluster mode lists, syncs once and stops the watches', async () => {
    api.put(service);
    api.put(slice(['10.244.1.9']));
    const code = await runAgent({
      kubeconfig: join(dir, 'kubeconfig'),
      once: true,
      logger: new RecordingLogger(),
      stateDir: dir,
      handleSignals: false,
      ipLinks: new FakeIpLinks({ lo: ['127.0.0.1/8'], eth0: ['192.168.50.2/24'] }),
      createDataplane: async () => dp,
    });
    expect(code).toBe(0);
    expect(dp.iptables.IPv4!.dump()).toContain('10.244.1.9');
    // The default deadline: 3 s was tight on a loaded CI box for the server to see every watch close.
    await eventually('watches closed', () => api.openWatchCount === 0);
  });
});
