// `portway trace --live --url` (issue 12 §4): the API objects from a cluster (the API stand-in, reached
// with --kubeconfig), the rules from the kernel of the network namespace trace runs in. The stand-in runs
// as a process in that same namespace (its loopback), so no relay is needed; the kernel holds the rules
// portway renders for node1 from the full cluster. Two clusters: the same objects (kernel and cluster
// agree), and one where an endpoint of the backend was removed but the kernel still has it (stale rules:
// hop 4 must show the kernel's view, fail, and name the stale endpoint). Needs root.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { createLoneNodeNetns, execInNetns, startInNetns, type NetnsProcess } from '../harness/topology.js';
import { lbManifests } from '../../unit/lb/manifest-fixtures.js';
import { shopBackend, shopTraceConfig } from '../../unit/ingress/ingress-fixture.js';
import { rankNodes } from '../../../src/l2/election.js';

const root = new URL('../../../', import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;
const ns = `pw-trace-url-${process.pid}`;
const cli = ['--import', 'tsx', join(root, 'src/cli/main.ts')];
const [OWNER] = rankNodes('10.99.0.200', ['node1', 'node2']) as [string, string];

const backend = (endpoints: string[]) => shopBackend('http', endpoints);
const config = shopTraceConfig;

interface Report {
  failedAt: number | null;
  hops: Array<{
    hop: number;
    ok: boolean;
    detail: string;
    rules?: {
      node: string;
      endpoints: string[];
      differsFromCluster?: { kernelOnly: string[]; clusterOnly: string[] };
    };
  }>;
}

(isRoot ? describe : describe.skip)('portway trace --live --url (API stand-in + this kernel)', () => {
  let dir = '';
  const standIns: NetnsProcess[] = [];

  const startStandIn = async (name: string, manifests: string): Promise<string> => {
    await writeFile(join(dir, `${name}.yaml`), manifests);
    const kubeconfig = join(dir, `${name}.kubeconfig`);
    const p = startInNetns(ns, 'node', [
      '--import',
      'tsx',
      join(root, 'hack/stand-in.ts'),
      '--load',
      join(dir, `${name}.yaml`),
      '--kubeconfig',
      kubeconfig,
    ]);
    standIns.push(p);
    await p.waitFor(/kubeconfig written/, 30_000);
    return kubeconfig;
  };
  const trace = async (kubeconfig: string, output: 'json' | 'text') => {
    const r = await execInNetns(ns, 'node', [
      ...cli,
      'trace',
      '--live',
      '--kubeconfig',
      kubeconfig,
      '--config',
      join(dir, 'config.json'),
      '--url',
      'http://myapp.example.com/cart',
      '--src',
      '10.99.0.100',
      '-o',
      output,
    ]);
    return r;
  };
  let agreeing = '';
  let stale = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portway-trace-url-live-'));
    await createLoneNodeNetns(ns, '10.99.0.11/24');
    await writeFile(join(dir, 'config.json'), JSON.stringify(config));
    const full = lbManifests() + backend(['10.244.1.21', '10.244.2.21']);
    await writeFile(join(dir, 'full.yaml'), full);
    // The kernel: what portway programs on node1 from the full cluster.
    const rendered = await execa(
      'node',
      [...cli, 'render', '-f', join(dir, 'full.yaml'), '--config', join(dir, 'config.json')],
      { cwd: root },
    );
    await execa('ip', ['netns', 'exec', ns, 'iptables-restore', '-w'], { input: rendered.stdout });
    [agreeing, stale] = await Promise.all([
      startStandIn('agreeing', full),
      startStandIn('stale', lbManifests() + backend(['10.244.1.21'])),
    ]);
  }, 90_000);
  afterAll(async () => {
    for (const p of standIns) await p.stop();
    await execa('ip', ['netns', 'del', ns], { reject: false });
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('cluster and kernel agree: every hop ok, hops 2 and 4 walked through this kernel', async () => {
    const r = await trace(agreeing, 'json');
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.failedAt).toBeNull();
    // No agent runs against the stand-in, so nothing wrote the Ingress's status: hop 1 says so.
    expect(report.hops[0]!.detail).toBe(
      `10.99.0.200 answered by ${OWNER}; the status of Ingress demo/shop holds no address yet (written by the elected agent: is one running?)`,
    );
    expect(report.hops[1]!.rules).toMatchObject({
      node: 'node1 (kernel)',
      endpoints: ['10.244.1.11:8080', '10.244.2.11:8080'],
    });
    expect(report.hops[3]!.rules).toMatchObject({
      node: 'node1 (kernel)',
      endpoints: ['10.244.1.21:9000', '10.244.2.21:9000'],
    });
    expect(report.hops.every((h) => h.rules?.differsFromCluster === undefined)).toBe(true);
  }, 60_000);

  it('an endpoint removed in the cluster, still in the kernel: hop 4 shows the kernel, fails and names the stale endpoint', async () => {
    const r = await trace(stale, 'json');
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.failedAt).toBe(4);
    expect(report.hops[3]!.rules!.endpoints).toEqual(['10.244.1.21:9000', '10.244.2.21:9000']);
    expect(report.hops[3]!.rules!.differsFromCluster).toEqual({
      kernelOnly: ['10.244.2.21:9000'],
      clusterOnly: [],
    });
    const text = await trace(stale, 'text');
    expect(text.stdout).toContain('still sends 50.0% of new connections to 10.244.2.21:9000');
    expect(text.stdout).toContain('result: fails at hop 4');
  }, 60_000);

  it('refuses a cluster it cannot reach within --request-timeout, naming what was not listed (exit 2)', async () => {
    await writeFile(
      join(dir, 'nowhere.kubeconfig'),
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    const r = await execInNetns(ns, 'node', [
      ...cli,
      'trace',
      '--live',
      '--kubeconfig',
      join(dir, 'nowhere.kubeconfig'),
      '--request-timeout',
      '2',
      '--config',
      join(dir, 'config.json'),
      '--url',
      'http://myapp.example.com/',
      '--src',
      '10.99.0.100',
    ]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /^portway: the API server did not answer every list within 2 s: not listed: Service/,
    );
  }, 60_000);
});

if (!isRoot) {
  test.skip('SKIPPED: portway trace --live --url needs root (network namespaces)', () => undefined);
  console.warn('SKIPPED: portway trace --live --url e2e test needs root');
}
