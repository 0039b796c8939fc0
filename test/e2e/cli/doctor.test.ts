// `portway doctor` on a real namespace programmed by `portway run --once`; the desired state from the
// manifests, or (--kubeconfig) from a cluster holding the same objects: the API stand-in, run as a process
// in the same namespace so doctor reaches it on that namespace's loopback.
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createLoneNodeNetns,
  removeAgentState,
  startInNetns,
  type NetnsProcess,
} from '../harness/topology.js';

const root = new URL('../../../', import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;
const ns = `pw-doctor-${process.pid}`;
const cli = ['--import', 'tsx', join(root, 'src/cli/main.ts')];
const manifests = join(root, 'examples/manifests');
const config = join(root, 'examples/config.yaml');
const inNs = (args: string[]) =>
  execa('ip', ['netns', 'exec', ns, 'node', ...cli, ...args], { cwd: root, reject: false });

(isRoot ? describe : describe.skip)('portway doctor', () => {
  let dir = '';
  let standIn: NetnsProcess | undefined;
  beforeAll(async () => {
    await createLoneNodeNetns(ns);
    dir = await mkdtemp(join(tmpdir(), 'portway-doctor-'));
  });
  afterAll(async () => {
    await standIn?.stop();
    await removeAgentState(ns);
    await execa('ip', ['netns', 'del', ns], { reject: false });
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('fails before the agent ran, passes after, and fails again after a flush', async () => {
    const before = await inNs(['doctor', '--manifests', manifests, '--config', config]);
    expect(before.exitCode).toBe(1);
    expect(before.stdout).toMatch(/FAIL rules\/IPv4/);

    const run = await inNs([
      'run',
      '--once',
      '--manifests',
      manifests,
      '--config',
      config,
      '--log-level',
      'warn',
    ]);
    expect(run.exitCode).toBe(0);
    const after = await inNs(['doctor', '--manifests', manifests, '--config', config]);
    expect(after.stdout).toMatch(/ok {3}rules\/IPv4/);
    expect(after.stdout).toMatch(/ok {3}sysctl\/net\/ipv4\/ip_forward/);
    expect(after.exitCode).toBe(0);

    await execa('ip', ['netns', 'exec', ns, 'iptables', '-w', '-t', 'nat', '-F', 'KUBE-SERVICES']);
    const flushed = await inNs(['doctor', '--manifests', manifests, '--config', config, '-o', 'json']);
    expect(flushed.exitCode).toBe(1);
    const findings = JSON.parse(flushed.stdout) as Array<{
      check: string;
      severity: string;
      details: string[];
    }>;
    const rules = findings.find((f) => f.check === 'rules/IPv4')!;
    expect(rules.severity).toBe('error');
    expect(rules.details.join('\n')).toMatch(/kernel lacks: -A KUBE-SERVICES .*10\.96\.0\.10/);
  });

  it('--kubeconfig: the same verdict with the objects listed from a cluster (-f and --kubeconfig together: exit 2)', async () => {
    const kubeconfig = join(dir, 'stand-in.kubeconfig');
    standIn = startInNetns(ns, 'node', [
      '--import',
      'tsx',
      join(root, 'hack/stand-in.ts'),
      '--load',
      manifests,
      '--kubeconfig',
      kubeconfig,
    ]);
    await standIn.waitFor(/kubeconfig written/, 30_000);
    // The namespace as the agent programs it from the same objects.
    expect(
      (await inNs(['run', '--once', '--manifests', manifests, '--config', config, '--log-level', 'warn']))
        .exitCode,
    ).toBe(0);
    const [fromCluster, fromFiles] = await Promise.all([
      inNs(['doctor', '--kubeconfig', kubeconfig, '--config', config, '-o', 'json']),
      inNs(['doctor', '-f', manifests, '--config', config, '-o', 'json']),
    ]);
    expect(fromCluster.stderr).toBe('');
    expect(fromCluster.exitCode).toBe(0);
    expect(JSON.parse(fromCluster.stdout)).toEqual(JSON.parse(fromFiles.stdout));
    const both = await inNs(['doctor', '-f', manifests, '--kubeconfig', kubeconfig]);
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain('-f PATH… cannot be combined with --kubeconfig/--master');
  }, 90_000);
});
