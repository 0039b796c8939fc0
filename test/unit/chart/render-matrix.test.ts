/* eslint-disable @typescript-eslint/no-explicit-any -- assertions on raw Kubernetes JSON */
// The chart over a matrix of realistic values files (charts/portway/ci/*-values.yaml), with the real helm:
// `helm lint --strict` passes; every object `helm template` renders is valid against the Kubernetes (and
// Prometheus Operator) schemas, checked offline by kubernetes-models; the rendered ConfigMap holds a
// configuration the agent's own loader accepts; and the DaemonSet's ports, probes and API server
// address follow that configuration.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { buildProgram } from '../../../src/cli/program.js';
import { loadConfigFile } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/config.js';
import {
  CHART_DIR,
  chartArgs,
  helm,
  renderChart,
  renderNotes,
  type RenderedObject,
} from '../../fixtures/helm.js';

const CI_DIR = join(CHART_DIR, 'ci');
const VALUES_FILES = readdirSync(CI_DIR)
  .filter((f) => f.endsWith('-values.yaml'))
  .sort();
/** What a cluster with the Prometheus Operator serves (helm template's --api-versions). */
const MONITORING_API = ['monitoring.coreos.com/v1/ServiceMonitor', 'monitoring.coreos.com/v1/PodMonitor'];

/** The offline validator of each kind the chart may render; a kind missing here fails the test. */
const MODELS: Record<string, { validate(o: unknown): void }> = {};
for (const model of [
  ServiceAccount,
  ConfigMap,
  Service,
  DaemonSet,
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
  CustomResourceDefinition,
  ServiceMonitor,
  PodMonitor,
] as any[]) {
  MODELS[`${model.apiVersion}/${model.kind}`] = { validate: (o) => new model(o).validate() };
}

function validationErrors(objects: RenderedObject[]): string[] {
  const errors: string[] = [];
  for (const o of objects) {
    const id = `${String(o.apiVersion)}/${o.kind} ${o.metadata?.name}`;
    const model = MODELS[`${String(o.apiVersion)}/${o.kind}`];
    if (model === undefined) {
      errors.push(`${id}: no schema to validate it against (add its model to MODELS)`);
      continue;
    }
    try {
      model.validate(o);
    } catch (e) {
      errors.push(`${id}: ${(e as Error).message}`);
    }
  }
  return errors;
}

const daemonSetOf = (objects: RenderedObject[]) => objects.find((o) => o.kind === 'DaemonSet') as any;
const containerOf = (objects: RenderedObject[]) => daemonSetOf(objects).spec.template.spec.containers[0];
const hostAndPort = (bind: string) => {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(bind)!;
  return { host: m[1] ?? m[2] ?? '', port: Number(m[3]) };
};

/** The rendered ConfigMap's config.yaml, read by the agent's loader as `run --config` reads it. */
async function loadRenderedConfig(objects: RenderedObject[]): Promise<Config> {
  const container = containerOf(objects);
  const configArg = (container.args as string[]).find((a) => a.startsWith('--config='))!;
  const mountPath = configArg.slice('--config='.length).replace(/\/[^/]+$/, '');
  const mount = container.volumeMounts.find((m: any) => m.mountPath === mountPath);
  const volume = daemonSetOf(objects).spec.template.spec.volumes.find((v: any) => v.name === mount.name);
  const configMap = objects.find(
    (o) => o.kind === 'ConfigMap' && o.metadata.name === volume.configMap.name,
  ) as any;
  const key = configArg.slice(configArg.lastIndexOf('/') + 1);
  expect(Object.keys(configMap.data)).toContain(key);
  const dir = mkdtempSync(join(tmpdir(), 'portway-chart-config-'));
  try {
    writeFileSync(join(dir, key), configMap.data[key]);
    return await loadConfigFile(join(dir, key));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.each(VALUES_FILES)('chart with ci/%s', (file) => {
  const valuesFile = join(CI_DIR, file);
  const values = (parseYaml(readFileSync(valuesFile, 'utf8')) ?? {}) as any;
  let objects: RenderedObject[];
  beforeAll(() => {
    objects = renderChart({ release: 'edge', valuesFiles: [valuesFile], apiVersions: MONITORING_API });
  }, 300_000); // the first run fetches helm through npm

  it('passes helm lint --strict', () => {
    const run = helm(['lint', '--strict', CHART_DIR, ...chartArgs({ valuesFiles: [valuesFile] })]);
    expect(`${run.stdout}${run.stderr}`).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(run.status).toBe(0);
  });

  it('renders only objects valid against the Kubernetes schemas', () => {
    expect(objects.map((o) => o.kind)).toContain('DaemonSet');
    expect(validationErrors(objects)).toEqual([]);
  });

  it("renders a configuration the agent's loader accepts", async () => {
    const config = await loadRenderedConfig(objects);
    expect(config.mode).toBe(values.config?.mode ?? 'iptables');
  });

  it('puts the container ports and both probes where the configuration listens', async () => {
    const config = await loadRenderedConfig(objects);
    const container = containerOf(objects);
    const ports = Object.fromEntries(container.ports.map((p: any) => [p.name, p.containerPort]));
    const healthz = hostAndPort(config.healthzBindAddress);
    expect(ports.healthz).toBe(healthz.port);
    expect(ports.member).toBe(config.loadBalancer.memberPort);
    const metrics = hostAndPort(config.metricsBindAddress);
    const loopback = metrics.host.startsWith('127.') || metrics.host === '::1';
    expect(ports.metrics).toBe(loopback ? undefined : metrics.port);
    for (const probe of [container.livenessProbe, container.readinessProbe]) {
      expect(probe.httpGet.port).toBe(healthz.port);
      // Every address: the kubelet's default (the pod IP, i.e. the node's); one address: that one.
      const everyAddress = ['', '0.0.0.0', '::'].includes(healthz.host);
      expect(probe.httpGet.host).toBe(everyAddress ? undefined : healthz.host);
    }
    expect(container.livenessProbe.httpGet.path).toBe('/livez');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
  });

  it('connects to apiServer.host when set, else leaves the in-cluster address alone', () => {
    const env = Object.fromEntries(
      (containerOf(objects).env as any[]).filter((e) => 'value' in e).map((e) => [e.name, e.value]),
    );
    if (values.apiServer?.host) {
      expect(env).toEqual({
        KUBERNETES_SERVICE_HOST: values.apiServer.host,
        KUBERNETES_SERVICE_PORT: String(values.apiServer.port),
      });
    } else {
      expect(env).toEqual({});
    }
  });

  it("keeps kube-proxy's DaemonSet shape: host network, privileged, xtables lock, modules, every Linux node", () => {
    const spec = daemonSetOf(objects).spec.template.spec;
    expect(spec.hostNetwork).toBe(true);
    expect(spec.dnsPolicy).toBe(values.dnsPolicy ?? 'Default');
    expect(spec.nodeSelector['kubernetes.io/os']).toBe('linux');
    expect(spec.priorityClassName).toBe('system-node-critical');
    const container = spec.containers[0];
    expect(container.securityContext.privileged).toBe(true);
    const mounts = Object.fromEntries(container.volumeMounts.map((m: any) => [m.mountPath, m]));
    expect(mounts['/run/xtables.lock']).toBeDefined();
    expect(mounts['/lib/modules'].readOnly).toBe(true);
    const hostPaths = spec.volumes.filter((v: any) => v.hostPath).map((v: any) => v.hostPath.path);
    expect(hostPaths).toEqual(expect.arrayContaining(['/run/xtables.lock', '/lib/modules']));
  });

  it('passes the agent only flags `portway run` defines, JSON logs unless asked otherwise', async () => {
    const args = containerOf(objects).args as string[];
    expect(args[0]).toBe('run');
    const run = (await buildProgram(['run'])).commands.find((c) => c.name() === 'run')!;
    const known = new Set(run.options.map((o) => o.long));
    for (const arg of args.slice(1)) expect(known).toContain(arg.replace(/=.*$/, ''));
    expect(args).toContain(`--log-format=${values.logFormat ?? 'json'}`);
  });
});

describe('kubeProxyConfig (kube-proxy\'s config.conf as it is)', () => {
  const valuesFile = join(CI_DIR, 'kube-proxy-config-values.yaml');
  const text = (parseYaml(readFileSync(valuesFile, 'utf8')) as { kubeProxyConfig: string }).kubeProxyConfig;
  let objects: RenderedObject[];
  beforeAll(() => {
    objects = renderChart({ release: 'edge', valuesFiles: [valuesFile] });
  }, 300_000);

  it('goes into the agent\'s config file verbatim, instead of config', async () => {
    const configMap = objects.find((o) => o.kind === 'ConfigMap') as any;
    expect(configMap.data['config.yaml'].trim()).toBe(text.trim());
    const config = await loadRenderedConfig(objects);
    expect(config.clusterCIDRs).toEqual(['10.244.0.0/16']); // kube-proxy's clusterCIDR, translated
  });

  it('moves the ports and probes with its healthzBindAddress, and keeps the defaults for its empty ones', () => {
    const container = containerOf(objects);
    const ports = Object.fromEntries(container.ports.map((p: any) => [p.name, p.containerPort]));
    expect(ports.healthz).toBe(10266);
    expect(container.livenessProbe.httpGet.port).toBe(10266);
    expect(ports.metrics).toBeUndefined(); // metricsBindAddress "" = kube-proxy's 127.0.0.1:10249
  });
});

describe('chart defaults', () => {
  let objects: RenderedObject[];
  beforeAll(() => {
    objects = renderChart({ release: 'edge' });
  }, 300_000);

  it('tolerates every taint, and sets a memory limit from the sizing table', () => {
    const spec = daemonSetOf(objects).spec.template.spec;
    expect(spec.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(spec.containers[0].resources.limits.memory).toBe('1536Mi');
  });

  it('installs the CRDs as templates (upgraded with the release), kept on uninstall', () => {
    const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition') as any[];
    expect(crds.map((c) => c.metadata.name).sort()).toEqual([
      'ipaddresspools.portway.io',
      'l2advertisements.portway.io',
    ]);
    for (const crd of crds) expect(crd.metadata.annotations['helm.sh/resource-policy']).toBe('keep');
    const noKeep = renderChart({ set: { 'crds.keep': 'false' } }).filter(
      (o) => o.kind === 'CustomResourceDefinition',
    ) as any[];
    expect(noKeep).toHaveLength(2);
    for (const crd of noKeep) expect(crd.metadata.annotations?.['helm.sh/resource-policy']).toBeUndefined();
    const none = renderChart({ set: { 'crds.enabled': 'false' } });
    expect(none.filter((o) => o.kind === 'CustomResourceDefinition')).toEqual([]);
  });

  it('renders no Service or monitor unless asked', () => {
    expect(objects.filter((o) => ['Service', 'ServiceMonitor', 'PodMonitor'].includes(o.kind))).toEqual([]);
  });
});

describe('ServiceMonitor and PodMonitor', () => {
  const metricsValues = join(CI_DIR, 'metrics-values.yaml');
  const kinds = (objects: RenderedObject[]) =>
    objects.map((o) => o.kind).filter((k) => k !== 'CustomResourceDefinition');

  it('are rendered when the cluster serves monitoring.coreos.com/v1, scraping the metrics port', () => {
    const objects = renderChart({ valuesFiles: [metricsValues], apiVersions: MONITORING_API });
    expect(kinds(objects)).toEqual(expect.arrayContaining(['Service', 'ServiceMonitor', 'PodMonitor']));
    const service = objects.find((o) => o.kind === 'Service') as any;
    expect(service.spec.clusterIP).toBe('None');
    expect(service.spec.ports).toEqual([
      { name: 'metrics', port: 10249, targetPort: 'metrics', protocol: 'TCP' },
    ]);
    expect(service.spec.selector).toEqual(daemonSetOf(objects).spec.selector.matchLabels);
    const serviceMonitor = objects.find((o) => o.kind === 'ServiceMonitor') as any;
    expect(serviceMonitor.metadata.labels.release).toBe('kube-prometheus-stack');
    expect(serviceMonitor.spec.endpoints[0]).toMatchObject({
      port: 'metrics',
      interval: '30s',
      scrapeTimeout: '10s',
    });
    const podMonitor = objects.find((o) => o.kind === 'PodMonitor') as any;
    expect(podMonitor.spec.podMetricsEndpoints[0].port).toBe('metrics');
  });

  it('are left out when the cluster does not serve the API, unless assumeMonitoringAPI says it does', () => {
    const without = renderChart({ valuesFiles: [metricsValues] });
    expect(kinds(without)).not.toEqual(expect.arrayContaining(['ServiceMonitor']));
    expect(kinds(without)).not.toContain('PodMonitor');
    expect(kinds(without)).not.toContain('Service');
    const assumed = renderChart({
      valuesFiles: [metricsValues],
      set: { 'metrics.assumeMonitoringAPI': 'true' },
    });
    expect(kinds(assumed)).toEqual(expect.arrayContaining(['Service', 'ServiceMonitor', 'PodMonitor']));
  });

  it('NOTES.txt says when a monitor was asked for and not rendered', () => {
    const notes = renderNotes({ valuesFiles: [metricsValues] });
    expect(notes).toMatch(/metrics\.serviceMonitor\.enabled is true but this cluster does not serve/);
    expect(notes).toMatch(/metrics\.podMonitor\.enabled is true but this cluster does not serve/);
    const served = renderNotes({ valuesFiles: [metricsValues], apiVersions: MONITORING_API });
    expect(served).not.toMatch(/Monitor\.enabled is true/);
  });
});

describe('NOTES.txt', () => {
  it('says how to watch the rollout, and warns while apiServer.host is unset', () => {
    const notes = renderNotes({ release: 'edge', namespace: 'net' });
    expect(notes).toMatch(/kubectl -n net rollout status daemonset\/portway/);
    expect(notes).toMatch(/WARNING: apiServer\.host is not set/);
    const set = renderNotes({ valuesFiles: [join(CI_DIR, 'api-server-values.yaml')] });
    expect(set).not.toMatch(/apiServer\.host is not set/);
  });
});
