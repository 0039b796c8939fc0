// fast-check pieces for raw Kubernetes objects, shared by the model property tests. Each test picks
// its own universe (namespaces, names, addresses, ports); these turn drawn values into the objects
// the loader would hand to normalise.
import fc from 'fast-check';

/** One EndpointSlice endpoint: an address, optional conditions, an optional node and zone hints. */
export function sliceEndpoint(ipv4: fc.Arbitrary<string>) {
  return fc.record({
    ip: ipv4,
    ready: fc.option(fc.boolean(), { nil: undefined }),
    terminating: fc.option(fc.boolean(), { nil: undefined }),
    node: fc.option(fc.constantFrom('n1', 'n2'), { nil: undefined }),
    forZones: fc.option(fc.subarray(['z1', 'z2']), { nil: undefined }),
  });
}

export interface SliceDraft {
  ns: string | undefined;
  /** The owning Service's name; none makes an orphan slice (no service-name label). */
  svc: string | undefined;
  sliceName: string;
  v6: boolean;
  v6ip: string;
  endpoints: {
    ip: string;
    ready?: boolean | undefined;
    terminating?: boolean | undefined;
    node?: string | undefined;
    forZones?: string[] | undefined;
  }[];
  portName: string;
  protocol: string | undefined;
  /** 70000 stands for "out of range" in the port arbitraries; the slice then uses 8080. */
  port: number;
  headless?: boolean;
}

/** The discovery.k8s.io/v1 EndpointSlice a drawn SliceDraft describes (IPv6 slices use v6ip throughout). */
export function endpointSliceObject(s: SliceDraft) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${s.svc ?? 'orphan'}-${s.sliceName}`,
      namespace: s.ns,
      labels: {
        ...(s.svc !== undefined ? { 'kubernetes.io/service-name': s.svc } : {}),
        ...(s.headless === true ? { 'service.kubernetes.io/headless': '' } : {}),
      },
    },
    addressType: s.v6 ? 'IPv6' : 'IPv4',
    ports: [{ name: s.portName, port: s.port === 70000 ? 8080 : s.port, protocol: s.protocol }],
    endpoints: s.endpoints.map((e) => ({
      addresses: [s.v6 ? s.v6ip : e.ip],
      conditions: { ready: e.ready, terminating: e.terminating },
      nodeName: e.node,
      ...(e.forZones === undefined ? {} : { hints: { forZones: e.forZones.map((name) => ({ name })) } }),
    })),
  };
}

/** Legacy v1 Endpoints (one subset, port 9000) in the given universe. */
export function legacyEndpointsObject(
  ns: fc.Arbitrary<string | undefined>,
  name: fc.Arbitrary<string>,
  ipv4: fc.Arbitrary<string>,
  portName: fc.Arbitrary<string>,
) {
  return fc.record({ ns, name, ips: fc.array(ipv4, { maxLength: 3 }), portName }).map((e) => ({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: e.name, namespace: e.ns },
    subsets: [{ addresses: e.ips.map((ip) => ({ ip })), ports: [{ name: e.portName, port: 9000 }] }],
  }));
}
