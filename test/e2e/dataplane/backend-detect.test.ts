// Backend detection against the real tools in a fresh namespace: which backend already holds
// kube-proxy-style chains decides, and the nft nat table is probed chain by chain (never dumped).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { createRunner, detectIptablesBackend } from '../../../src/dataplane/index.js';

const NS = `pwdetect-${process.pid}`;
const isRoot = process.getuid?.() === 0;
const maybe = isRoot ? describe : describe.skip;
const restore = (tool: string, lines: string[]) =>
  execa('ip', ['netns', 'exec', NS, tool, '--noflush'], { input: [...lines, ''].join('\n') });

maybe('detectIptablesBackend in a network namespace', () => {
  beforeAll(async () => {
    await execa('ip', ['netns', 'add', NS]);
  });
  afterAll(async () => {
    await execa('ip', ['netns', 'del', NS], { reject: false });
  });

  it('follows the backend holding the service chains; the host default when none or both do', async () => {
    const runner = createRunner({ netns: NS });
    const hostDefault = (await execa('iptables', ['--version'])).stdout.includes('(legacy)')
      ? 'legacy'
      : 'nft';
    expect((await detectIptablesBackend(runner)).backend).toBe(hostDefault);

    await restore('iptables-legacy-restore', ['*nat', ':KUBE-SERVICES - [0:0]', 'COMMIT']);
    expect(await detectIptablesBackend(runner)).toEqual({
      backend: 'legacy',
      reason: 'service chains present in legacy tables',
    });

    await restore('iptables-nft-restore', ['*nat', ':KUBE-POSTROUTING - [0:0]', 'COMMIT']);
    expect((await detectIptablesBackend(runner)).backend).toBe(hostDefault); // both: no evidence either way

    await restore('iptables-legacy-restore', ['*nat', '-X KUBE-SERVICES', 'COMMIT']);
    expect(await detectIptablesBackend(runner)).toEqual({
      backend: 'nft',
      reason: 'service chains present in nft nat table',
    });

    // kubelet's hint chain in nft mangle outweighs service chains in legacy.
    await restore('iptables-legacy-restore', ['*nat', ':KUBE-SERVICES - [0:0]', 'COMMIT']);
    await restore('iptables-nft-restore', ['*nat', '-X KUBE-POSTROUTING', 'COMMIT']);
    await restore('iptables-nft-restore', ['*mangle', ':KUBE-KUBELET-CANARY - [0:0]', 'COMMIT']);
    expect(await detectIptablesBackend(runner)).toEqual({
      backend: 'nft',
      reason: 'kubelet chains in nft mangle table',
    });
  });
});
