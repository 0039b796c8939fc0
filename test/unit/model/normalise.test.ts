import { buildClusterState, formatFieldPath, formatProblem } from '../../../src/model/normalise.js';
import { parseManifestText, type SourcedObject } from '../../../src/model/load.js';
import type { InputProblem } from '../../../src/model/cluster-state.js';
import { servicePort } from '../../fixtures/cluster-state.js';

/** Objects from one YAML text, as the loader gives them. */
function fromYaml(text: string, source = 'test.yaml'): SourcedObject[] {
  const r = parseManifestText(text, source);
  if (r.problems.length > 0) throw new Error(r.problems.map(formatProblem).join('\n'));
  return r.objects;
}
const build = (text: string) => buildClusterState(fromYaml(text));
const brief = (ps: InputProblem[]) => ps.map((p) => `${p.kind} ${p.object} ${p.field}: ${p.message}`);

const minimalService = `
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  clusterIP: 10.96.0.1
  ports: [{ port: 80 }]
`;

describe('Service defaults', () => {
  it('applies the API server defaults and kube-proxy readings', () => {
    const { state, problems } = build(minimalService);
    expect(problems).toEqual([]);
    expect(state.services).toEqual([
      {
        namespace: 'default',
        name: 'web',
        type: 'ClusterIP',
        labels: {},
        annotations: {},
        selector: {},
        clusterIPs: ['10.96.0.1'],
        ipFamilies: ['IPv4'],
        ipFamilyPolicy: 'SingleStack',
        loadBalancerIP: '',
        loadBalancerClass: '',
        externalTrafficPolicy: 'Cluster',
        ports: [{ name: '', protocol: 'TCP', port: 80, nodePort: 0 }],
        statusIngress: [],
      },
    ]);
    // The shared builder's defaults are exactly the API server's: every field but the address.
    expect(state.servicePorts).toEqual([servicePort('default/web', { clusterIPs: ['10.96.0.1'] })]);
  });

  it('defaults the ClientIP affinity timeout to 10800 s and keeps a given one', () => {
    const { state } = build(`
apiVersion: v1
kind: Service
metadata: { name: a, namespace: ns }
spec: { clusterIP: 10.96.0.1, sessionAffinity: ClientIP, ports: [{ port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: b, namespace: ns }
spec:
  clusterIP: 10.96.0.2
  sessionAffinity: ClientIP
  sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }
  ports: [{ port: 80 }]
`);
    expect(state.servicePorts.map((p) => p.sessionAffinity)).toEqual([
      { type: 'ClientIP', timeoutSeconds: 10800 },
      { type: 'ClientIP', timeoutSeconds: 60 },
    ]);
  });

  it('reads a LoadBalancer: ingress ipMode default VIP, hostname-only ingress dropped, health-check port only with Local', () => {
    const { state, problems } = build(`
apiVersion: v1
kind: Service
metadata: { name: lb, namespace: ns }
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.3
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  healthCheckNodePort: 32100
  externalIPs: [198.51.100.7]
  loadBalancerIP: 192.0.2.001
  loadBalancerSourceRanges: [' 10.1.2.3/8 ', 2001:DB8::1/32]
  ports: [{ name: http, port: 80, nodePort: 30080 }]
status:
  loadBalancer:
    ingress: [{ ip: 192.0.2.1 }, { ip: 192.0.2.2, ipMode: Proxy }, { hostname: lb.example.com }]
---
apiVersion: v1
kind: Service
metadata: { name: lb-cluster, namespace: ns }
spec: { type: LoadBalancer, clusterIP: 10.96.0.4, healthCheckNodePort: 32101, ports: [{ port: 80, nodePort: 30081 }] }
`);
    expect(problems).toEqual([]);
    // Code-point order: '-' sorts before ':'.
    const [cluster, lb] = state.servicePorts;
    expect(lb).toMatchObject({
      id: 'ns/lb:http',
      type: 'LoadBalancer',
      nodePort: 30080,
      healthCheckNodePort: 32100,
      externalIPs: ['198.51.100.7'],
      loadBalancerIngress: [
        { ip: '192.0.2.1', ipMode: 'VIP' },
        { ip: '192.0.2.2', ipMode: 'Proxy' },
      ],
      loadBalancerSourceRanges: ['10.0.0.0/8', '2001:db8::/32'],
      externalTrafficPolicy: 'Local',
      internalTrafficPolicy: 'Local',
    });
    expect(state.services[0]?.loadBalancerIP).toBe('192.0.2.1');
    // kube-proxy's NeedsHealthCheck: eTP Cluster has no health-check node port even if one is written.
    expect(cluster?.healthCheckNodePort).toBe(0);
    expect(cluster?.id).toBe('ns/lb-cluster');
  });

  it('canonicalises leading-zero IPv4 as decimal and compresses IPv6', () => {
    const { state, problems } = build(`
apiVersion: v1
kind: Service
metadata: { name: dual, namespace: ns }
spec:
  clusterIP: 010.096.000.010
  clusterIPs: [010.096.000.010, "FD00:0:0:0:0:0:0:00A"]
  externalIPs: [2001:0db8:0000:0000:0001:0000:0000:0001]
  ports: [{ port: 53, protocol: UDP }]
`);
    expect(problems).toEqual([]);
    expect(state.servicePorts[0]).toMatchObject({
      clusterIPs: ['10.96.0.10', 'fd00::a'],
      externalIPs: ['2001:db8::1:0:0:1'],
      ipFamilies: ['IPv4', 'IPv6'],
      protocol: 'UDP',
    });
    expect(state.services[0]?.ipFamilyPolicy).toBe('RequireDualStack');
  });

  it('keeps headless, ExternalName and other-proxy Services as ServiceInfo without service ports', () => {
    const { state, problems } = build(`
apiVersion: v1
kind: Service
metadata: { name: headless, namespace: ns }
spec: { clusterIP: None, ports: [{ port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: ext, namespace: ns }
spec: { type: ExternalName, externalName: example.com, ports: [{ port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: other, namespace: ns, labels: { service.kubernetes.io/service-proxy-name: someone-else } }
spec: { clusterIP: 10.96.0.9, ports: [{ port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: unallocated, namespace: ns }
spec: { ports: [{ port: 80 }] }
`);
    expect(problems).toEqual([]);
    expect(state.servicePorts).toEqual([]);
    expect(state.services.map((s) => [s.name, s.type, s.clusterIPs])).toEqual([
      ['ext', 'ExternalName', []],
      ['headless', 'ClusterIP', []],
      ['other', 'ClusterIP', ['10.96.0.9']],
      ['unallocated', 'ClusterIP', []],
    ]);
  });

  it('sorts service ports by (id, protocol) and services by namespace/name', () => {
    const { state } = build(`
apiVersion: v1
kind: Service
metadata: { name: z, namespace: b }
spec: { clusterIP: 10.96.0.1, ports: [{ name: dns, port: 53, protocol: UDP }, { name: dns-tcp, port: 53 }, { name: a, port: 1 }] }
---
apiVersion: v1
kind: Service
metadata: { name: y, namespace: a }
spec: { clusterIP: 10.96.0.2, ports: [{ port: 1 }] }
`);
    expect(state.servicePorts.map((p) => `${p.id}/${p.protocol}`)).toEqual([
      'a/y/TCP',
      'b/z:a/TCP',
      'b/z:dns/UDP',
      'b/z:dns-tcp/TCP',
    ]);
    expect(state.services.map((s) => `${s.namespace}/${s.name}`)).toEqual(['a/y', 'b/z']);
  });
});

describe('endpoints', () => {
  const service = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: ns }
spec:
  clusterIP: 10.96.0.1
  ports: [{ name: http, port: 80 }, { name: dns, port: 53, protocol: UDP }, { name: tcp-only, port: 9 }]
`;

  it('joins slice ports to service ports by (name, protocol), merges slices, dedupes, sorts', () => {
    const { state, problems } = build(`${service}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-b, namespace: ns, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080 }, { name: dns, port: 5353, protocol: UDP }, { name: tcp-only, port: 9, protocol: UDP }]
endpoints:
  - { addresses: [10.244.0.10], conditions: { ready: false, serving: true, terminating: true }, nodeName: n1, zone: z1, targetRef: { name: pod-10 } }
  - { addresses: [10.244.0.9, 10.244.9.9] }
  - { addresses: [] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-a, namespace: ns, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080 }, { name: unused, port: 0 }]
endpoints:
  - { addresses: [10.244.0.10], conditions: { ready: true }, nodeName: n2 }
  - { addresses: [10.244.0.100] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: other-svc, namespace: ns, labels: { kubernetes.io/service-name: not-web } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints: [{ addresses: [10.244.7.7] }]
`);
    expect(problems).toEqual([]);
    const byId = Object.fromEntries(state.servicePorts.map((p) => [p.id, p.endpoints]));
    // Numeric order (10.244.0.9 < .10 < .100); the duplicate 10.244.0.10:8080 keeps web-a's copy (first by slice name).
    expect(byId['ns/web:http']).toEqual([
      { ip: '10.244.0.9', port: 8080, family: 'IPv4', ready: true, serving: true, terminating: false },
      {
        ip: '10.244.0.10',
        port: 8080,
        family: 'IPv4',
        ready: true,
        serving: true,
        terminating: false,
        nodeName: 'n2',
      },
      { ip: '10.244.0.100', port: 8080, family: 'IPv4', ready: true, serving: true, terminating: false },
    ]);
    expect(byId['ns/web:dns']).toEqual([
      { ip: '10.244.0.9', port: 5353, family: 'IPv4', ready: true, serving: true, terminating: false },
      {
        ip: '10.244.0.10',
        port: 5353,
        family: 'IPv4',
        ready: false,
        serving: true,
        terminating: true,
        nodeName: 'n1',
        zone: 'z1',
        targetName: 'pod-10',
      },
    ]);
    // The slice's tcp-only port is UDP, the service's is TCP: no join.
    expect(byId['ns/web:tcp-only']).toEqual([]);
  });

  it('reads condition defaults as kube-proxy does: ready unset = true, serving unset = true, terminating unset = false', () => {
    const { state } = build(`${service}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: s, namespace: ns, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
  - { addresses: [10.0.0.1] }
  - { addresses: [10.0.0.2], conditions: { ready: false } }
  - { addresses: [10.0.0.3], conditions: { terminating: true, serving: false, ready: false } }
`);
    expect(
      state.servicePorts
        .find((p) => p.portName === 'http')
        ?.endpoints.map((e) => [e.ip, e.ready, e.serving, e.terminating]),
    ).toEqual([
      ['10.0.0.1', true, true, false],
      ['10.0.0.2', false, true, false],
      ['10.0.0.3', false, false, true],
    ]);
  });

  it('reads topology hints: zone and node names as sorted sets, absent when the slice gives none', () => {
    const { state, problems } = build(`${service}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: s, namespace: ns, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints:
  - { addresses: [10.0.0.1], zone: z1, hints: { forZones: [{ name: z2 }, { name: z1 }, { name: z2 }] } }
  - { addresses: [10.0.0.2], hints: { forNodes: [{ name: n1 }], forZones: [] } }
  - { addresses: [10.0.0.3], hints: {} }
  - { addresses: [10.0.0.4], hints: null }
  - { addresses: [10.0.0.5] }
`);
    expect(problems).toEqual([]);
    const eps = state.servicePorts.find((p) => p.portName === 'http')?.endpoints ?? [];
    expect(eps.map((e) => [e.ip, e.zoneHints, e.nodeHints])).toEqual([
      ['10.0.0.1', ['z1', 'z2'], undefined],
      ['10.0.0.2', undefined, ['n1']],
      ['10.0.0.3', undefined, undefined],
      ['10.0.0.4', undefined, undefined],
      ['10.0.0.5', undefined, undefined],
    ]);
    // An empty list is "no hints", not "hinted for nothing": no key at all.
    expect('zoneHints' in eps[1]!).toBe(false);
  });

  it('reports a hint without a name and skips the slice', () => {
    const { state, problems } = build(`${service}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: s, namespace: ns, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints:
  - { addresses: [10.0.0.1], hints: { forZones: [{ zone: z1 }] } }
`);
    expect(brief(problems)).toEqual(['EndpointSlice ns/s endpoints[0].hints.forZones[0].name: required']);
    expect(state.servicePorts.find((p) => p.portName === 'http')?.endpoints).toEqual([]);
  });

  it('reads IPv6 slices, ignores FQDN slices and slices kube-proxy does not watch', () => {
    const { state, problems } = build(`${service}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: v6, namespace: ns, labels: { kubernetes.io/service-name: web } }
addressType: IPv6
ports: [{ name: http, port: 8080 }]
endpoints: [{ addresses: ["FD00::0:0:7"] }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: fqdn, namespace: ns, labels: { kubernetes.io/service-name: web } }
addressType: FQDN
ports: [{ name: http, port: 8080 }]
endpoints: [{ addresses: [db.example.com] }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: other-proxy, namespace: ns, labels: { kubernetes.io/service-name: web, service.kubernetes.io/service-proxy-name: x } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints: [{ addresses: [10.9.9.9] }]
`);
    expect(problems).toEqual([]);
    expect(state.servicePorts.find((p) => p.portName === 'http')?.endpoints).toEqual([
      { ip: 'fd00::7', port: 8080, family: 'IPv6', ready: true, serving: true, terminating: false },
    ]);
  });

  it('falls back to v1 Endpoints only for a Service that has no EndpointSlice', () => {
    const endpoints = (name: string) => `
---
apiVersion: v1
kind: Endpoints
metadata: { name: ${name}, namespace: ns }
subsets:
  - addresses: [{ ip: 10.1.0.2, nodeName: n1, targetRef: { name: p2 } }, { ip: 10.1.0.1 }]
    notReadyAddresses: [{ ip: 10.1.0.3 }]
    ports: [{ name: http, port: 8080 }, { name: dns, port: 53, protocol: UDP }]
`;
    const legacyOnly = build(service + endpoints('web'));
    expect(legacyOnly.problems).toEqual([]);
    const byId = Object.fromEntries(legacyOnly.state.servicePorts.map((p) => [p.id, p.endpoints]));
    expect(byId['ns/web:http']).toEqual([
      { ip: '10.1.0.1', port: 8080, family: 'IPv4', ready: true, serving: true, terminating: false },
      {
        ip: '10.1.0.2',
        port: 8080,
        family: 'IPv4',
        ready: true,
        serving: true,
        terminating: false,
        nodeName: 'n1',
        targetName: 'p2',
      },
      { ip: '10.1.0.3', port: 8080, family: 'IPv4', ready: false, serving: false, terminating: false },
    ]);
    expect(byId['ns/web:dns']?.map((e) => `${e.ip}:${e.port}`)).toEqual([
      '10.1.0.1:53',
      '10.1.0.2:53',
      '10.1.0.3:53',
    ]);
    expect(byId['ns/web:tcp-only']).toEqual([]);

    const withSlice = build(`${service}${endpoints('web')}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: s, namespace: ns, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints: [{ addresses: [10.2.0.1] }]
`);
    expect(
      withSlice.state.servicePorts.find((p) => p.portName === 'http')?.endpoints.map((e) => e.ip),
    ).toEqual(['10.2.0.1']);
    expect(withSlice.state.servicePorts.find((p) => p.portName === 'dns')?.endpoints).toEqual([]);
  });
});

describe('nodes, namespaces, ingresses', () => {
  it('reads nodes: InternalIP/ExternalIP canonical, Ready, zone, sorted by name', () => {
    const { state, problems } = build(`
apiVersion: v1
kind: Node
metadata: { name: node-b, labels: { topology.kubernetes.io/zone: z2, role: edge } }
status:
  addresses: [{ type: Hostname, address: node-b }, { type: InternalIP, address: 10.0.0.02 }, { type: ExternalIP, address: "2001:DB8::2" }]
  conditions: [{ type: MemoryPressure, status: "False" }, { type: Ready, status: "True" }]
---
apiVersion: v1
kind: Node
metadata: { name: node-a }
status: { conditions: [{ type: Ready, status: Unknown }] }
`);
    expect(problems).toEqual([]);
    expect(state.nodes).toEqual([
      { name: 'node-a', addresses: [], ready: false, labels: {} },
      {
        name: 'node-b',
        addresses: ['10.0.0.2', '2001:db8::2'],
        ready: true,
        zone: 'z2',
        labels: { 'topology.kubernetes.io/zone': 'z2', role: 'edge' },
      },
    ]);
  });

  it('reads namespace labels', () => {
    const { state } = build(`
apiVersion: v1
kind: Namespace
metadata: { name: team-b, labels: { tier: gold } }
---
apiVersion: v1
kind: Namespace
metadata: { name: team-a }
`);
    expect(state.namespaceLabels).toEqual({ 'team-a': {}, 'team-b': { tier: 'gold' } });
    expect(Object.keys(state.namespaceLabels)).toEqual(['team-a', 'team-b']);
  });

  it('reads ingresses: class from spec or annotation, default backend and rule backends, status', () => {
    const { state, problems } = build(`
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: site, namespace: web }
spec:
  ingressClassName: portway
  defaultBackend: { service: { name: fallback, port: { number: 80 } } }
  rules:
    - host: shop.example.com
      http:
        paths:
          - { path: /api, pathType: Prefix, backend: { service: { name: api, port: { name: http } } } }
          - { path: /static, pathType: Prefix, backend: { resource: { apiGroup: x, kind: Bucket, name: b } } }
    - http:
        paths: [{ pathType: ImplementationSpecific, backend: { service: { name: web, port: { number: 8080 } } } }]
status: { loadBalancer: { ingress: [{ ip: 192.0.2.50 }] } }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: legacy, namespace: web, annotations: { kubernetes.io/ingress.class: nginx } }
spec: {}
`);
    expect(problems).toEqual([]);
    expect(state.ingresses).toEqual([
      {
        namespace: 'web',
        name: 'legacy',
        ingressClassName: '',
        classAnnotation: 'nginx',
        rules: [],
        statusIngress: [],
        statusHostnames: [],
      },
      {
        namespace: 'web',
        name: 'site',
        ingressClassName: 'portway',
        classAnnotation: '',
        defaultBackend: { service: { name: 'fallback', port: 80 } },
        rules: [
          {
            host: 'shop.example.com',
            paths: [
              { path: '/api', pathType: 'Prefix', backend: { service: { name: 'api', port: 'http' } } },
              {
                path: '/static',
                pathType: 'Prefix',
                backend: { resource: { apiGroup: 'x', kind: 'Bucket', name: 'b' } },
              },
            ],
          },
          { host: '', paths: [{ path: '', pathType: 'ImplementationSpecific', backend: { service: { name: 'web', port: 8080 } } }] },
        ],
        statusIngress: [{ ip: '192.0.2.50' }],
        statusHostnames: [],
      },
    ]);
  });
});

describe('address pools and L2 advertisements', () => {
  it('normalises ranges and CIDRs, applies defaults, reads serviceAllocation', () => {
    const { state, problems } = build(`
apiVersion: portway.io/v1alpha1
kind: IPAddressPool
metadata: { name: public, labels: { zone: dmz } }
spec:
  addresses: [192.0.2.010-192.0.2.20, 198.51.100.7/24, "2001:DB8::/126", "fd00::1 - fd00::5"]
  avoidBuggyIPs: true
  serviceAllocation:
    priority: 5
    namespaces: [shop]
    namespaceSelectors: [{ matchLabels: { tier: gold } }]
    serviceSelectors: [{ matchExpressions: [{ key: app, operator: In, values: [web] }] }]
---
apiVersion: portway.io/v1alpha1
kind: IPAddressPool
metadata: { name: cheap, namespace: portway-system }
spec: { addresses: [10.10.0.0/30], autoAssign: false }
`);
    expect(problems).toEqual([]);
    expect(state.addressPools).toEqual([
      {
        name: 'cheap',
        labels: {},
        addresses: [{ first: '10.10.0.0', last: '10.10.0.3', family: 'IPv4', text: '10.10.0.0/30' }],
        autoAssign: false,
        avoidBuggyIPs: false,
      },
      {
        name: 'public',
        labels: { zone: 'dmz' },
        addresses: [
          { first: '192.0.2.10', last: '192.0.2.20', family: 'IPv4', text: '192.0.2.10-192.0.2.20' },
          { first: '198.51.100.0', last: '198.51.100.255', family: 'IPv4', text: '198.51.100.0/24' },
          { first: '2001:db8::', last: '2001:db8::3', family: 'IPv6', text: '2001:db8::/126' },
          { first: 'fd00::1', last: 'fd00::5', family: 'IPv6', text: 'fd00::1-fd00::5' },
        ],
        autoAssign: true,
        avoidBuggyIPs: true,
        serviceAllocation: {
          priority: 5,
          namespaces: ['shop'],
          namespaceSelectors: [{ matchLabels: { tier: 'gold' }, matchExpressions: [] }],
          serviceSelectors: [
            { matchLabels: {}, matchExpressions: [{ key: 'app', operator: 'In', values: ['web'] }] },
          ],
        },
      },
    ]);
  });

  it('reads L2 advertisements with defaults', () => {
    const { state, problems } = build(`
apiVersion: portway.io/v1alpha1
kind: L2Advertisement
metadata: { name: b }
spec:
  ipAddressPools: [public]
  nodeSelectors: [{ matchLabels: { role: edge } }]
  interfaces: [eth0]
---
apiVersion: portway.io/v1alpha1
kind: L2Advertisement
metadata: { name: a }
`);
    expect(problems).toEqual([]);
    expect(state.l2Advertisements).toEqual([
      { name: 'a', ipAddressPools: [], ipAddressPoolSelectors: [], nodeSelectors: [], interfaces: [] },
      {
        name: 'b',
        ipAddressPools: ['public'],
        ipAddressPoolSelectors: [],
        nodeSelectors: [{ matchLabels: { role: 'edge' }, matchExpressions: [] }],
        interfaces: ['eth0'],
      },
    ]);
  });

  it("reads MetalLB's objects of the same kinds as its own (issue 13: migrate without rewriting them)", () => {
    const { state, problems } = build(`
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: { name: m, namespace: metallb-system }
spec: { addresses: [10.0.0.0/24] }
`);
    expect(problems).toEqual([]);
    expect(state.addressPools.map((p) => p.name)).toEqual(['m']);
  });

  it('ignores kinds of the same name in other groups (they are not ours)', () => {
    const { state, problems } = build(`
apiVersion: example.com/v1
kind: IPAddressPool
metadata: { name: m }
spec: { addresses: [10.0.0.0/24] }
`);
    expect(problems).toEqual([]);
    expect(state.addressPools).toEqual([]);
  });
});

describe('bad input: reported with file, object and field; the object is skipped, the rest survives', () => {
  const good = `
apiVersion: v1
kind: Service
metadata: { name: good, namespace: ns }
spec: { clusterIP: 10.96.9.9, ports: [{ name: http, port: 80 }] }
`;
  const cases: Array<[string, string, string]> = [
    [
      'port out of range',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ name: a, port: 80 }, { name: b, port: 70000 }] }`,
      'Service ns/bad spec.ports[1].port: must be 1-65535 (got 70000)',
    ],
    [
      'port as a string',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ port: "80" }] }`,
      'Service ns/bad spec.ports[0].port: must be 1-65535 (got "80")',
    ],
    [
      'missing port',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ name: x }] }`,
      'Service ns/bad spec.ports[0].port: required',
    ],
    [
      'unknown protocol',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ port: 80, protocol: ICMP }] }`,
      'Service ns/bad spec.ports[0].protocol: must be TCP, UDP or SCTP (got "ICMP")',
    ],
    [
      'bad cluster IP',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIP: 10.96.0.300, ports: [{ port: 80 }] }`,
      'Service ns/bad spec.clusterIP: not a valid IP address (got "10.96.0.300")',
    ],
    [
      'bad cluster IPs entry',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIPs: [10.96.0.1, nope], ports: [{ port: 80 }] }`,
      'Service ns/bad spec.clusterIPs[1]: not a valid IP address (got "nope")',
    ],
    [
      'bad external IP',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIP: 10.96.0.1, externalIPs: [1.2.3], ports: [{ port: 80 }] }`,
      'Service ns/bad spec.externalIPs[0]: not a valid IP address (got "1.2.3")',
    ],
    [
      'bad source range',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { type: LoadBalancer, clusterIP: 10.96.0.1, loadBalancerSourceRanges: [10.0.0.0/33], ports: [{ port: 80 }] }`,
      'Service ns/bad spec.loadBalancerSourceRanges[0]: not a valid CIDR (got "10.0.0.0/33")',
    ],
    [
      'bad status ingress IP',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { type: LoadBalancer, clusterIP: 10.96.0.1, ports: [{ port: 80 }] }\nstatus: { loadBalancer: { ingress: [{ ip: x }] } }`,
      'Service ns/bad status.loadBalancer.ingress[0].ip: not a valid IP address (got "x")',
    ],
    [
      'missing metadata.name',
      `kind: Service\napiVersion: v1\nmetadata: { namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ port: 80 }] }`,
      'Service  metadata.name: required (document 2)',
    ],
    [
      'unnamed ports when there are several',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ name: a, port: 80 }, { port: 81 }] }`,
      'Service ns/bad spec.ports[1].name: required when the Service has more than one port',
    ],
    [
      'duplicate port name',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ name: a, port: 80 }, { name: a, port: 81, protocol: UDP }] }`,
      'Service ns/bad spec.ports[1].name: duplicate port name "a"',
    ],
    [
      'nodePort on ClusterIP',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ port: 80, nodePort: 30000 }] }`,
      'Service ns/bad spec.ports[0].nodePort: may not be set when type is ClusterIP',
    ],
    [
      'unknown type',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { type: Magic, clusterIP: 10.96.0.1, ports: [{ port: 80 }] }`,
      'Service ns/bad spec.type: must be one of ClusterIP, NodePort, LoadBalancer, ExternalName (got "Magic")',
    ],
    [
      'affinity timeout out of range',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIP: 10.96.0.1, sessionAffinity: ClientIP, sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } }, ports: [{ port: 80 }] }`,
      'Service ns/bad spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be 1-86400 (got 0)',
    ],
    [
      'a label that is not a string',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns, labels: { enabled: true } }\nspec: { clusterIP: 10.96.0.1, ports: [{ port: 80 }] }`,
      'Service ns/bad metadata.labels.enabled: must be a string (got true)',
    ],
    [
      'spec not an object',
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: [1]`,
      'Service ns/bad spec: must be an object (got a list)',
    ],
    [
      'wrong apiVersion of a known group',
      `kind: Ingress\napiVersion: networking.k8s.io/v1beta1\nmetadata: { name: bad, namespace: ns }`,
      'Ingress ns/bad apiVersion: portway reads Ingress as networking.k8s.io/v1 (got "networking.k8s.io/v1beta1")',
    ],
    [
      'slice without its service-name label',
      `kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\nmetadata: { name: bad, namespace: ns }\naddressType: IPv4\nendpoints: []`,
      'EndpointSlice ns/bad metadata.labels["kubernetes.io/service-name"]: required: it names the Service the slice belongs to',
    ],
    [
      'slice address of the wrong family',
      `kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\nmetadata: { name: bad, namespace: ns, labels: { kubernetes.io/service-name: good } }\naddressType: IPv4\nendpoints: [{ addresses: ["fd00::1"] }]`,
      'EndpointSlice ns/bad endpoints[0].addresses[0]: not a valid IPv4 address (got "fd00::1")',
    ],
    [
      'slice port out of range',
      `kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\nmetadata: { name: bad, namespace: ns, labels: { kubernetes.io/service-name: good } }\naddressType: IPv4\nports: [{ name: http, port: 65536 }]`,
      'EndpointSlice ns/bad ports[0].port: must be 0-65535 (got 65536)',
    ],
    [
      'slice condition not a boolean',
      `kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\nmetadata: { name: bad, namespace: ns, labels: { kubernetes.io/service-name: good } }\naddressType: IPv4\nendpoints: [{ addresses: [10.0.0.1], conditions: { ready: "yes" } }]`,
      'EndpointSlice ns/bad endpoints[0].conditions.ready: must be true or false (got "yes")',
    ],
    [
      'Endpoints with a bad IP',
      `kind: Endpoints\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nsubsets: [{ addresses: [{ ip: 10.0.0.256 }], ports: [{ port: 80 }] }]`,
      'Endpoints ns/bad subsets[0].addresses[0].ip: not a valid IP address (got "10.0.0.256")',
    ],
    [
      'Node with a bad address',
      `kind: Node\napiVersion: v1\nmetadata: { name: bad }\nstatus: { addresses: [{ type: InternalIP, address: "10.0.0" }] }`,
      'Node bad status.addresses[0].address: not a valid IP address (got "10.0.0")',
    ],
    [
      'Ingress backend port with neither number nor name',
      `kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: { name: bad, namespace: ns }\nspec: { defaultBackend: { service: { name: x, port: {} } } }`,
      'Ingress ns/bad spec.defaultBackend.service.port: exactly one of number or name must be set',
    ],
    [
      'Ingress host that is an IP address',
      `kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: { name: bad, namespace: ns }\nspec: { rules: [{ host: "192.0.2.1", http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }] } }] }`,
      'Ingress ns/bad spec.rules[0].host: must be a DNS name, not an IP address (got "192.0.2.1")',
    ],
    [
      'Ingress wildcard host with the star inside',
      `kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: { name: bad, namespace: ns }\nspec: { rules: [{ host: "foo.*.example.com", http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }] } }] }`,
      'Ingress ns/bad spec.rules[0].host: a wildcard host must start with "*." followed by a DNS-1123 subdomain (got "foo.*.example.com")',
    ],
    [
      'Ingress host in upper case',
      `kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: { name: bad, namespace: ns }\nspec: { rules: [{ host: Shop.Example.com, http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }] } }] }`,
      'Ingress ns/bad spec.rules[0].host: must be a DNS-1123 subdomain: at most 253 characters of a-z, 0-9, \'-\' and \'.\', each dot-separated part starting and ending with a letter or digit (got "Shop.Example.com")',
    ],
    [
      'Ingress Prefix path that is not absolute',
      `kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: { name: bad, namespace: ns }\nspec: { rules: [{ host: shop.example.com, http: { paths: [{ path: api, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }] } }] }`,
      'Ingress ns/bad spec.rules[0].http.paths[0].path: must be an absolute path for pathType Prefix (got "api")',
    ],
    [
      'Ingress Exact path with //',
      `kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: { name: bad, namespace: ns }\nspec: { rules: [{ host: shop.example.com, http: { paths: [{ path: /a//b, pathType: Exact, backend: { service: { name: web, port: { number: 80 } } } }] } }] }`,
      'Ingress ns/bad spec.rules[0].http.paths[0].path: must not contain "//" (got "/a//b")',
    ],
    [
      'Ingress Prefix path ending in /..',
      `kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: { name: bad, namespace: ns }\nspec: { rules: [{ host: shop.example.com, http: { paths: [{ path: /a/.., pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }] } }] }`,
      'Ingress ns/bad spec.rules[0].http.paths[0].path: must not end with "/.." (got "/a/..")',
    ],
    [
      'Ingress path without pathType',
      `kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: { name: bad, namespace: ns }\nspec: { rules: [{ http: { paths: [{ path: /, backend: { service: { name: web, port: { number: 80 } } } }] } }] }`,
      'Ingress ns/bad spec.rules[0].http.paths[0].pathType: required',
    ],
    [
      'Ingress backend with both service and resource',
      `kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: { name: bad, namespace: ns }\nspec: { rules: [{ host: "", http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } }, resource: { kind: Bucket, name: b } } }] } }] }`,
      'Ingress ns/bad spec.rules[0].http.paths[0].backend: exactly one of service or resource must be set',
    ],
    [
      'pool range that ends before it starts',
      `kind: IPAddressPool\napiVersion: portway.io/v1alpha1\nmetadata: { name: bad }\nspec: { addresses: [10.0.0.0/30, 10.0.1.9-10.0.1.1] }`,
      'IPAddressPool bad spec.addresses[1]: range "10.0.1.9-10.0.1.1" starts after it ends (10.0.1.9 > 10.0.1.1)',
    ],
    [
      'pool range mixing families',
      `kind: IPAddressPool\napiVersion: portway.io/v1alpha1\nmetadata: { name: bad }\nspec: { addresses: ["10.0.0.1-fd00::1"] }`,
      'IPAddressPool bad spec.addresses[0]: range "10.0.0.1-fd00::1" mixes IPv4 and IPv6',
    ],
    [
      'pool with a bare address',
      `kind: IPAddressPool\napiVersion: portway.io/v1alpha1\nmetadata: { name: bad }\nspec: { addresses: [10.0.0.1] }`,
      'IPAddressPool bad spec.addresses[0]: not a CIDR or a range "first-last" (got "10.0.0.1") (for one address write 10.0.0.1/32)',
    ],
    [
      'pool with a bad CIDR',
      `kind: IPAddressPool\napiVersion: portway.io/v1alpha1\nmetadata: { name: bad }\nspec: { addresses: [10.0.0.0/40] }`,
      'IPAddressPool bad spec.addresses[0]: not a CIDR or a range "first-last" (got "10.0.0.0/40")',
    ],
    [
      'pool without addresses',
      `kind: IPAddressPool\napiVersion: portway.io/v1alpha1\nmetadata: { name: bad }\nspec: { addresses: [] }`,
      'IPAddressPool bad spec.addresses: must list at least one CIDR or range',
    ],
    [
      'selector In without values',
      `kind: L2Advertisement\napiVersion: portway.io/v1alpha1\nmetadata: { name: bad }\nspec: { nodeSelectors: [{ matchExpressions: [{ key: a, operator: In }] }] }`,
      'L2Advertisement bad spec.nodeSelectors[0].matchExpressions[0].values: must be non-empty for operator In',
    ],
    [
      'unknown selector operator',
      `kind: L2Advertisement\napiVersion: portway.io/v1alpha1\nmetadata: { name: bad }\nspec: { nodeSelectors: [{ matchExpressions: [{ key: a, operator: Gt, values: ["1"] }] }] }`,
      'L2Advertisement bad spec.nodeSelectors[0].matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist (got "Gt")',
    ],
  ];

  it.each(cases)('%s', (_title, bad, expected) => {
    const { state, problems } = build(`${good}\n---\n${bad}\n`);
    expect(brief(problems)).toEqual([expected]);
    expect(problems[0]?.source).toBe('test.yaml');
    // The good Service survives, the bad object does not appear anywhere.
    expect(state.services.map((s) => s.name)).toContain('good');
    expect(state.servicePorts.map((p) => p.id)).toContain('ns/good:http');
    expect(state.services.map((s) => s.name)).not.toContain('bad');
    expect(state.nodes).toEqual([]);
    expect(state.ingresses).toEqual([]);
    expect(state.addressPools).toEqual([]);
    expect(state.l2Advertisements).toEqual([]);
  });

  // Names as Kubernetes validates them: an object the API server would refuse is reported and skipped.
  const badNames: Array<[string, string, string]> = [
    ['Service name with markup and a newline', `kind: Service\napiVersion: v1\nmetadata: { name: "innocent</code>\\n<!--", namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ port: 80 }] }`, 'Service ns/"innocent</code>\\n<!--" metadata.name: must be a DNS-1035 label'],
    ['Service name starting with a digit (DNS-1035)', `kind: Service\napiVersion: v1\nmetadata: { name: 1web, namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ port: 80 }] }`, 'Service ns/1web metadata.name: must be a DNS-1035 label'],
    ['Service name with a colon (would collide with a port id)', `kind: Service\napiVersion: v1\nmetadata: { name: "a:b", namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ port: 80 }] }`, 'Service ns/"a:b" metadata.name: must be a DNS-1035 label'],
    ['namespace in upper case', `kind: Service\napiVersion: v1\nmetadata: { name: web, namespace: Prod }\nspec: { clusterIP: 10.96.0.1, ports: [{ port: 80 }] }`, 'Service Prod/web metadata.namespace: must be a DNS-1123 label'],
    ['Service port name that is not an IANA service name', `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ name: "my--port", port: 80 }] }`, 'Service ns/bad spec.ports[0].name: must be an IANA service name'],
    ['Service port name of digits only', `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ name: "8080", port: 80 }] }`, 'Service ns/bad spec.ports[0].name: must be an IANA service name'],
    ['EndpointSlice name with a slash', `kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\nmetadata: { name: "a/b", namespace: ns, labels: { kubernetes.io/service-name: good } }\naddressType: IPv4`, 'EndpointSlice ns/"a/b" metadata.name: must be a DNS-1123 subdomain'],
    ['EndpointSlice naming a Service that cannot exist', `kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\nmetadata: { name: bad, namespace: ns, labels: { kubernetes.io/service-name: "Good" } }\naddressType: IPv4`, 'EndpointSlice ns/bad metadata.labels["kubernetes.io/service-name"]: must be a DNS-1035 label'],
    ['EndpointSlice port name with a dot', `kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\nmetadata: { name: bad, namespace: ns, labels: { kubernetes.io/service-name: good } }\naddressType: IPv4\nports: [{ name: "http.s", port: 80 }]`, 'EndpointSlice ns/bad ports[0].name: must be a DNS-1123 label'],
    ['EndpointSlice endpoint node name with a space', `kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\nmetadata: { name: bad, namespace: ns, labels: { kubernetes.io/service-name: good } }\naddressType: IPv4\nendpoints: [{ addresses: [10.0.0.1], nodeName: "node a" }]`, 'EndpointSlice ns/bad endpoints[0].nodeName: must be a DNS-1123 subdomain'],
    ['Endpoints port name in upper case', `kind: Endpoints\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nsubsets: [{ addresses: [{ ip: 10.0.0.1 }], ports: [{ name: HTTP, port: 80 }] }]`, 'Endpoints ns/bad subsets[0].ports[0].name: must be a DNS-1123 label'],
    ['Node name with an underscore', `kind: Node\napiVersion: v1\nmetadata: { name: node_1 }`, 'Node node_1 metadata.name: must be a DNS-1123 subdomain'],
    ['Namespace name with a dot', `kind: Namespace\napiVersion: v1\nmetadata: { name: a.b }`, 'Namespace a.b metadata.name: must be a DNS-1123 label'],
    ['Ingress backend Service name in upper case', `kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: { name: bad, namespace: ns }\nspec: { defaultBackend: { service: { name: Web, port: { number: 80 } } } }`, 'Ingress ns/bad spec.defaultBackend.service.name: must be a DNS-1035 label'],
    ['Ingress backend port name too long', `kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: { name: bad, namespace: ns }\nspec: { defaultBackend: { service: { name: web, port: { name: abcdefghijklmnop } } } }`, 'Ingress ns/bad spec.defaultBackend.service.port.name: must be an IANA service name'],
    ['pool name with a space', `kind: IPAddressPool\napiVersion: portway.io/v1alpha1\nmetadata: { name: "my pool" }\nspec: { addresses: [10.0.0.0/30] }`, 'IPAddressPool "my pool" metadata.name: must be a DNS-1123 subdomain'],
    ['advertisement interface with a slash', `kind: L2Advertisement\napiVersion: portway.io/v1alpha1\nmetadata: { name: bad }\nspec: { interfaces: ["../eth0"] }`, 'L2Advertisement bad spec.interfaces[0]: must be an interface name'],
    ['advertisement naming a pool that cannot exist', `kind: L2Advertisement\napiVersion: portway.io/v1alpha1\nmetadata: { name: bad }\nspec: { ipAddressPools: ["Pool A"] }`, 'L2Advertisement bad spec.ipAddressPools[0]: must be a DNS-1123 subdomain'],
  ];

  it.each(badNames)('%s', (_title, bad, expected) => {
    const { state, problems } = build(`${good}\n---\n${bad}\n`);
    expect(problems).toHaveLength(1);
    expect(brief(problems)[0]!.startsWith(expected)).toBe(true);
    expect(state.servicePorts.map((p) => p.id)).toEqual(['ns/good:http']);
    expect(state.services.map((s) => s.name)).toEqual(['good']);
    expect([state.nodes, state.ingresses, state.addressPools, state.l2Advertisements]).toEqual([[], [], [], []]);
    expect(Object.keys(state.namespaceLabels)).toEqual([]);
  });

  // Addresses Kubernetes refuses (or never allocates) for these fields, and spellings no rule can carry.
  const svcWith = (spec: string, status = '') =>
    `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { ${spec}, ports: [{ port: 80 }] }${status}`;
  const badAddresses: Array<[string, string, string]> = [
    ['cluster IP 0.0.0.0', svcWith('clusterIP: 0.0.0.0'), 'Service ns/bad spec.clusterIP: 0.0.0.0 is in 0.0.0.0/8 (unspecified'],
    ['cluster IP 255.255.255.255', svcWith('clusterIP: 255.255.255.255'), 'Service ns/bad spec.clusterIP: 255.255.255.255 is in 255.255.255.255/32 (broadcast)'],
    ['cluster IP 127.0.0.1', svcWith('clusterIP: 127.0.0.1'), 'Service ns/bad spec.clusterIP: 127.0.0.1 is in 127.0.0.0/8 (loopback)'],
    ['multicast cluster IP', svcWith('clusterIP: 224.0.0.5'), 'Service ns/bad spec.clusterIP: 224.0.0.5 is in 224.0.0.0/4 (multicast)'],
    ['loopback second cluster IP', svcWith('clusterIPs: [10.96.0.1, "::1"]'), 'Service ns/bad spec.clusterIPs[1]: ::1 is in ::1/128 (loopback)'],
    ['IPv4-mapped IPv6 cluster IP', svcWith('clusterIP: "::ffff:10.96.0.1"'), 'Service ns/bad spec.clusterIP: not a valid IP address (got "::ffff:10.96.0.1") (IPv4-mapped IPv6 addresses are not accepted: write 10.96.0.1)'],
    ['external IP with a zone', svcWith('clusterIP: 10.96.0.1, externalIPs: ["fe80::1%eth0"]'), 'Service ns/bad spec.externalIPs[0]: not a valid IP address (got "fe80::1%eth0") (a zone such as %eth0 is not accepted)'],
    ['link-local external IP', svcWith('clusterIP: 10.96.0.1, externalIPs: [169.254.169.254]'), 'Service ns/bad spec.externalIPs[0]: 169.254.169.254 is in 169.254.0.0/16 (link-local)'],
    ['loopback loadBalancerIP', svcWith('type: LoadBalancer, clusterIP: 10.96.0.1, loadBalancerIP: 127.0.0.2'), 'Service ns/bad spec.loadBalancerIP: 127.0.0.2 is in 127.0.0.0/8 (loopback)'],
    ['loopback status ingress IP', svcWith('type: LoadBalancer, clusterIP: 10.96.0.1', '\nstatus: { loadBalancer: { ingress: [{ ip: 127.0.0.1 }] } }'), 'Service ns/bad status.loadBalancer.ingress[0].ip: 127.0.0.1 is in 127.0.0.0/8 (loopback)'],
    ['loopback slice endpoint', `kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\nmetadata: { name: bad, namespace: ns, labels: { kubernetes.io/service-name: good } }\naddressType: IPv4\nendpoints: [{ addresses: [127.0.0.1] }]`, 'EndpointSlice ns/bad endpoints[0].addresses[0]: 127.0.0.1 is in 127.0.0.0/8 (loopback)'],
    ['IPv4-mapped address in an IPv6 slice', `kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\nmetadata: { name: bad, namespace: ns, labels: { kubernetes.io/service-name: good } }\naddressType: IPv6\nendpoints: [{ addresses: ["::ffff:10.0.0.1"] }]`, 'EndpointSlice ns/bad endpoints[0].addresses[0]: not a valid IPv6 address (got "::ffff:10.0.0.1") (IPv4-mapped'],
    ['unspecified legacy endpoint', `kind: Endpoints\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nsubsets: [{ addresses: [{ ip: 0.0.0.0 }], ports: [{ port: 80 }] }]`, 'Endpoints ns/bad subsets[0].addresses[0].ip: 0.0.0.0 is in 0.0.0.0/8 (unspecified'],
    ['pool over loopback', `kind: IPAddressPool\napiVersion: portway.io/v1alpha1\nmetadata: { name: bad }\nspec: { addresses: [127.0.0.0/30] }`, 'IPAddressPool bad spec.addresses[0]: 127.0.0.0/30 includes addresses of 127.0.0.0/8 (loopback), which are never handed out'],
    ['pool range from 0.0.0.0', `kind: IPAddressPool\napiVersion: portway.io/v1alpha1\nmetadata: { name: bad }\nspec: { addresses: [0.0.0.0-0.0.0.9] }`, 'IPAddressPool bad spec.addresses[0]: range "0.0.0.0-0.0.0.9" includes addresses of 0.0.0.0/8'],
    ['IPv6 multicast pool', `kind: IPAddressPool\napiVersion: portway.io/v1alpha1\nmetadata: { name: bad }\nspec: { addresses: ["ff05::/120"] }`, 'IPAddressPool bad spec.addresses[0]: ff05::/120 includes addresses of ff00::/8 (multicast)'],
  ];

  it.each(badAddresses)('%s', (_title, bad, expected) => {
    const { state, problems } = build(`${good}\n---\n${bad}\n`);
    expect(brief(problems)).toEqual([expect.stringContaining(expected)]);
    expect(brief(problems)[0]!.startsWith(expected)).toBe(true);
    expect(state.servicePorts.map((p) => p.id)).toEqual(['ns/good:http']);
    expect(state.servicePorts[0]!.endpoints).toEqual([]);
    expect(state.addressPools).toEqual([]);
  });

  it('reports every problem of one object', () => {
    const { problems } = build(
      `kind: Service\napiVersion: v1\nmetadata: { name: bad, namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ port: 0 }, { port: 1, protocol: x }] }`,
    );
    expect(problems.map((p) => p.field)).toEqual(['spec.ports[0].port', 'spec.ports[1].protocol']);
  });

  it('reports a duplicate kind/namespace/name and keeps the first in file order', () => {
    const objects = [
      ...fromYaml(
        `kind: Service\napiVersion: v1\nmetadata: { name: web, namespace: ns }\nspec: { clusterIP: 10.96.0.2, ports: [{ port: 80 }] }`,
        'b.yaml',
      ),
      ...fromYaml(
        `kind: Service\napiVersion: v1\nmetadata: { name: web, namespace: ns }\nspec: { clusterIP: 10.96.0.1, ports: [{ port: 80 }] }`,
        'a.yaml',
      ),
      ...fromYaml(
        `kind: Service\napiVersion: v1\nmetadata: { name: web, namespace: other }\nspec: { clusterIP: 10.96.0.3, ports: [{ port: 80 }] }`,
        'c.yaml',
      ),
    ];
    const { state, problems } = buildClusterState(objects);
    expect(state.services.map((s) => `${s.namespace}/${s.name} ${s.clusterIPs[0]}`)).toEqual([
      'ns/web 10.96.0.1',
      'other/web 10.96.0.3',
    ]);
    expect(problems).toEqual([
      {
        source: 'b.yaml',
        kind: 'Service',
        object: 'ns/web',
        field: 'metadata.name',
        message: 'duplicate of the Service in a.yaml document 1; this one is skipped',
      },
    ]);
  });

  it('reports overlapping pools on the later-named pool (MetalLB refuses overlaps)', () => {
    const { state, problems } = build(`
apiVersion: portway.io/v1alpha1
kind: IPAddressPool
metadata: { name: b }
spec: { addresses: [10.0.0.8-10.0.0.20] }
---
apiVersion: portway.io/v1alpha1
kind: IPAddressPool
metadata: { name: a }
spec: { addresses: [10.0.0.0/28, "fd00::/64"] }
---
apiVersion: portway.io/v1alpha1
kind: IPAddressPool
metadata: { name: c }
spec: { addresses: [10.0.1.0/28, 10.0.1.4/30] }
`);
    expect(state.addressPools.map((p) => p.name)).toEqual(['a']);
    expect(brief(problems)).toEqual([
      "IPAddressPool b spec.addresses[0]: 10.0.0.8-10.0.0.20 overlaps pool a's 10.0.0.0/28",
      'IPAddressPool c spec.addresses[1]: 10.0.1.4/30 overlaps spec.addresses entry 10.0.1.0/28',
    ]);
  });

  it('ignores unknown kinds silently and reports documents that are not objects', () => {
    const objects: SourcedObject[] = [
      {
        source: 'x.yaml',
        document: 1,
        object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' } },
      },
      {
        source: 'x.yaml',
        document: 2,
        object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: {} },
      },
      {
        source: 'x.yaml',
        document: 3,
        object: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', metadata: { name: 'k' } },
      },
      { source: 'x.yaml', document: 4, object: 'just text' },
      { source: 'x.yaml', document: 5, object: { metadata: { name: 'no-kind' } } },
    ];
    const { state, problems } = buildClusterState(objects);
    expect(state.services).toEqual([]);
    expect(problems.map(formatProblem)).toEqual([
      'x.yaml: not a Kubernetes object (got "just text") (document 4)',
      'x.yaml: kind: required: not a Kubernetes object (document 5)',
    ]);
  });

  it('treats null fields as unset, as the API does', () => {
    const { state, problems } = build(
      `kind: Service\napiVersion: v1\nmetadata: { name: n, namespace: ns, labels: null }\nspec: { clusterIP: 10.96.0.1, externalIPs: null, ports: [{ port: 80, protocol: null }] }`,
    );
    expect(problems).toEqual([]);
    expect(state.servicePorts[0]).toMatchObject({ protocol: 'TCP', externalIPs: [] });
  });
});

describe('formatting', () => {
  it('formats a problem as file: Kind ns/name: field: message', () => {
    expect(
      formatProblem({
        source: 'examples/app.yaml',
        kind: 'Service',
        object: 'default/web',
        field: 'spec.ports[0].port',
        message: 'must be 1-65535 (got 70000)',
      }),
    ).toBe('examples/app.yaml: Service default/web: spec.ports[0].port: must be 1-65535 (got 70000)');
    expect(
      formatProblem({ source: 'a.yaml', kind: '', object: '', field: '', message: 'cannot read: EACCES' }),
    ).toBe('a.yaml: cannot read: EACCES');
    expect(
      formatProblem({
        source: 'a.yaml',
        kind: 'Node',
        object: '',
        field: 'metadata.name',
        message: 'required',
      }),
    ).toBe('a.yaml: Node (unnamed): metadata.name: required');
  });

  it('formats field paths with indexes and quoted label keys', () => {
    expect(formatFieldPath(['spec', 'ports', 1, 'port'])).toBe('spec.ports[1].port');
    expect(formatFieldPath(['metadata', 'labels', 'kubernetes.io/service-name'])).toBe(
      'metadata.labels["kubernetes.io/service-name"]',
    );
  });
});
