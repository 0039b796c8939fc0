// values.schema.json: generated from the agent's zod schema (hack/chart-schema.ts), and what the real helm
// does with it — a misspelt key or a mode `run` refuses fails `helm template` and `helm lint`, naming the
// key, instead of rendering a DaemonSet that crash-loops every node.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CHART_MODES,
  SCHEMA_PATH,
  chartValuesSchema,
  renderChartValuesSchema,
} from '../../../hack/chart-schema.js';
import { defaultConfig, parseConfig } from '../../../src/config/config.js';
import { CHART_DIR, chartArgs, helm, renderChart } from '../../fixtures/helm.js';

describe('values.schema.json', () => {
  it('is what `npm run chart:schema` generates (run it after changing src/config/config.ts)', () => {
    expect(readFileSync(SCHEMA_PATH, 'utf8')).toBe(renderChartValuesSchema());
  });

  it('has every key of the agent configuration, closed like the zod schema', () => {
    const config = (chartValuesSchema().properties as Record<string, Record<string, unknown>>).config!;
    expect(Object.keys(config.properties as object).sort()).toEqual(Object.keys(defaultConfig()).sort());
    expect(config.additionalProperties).toBe(false);
  });

  it('offers only the modes `run` applies', () => {
    const config = (chartValuesSchema().properties as Record<string, Record<string, unknown>>).config!;
    const mode = (config.properties as Record<string, { enum: string[] }>).mode!;
    expect(mode.enum).toEqual([...CHART_MODES]);
    for (const m of CHART_MODES) expect(parseConfig({ mode: m }).mode).toBe(m);
  });

  it("offers the same modes for kubeProxyConfig (checked by the templates, which cannot read this file)", () => {
    const helpers = readFileSync(join(CHART_DIR, 'templates/_helpers.tpl'), 'utf8');
    const runnable = /define "portway\.runnableModes" -\}\}([^{]*)\{\{/.exec(helpers)?.[1];
    expect(runnable?.split(',')).toEqual([...CHART_MODES]);
  });
});

describe('helm refuses values the agent would refuse', () => {
  beforeAll(() => {
    renderChart({ showOnly: 'templates/configmap.yaml' }); // fetches helm through npm the first time
  }, 300_000);

  const refused: Array<[string, Record<string, string>, RegExp]> = [
    [
      'a misspelt config key',
      { 'config.modee': 'iptables' },
      /config: Additional property modee is not allowed/,
    ],
    [
      'a misspelt top-level key',
      { 'imagee.tag': 'v1' },
      /\(root\): Additional property imagee is not allowed/,
    ],
    [
      'a misspelt nested config key',
      { 'config.iptables.syncPeriodd': '1s' },
      /config\.iptables: Additional property syncPeriodd is not allowed/,
    ],
    [
      'nftables mode (run refuses it)',
      { 'config.mode': 'nftables' },
      /config\.mode must be one of the following: "iptables"/,
    ],
    ['a wrong type', { 'config.masqueradeAll': 'yes' }, /config\.masqueradeAll: Invalid type/],
    [
      'an out-of-range value',
      { 'config.masqueradeBit': '40' },
      /config\.masqueradeBit: Must be less than or equal to 31/,
    ],
    ['an unknown pull policy', { 'image.pullPolicy': 'Sometimes' }, /image\.pullPolicy must be one of/],
    [
      'a misspelt metrics key',
      { 'metrics.serviceMonitor.enable': 'true' },
      /Additional property enable is not allowed/,
    ],
    ['a misspelt crds key', { 'crds.enable': 'false' }, /crds: Additional property enable is not allowed/],
  ];

  it.each(refused)('helm template: %s', (_what, set, message) => {
    const run = helm(['template', 'portway', CHART_DIR, ...chartArgs({ set })]);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(message);
  });

  const kubeProxyConfig = (fields: string): string =>
    `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n${fields}`;
  const refusedKubeProxyConfig: Array<[string, string, RegExp]> = [
    [
      'a mode run refuses',
      kubeProxyConfig('mode: nftables\n'),
      /kubeProxyConfig: mode "nftables": portway runs iptables,ipvs/,
    ],
    [
      'a portway configuration pasted into it',
      'mode: iptables\nclusterCIDRs: [10.244.0.0/16]\n',
      /kubeProxyConfig: kind "": expected KubeProxyConfiguration/,
    ],
    ['text that is not YAML', 'mode: [iptables\n', /kubeProxyConfig: not YAML/],
  ];

  it.each(refusedKubeProxyConfig)('helm template: kubeProxyConfig with %s', (_what, text, message) => {
    const dir = mkdtempSync(join(tmpdir(), 'portway-chart-'));
    try {
      const file = join(dir, 'kp-values.yaml');
      writeFileSync(file, JSON.stringify({ kubeProxyConfig: text }));
      const run = helm(['template', 'portway', CHART_DIR, ...chartArgs({ valuesFiles: [file] })]);
      expect(run.status).not.toBe(0);
      expect(run.stderr).toMatch(message);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('helm lint --strict: a values file with a typo fails, naming the key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portway-chart-'));
    try {
      const file = join(dir, 'typo-values.yaml');
      writeFileSync(file, 'image:\n  tagg: v1\nconfig:\n  healthzBindAdress: 0.0.0.0:10256\n');
      const run = helm(['lint', '--strict', CHART_DIR, ...chartArgs({ valuesFiles: [file] })]);
      expect(run.status).not.toBe(0);
      const said = run.stdout + run.stderr;
      expect(said).toMatch(/image: Additional property tagg is not allowed/);
      expect(said).toMatch(/config: Additional property healthzBindAdress is not allowed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses monitors that could not scrape a loopback metrics address', () => {
    const run = helm([
      'template',
      'portway',
      CHART_DIR,
      ...chartArgs({ set: { 'metrics.podMonitor.enabled': 'true', 'metrics.assumeMonitoringAPI': 'true' } }),
    ]);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(
      /config\.metricsBindAddress "127\.0\.0\.1:10249" cannot be scraped from another host/,
    );
  });

  it('refuses a healthz port of 0 (the probes need a fixed port)', () => {
    const run = helm([
      'template',
      'portway',
      CHART_DIR,
      ...chartArgs({ set: { 'config.healthzBindAddress': '0.0.0.0:0' } }),
    ]);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(
      /config\.healthzBindAddress "0\.0\.0\.0:0": the chart's probes need a fixed port/,
    );
  });
});
