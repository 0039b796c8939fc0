// `portway render --part …` in ipvs mode is meant to be piped into the tools: its ipset part goes
// into the real `ipset restore`, its iptables part into `iptables-restore --test` (ip6tables for
// IPv6), in a fresh network namespace holding the sets. IPVS is absent from this kernel, so the
// ipvs part is checked by the ipvsadm-save reader instead (test/unit/cli/dry-run-ipvs.test.ts).
import { execa } from 'execa';
import { join } from 'node:path';
import { withNamespace } from '../harness/restore-check.js';

const root = new URL('../../../', import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;
const cli = ['--import', 'tsx', join(root, 'src/cli/main.ts')];
const examples = join(root, 'examples/manifests');
const config = join(root, 'test/fixtures/cli/ipvs-config.yaml');

const part = async (name: string, family: string): Promise<string> => {
  const r = await execa(
    'node',
    [...cli, 'render', '-f', examples, '--config', config, '--family', family, '--part', name],
    {
      cwd: root,
    },
  );
  return r.stdout + '\n';
};

(isRoot ? describe : describe.skip).each(['ipv4', 'ipv6'])(
  'render --part, mode ipvs, %s, piped to the tools',
  (family) => {
    it('ipset restore takes the ipset part, then iptables-restore --test the iptables part', async () => {
      const sets = await part('ipset', family);
      const rules = await part('iptables', family);
      await withNamespace('pw-ipvs-part', async (ns) => {
        const restored = await execa('ip', ['netns', 'exec', ns, 'ipset', 'restore'], {
          input: sets,
          reject: false,
        });
        expect(restored.stderr).toBe('');
        expect(restored.exitCode).toBe(0);
        const listed = await execa('ip', ['netns', 'exec', ns, 'ipset', 'list', '-n']);
        expect(listed.stdout.split('\n').length).toBe(17);
        const tool = family === 'ipv4' ? 'iptables-restore' : 'ip6tables-restore';
        const test = await execa('ip', ['netns', 'exec', ns, tool, '-w', '--test'], {
          input: rules,
          reject: false,
        });
        expect(test.stderr).toBe('');
        expect(test.exitCode).toBe(0);
      });
    });
  },
);
