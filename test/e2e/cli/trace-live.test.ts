// `portway trace --live` reads the rules from the kernel of the network namespace it runs in.
import { execa } from 'execa';
import { join } from 'node:path';
import { createLoneNodeNetns } from '../harness/topology.js';

const root = new URL('../../../', import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;
const ns = `pw-trace-${process.pid}`;
const cli = ['--import', 'tsx', join(root, 'src/cli/main.ts')];

(isRoot ? describe : describe.skip)('portway trace --live', () => {
  beforeAll(async () => {
    await createLoneNodeNetns(ns);
    const rendered = await execa('node', [...cli, 'render', '-f', join(root, 'examples/manifests'), '--config', join(root, 'examples/config.yaml')]);
    await execa('ip', ['netns', 'exec', ns, 'iptables-restore', '-w'], { input: rendered.stdout });
  });
  afterAll(async () => {
    await execa('ip', ['netns', 'del', ns], { reject: false });
  });

  it('finds the NodePort through the node address read from the interfaces', async () => {
    const r = await execa(
      'ip',
      ['netns', 'exec', ns, 'node', ...cli, 'trace', '--live', '--src', '10.99.0.100', '--dst', '10.99.0.2', '--dport', '30081', '-o', 'json'],
      { cwd: root },
    );
    const out = JSON.parse(r.stdout) as { outcome: { endpoints: string[]; masquerade: boolean } };
    expect(out.outcome.endpoints).toEqual(['10.244.1.11:8080', '10.244.1.12:8080', '10.244.2.11:8080']);
    expect(out.outcome.masquerade).toBe(true);
  });

  it('sees that a flushed KUBE-SERVICES no longer leads anywhere', async () => {
    await execa('ip', ['netns', 'exec', ns, 'iptables', '-w', '-t', 'nat', '-F', 'KUBE-SERVICES']);
    const r = await execa(
      'ip',
      ['netns', 'exec', ns, 'node', ...cli, 'trace', '--live', '--src', '10.99.0.100', '--dst', '10.96.0.10', '--dport', '80'],
      { cwd: root },
    );
    expect(r.stdout).toMatch(/endpoints: none/);
  });
});

if (!isRoot) {
  test.skip('SKIPPED: portway trace --live needs root (network namespaces)', () => undefined);
  console.warn('SKIPPED: portway trace --live e2e test needs root');
}
