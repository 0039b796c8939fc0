// `portway trace -f` in ipvs mode (mode: ipvs in --config): the packet goes through the mode's
// iptables rules (set matches with the entry that matched), IPVS's virtual server and its real
// servers with their shares. `--live` in ipvs mode: test/unit/cli/trace-live-ipvs.test.ts.
import { describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { repoRoot, runPortway } from '../../fixtures/cli-process.js';

const root = repoRoot;
const portway = runPortway;
const examples = join(root, 'examples/manifests');
const ipvsConfig = join(root, 'test/fixtures/cli/ipvs-config.yaml');
const traceIpvs = (...args: string[]) => portway(['trace', '-f', examples, '--config', ipvsConfig, ...args]);

describe('portway trace, mode ipvs', () => {
  it('text: a NodePort packet through KUBE-NODE-PORT-TCP to the virtual server and its real servers, masqueraded', async () => {
    const r = await traceIpvs('--src', '192.0.2.7', '--dst', '10.99.0.2', '--dport', '30080');
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('verdict: ACCEPT');
    expect(r.stdout).toContain(
      'ipvs virtual server: TCP 10.99.0.2:30080 [Service demo/hello-nodeport:http/tcp], scheduler rr',
    );
    expect(r.stdout).toContain('  10.244.2.11:8080 weight 1: 33.3% of new connections');
    expect(r.stdout).toContain('[set KUBE-NODE-PORT-TCP matched 30080]');
    expect(r.stdout).toContain('masquerade: yes');
    expect(r.stdout).not.toContain('KUBE-SVC-');
  });

  it('json: the outcome carries the IPVS decision', async () => {
    const r = await traceIpvs('--src', '10.244.1.11', '--dst', '10.96.0.10', '--dport', '80', '-o', 'json');
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout) as {
      outcome: {
        ipvs: { virtualServer: string; realServers: Array<{ realServer: string; share: number }> };
        branches: Array<{ endpoint: string; masquerade: boolean }>;
      };
    };
    expect(out.outcome.ipvs.virtualServer).toBe('TCP 10.96.0.10:80');
    expect(out.outcome.ipvs.realServers.map((s) => s.realServer)).toEqual([
      '10.244.1.11:8080',
      '10.244.1.12:8080',
      '10.244.2.11:8080',
    ]);
    // Hairpin: only the pod reaching itself is masqueraded.
    expect(out.outcome.branches.filter((b) => b.masquerade).map((b) => b.endpoint)).toEqual([
      '10.244.1.11:8080',
    ]);
  });
});

describe('portway trace, a rule the walker cannot evaluate', () => {
  it('is a one-line error with exit 2, not a stack trace', async () => {
    const golden = join(root, 'test/golden/detect-local-bridge');
    const r = await portway([
      'trace',
      '-f',
      join(golden, 'input.yaml'),
      '--config',
      join(golden, 'config.yaml'),
      ...['--src', '10.244.1.200', '--dst', '10.96.0.150', '--dport', '80'],
    ]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^portway: trace: rule ".*" matches the input interface/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
