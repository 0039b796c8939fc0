// `portway trace` in dry-run mode, as an engineer runs it: a real process over the examples.
import { execa } from 'execa';
import { join } from 'node:path';

const root = new URL('../../../', import.meta.url).pathname;
const trace = (args: string[]) =>
  execa('node', ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'trace', ...args], { cwd: root, reject: false });
const examples = ['-f', join(root, 'examples/manifests'), '--config', join(root, 'examples/config.yaml')];

describe('portway trace (dry run)', () => {
  it('explains a NodePort packet from outside: every pod, masqueraded, Service named', async () => {
    const r = await trace([...examples, '--src', '10.99.0.100', '--dst', '10.99.0.2', '--dport', '30080']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^verdict: ACCEPT$/m);
    expect(r.stdout).toMatch(/endpoints: 10\.244\.1\.11:8080 \(33\.3%\), 10\.244\.1\.12:8080 \(33\.3%\), 10\.244\.2\.11:8080 \(33\.3%\)/);
    expect(r.stdout).toMatch(/^masquerade: yes$/m);
    expect(r.stdout).toContain('[Service demo/hello-nodeport:http]');
  });

  it('a pod calling a cluster IP is not masqueraded (local detector), json output', async () => {
    const r = await trace([...examples, '-o', 'json', '--src', '10.244.1.12', '--dst', '10.96.0.10', '--dport', '80']);
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout) as { outcome: { endpoints: string[]; branches: Array<{ endpoint?: string; masquerade: boolean }> } };
    expect(out.outcome.endpoints).toEqual(['10.244.1.11:8080', '10.244.1.12:8080', '10.244.2.11:8080']);
    // Only the branch that hairpins back to the sender itself is masqueraded.
    const masqueraded = out.outcome.branches.filter((b) => b.masquerade).map((b) => b.endpoint);
    expect(masqueraded).toEqual(['10.244.1.12:8080']);
  });

  it('a port nothing listens on passes untouched', async () => {
    const r = await trace([...examples, '--src', '10.99.0.100', '--dst', '10.96.0.10', '--dport', '81']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^endpoints: (none|-)/m);
  });

  it('rejects bad flags with exit 2', async () => {
    expect((await trace([...examples, '--src', 'x', '--dst', '10.96.0.10', '--dport', '80'])).exitCode).toBe(2);
    expect((await trace([...examples, '--src', '10.0.0.1', '--dst', '10.96.0.10', '--dport', '0'])).exitCode).toBe(2);
    expect((await trace(['--src', '10.0.0.1', '--dst', '10.96.0.10', '--dport', '80'])).exitCode).toBe(2);
    const mixed = await trace([...examples, '--src', 'fd00::1', '--dst', '10.96.0.10', '--dport', '80']);
    expect(mixed.exitCode).toBe(2);
    expect(mixed.stderr).toMatch(/same IP family/);
  });

  it.each(['0x50', '1e2', '0b1010000', '+80', '80.0', ' 80', '080000', '65536', ''])(
    'refuses --dport %p: decimal 1-65535 only, exit 2 with a clear message',
    async (port) => {
      const r = await trace([...examples, '--src', '10.99.0.100', '--dst', '10.96.0.10', '--dport', port]);
      expect(r.exitCode).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`--dport must be a decimal port 1-65535 (got ${JSON.stringify(port)})`);
    },
  );

  it('prints IPv6 address:port pairs in brackets', async () => {
    const dual = ['-f', join(root, 'test/golden/dual-stack/input.yaml'), '--config', join(root, 'examples/config.yaml')];
    const r = await trace([...dual, '--src', 'fd00:99::100', '--dst', 'fd00:96::140', '--dport', '80', '--sport', '5000']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^packet: tcp \[fd00:99::100\]:5000 -> \[fd00:96::140\]:80 /m);
    expect(r.stdout).toContain('endpoints: [fd00:244::1:141]:8080 (50.0%), [fd00:244::2:141]:8080 (50.0%)');
  });
});
