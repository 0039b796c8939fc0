/* eslint-disable @typescript-eslint/no-explicit-any -- assertions on raw Kubernetes JSON */
// ApiSource with an incremental normaliser (ClusterStateBuilder): it is told only what changed,
// and the snapshots equal a full buildClusterState of the informers' objects.
import { KubeConfig } from '@kubernetes/client-node';
import { ClusterStateBuilder } from '../../../src/model/incremental.js';
import { buildClusterState } from '../../../src/model/normalise.js';
import { ApiSource, type ApiSnapshot } from '../../../src/sources/api/api-source.js';
import { StandInApiServer } from '../../stand-in/api-server.js';
import { eventually } from '../../fixtures/polling.js';
import { httpEndpointSlice, minimalHttpService, readyAddress } from '../../fixtures/k8s-objects.js';

const svc = minimalHttpService;
const slice = (name: string, service: string, ip: string) =>
  httpEndpointSlice({ namespace: 'default', name, service, endpoints: [readyAddress(ip)] });

/** A ClusterStateBuilder that records the calls it gets. */
class RecordingBuilder extends ClusterStateBuilder {
  readonly calls: string[] = [];
  override upsert(o: { source: string; object: any }): void {
    this.calls.push(`upsert ${o.object.kind} ${o.object.metadata.name}`);
    super.upsert(o);
  }
  override remove(kind: string, namespace: string, name: string): boolean {
    this.calls.push(`remove ${kind} ${namespace}/${name}`);
    return super.remove(kind, namespace, name);
  }
}

describe('ApiSource with ClusterStateBuilder', () => {
  let server: StandInApiServer;
  let source: ApiSource | undefined;
  beforeEach(async () => {
    server = new StandInApiServer();
    await server.start();
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await server.stop();
  });

  function start(builder: ClusterStateBuilder) {
    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig());
    source = new ApiSource({ kubeConfig: kc, normalise: builder, backoff: { initialMs: 20, maxMs: 200 } });
    const snapshots: ApiSnapshot[] = [];
    source.onChange((s) => snapshots.push(s));
    return { source, snapshots };
  }

  /** What a full normalisation of the informers' current objects says. */
  function reference(s: ApiSource) {
    const objects = [
      'Service',
      'EndpointSlice',
      'Node',
      'Namespace',
      'Ingress',
      'IngressClass',
      'IPAddressPool',
      'L2Advertisement',
    ]
      .flatMap((kind) => s.rawObjects(kind))
      .map((object) => ({ source: 'api', object }));
    return buildClusterState(objects);
  }

  it('feeds only changed objects and matches a full normalisation after adds, updates and deletes', async () => {
    server.put(svc('web'));
    server.put(svc('broken', 70000));
    server.put(slice('web-1', 'web', '10.0.0.1'));
    const builder = new RecordingBuilder();
    const { source: s, snapshots } = start(builder);
    await s.start();
    expect(builder.calls.sort()).toEqual([
      'upsert EndpointSlice web-1',
      'upsert Service broken',
      'upsert Service web',
    ]);
    expect(snapshots.at(-1)).toEqual(reference(s));
    expect(snapshots.at(-1)?.problems.map((p) => p.object)).toEqual(['default/broken']);
    const webPort = snapshots.at(-1)!.state.servicePorts[0]!;

    builder.calls.length = 0;
    server.put(slice('web-1', 'web', '10.0.0.2'));
    await eventually(
      'slice update',
      () => snapshots.at(-1)?.state.servicePorts[0]?.endpoints[0]?.ip === '10.0.0.2',
    );
    expect(builder.calls).toEqual(['upsert EndpointSlice web-1']);
    expect(snapshots.at(-1)).toEqual(reference(s));
    expect(snapshots.at(-1)!.state.servicePorts[0]).not.toBe(webPort);

    builder.calls.length = 0;
    server.remove('Service', 'default', 'broken');
    await eventually('delete', () => snapshots.at(-1)?.problems.length === 0);
    expect(builder.calls).toEqual(['remove Service default/broken']);
    expect(snapshots.at(-1)).toEqual(reference(s));
  });

  it('does not re-read unchanged objects when an informer relists (same uid and resourceVersion)', async () => {
    server.put(svc('keep'));
    server.put(svc('gone'));
    const builder = new RecordingBuilder();
    const { source: s, snapshots } = start(builder);
    await s.start();
    builder.calls.length = 0;
    await server.stop();
    server.remove('Service', 'default', 'gone');
    server.put(svc('new'));
    server.expireHistory();
    await server.start();
    await eventually(
      'relisted',
      () =>
        snapshots
          .at(-1)
          ?.state.services.map((x) => x.name)
          .join() === 'keep,new',
    );
    expect(builder.calls.sort()).toEqual(['remove Service default/gone', 'upsert Service new']);
    expect(snapshots.at(-1)).toEqual(reference(s));
  });
});
