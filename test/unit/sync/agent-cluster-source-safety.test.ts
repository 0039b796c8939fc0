// Cluster mode never syncs from a partial picture (issue 9, "an empty source is only believed when it is
// positively known to be empty: in cluster mode, a completed list"): while one informer's initial list
// fails, the Services already listed are not programmed, the node's rules stay and /readyz says 503;
// once every list completes, the first sync has everything — and a completed empty list is believed.
// And an update that makes an object invalid keeps its last good version (reported), as in manifest mode.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAgent } from '../../../src/cli/commands/run.js';
import { createFakeDataplane, FakeIpLinks, type FakeDataplane } from '../../../src/dataplane/index.js';
import { ClusterStateBuilder } from '../../../src/model/incremental.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import {
  ApiSource,
  createApiSource,
  loadKubeConfig,
  WATCHED_RESOURCES,
} from '../../../src/sources/api/index.js';
import type { WatchedResource } from '../../../src/sources/api/informer.js';
import { StandInApiServer, writeKubeconfig } from '../../stand-in/api-server.js';
import { httpGetOrDown } from '../../fixtures/loopback-http.js';
import { eventually } from '../../fixtures/polling.js';
import { httpEndpointSlice, httpService, readyAddress } from '../../fixtures/k8s-objects.js';

const ENDPOINT_SLICES = '/apis/discovery.k8s.io/v1/endpointslices';

describe('runAgent in cluster mode: what is believed', () => {
  let dir: string;
  let api: StandInApiServer;
  let dp: FakeDataplane;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portway-initial-list-'));
    api = new StandInApiServer();
    await api.start();
    await writeKubeconfig(api, join(dir, 'kubeconfig'));
    await writeFile(join(dir, 'config.yaml'), 'iptables: { minSyncPeriod: 10ms, syncPeriod: 30s }\n');
    dp = createFakeDataplane({ families: ['IPv4'] });
  });
  afterEach(async () => {
    await api.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Rules from an earlier run (a Service 10.96.9.9 that the API no longer has). */
  const earlierRules = () =>
    dp.iptables.IPv4!.restore(
      '*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -d 10.96.9.9/32 -j RETURN\nCOMMIT\n',
      {
        noflush: true,
      },
    );
  const webSlice = (ip: string) =>
    httpEndpointSlice({
      namespace: 'demo',
      name: 'web-1',
      service: 'web',
      endpoints: [readyAddress(ip, 'node-a')],
    });
  /** Service demo/web (10.96.0.10) and its slice with one ready endpoint, in the API. */
  const putWeb = (ip: string) => {
    api.put(httpService('demo', 'web', '10.96.0.10'));
    api.put(webSlice(ip));
  };

  /**
   * The agent, with the EndpointSlice informer listing from `slices.path` (a path the stand-in does not
   * serve makes that list fail until the test points it back); without `slices`, the API source
   * `portway run` builds (createApiSource).
   */
  const start = async (slices?: WatchedResource, once = false, logger = new RecordingLogger()) => {
    let syncs = 0;
    let healthzPort = 0;
    const abort = new AbortController();
    const done = runAgent({
      kubeconfig: join(dir, 'kubeconfig'),
      configPath: join(dir, 'config.yaml'),
      metricsBindAddress: '127.0.0.1:0',
      healthzBindAddress: '127.0.0.1:0',
      once,
      logger,
      stateDir: dir,
      handleSignals: false,
      signal: abort.signal,
      env: { NODE_NAME: 'node-a' },
      ipLinks: new FakeIpLinks({ lo: ['127.0.0.1/8'], eth0: ['192.168.50.2/24'] }),
      createDataplane: async () => dp,
      createApiSource: (o) =>
        slices === undefined
          ? createApiSource({ ...o, backoff: { initialMs: 20, maxMs: 100 } })
          : new ApiSource({
              kubeConfig: loadKubeConfig(o),
              normalise: new ClusterStateBuilder(),
              logger: o.logger,
              backoff: { initialMs: 20, maxMs: 100 },
              resources: WATCHED_RESOURCES.map((r) => (r.kind === 'EndpointSlice' ? slices : r)),
            }),
      onServing: (p) => (healthzPort = p.healthzPort),
      onSync: () => syncs++,
    });
    if (!once) await eventually('servers', () => healthzPort !== 0);
    return {
      done,
      abort,
      syncs: () => syncs,
      status: async (path: string) => (await httpGetOrDown(healthzPort, path)).status,
    };
  };

  it('nothing is synced while one initial list fails; the first sync, once it completes, has every kind', async () => {
    // The node already has rules (from an earlier run): they must stay while the picture is partial.
    await earlierRules();
    const before = dp.iptables.IPv4!.dump();
    putWeb('10.244.1.5');
    const slices: WatchedResource = {
      kind: 'EndpointSlice',
      apiVersion: 'discovery.k8s.io/v1',
      path: `${ENDPOINT_SLICES}-not-served`,
    };
    const agent = await start(slices);
    try {
      // Services, Nodes, Namespaces … listed; EndpointSlices keep failing (404, retried).
      await new Promise((r) => setTimeout(r, 500));
      expect(agent.syncs()).toBe(0);
      expect(dp.iptables.IPv4!.dump()).toBe(before);
      expect(await agent.status('/readyz')).toBe(503);

      slices.path = ENDPOINT_SLICES; // served again: the list completes on the next retry
      await eventually('the first sync', () => agent.syncs() >= 1);
      // The first restore already had the endpoint: a Service without its slices was never programmed.
      const programmed = dp.iptables.IPv4!.restores().filter((r) => r.payload.includes('10.96.0.10'));
      expect(programmed[0]?.payload).toContain('10.244.1.5');
      await eventually('ready', async () => (await agent.status('/readyz')) === 200);
    } finally {
      agent.abort.abort();
      expect(await agent.done).toBe(0);
    }
  });

  it('a completed list with no Service is believed (--once removes the rules, exit 0)', async () => {
    await earlierRules();
    const slices = WATCHED_RESOURCES.find((r) => r.kind === 'EndpointSlice')!;
    const agent = await start({ ...slices }, true);
    expect(await agent.done).toBe(0);
    expect(dp.iptables.IPv4!.dump()).not.toContain('10.96.9.9');
  });

  it('a Service updated to port 0 keeps its last good version and rules; the log says so, naming the field', async () => {
    putWeb('10.244.1.5');
    const logger = new RecordingLogger();
    const agent = await start(undefined, false, logger);
    const ipt = dp.iptables.IPv4!;
    try {
      await eventually('first sync', () => ipt.dump().includes('10.244.1.5'));
      const broken = httpService('demo', 'web', '10.96.0.10');
      broken.spec.ports[0]!.port = 0;
      api.put(broken);
      await eventually('the problem logged', () =>
        logger.records.some((r) =>
          /^keeping the last good version of invalid Service demo\/web: spec\.ports\[0\]\.port/.test(
            r.message,
          ),
        ),
      );
      // Still programmed; endpoint changes still apply to the kept version.
      api.put(webSlice('10.244.1.6'));
      await eventually('the endpoint change applied', () => ipt.dump().includes('10.244.1.6'));
      expect(ipt.dump()).toMatch(/-A KUBE-SERVICES .*-d 10\.96\.0\.10\/32 .*--dport 80 /);
    } finally {
      agent.abort.abort();
      expect(await agent.done).toBe(0);
    }
  });
});
