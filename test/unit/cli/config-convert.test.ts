import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../../src/config/config.js';
import { runPortway } from '../../fixtures/cli-process.js';

const KUBEADM_CONFIGMAP = 'test/fixtures/config/kubeadm-kube-proxy-configmap.yaml';

describe('portway config convert', () => {
  it("prints the portway configuration of kubeadm's kube-proxy ConfigMap, and the warnings on stderr", async () => {
    const r = await runPortway(['config', 'convert', '-f', KUBEADM_CONFIGMAP]);
    expect(r.exitCode).toBe(0);
    const document = parseYaml(r.stdout) as Record<string, unknown>;
    expect(document).toMatchObject({ mode: 'iptables', clusterCIDRs: ['10.244.0.0/16'], masqueradeBit: 14 });
    expect(parseConfig(document).iptables.syncPeriod).toBe(30_000);
    const warnings = r.stderr.split('\n').filter((l) => l !== '');
    expect(warnings).toHaveLength(6);
    expect(warnings.every((l) => l.startsWith(`portway: warning: ${KUBEADM_CONFIGMAP}: `))).toBe(true);
    expect(r.stderr).toContain('clientConnection.kubeconfig: /var/lib/kube-proxy/kubeconfig.conf');
  });

  it('-o json, from stdin', async () => {
    const input =
      'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\noomScoreAdj: 0\n' +
      'conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}\n';
    const r = await runPortway(['config', 'convert', '-f', '-', '-o', 'json'], input);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({
      mode: 'ipvs',
      ipvs: { scheduler: 'rr', syncPeriod: '30s' },
    });
  });

  it('an invalid value is exit 2 naming the kube-proxy field; nothing on stdout', async () => {
    const input =
      'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\niptables: {masqueradeBit: 40}\n';
    const r = await runPortway(['config', 'convert', '-f', '-'], input);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/invalid configuration: iptables\.masqueradeBit: /);
  });

  it('render --config takes the ConfigMap as is, warnings on stderr', async () => {
    const r = await runPortway(['render', '-f', 'examples/manifests', '--config', KUBEADM_CONFIGMAP]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('! -s 10.244.0.0/16');
    expect(r.stderr).toContain('portway: warning: ');
  });
});
