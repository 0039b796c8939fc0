// portway's record of what it changed belongs to one network namespace and is never applied to another
// (issue 9, item 6). Real namespaces: the agent programs one, the namespace is deleted, a new one takes
// its place — with the same inode, as the kernel does when it reuses the number (forced here by copying
// the record to the new namespace's inode when the kernel happened to pick another) — and cleanup there
// changes nothing: kubelet's KUBE-FIREWALL and the operator's ip_forward=1 stay. Needs root.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanup } from '../../../src/cli/commands/cleanup.js';
import { runAgent } from '../../../src/cli/commands/run.js';
import { createDataplane, RealIpLinks } from '../../../src/dataplane/index.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { NODEPORT_SERVICE_YAML } from './agent-fixtures.js';

const isRoot = process.getuid?.() === 0;
const maybe = isRoot ? describe : describe.skip;
const NODE_IP = '10.98.1.2';

maybe('state per network namespace (real namespaces)', () => {
  const NS_A = `pwstate-${process.pid}-a`;
  const NS_B = `pwstate-${process.pid}-b`;
  let root: string;
  let stateDir: string;
  let manifests: string;
  const run = (ns: string, cmd: string, args: string[]) => execa('ip', ['netns', 'exec', ns, cmd, ...args]);
  const inode = async (ns: string) =>
    /\[(\d+)\]/.exec((await run(ns, 'readlink', ['/proc/self/ns/net'])).stdout)?.[1];
  const ipForward = async (ns: string) =>
    (await run(ns, 'cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim();
  const loNames = async (ns: string) => {
    const [lo] = JSON.parse((await run(ns, 'ip', ['-j', 'link', 'show', 'dev', 'lo'])).stdout) as Array<{
      altnames?: string[];
      ifalias?: string;
    }>;
    return [...(lo?.altnames ?? []), ...(lo?.ifalias ? [lo.ifalias] : [])];
  };
  const makeNode = async (ns: string) => {
    await execa('ip', ['netns', 'add', ns]);
    await run(ns, 'ip', ['link', 'set', 'lo', 'up']);
    await run(ns, 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0-peer']);
    await run(ns, 'ip', ['addr', 'add', `${NODE_IP}/24`, 'dev', 'eth0']);
    await run(ns, 'ip', ['link', 'set', 'eth0', 'up']);
    await run(ns, 'ip', ['link', 'set', 'eth0-peer', 'up']);
  };
  const agentOnce = async (ns: string) =>
    runAgent({
      manifests,
      once: true,
      logger: new RecordingLogger(),
      stateDir,
      handleSignals: false,
      hostname: 'node-a',
      ipLinks: new RealIpLinks({ netns: ns }),
      createDataplane: async (families) => createDataplane({ families, netns: ns }),
    });
  const cleanupIn = async (ns: string) =>
    cleanup({
      logger: new RecordingLogger(),
      families: ['IPv4'],
      dataplane: await createDataplane({ families: ['IPv4'], netns: ns }),
      stateDir,
    });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'portway-netns-state-'));
    stateDir = join(root, 'state');
    manifests = join(root, 'manifests');
    await execa('mkdir', ['-p', stateDir, manifests]);
    await writeFile(join(manifests, 'web.yaml'), NODEPORT_SERVICE_YAML);
  });
  afterEach(async () => {
    for (const ns of [NS_A, NS_B]) await execa('ip', ['netns', 'del', ns], { reject: false });
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const KUBELET_FIREWALL = [
    '*filter',
    ':KUBE-FIREWALL - [0:0]',
    '-A INPUT -j KUBE-FIREWALL',
    '-A KUBE-FIREWALL -m comment --comment "kubelet: block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -j DROP',
    '-A KUBE-FIREWALL -m comment --comment "kubelet firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP',
    'COMMIT',
    '',
  ].join('\n');
  const filterOf = async (ns: string) =>
    (await run(ns, 'iptables-save', ['-t', 'filter'])).stdout.replace(/^#.*$/gm, '');

  it('marks the namespace, records there, and cleanup restores it (kubelet’s KUBE-FIREWALL included) and forgets everything', async () => {
    await makeNode(NS_A);
    await execa('ip', ['netns', 'exec', NS_A, 'iptables-restore', '--noflush'], { input: KUBELET_FIREWALL });
    const filterBefore = await filterOf(NS_A);
    expect(await ipForward(NS_A)).toBe('0');
    expect(await agentOnce(NS_A)).toBe(0);
    expect(await ipForward(NS_A)).toBe('1');
    // portway's full sync wrote kube-proxy's version of the chain (one rule) and the OUTPUT jump.
    expect(await filterOf(NS_A)).not.toContain('0x8000/0x8000');
    expect(await filterOf(NS_A)).toContain('-A OUTPUT -j KUBE-FIREWALL');
    const marker = (await loNames(NS_A)).find((n) => n.startsWith('portway-state-'));
    expect(marker).toBeDefined();
    const id = marker!.slice('portway-state-'.length);
    expect(await readdir(stateDir)).toEqual([`netns-${await inode(NS_A)}-${id}`]);

    const report = await cleanupIn(NS_A);
    expect(report.errors).toEqual([]);
    expect(await ipForward(NS_A)).toBe('0');
    expect(await filterOf(NS_A)).toBe(filterBefore);
    expect(await readdir(stateDir)).toEqual([]);
    expect((await loNames(NS_A)).filter((n) => n.startsWith('portway-state-'))).toEqual([]);
  });

  it('a new namespace with a dead one’s inode inherits nothing: cleanup there changes nothing', async () => {
    await makeNode(NS_A);
    expect(await agentOnce(NS_A)).toBe(0);
    const inodeA = await inode(NS_A);
    const records = await readdir(stateDir);
    expect(records).toHaveLength(1);
    const recordA = records[0]!;
    await execa('ip', ['netns', 'del', NS_A]);

    // The new namespace: the operator turned forwarding on, kubelet installed its KUBE-FIREWALL.
    await execa('ip', ['netns', 'add', NS_B]);
    await run(NS_B, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    await execa('ip', ['netns', 'exec', NS_B, 'iptables-restore', '--noflush'], { input: KUBELET_FIREWALL });
    const filterBefore = await filterOf(NS_B);
    // Same inode as the dead namespace: the kernel's choice, or forced — every form of record portway
    // ever kept for that inode (with the dead namespace's marker, and the unmarked one of old versions).
    const inodeB = await inode(NS_B);
    if (inodeB !== inodeA && recordA.startsWith(`netns-${inodeA}-`)) {
      await cp(
        join(stateDir, recordA),
        join(stateDir, recordA.replace(`netns-${inodeA}-`, `netns-${inodeB}-`)),
        {
          recursive: true,
        },
      );
    }
    if (recordA !== `netns-${inodeB}`)
      await cp(join(stateDir, recordA), join(stateDir, `netns-${inodeB}`), { recursive: true });

    const report = await cleanupIn(NS_B);
    expect(report.errors).toEqual([]);
    expect(report.sysctlsReverted).toEqual([]);
    expect(await ipForward(NS_B)).toBe('1');
    const filterAfter = await filterOf(NS_B);
    expect(filterAfter).toBe(filterBefore);
    expect(filterAfter).toContain('-A INPUT -j KUBE-FIREWALL');
    // The dead namespace's records for this inode are gone (and only those).
    expect(
      (await readdir(stateDir)).filter((d) => d === `netns-${inodeB}` || d.startsWith(`netns-${inodeB}-`)),
    ).toEqual([]);
  });
});
