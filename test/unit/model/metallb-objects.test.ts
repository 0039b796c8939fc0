// MetalLB's IPAddressPool and L2Advertisement (metallb.io/v1beta1) read as portway's own, and MetalLB's
// kinds of features portway lacks (BGP, BFD …) reported once by name and ignored.
import { readFileSync } from 'node:fs';
import { ClusterStateBuilder } from '../../../src/model/incremental.js';
import { parseManifestText, type SourcedObject } from '../../../src/model/load.js';
import { buildClusterState, formatProblem } from '../../../src/model/normalise.js';

const FIXTURE = 'test/fixtures/metallb/metallb-layer2.yaml';
const metallbObjects = (): SourcedObject[] =>
  parseManifestText(readFileSync(FIXTURE, 'utf8'), FIXTURE).objects;

/** The same objects written as portway.io/v1alpha1 (what a user would otherwise have to rewrite). */
const asPortway = (objects: SourcedObject[]): SourcedObject[] =>
  objects
    .filter((o) => ['IPAddressPool', 'L2Advertisement'].includes((o.object as { kind: string }).kind))
    .map((o) => ({ ...o, object: { ...(o.object as object), apiVersion: 'portway.io/v1alpha1' } }));

describe('MetalLB objects (metallb.io/v1beta1)', () => {
  it('give the same pools and advertisements as the same objects in portway.io/v1alpha1', () => {
    const metallb = buildClusterState(metallbObjects());
    const portway = buildClusterState(asPortway(metallbObjects()));
    expect(metallb.state.addressPools.map((p) => p.name)).toEqual(['production', 'reserved']);
    expect(metallb.state.addressPools[0]).toMatchObject({
      avoidBuggyIPs: true,
      autoAssign: true,
      serviceAllocation: { priority: 10, namespaces: ['default'] },
    });
    expect(metallb.state.addressPools[1]).toMatchObject({ autoAssign: false });
    expect(metallb.state.l2Advertisements.map((a) => a.name)).toEqual(['prod-l2', 'reserved-l2']);
    expect(metallb.state).toEqual(portway.state);
    expect(portway.problems).toEqual([]);
  });

  it('reports each BGP/BFD object once by name, ignores MetalLB status objects, and crashes on nothing', () => {
    const { problems } = buildClusterState(metallbObjects());
    expect(problems.map(formatProblem)).toEqual([
      `${FIXTURE}: metallb.io BGPPeer metallb-system/tor-1: BGP is not supported by portway; ignored`,
      `${FIXTURE}: metallb.io BFDProfile metallb-system/fast: BFD is not supported by portway (it serves BGP sessions, which portway does not have); ignored`,
    ]);
  });

  it.each([
    ['BGPAdvertisement', 'metallb.io/v1beta1', /BGP is not supported/],
    ['BGPPeer', 'metallb.io/v1beta1', /BGP is not supported/],
    ['Community', 'metallb.io/v1beta1', /BGP communities are not supported/],
    ['AddressPool', 'metallb.io/v1beta1', /deprecated AddressPool .* IPAddressPool and an L2Advertisement/],
    ['FRRConfiguration', 'frrk8s.metallb.io/v1beta1', /FRR \(BGP\) is not supported/],
  ])('%s (%s) is reported and ignored', (kind, apiVersion, message) => {
    const { problems } = buildClusterState([
      {
        source: 'f.yaml',
        object: { apiVersion, kind, metadata: { name: 'x', namespace: 'metallb-system' }, spec: null },
      },
    ]);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.kind).toBe(`${apiVersion.split('/')[0]} ${kind}`);
    expect(problems[0]!.message).toMatch(message);
  });

  it('a MetalLB kind at a version MetalLB does not serve it at is an error naming both versions portway reads', () => {
    const { problems, state } = buildClusterState([
      {
        source: 'f.yaml',
        object: {
          apiVersion: 'metallb.io/v1beta2',
          kind: 'IPAddressPool',
          metadata: { name: 'p' },
          spec: { addresses: ['192.0.2.0/30'] },
        },
      },
    ]);
    expect(state.addressPools).toEqual([]);
    expect(problems.map(formatProblem)).toEqual([
      'f.yaml: IPAddressPool p: apiVersion: portway reads IPAddressPool as portway.io/v1alpha1 or metallb.io/v1beta1 (got "metallb.io/v1beta2")',
    ]);
  });

  it('a MetalLB pool and a portway pool of one name are one pool: the second is a reported duplicate', () => {
    const pool = (apiVersion: string, cidr: string) => ({
      apiVersion,
      kind: 'IPAddressPool',
      metadata: { name: 'shared', namespace: 'metallb-system' },
      spec: { addresses: [cidr] },
    });
    const { state, problems } = buildClusterState([
      { source: 'a.yaml', object: pool('portway.io/v1alpha1', '192.0.2.0/30') },
      { source: 'b.yaml', object: pool('metallb.io/v1beta1', '198.51.100.0/30') },
    ]);
    expect(state.addressPools.map((p) => p.addresses[0]!.text)).toEqual(['192.0.2.0/30']);
    expect(problems.map((p) => `${p.source} ${p.field}`)).toEqual(['b.yaml metadata.name']);
  });

  it('the incremental builder (the agent) reads them as the full normalisation does', () => {
    const builder = new ClusterStateBuilder({ keepLastGood: true });
    for (const o of metallbObjects()) builder.upsert({ ...o, source: 'api', document: undefined });
    const full = buildClusterState(
      metallbObjects().map((o) => ({ ...o, source: 'api', document: undefined })),
    );
    const built = builder.build();
    expect(built.state).toEqual(full.state);
    expect(built.problems.map((p) => p.kind).sort()).toEqual(['metallb.io BFDProfile', 'metallb.io BGPPeer']);
    expect(builder.remove('IPAddressPool', 'metallb-system', 'reserved')).toBe(true);
    expect(builder.build().state.addressPools.map((p) => p.name)).toEqual(['production']);
  });
});
