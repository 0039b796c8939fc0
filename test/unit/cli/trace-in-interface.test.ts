// `portway trace --in-interface`: with detectLocalMode BridgeInterface the rules match `-i`, so the
// interface a packet arrives on decides whether it is masqueraded; without it trace must refuse to guess.
import { execa } from 'execa';
import { join } from 'node:path';

const root = new URL('../../../', import.meta.url).pathname;
const golden = join(root, 'test/golden/detect-local-bridge');
const trace = (args: string[]) =>
  execa(
    'node',
    [
      '--import',
      'tsx',
      join(root, 'src/cli/main.ts'),
      'trace',
      '-f',
      join(golden, 'input.yaml'),
      '--config',
      join(golden, 'config.yaml'),
      ...args,
    ],
    { cwd: root, reject: false },
  );
const podToClusterIP = ['--src', '10.244.1.200', '--dst', '10.96.0.150', '--dport', '80'];

describe('portway trace --in-interface (detectLocalMode BridgeInterface)', () => {
  it('from the pod bridge: not masqueraded; from another interface: masqueraded', async () => {
    const fromBridge = await trace([...podToClusterIP, '--in-interface', 'cbr0']);
    expect(fromBridge.exitCode).toBe(0);
    expect(fromBridge.stdout).toMatch(/^masquerade: no$/m);
    const fromLan = await trace([...podToClusterIP, '--in-interface', 'eth0']);
    expect(fromLan.exitCode).toBe(0);
    expect(fromLan.stdout).toMatch(/^masquerade: yes$/m);
  });

  it('without it, a rule matching -i stops the walk with an error naming the flag, not a guess', async () => {
    const r = await trace(podToClusterIP);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('-i cbr0');
    expect(r.stderr).toContain('--in-interface');
  });

  it('rejects a pattern or an over-long name with exit 2', async () => {
    expect((await trace([...podToClusterIP, '--in-interface', 'veth+'])).exitCode).toBe(2);
    expect((await trace([...podToClusterIP, '--in-interface', 'a-very-long-ifname0'])).exitCode).toBe(2);
  });
});
