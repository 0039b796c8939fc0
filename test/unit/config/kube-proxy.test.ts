import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { ConfigError, formatDuration, parseConfig, parseDuration } from '../../../src/config/config.js';
import { convertKubeProxyDocument, parseKubeProxyDocument } from '../../../src/config/kube-proxy.js';
import { loadConfigFile, readConfigFile } from '../../../src/config/load.js';

const KUBEADM_CONFIGMAP = 'test/fixtures/config/kubeadm-kube-proxy-configmap.yaml';

/** A KubeProxyConfiguration with the given fields (kubeadm writes many more; absent = null here). */
const kpc = (fields: Record<string, unknown>) => ({
  apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
  kind: 'KubeProxyConfiguration',
  ...fields,
});

function errorOf(raw: unknown): string {
  try {
    parseKubeProxyDocument(raw, 'kp.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

/** The field names warned about (the text before the first ": "). */
const warnedFields = (warnings: string[]) => warnings.map((w) => w.slice(0, w.indexOf(': ')));

describe("kubeadm's kube-proxy ConfigMap, verbatim", () => {
  it('loads with no error, kube-proxy defaults, and a warning for each field portway does not implement', async () => {
    const { config, warnings } = await readConfigFile(KUBEADM_CONFIGMAP);
    expect(config).toEqual(
      parseConfig({
        mode: 'iptables',
        clusterCIDRs: ['10.244.0.0/16'],
        detectLocalMode: 'ClusterCIDR',
        masqueradeBit: 14,
        metricsBindAddress: '127.0.0.1:10249',
        healthzBindAddress: '0.0.0.0:10256',
        iptables: { localhostNodePorts: true, minSyncPeriod: '1s', syncPeriod: '30s' },
        ipvs: { scheduler: 'rr', minSyncPeriod: '0s', syncPeriod: '30s' },
      }),
    );
    expect(warnings.every((w) => w.startsWith(`${KUBEADM_CONFIGMAP}: `))).toBe(true);
    expect(warnedFields(warnings.map((w) => w.slice(KUBEADM_CONFIGMAP.length + 2)))).toEqual([
      'conntrack.maxPerCore',
      'conntrack.min',
      'conntrack.tcpEstablishedTimeout',
      'conntrack.tcpCloseWaitTimeout',
      'clientConnection.kubeconfig',
      'oomScoreAdj',
    ]);
    expect(warnings[0]).toContain("conntrack.maxPerCore: null (kube-proxy's default 32768)");
    expect(warnings[4]).toContain('--kubeconfig /var/lib/kube-proxy/kubeconfig.conf');
  });

  it("reads the ConfigMap's config.conf alone the same way", () => {
    const configMap = parseYaml(readFileSync(KUBEADM_CONFIGMAP, 'utf8')) as { data: Record<string, string> };
    const inner = parseYaml(configMap.data['config.conf']!);
    expect(parseKubeProxyDocument(inner, 'x').config).toEqual(parseKubeProxyDocument(configMap, 'x').config);
  });

  it('every command that loads --config prints the warnings on stderr, "portway: warning:" first', async () => {
    const lines: string[] = [];
    await loadConfigFile(KUBEADM_CONFIGMAP, (l) => lines.push(l));
    expect(lines).toHaveLength(6);
    const written: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      await loadConfigFile(KUBEADM_CONFIGMAP);
    } finally {
      spy.mockRestore();
    }
    expect(written).toHaveLength(6);
    expect(written[5]).toMatch(/^portway: warning: .*oomScoreAdj: null/);
  });
});

describe('KubeProxyConfiguration → portway configuration', () => {
  it('maps each implemented field', () => {
    const { config, warnings } = parseKubeProxyDocument(
      kpc({
        clusterCIDR: '10.244.0.0/16, fd00:10:244::/56',
        hostnameOverride: ' Node-A ',
        healthzBindAddress: '10.0.0.5',
        metricsBindAddress: '0.0.0.0:9100',
        mode: 'ipvs',
        iptables: {
          masqueradeAll: true,
          masqueradeBit: 15,
          minSyncPeriod: '2s',
          syncPeriod: '1m0s',
          localhostNodePorts: false,
        },
        ipvs: {
          scheduler: 'wlc',
          strictARP: true,
          syncPeriod: '45s',
          minSyncPeriod: '500ms',
          tcpTimeout: '15m0s',
          tcpFinTimeout: '30s',
          udpTimeout: '5m0s',
          excludeCIDRs: ['192.0.2.0/24'],
        },
        nodePortAddresses: ['primary'],
        detectLocalMode: 'InterfaceNamePrefix',
        detectLocal: { interfaceNamePrefix: 'veth' },
        conntrack: { maxPerCore: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
        oomScoreAdj: -999,
      }),
      'kp.yaml',
    );
    expect(config).toMatchObject({
      nodeName: 'node-a',
      mode: 'ipvs',
      clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/56'],
      detectLocalMode: 'InterfaceNamePrefix',
      detectLocal: { interfaceNamePrefix: 'veth' },
      masqueradeAll: true,
      masqueradeBit: 15,
      nodePortAddresses: ['primary'],
      healthzBindAddress: '10.0.0.5:10256',
      metricsBindAddress: '0.0.0.0:9100',
      iptables: { localhostNodePorts: false, minSyncPeriod: 2000, syncPeriod: 60_000 },
      ipvs: {
        scheduler: 'wlc',
        strictARP: true,
        minSyncPeriod: 500,
        syncPeriod: 45_000,
        tcpTimeout: 900_000,
        tcpFinTimeout: 30_000,
        udpTimeout: 300_000,
        excludeCIDRs: ['192.0.2.0/24'],
      },
    });
    // conntrack left alone (0) asks kube-proxy for nothing portway lacks: only the OOM score is warned.
    expect(warnedFields(warnings)).toEqual(['oomScoreAdj']);
  });

  it('takes an IPv6 bindAddress for the default listen addresses, as kube-proxy does', () => {
    const { config } = parseKubeProxyDocument(kpc({ bindAddress: '::', healthzBindAddress: 'fd00::1' }), 'x');
    expect(config.metricsBindAddress).toBe('[::1]:10249');
    expect(config.healthzBindAddress).toBe('[fd00::1]:10256');
    expect(parseKubeProxyDocument(kpc({ bindAddress: '::' }), 'x').config.healthzBindAddress).toBe(
      '[::]:10256',
    );
  });

  it('warns about each unimplemented field by name, with its value, and never fails on one', () => {
    const { warnings } = convertKubeProxyDocument(
      kpc({
        bindAddress: '10.0.0.5',
        featureGates: { TopologyAwareHints: true, Other: false },
        clientConnection: { qps: 50, burst: 100, contentType: 'application/vnd.kubernetes.protobuf' },
        configSyncPeriod: '15m0s',
        conntrack: {
          tcpBeLiberal: true,
          udpTimeout: '30s',
          maxPerCore: 0,
          tcpEstablishedTimeout: '0s',
          tcpCloseWaitTimeout: '0s',
        },
        portRange: '30000-32767',
        showHiddenMetricsForVersion: '1.30',
        winkernel: { enableDSR: true, networkName: 'l2bridge' },
        logging: { format: 'json', verbosity: 4, flushFrequency: '5s' },
        udpIdleTimeout: '250ms',
        enableProfiling: true,
        oomScoreAdj: -500,
        someFutureField: { a: 1 },
        iptables: { futureKnob: 3 },
      }),
      'x',
    );
    expect(warnedFields(warnings)).toEqual([
      'bindAddress',
      'conntrack.tcpBeLiberal',
      'conntrack.udpTimeout',
      'clientConnection.contentType',
      'clientConnection.qps',
      'clientConnection.burst',
      'featureGates.TopologyAwareHints',
      'featureGates.Other',
      'configSyncPeriod',
      'oomScoreAdj',
      'portRange',
      'udpIdleTimeout',
      'showHiddenMetricsForVersion',
      'enableProfiling',
      'winkernel.networkName',
      'winkernel.enableDSR',
      'logging.format',
      'logging.verbosity',
      'someFutureField',
      'iptables.futureKnob',
    ]);
    expect(warnings).toContain(
      'featureGates.TopologyAwareHints: true: portway has no feature gates: it behaves as kube-proxy with every gate at its default; ignored',
    );
    expect(warnings.find((w) => w.startsWith('configSyncPeriod'))).toMatch(/^configSyncPeriod: 15m0s: /);
    expect(warnings.find((w) => w.startsWith('someFutureField'))).toMatch(/^someFutureField: \{"a":1\}: /);
  });

  it('warns that strictARP outside ipvs mode acts in portway', () => {
    const { warnings } = convertKubeProxyDocument(
      kpc({
        ipvs: { strictARP: true },
        conntrack: { maxPerCore: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
        oomScoreAdj: 0,
      }),
      'x',
    );
    expect(warnedFields(warnings)).toEqual(['ipvs.strictARP']);
  });

  it.each([
    [{ clusterCIDR: '10.244.0.0/33' }, /kp\.yaml: invalid configuration: clusterCIDR: not a CIDR/],
    [{ iptables: { masqueradeBit: 32 } }, /iptables\.masqueradeBit: /],
    [{ iptables: { masqueradeBit: 'x' } }, /iptables\.masqueradeBit: must be a number/],
    [{ iptables: { syncPeriod: '30 seconds' } }, /iptables\.syncPeriod: invalid duration "30 seconds"/],
    [{ iptables: { syncPeriod: 30 } }, /iptables\.syncPeriod: must be a duration string/],
    [
      { iptables: { minSyncPeriod: '1m0s', syncPeriod: '30s' } },
      /iptables\.syncPeriod: must be greater than or equal to minSyncPeriod/,
    ],
    [{ mode: 'nftables' }, /mode: nftables is not supported by portway/],
    [{ mode: 'userspace' }, /mode: unknown mode "userspace"/],
    [{ detectLocalMode: 'PodCIDR' }, /detectLocalMode: must be one of ClusterCIDR, NodeCIDR/],
    [
      { detectLocalMode: 'BridgeInterface' },
      /detectLocal\.bridgeInterface: must be set when detectLocalMode is BridgeInterface/,
    ],
    [{ ipvs: { scheduler: 'fifo' } }, /ipvs\.scheduler: /],
    [{ ipvs: { excludeCIDRs: ['nope'] } }, /ipvs\.excludeCIDRs\[0\]: not a CIDR/],
    [{ nodePortAddresses: ['primary', '10.0.0.0/8'] }, /nodePortAddresses: "primary" cannot be combined/],
    [{ nodePortAddresses: ['10.0.0.0/8', 'x'] }, /nodePortAddresses\[1\]: /],
    [{ metricsBindAddress: 'localhost:10249' }, /metricsBindAddress: "localhost" is not an IP address/],
    [{ bindAddress: 'eth0' }, /bindAddress: not an IP address/],
    [{ featureGates: { A: 'yes' } }, /featureGates: must be a map of feature names to true\/false/],
    [{ clusterCIDR: '10.0.0.0/16,10.1.0.0/16' }, /clusterCIDR: at most one CIDR per family/],
    [{ conntrack: { tcpCloseWaitTimeout: '-1s' } }, /conntrack\.tcpCloseWaitTimeout: invalid duration/],
  ])('%j is an error naming the field', (fields, message) => {
    expect(errorOf(kpc(fields))).toMatch(message);
  });

  it('names every invalid field at once', () => {
    const message = errorOf(kpc({ mode: 'nftables', iptables: { masqueradeAll: 'yes', masqueradeBit: 40 } }));
    expect(message).toMatch(/iptables\.masqueradeBit: /);
    expect(message).toMatch(/iptables\.masqueradeAll: must be true or false/);
    expect(message).toMatch(/mode: nftables/);
  });

  it('refuses another apiVersion, and a ConfigMap without config.conf', () => {
    expect(
      errorOf({ apiVersion: 'kubeproxy.config.k8s.io/v1beta1', kind: 'KubeProxyConfiguration' }),
    ).toMatch(/apiVersion: portway reads KubeProxyConfiguration as kubeproxy\.config\.k8s\.io\/v1alpha1/);
    expect(errorOf({ apiVersion: 'v1', kind: 'ConfigMap', data: { other: 'x' } })).toMatch(
      /data\["config\.conf"\]: missing/,
    );
    expect(errorOf({ apiVersion: 'v1', kind: 'ConfigMap', data: { 'config.conf': 'kind: Other' } })).toMatch(
      /data\["config\.conf"\]\.kind: must be KubeProxyConfiguration/,
    );
  });

  it('round-trips: the converted document parses to the same configuration', () => {
    const raw = kpc({ clusterCIDR: '10.244.0.0/16', iptables: { syncPeriod: '1h30m0s' } });
    const { document } = convertKubeProxyDocument(raw, 'x');
    expect(parseConfig(JSON.parse(JSON.stringify(document)))).toEqual(
      parseKubeProxyDocument(raw, 'x').config,
    );
    expect((document.iptables as { syncPeriod: string }).syncPeriod).toBe('1h30m0s');
  });

  it('a portway configuration file is still read as before (no warnings)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portway-kp-'));
    writeFileSync(join(dir, 'p.yaml'), 'mode: iptables\nclusterCIDRs: [10.0.0.0/16]\n');
    const { config, warnings } = await readConfigFile(join(dir, 'p.yaml'));
    expect(config.clusterCIDRs).toEqual(['10.0.0.0/16']);
    expect(warnings).toEqual([]);
  });
});

describe('Go durations', () => {
  it.each([
    ['0s', 0],
    ['1m0s', 60_000],
    ['24h0m0s', 86_400_000],
    ['1.5s', 1500],
    ['250ms', 250],
    ['1500us', 2],
    ['1000000ns', 1],
    ['2µs', 0],
  ])('%s = %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each([
    [0, '0s'],
    [250, '250ms'],
    [1500, '1.5s'],
    [30_000, '30s'],
    [60_000, '1m0s'],
    [5_400_000, '1h30m0s'],
    [86_400_000, '24h0m0s'],
  ])('%d ms prints as %s and parses back', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms);
  });
});
