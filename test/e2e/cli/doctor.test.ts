// `portway doctor` on a real namespace programmed by `portway run --once`.
import { execa } from 'execa';
import { join } from 'node:path';
import { createLoneNodeNetns, removeAgentState } from '../harness/topology.js';

const root = new URL('../../../', import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;
const ns = `pw-doctor-${process.pid}`;
const cli = ['--import', 'tsx', join(root, 'src/cli/main.ts')];
const manifests = join(root, 'examples/manifests');
const config = join(root, 'examples/config.yaml');
const inNs = (args: string[]) => execa('ip', ['netns', 'exec', ns, 'node', ...cli, ...args], { cwd: root, reject: false });

(isRoot ? describe : describe.skip)('portway doctor', () => {
  beforeAll(async () => {
    await createLoneNodeNetns(ns);
  });
  afterAll(async () => {
    await removeAgentState(ns);
    await execa('ip', ['netns', 'del', ns], { reject: false });
  });

  it('fails before the agent ran, passes after, and fails again after a flush', async () => {
    const before = await inNs(['doctor', '--manifests', manifests, '--config', config]);
    expect(before.exitCode).toBe(1);
    expect(before.stdout).toMatch(/FAIL rules\/IPv4/);

    const run = await inNs(['run', '--once', '--manifests', manifests, '--config', config, '--log-level', 'warn']);
    expect(run.exitCode).toBe(0);
    const after = await inNs(['doctor', '--manifests', manifests, '--config', config]);
    expect(after.stdout).toMatch(/ok {3}rules\/IPv4/);
    expect(after.stdout).toMatch(/ok {3}sysctl\/net\/ipv4\/ip_forward/);
    expect(after.exitCode).toBe(0);

    await execa('ip', ['netns', 'exec', ns, 'iptables', '-w', '-t', 'nat', '-F', 'KUBE-SERVICES']);
    const flushed = await inNs(['doctor', '--manifests', manifests, '--config', config, '-o', 'json']);
    expect(flushed.exitCode).toBe(1);
    const findings = JSON.parse(flushed.stdout) as Array<{ check: string; severity: string; details: string[] }>;
    const rules = findings.find((f) => f.check === 'rules/IPv4')!;
    expect(rules.severity).toBe('error');
    expect(rules.details.join('\n')).toMatch(/kernel lacks: -A KUBE-SERVICES .*10\.96\.0\.10/);
  });
});
