/* eslint-disable @typescript-eslint/no-explicit-any -- assertions on raw Kubernetes JSON */
// The chart's RBAC, rendered by the real helm: what it grants (least privilege: no Lease outside the release
// namespace, no write the agent does not make), and that every request a running agent makes against the API
// stand-in — lists, watches, the Lease election, status patches, Events — is one the rendered rules allow.
import { runClusterAgent, useStandInPerTest } from '../../fixtures/cluster-agent.js';
import { eventually } from '../../fixtures/polling.js';
import { renderChart, type RenderedObject } from '../../fixtures/helm.js';
import { allowed, grantsOf, requestAttributes, type PolicyRule } from '../../fixtures/rbac.js';

const NAMESPACE = 'portway-system';
const rbac = (set: Record<string, string> = {}, release = 'edge', namespace = NAMESPACE): RenderedObject[] =>
  renderChart({ release, namespace, set, showOnly: 'templates/rbac.yaml' });
const rulesOf = (objects: RenderedObject[], kind: string): PolicyRule[] =>
  objects.filter((o) => o.kind === kind).flatMap((o) => (o.rules ?? []) as PolicyRule[]);
const grantsResource = (rules: PolicyRule[], resource: string) =>
  rules.filter((r) => r.resources?.includes(resource));

describe('chart RBAC (helm template)', () => {
  let objects: RenderedObject[];
  beforeAll(() => {
    objects = rbac();
  }, 300_000); // the first run fetches helm through npm

  it('grants Leases only in the release namespace, by name, never cluster-wide', () => {
    expect(grantsResource(rulesOf(objects, 'ClusterRole'), 'leases')).toEqual([]);
    const roles = objects.filter((o) => o.kind === 'Role');
    expect(roles.map((r) => r.metadata.namespace)).toEqual([NAMESPACE]);
    expect(grantsResource(rulesOf(objects, 'Role'), 'leases')).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['portway-lb-status'],
        verbs: ['get', 'update'],
      },
      // create cannot be limited by resourceNames in Kubernetes RBAC.
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    ]);
    const binding = objects.find((o) => o.kind === 'RoleBinding') as any;
    expect(binding.metadata.namespace).toBe(NAMESPACE);
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: roles[0]!.metadata.name,
    });
  });

  it('cluster-wide: reads as list/watch, writes only services/status patch and Event create; no ingresses/status', () => {
    expect(rulesOf(objects, 'ClusterRole')).toEqual([
      { apiGroups: [''], resources: ['services', 'nodes', 'namespaces'], verbs: ['list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      {
        apiGroups: ['networking.k8s.io'],
        resources: ['ingresses', 'ingressclasses'],
        verbs: ['list', 'watch'],
      },
      {
        apiGroups: ['portway.io'],
        resources: ['ipaddresspools', 'l2advertisements'],
        verbs: ['list', 'watch'],
      },
      {
        apiGroups: ['metallb.io'],
        resources: ['ipaddresspools', 'l2advertisements', 'bgppeers', 'bgpadvertisements', 'bfdprofiles', 'communities'],
        verbs: ['list', 'watch'],
      },
      { apiGroups: [''], resources: ['services/status'], verbs: ['patch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
    ]);
    const all = [...rulesOf(objects, 'ClusterRole'), ...rulesOf(objects, 'Role')];
    for (const rule of all) {
      expect(rule.verbs).not.toContain('*');
      expect(rule.resources).not.toContain('*');
      expect(rule.resources).not.toContain('ingresses/status');
    }
  });

  it('with ingress.classes configured: ingresses/status patch and the Ingress writer Lease, by name', () => {
    const withIngress = rbac({
      'config.ingress.classes[0].name': 'nginx',
      'config.ingress.classes[0].service': 'ingress-nginx/ingress-nginx-controller',
    });
    expect(grantsResource(rulesOf(withIngress, 'ClusterRole'), 'ingresses/status')).toEqual([
      { apiGroups: ['networking.k8s.io'], resources: ['ingresses/status'], verbs: ['patch'] },
    ]);
    expect(grantsResource(rulesOf(withIngress, 'Role'), 'leases')[0]).toEqual({
      apiGroups: ['coordination.k8s.io'],
      resources: ['leases'],
      resourceNames: ['portway-lb-status', 'portway-ingress-status'],
      verbs: ['get', 'update'],
    });
    // Ingress publishing alone (no LoadBalancer allocation) still gets its writer's grants, and no more.
    const ingressOnly = rbac({
      'config.loadBalancer.enabled': 'false',
      'config.ingress.classes[0].name': 'nginx',
      'config.ingress.classes[0].service': 'ingress-nginx/ingress-nginx-controller',
    });
    expect(grantsResource(rulesOf(ingressOnly, 'ClusterRole'), 'services/status')).toEqual([]);
    expect(grantsResource(rulesOf(ingressOnly, 'Role'), 'leases')[0]?.resourceNames).toEqual([
      'portway-ingress-status',
    ]);
  });

  it('with loadBalancer.enabled false, no write at all and no Lease', () => {
    const off = rbac({ 'config.loadBalancer.enabled': 'false' });
    expect(off.filter((o) => o.kind === 'Role' || o.kind === 'RoleBinding')).toEqual([]);
    for (const rule of rulesOf(off, 'ClusterRole')) expect(rule.verbs).toEqual(['list', 'watch']);
  });

  it('names cluster-scoped objects after the release and its namespace: two releases do not collide', () => {
    const names = (o: RenderedObject[]) =>
      o
        .filter((x) => x.kind === 'ClusterRole' || x.kind === 'ClusterRoleBinding')
        .map((x) => x.metadata.name);
    const a = names(rbac({}, 'edge', 'net-a'));
    const b = names(rbac({}, 'edge', 'net-b'));
    const c = names(rbac({}, 'core', 'net-a'));
    expect(a).toEqual(['portway:net-a:edge', 'portway:net-a:edge']);
    expect(new Set([...a, ...b, ...c]).size).toBe(3);
  });
});

describe('every API request of a cluster-mode agent is allowed by the chart', () => {
  const env = useStandInPerTest('portway-rbac-');

  it('lists, watches, takes and renews the Lease, patches status, creates Events, releases the Lease', async () => {
    const { api } = env;
    api.put({
      apiVersion: 'portway.io/v1alpha1',
      kind: 'IPAddressPool',
      metadata: { name: 'lan' },
      spec: { addresses: ['192.168.50.240/32'] },
    });
    for (const name of ['a-web', 'b-web'])
      api.put({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace: 'demo' },
        spec: {
          type: 'LoadBalancer',
          clusterIP: name === 'a-web' ? '10.96.0.20' : '10.96.0.21',
          clusterIPs: [name === 'a-web' ? '10.96.0.20' : '10.96.0.21'],
          ipFamilies: ['IPv4'],
          ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
        },
      });
    const abort = new AbortController();
    const done = runClusterAgent({
      dir: env.dir,
      config: 'iptables: { minSyncPeriod: 10ms, syncPeriod: 30s }\nloadBalancer: { layer2: false }\n',
      env: { NODE_NAME: 'node-a', POD_NAMESPACE: NAMESPACE },
      signal: abort.signal,
    });
    const ingress = (name: string) =>
      (api.get('Service', 'demo', name) as any)?.status?.loadBalancer?.ingress;
    await eventually('status written', () => ingress('a-web')?.[0]?.ip === '192.168.50.240');
    await eventually('warning event', () =>
      api.list('Event').some((e: any) => e.involvedObject.name === 'b-web'),
    );
    // A renewal (GET + PUT of the held Lease) happens every 2 s.
    await eventually(
      'Lease renewed',
      () => api.requests.filter((r) => r.method === 'PUT' && r.path.includes('/leases/')).length >= 1,
      10_000,
    );
    abort.abort();
    expect(await done).toBe(0);
    // Informers, Lease election and status writes share one HTTP/2 connection.
    expect(api.trafficStats().connections).toBe(1);
    // Without layer2 nothing needs the other Nodes: the agent lists and watches only its own.
    const nodeRequests = api.requests.filter((r) => r.path === '/api/v1/nodes');
    expect(nodeRequests.length).toBeGreaterThanOrEqual(2);
    for (const r of nodeRequests) expect(r.query.fieldSelector).toBe('metadata.name=node-a');

    const grants = grantsOf(renderChart({ release: 'edge', namespace: NAMESPACE }), {
      namespace: NAMESPACE,
      name: 'portway',
    });
    const seen = api.requests.map((r) => ({
      request: `${r.method} ${r.path}`,
      ...requestAttributes(r.method, r.path, r.query),
    }));
    const denied = seen.filter((a) => !allowed(grants, a));
    expect(denied).toEqual([]);
    // The run did exercise every kind of call the chart grants.
    const verbs = new Set(
      seen.map((a) => `${a.verb} ${a.resource}${a.subresource ? `/${a.subresource}` : ''}`),
    );
    for (const v of [
      'list services',
      'watch endpointslices',
      'create leases',
      'get leases',
      'update leases',
      'patch services/status',
      'create events',
    ])
      expect(verbs).toContain(v);
  }, 60_000);
});
