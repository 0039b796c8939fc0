import { RecordingRunner, RestoreError } from '../../../src/dataplane/exec.js';
import {
  chooseIptablesBackend,
  createIptables,
  detectIptablesBackend,
  RealIptables,
} from '../../../src/dataplane/iptables.js';

describe('RealIptables', () => {
  it('runs the family/backend binaries with the lock wait and --noflush', async () => {
    const runner = new RecordingRunner().on('ip6tables-legacy-save', { stdout: '*nat\nCOMMIT\n' });
    const ipt = new RealIptables({ family: 'IPv6', backend: 'legacy', runner });
    expect(await ipt.save('nat')).toBe('*nat\nCOMMIT\n');
    await ipt.restore('*nat\nCOMMIT\n', { noflush: true });
    await ipt.restore('*filter\nCOMMIT\n', { noflush: false });
    expect(runner.commandLines()).toEqual([
      'ip6tables-legacy-save -t nat',
      'ip6tables-legacy-restore -w 5 --noflush',
      'ip6tables-legacy-restore -w 5',
    ]);
    expect(runner.calls[1]?.input).toBe('*nat\nCOMMIT\n');
  });

  it('adds "-S" for listFirst and reports failures at the caller\'s line numbers', async () => {
    const runner = new RecordingRunner().on('iptables-nft-restore', {
      exitCode: 2,
      stderr: "iptables-restore v1.8.9 (nf_tables): Chain 'B' does not exist\nError occurred at line: 4\n",
    });
    const ipt = new RealIptables({ family: 'IPv4', backend: 'nft', runner });
    const payload = '*nat\n:A - [0:0]\n-A A -j B\nCOMMIT\n';
    const err = await ipt.restore(payload, { noflush: true, listFirst: true }).catch((e: unknown) => e);
    expect(runner.calls[0]?.input).toBe('*nat\n-S\n:A - [0:0]\n-A A -j B\nCOMMIT\n');
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).line).toBe(3);
    expect((err as RestoreError).lineText).toBe('-A A -j B');
  });

  it('streamed: "-S" only in the first part (the big table), failures at the caller\'s line numbers', async () => {
    const runner = new RecordingRunner().on('iptables-nft-restore', {
      exitCode: 2,
      stderr: "iptables-restore v1.8.9 (nf_tables): Chain 'C' does not exist\nError occurred at line: 7\n",
    });
    const ipt = new RealIptables({ family: 'IPv4', backend: 'nft', runner });
    const head = '*nat\n:A - [0:0]\n-A A -j RETURN\n';
    const rest = 'COMMIT\n*filter\n-A F -j C\nCOMMIT\n';
    const err = await ipt
      .restoreStreamed(head, Promise.resolve(rest), { noflush: true, listFirst: true })
      .catch((e: unknown) => e);
    expect(runner.calls[0]?.input).toBe(
      '*nat\n-S\n:A - [0:0]\n-A A -j RETURN\nCOMMIT\n*filter\n-A F -j C\nCOMMIT\n',
    );
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).line).toBe(6);
    expect((err as RestoreError).lineText).toBe('-A F -j C');
  });

  it('maps -C/-D exit 1 to false and other failures to errors', async () => {
    const runner = new RecordingRunner()
      .on('iptables-nft -w 5 -t nat -C OUTPUT -j X', { exitCode: 0 })
      .on('iptables-nft -w 5 -t nat -C', {
        exitCode: 1,
        stderr: 'iptables: Bad rule (does a matching rule exist in that chain?).',
      })
      .on('iptables-nft -w 5 -t nat -D', {
        exitCode: 4,
        stderr: 'Another app is currently holding the xtables lock. Stopped waiting after 5s.',
      });
    const ipt = new RealIptables({ family: 'IPv4', backend: 'nft', runner });
    expect(await ipt.checkRule('nat', 'OUTPUT', ['-j', 'X'])).toBe(true);
    expect(await ipt.checkRule('nat', 'OUTPUT', ['-j', 'Y'])).toBe(false);
    await expect(ipt.deleteRule('nat', 'OUTPUT', ['-j', 'Y'])).rejects.toThrow(/xtables lock/);
    await ipt.insertRule(
      'nat',
      'PREROUTING',
      ['-m', 'comment', '--comment', 'kubernetes service portals', '-j', 'KUBE-SERVICES'],
      'prepend',
    );
    expect(runner.calls.at(-1)?.args).toEqual([
      '-w',
      '5',
      '-t',
      'nat',
      '-I',
      'PREROUTING',
      '-m',
      'comment',
      '--comment',
      'kubernetes service portals',
      '-j',
      'KUBE-SERVICES',
    ]);
  });
});

describe('backend choice', () => {
  const none = { defaultVersion: null, nftKubeletChains: false, legacyAll: '', nftKubeChains: false };
  it.each([
    [
      {
        ...none,
        nftKubeletChains: true,
        legacyAll: '*nat\n:KUBE-SERVICES - [0:0]\n',
      },
      'nft',
    ],
    [
      {
        ...none,
        legacyAll: '*mangle\n:KUBE-KUBELET-CANARY - [0:0]\n',
        defaultVersion: 'iptables v1.8.9 (nf_tables)',
      },
      'legacy',
    ],
    [
      { ...none, legacyAll: '*nat\n:KUBE-SERVICES - [0:0]\n', defaultVersion: 'iptables v1.8.9 (nf_tables)' },
      'legacy',
    ],
    [{ ...none, nftKubeChains: true, defaultVersion: 'iptables v1.8.9 (legacy)' }, 'nft'],
    [{ ...none, defaultVersion: 'iptables v1.8.9 (legacy)' }, 'legacy'],
    [
      {
        ...none,
        nftKubeChains: true,
        legacyAll: '*nat\n:KUBE-SERVICES - [0:0]\n',
        defaultVersion: 'iptables v1.8.9 (legacy)',
      },
      'legacy',
    ],
    [{ ...none, defaultVersion: 'iptables v1.8.9 (nf_tables)' }, 'nft'],
    [none, 'nft'],
  ])('%#: chooses the backend from the evidence', (obs, backend) => {
    expect(chooseIptablesBackend(obs).backend).toBe(backend);
  });

  it('detects from the commands it runs and never passes -t to legacy save', async () => {
    const runner = new RecordingRunner()
      .on('iptables --version', { stdout: 'iptables v1.8.9 (nf_tables)\n' })
      .on('iptables-legacy-save', { stdout: '*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n' })
      .on('iptables-nft -w -t ', {
        exitCode: 1,
        stderr: 'iptables: No chain/target/match by that name.\n',
      })
      .on('ip6tables-nft -w -t ', {
        exitCode: 1,
        stderr: 'ip6tables: No chain/target/match by that name.\n',
      });
    const choice = await detectIptablesBackend(runner);
    expect(choice).toEqual({ backend: 'legacy', reason: 'service chains present in legacy tables' });
    expect(runner.commandLines()).toContain('iptables-legacy-save');
    expect(runner.commandLines().filter((l) => l.startsWith('iptables-legacy-save -t'))).toEqual([]);
    // The nft nat table is probed chain by chain, never dumped (seconds at 10k Services).
    expect(runner.commandLines()).toContain('iptables-nft -w -t nat -S KUBE-SERVICES');
    expect(runner.commandLines()).toContain('iptables-nft -w -t mangle -S KUBE-IPTABLES-HINT');
    expect(runner.commandLines().filter((l) => /nft-save/.test(l))).toEqual([]);
    const ipt = await createIptables({ family: 'IPv4', runner });
    expect(ipt.commands.restore).toBe('iptables-legacy-restore');
  });
});
