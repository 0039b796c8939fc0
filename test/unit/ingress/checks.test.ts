import { buildClusterState, formatProblem } from '../../../src/model/normalise.js';
import { parseManifestText } from '../../../src/model/load.js';
import { ingressClassOf } from '../../../src/ingress/classes.js';
import { checkIngressBackends, indexServices } from '../../../src/ingress/backends.js';
import { decidePublishedAddress, sameAddresses } from '../../../src/ingress/address.js';
import { evaluateIngresses } from '../../../src/ingress/evaluate.js';
import type { IngressInfo } from '../../../src/model/cluster-state.js';

function build(text: string) {
  const r = parseManifestText(text, 'test.yaml');
  if (r.problems.length > 0) throw new Error(r.problems.map(formatProblem).join('\n'));
  const built = buildClusterState(r.objects);
  if (built.problems.length > 0) throw new Error(built.problems.map(formatProblem).join('\n'));
  return built.state;
}

const ingressOf = (extra: Partial<IngressInfo>): IngressInfo => ({
  namespace: 'web',
  name: 'site',
  ingressClassName: '',
  classAnnotation: '',
  rules: [],
  statusIngress: [],
  statusHostnames: [],
  ...extra,
});

describe('class selection', () => {
  const classes = [
    { name: 'nginx', controller: 'k8s.io/ingress-nginx', isDefault: true },
    { name: 'traefik', controller: 'traefik.io/ingress-controller', isDefault: false },
  ];
  it('spec.ingressClassName wins over the legacy annotation', () => {
    expect(ingressClassOf(ingressOf({ ingressClassName: 'traefik', classAnnotation: 'nginx' }), classes)).toEqual({
      class: 'traefik',
      source: 'spec',
    });
  });
  it('the legacy kubernetes.io/ingress.class annotation when no ingressClassName', () => {
    expect(ingressClassOf(ingressOf({ classAnnotation: 'traefik' }), classes)).toEqual({ class: 'traefik', source: 'annotation' });
  });
  it('neither: the IngressClass marked is-default-class', () => {
    expect(ingressClassOf(ingressOf({}), classes)).toEqual({ class: 'nginx', source: 'default' });
  });
  it('neither and no default, or several defaults: no class, with the reason', () => {
    const none = ingressClassOf(ingressOf({}), [classes[1]!]);
    expect(none).toMatchObject({ class: null, reason: 'noClass' });
    const two = ingressClassOf(ingressOf({}), [classes[0]!, { ...classes[1]!, isDefault: true }]);
    expect(two).toMatchObject({ class: null, reason: 'severalDefaults' });
    expect(two.class === null && two.message).toMatch(/nginx, traefik/);
  });
  it('IngressClass objects are read from manifests, the default annotation exactly "true"', () => {
    const state = build(`
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: { name: nginx, annotations: { ingressclass.kubernetes.io/is-default-class: "true" } }
spec: { controller: k8s.io/ingress-nginx }
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: { name: other, annotations: { ingressclass.kubernetes.io/is-default-class: "yes" } }
`);
    expect(state.ingressClasses).toEqual([
      { name: 'nginx', controller: 'k8s.io/ingress-nginx', isDefault: true },
      { name: 'other', controller: '', isDefault: false },
    ]);
  });
});

const cluster = `
apiVersion: v1
kind: Service
metadata: { name: app, namespace: web }
spec: { clusterIP: 10.96.0.10, selector: { app: app }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: app-1, namespace: web, labels: { kubernetes.io/service-name: app } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints:
  - { addresses: [10.1.0.1] }
  - { addresses: [10.1.0.2] }
  - { addresses: [10.1.0.3], conditions: { ready: false, serving: true, terminating: true } }
---
apiVersion: v1
kind: Service
metadata: { name: idle, namespace: web }
spec: { clusterIP: 10.96.0.11, ports: [{ port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: dns, namespace: web }
spec: { clusterIP: 10.96.0.12, ports: [{ port: 53, protocol: UDP }] }
---
apiVersion: v1
kind: Service
metadata: { name: controller, namespace: ingress }
spec:
  type: LoadBalancer
  clusterIP: 10.96.1.1
  ports: [{ name: http, port: 80, nodePort: 30080 }, { name: https, port: 443, nodePort: 30443 }]
status: { loadBalancer: { ingress: [{ ip: 192.0.2.20 }] } }
---
apiVersion: v1
kind: Service
metadata: { name: controller-np, namespace: ingress }
spec:
  type: NodePort
  clusterIP: 10.96.1.2
  ports: [{ name: https, port: 443, nodePort: 31443 }, { name: http, port: 80, nodePort: 31080 }]
---
apiVersion: v1
kind: Node
metadata: { name: node-b }
status: { addresses: [{ type: InternalIP, address: 10.0.0.12 }], conditions: [{ type: Ready, status: "True" }] }
---
apiVersion: v1
kind: Node
metadata: { name: node-a }
status: { addresses: [{ type: InternalIP, address: 10.0.0.11 }], conditions: [{ type: Ready, status: "True" }] }
---
apiVersion: v1
kind: Node
metadata: { name: node-c }
status: { addresses: [{ type: InternalIP, address: 10.0.0.13 }], conditions: [{ type: Ready, status: "False" }] }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: site, namespace: web }
spec:
  ingressClassName: nginx
  defaultBackend: { service: { name: app, port: { name: http } } }
  rules:
    - host: myapp.example.com
      http:
        paths:
          - { path: /, pathType: Prefix, backend: { service: { name: app, port: { number: 80 } } } }
          - { path: /gone, pathType: Prefix, backend: { service: { name: missing, port: { number: 80 } } } }
          - { path: /renamed, pathType: Prefix, backend: { service: { name: app, port: { name: web } } } }
          - { path: /wrongnum, pathType: Prefix, backend: { service: { name: app, port: { number: 8080 } } } }
          - { path: /idle, pathType: Prefix, backend: { service: { name: idle, port: { number: 80 } } } }
          - { path: /dns, pathType: Prefix, backend: { service: { name: dns, port: { number: 53 } } } }
          - { path: /bucket, pathType: Prefix, backend: { resource: { apiGroup: k8s.example.com, kind: StorageBucket, name: icons } } }
`;

describe('backend checks', () => {
  const state = build(cluster);
  const checks = checkIngressBackends(state.ingresses[0]!, indexServices(state));
  const byPath = new Map(checks.map((c) => [c.path?.path ?? '(default)', c]));

  it('a Service port by name or number with ready endpoints: ok with the count (terminating not counted)', () => {
    expect(byPath.get('(default)')).toMatchObject({ state: 'ok', target: 'web/app:http', endpoints: 2, reason: '' });
    expect(byPath.get('/')).toMatchObject({ state: 'ok', target: 'web/app:80', endpoints: 2 });
  });
  it('a missing Service', () => {
    expect(byPath.get('/gone')).toEqual(
      expect.objectContaining({ state: 'noService', reason: 'Service web/missing not found' }),
    );
  });
  it('a port name or number the Service does not have (the target port does not count)', () => {
    expect(byPath.get('/renamed')).toMatchObject({ state: 'noPort', reason: 'Service web/app has no port name "web" (ports: http(80))' });
    expect(byPath.get('/wrongnum')).toMatchObject({ state: 'noPort', reason: 'Service web/app has no port number 8080 (ports: http(80))' });
  });
  it('no ready endpoints', () => {
    expect(byPath.get('/idle')).toMatchObject({ state: 'noEndpoints', endpoints: 0, reason: 'Service web/idle port 80 has no ready endpoints' });
  });
  it('a UDP port cannot carry HTTP', () => {
    expect(byPath.get('/dns')).toMatchObject({ state: 'noPort', reason: 'Service web/dns port 53 is UDP, HTTP needs TCP' });
  });
  it('resource backends are reported as not checked', () => {
    expect(byPath.get('/bucket')).toMatchObject({ state: 'notChecked', target: 'k8s.example.com/StorageBucket/icons' });
  });
  it('the defaultBackend comes first, then the paths in order', () => {
    expect(checks.map((c) => c.path?.path ?? null)).toEqual([null, '/', '/gone', '/renamed', '/wrongnum', '/idle', '/dns', '/bucket']);
  });
});

describe('published address', () => {
  const state = build(cluster);
  it('a LoadBalancer controller: its LoadBalancer addresses', () => {
    expect(decidePublishedAddress('ingress/controller', state)).toEqual({
      addresses: [{ ip: '192.0.2.20' }],
      via: 'loadBalancer',
      reason: '',
    });
  });
  it('a NodePort controller: every Ready node address with the TCP node ports', () => {
    const ports = [{ port: 31080, protocol: "TCP" }, { port: 31443, protocol: "TCP" }];
    expect(decidePublishedAddress('ingress/controller-np', state)).toEqual({
      addresses: [{ ip: '10.0.0.11', ports }, { ip: '10.0.0.12', ports }],
      via: 'nodePort',
      reason: '',
    });
  });
  it('nothing to publish, with the reason', () => {
    expect(decidePublishedAddress('ingress/none', state).reason).toBe('controller Service ingress/none not found');
    expect(decidePublishedAddress('web/app', state).reason).toBe(
      'controller Service web/app is ClusterIP: clients outside the cluster cannot reach it',
    );
  });
  it('sameAddresses compares addresses and ports', () => {
    expect(sameAddresses([{ ip: '192.0.2.1' }], [{ ip: '192.0.2.1' }])).toBe(true);
    expect(sameAddresses([{ ip: '192.0.2.1' }], [{ ip: '192.0.2.1', ports: [{ port: 1, protocol: 'TCP' }] }])).toBe(false);
  });
  it('evaluateIngresses publishes only for configured classes', () => {
    const handled = evaluateIngresses(state, [{ name: 'nginx', service: 'ingress/controller' }]);
    expect(handled[0]).toMatchObject({ handled: { name: 'nginx' }, address: { addresses: [{ ip: '192.0.2.20' }] } });
    const other = evaluateIngresses(state, [{ name: 'traefik', service: 'ingress/controller' }]);
    expect(other[0]).toMatchObject({ handled: null, address: null });
    expect(other[0]!.backends).toHaveLength(8);
  });
});

describe('doctor findings', () => {
  const state = build(cluster);
  it('a published Ingress with failing backends: a warning listing each; nothing to publish: an error', async () => {
    const { ingressDoctorFindings } = await import('../../../src/ingress/doctor-checks.js');
    const ok = ingressDoctorFindings(evaluateIngresses(state, [{ name: 'nginx', service: 'ingress/controller' }]));
    expect(ok).toHaveLength(1);
    expect(ok[0]).toMatchObject({ severity: 'warning', check: 'ingress/web/site', message: '5 of 8 backends failing' });
    expect(ok[0]!.details[0]).toBe('myapp.example.com/gone -> web/missing:80: Service web/missing not found');
    const none = ingressDoctorFindings(evaluateIngresses(state, [{ name: 'nginx', service: 'ingress/absent' }]));
    expect(none[0]).toMatchObject({ severity: 'error', message: 'class nginx: no address to publish (controller Service ingress/absent not found)' });
  });
});

describe('published address of a NodePort controller under nodePortAddresses', () => {
  const dual = build(`${cluster}---
apiVersion: v1
kind: Node
metadata: { name: node-d }
status:
  addresses: [{ type: InternalIP, address: 10.1.0.14 }, { type: InternalIP, address: 10.0.0.14 }, { type: InternalIP, address: "fd00::14" }]
  conditions: [{ type: Ready, status: "True" }]
`);
  const ips = (nodePortAddresses: string[]) =>
    decidePublishedAddress('ingress/controller-np', dual, undefined, nodePortAddresses).addresses.map((a) => a.ip);

  it('empty: every Ready node address', () => {
    expect(ips([])).toEqual(['10.0.0.11', '10.0.0.12', '10.0.0.14', '10.1.0.14', 'fd00::14']);
  });
  it('CIDRs: only the addresses inside them; a family without a CIDR keeps every address of it', () => {
    expect(ips(['10.0.0.0/24'])).toEqual(['10.0.0.11', '10.0.0.12', '10.0.0.14', 'fd00::14']);
    expect(ips(['10.0.0.12/32', 'fd00:ffff::/64'])).toEqual(['10.0.0.12']);
  });
  it('"primary": the first address of each family of every node', () => {
    expect(ips(['primary'])).toEqual(['10.0.0.11', '10.0.0.12', '10.1.0.14', 'fd00::14']);
  });
  it('no Ready node address accepts NodePorts: nothing published, and why', () => {
    const d = decidePublishedAddress('ingress/controller-np', build(cluster), undefined, ['192.0.2.0/24']);
    expect(d).toEqual({
      addresses: [],
      via: 'none',
      reason: 'no Ready node address accepts NodePorts (nodePortAddresses: 192.0.2.0/24)',
    });
  });
  it('evaluateIngresses passes it on', () => {
    const r = evaluateIngresses(build(cluster), [{ name: 'nginx', service: 'ingress/controller-np' }], ['10.0.0.12/32']);
    expect(r[0]!.address!.addresses.map((a) => a.ip)).toEqual(['10.0.0.12']);
  });
});
