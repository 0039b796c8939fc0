// The real agent (runAgent --once: real iptables-restore, iptables-save, sysctl, conntrack) in a fresh
// network namespace, against the example manifests; then a second full sync (no drift against the
// kernel's own printout), a kube-proxy-style takeover, and cleanup. Needs root.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanup } from '../../../src/cli/commands/cleanup.js';
import { runAgent } from '../../../src/cli/commands/run.js';
import { defaultConfig } from '../../../src/config/config.js';
import { createDataplane, RealIpLinks, type Dataplane } from '../../../src/dataplane/index.js';
import { loadClusterState } from '../../../src/model/index.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import { renderIptables, renderOptionsFromConfig } from '../../../src/render/iptables/index.js';
import { SystemClock } from '../../../src/sync/clock.js';
import { IptablesSyncer } from '../../../src/sync/iptables-syncer.js';

const NS_PREFIX = `pwagent-${process.pid}`;
const MANIFESTS = join(process.cwd(), 'examples', 'manifests');
const NODE_IP = '10.98.0.2';
const isRoot = process.getuid?.() === 0;
const maybe = isRoot ? describe : describe.skip;

maybe.each(['nft', 'legacy'] as const)('portway run --once in a network namespace (%s)', (backend) => {
  const NS = `${NS_PREFIX}-${backend}`;
  const inNs = (cmd: string, args: string[]) => execa('ip', ['netns', 'exec', NS, cmd, ...args]);
  const save = async (table: string) => (await inNs(`iptables-${backend}-save`, ['-t', table])).stdout;
  let stateDir: string;
  let dataplane: Dataplane;

  beforeAll(async () => {
    await execa('ip', ['netns', 'add', NS]);
    await inNs('ip', ['link', 'set', 'lo', 'up']);
    // no dummy module on this kernel: a veth pair, both ends inside the namespace
    await inNs('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0-peer']);
    await inNs('ip', ['link', 'set', 'eth0-peer', 'up']);
    await inNs('ip', ['addr', 'add', `${NODE_IP}/24`, 'dev', 'eth0']);
    await inNs('ip', ['link', 'set', 'eth0', 'up']);
    stateDir = await mkdtemp(join(tmpdir(), 'portway-e2e-state-'));
    dataplane = await createDataplane({ families: ['IPv4'], netns: NS, backend });
  });

  afterAll(async () => {
    await execa('ip', ['netns', 'del', NS], { reject: false });
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  const agent = (logger: RecordingLogger, manifests = MANIFESTS) =>
    runAgent({
      manifests,
      once: true,
      logger,
      stateDir,
      handleSignals: false,
      hostname: 'node-a',
      ipLinks: new RealIpLinks({ netns: NS }),
      createDataplane: async () => dataplane,
    });

  it('programs the chains, jumps and sysctls', async () => {
    const logger = new RecordingLogger();
    const started = Date.now();
    expect(await agent(logger)).toBe(0);
    const took = Date.now() - started;
    const nat = await save('nat');
    expect(nat).toMatch(/^:KUBE-SERVICES - /m);
    expect(nat).toMatch(/^-A KUBE-SERVICES -d 10\.96\.0\.10\/32 .*-j KUBE-SVC-/m);
    expect(nat).toMatch(/^-A KUBE-NODEPORTS .*--dport 30080 .*-j KUBE-EXT-/m);
    expect(nat.match(/^-A PREROUTING .*-j KUBE-SERVICES$/gm)).toHaveLength(1);
    expect(nat.match(/^-A POSTROUTING .*-j KUBE-POSTROUTING$/gm)).toHaveLength(1);
    const filter = await save('filter');
    expect(filter).toMatch(/^:KUBE-FORWARD - /m);
    expect((await inNs('cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim()).toBe('1');
    expect(logger.records.find((r) => r.message === 'portway agent starting')?.fields).toMatchObject({
      nodeIPs: [NODE_IP],
    });
    process.stdout.write(
      `run --once (fresh netns, examples/manifests): ${took} ms, backend ${dataplane.iptables.IPv4?.backend}\n`,
    );
  });

  it('on a programmed node, --once from a missing path or an empty directory exits 2 and leaves the kernel’s rules as they were', async () => {
    const rulesOnly = (dump: string) => dump.replace(/^#.*$/gm, ''); // the header/footer carry the time
    expect(await agent(new RecordingLogger())).toBe(0); // programmed (already, when the test above ran)
    const natBefore = rulesOnly(await save('nat'));
    const filterBefore = rulesOnly(await save('filter'));
    expect(natBefore).toMatch(/^-A KUBE-SERVICES -d 10\.96\.0\.10\/32 /m);
    const empty = await mkdtemp(join(tmpdir(), 'portway-e2e-empty-'));
    try {
      for (const manifests of [`/nonexistent-portway-${process.pid}`, empty]) {
        const logger = new RecordingLogger();
        expect(await agent(logger, manifests)).toBe(2);
        expect(logger.records.find((r) => r.level === 'error')?.message).toMatch(/cannot be believed/);
        expect(rulesOnly(await save('nat'))).toBe(natBefore);
        expect(rulesOnly(await save('filter'))).toBe(filterBefore);
      }
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('a second run adopts every chain as the kernel prints it (writes nothing, adds no jump); a full sync against the kernel reports no drift', async () => {
    const rerun = new RecordingLogger();
    const natBefore = await save('nat');
    expect(await agent(rerun)).toBe(0);
    // The real iptables-save printout matched every rendered chain: nothing rewritten, nothing sent.
    const synced = rerun.records.find((r) => r.message === 'iptables already up to date');
    expect(synced?.fields).toMatchObject({
      full: true,
      bytes: 0,
      jumpsInserted: 0,
      adopted: { rewritten: 0, deleted: 0 },
    });
    expect((synced?.fields as { adopted: { kept: number } }).adopted.kept).toBeGreaterThan(10);
    const nat = await save('nat');
    const rulesOnly = (dump: string) => dump.replace(/^#.*$/gm, ''); // the header/footer carry the time
    expect(rulesOnly(nat)).toBe(rulesOnly(natBefore));
    expect(nat.match(/^-A PREROUTING .*-j KUBE-SERVICES$/gm)).toHaveLength(1);

    // One syncer across several syncs against the real kernel: canonical comparison of what it
    // applied with what iptables-save prints must find nothing.
    const config = { ...defaultConfig(), nodeName: 'node-a' };
    const { state } = await loadClusterState([MANIFESTS]);
    const logger = new RecordingLogger();
    const syncer = new IptablesSyncer({
      families: [{ family: 'IPv4', iptables: dataplane.iptables.IPv4!, conntrack: dataplane.conntrack }],
      render: (s, f) => renderIptables(s, renderOptionsFromConfig(config, f, [NODE_IP])),
      clock: new SystemClock(),
      logger,
    });
    syncer.setState(state);
    await syncer.sync({ full: true });
    const second = await syncer.sync({ full: true });
    expect(second.families[0]?.drift).toEqual([]);
    expect(second.families[0]?.jumpsInserted).toEqual([]);
    // someone flushes KUBE-SERVICES: the next full sync reports and repairs it
    await inNs(`iptables-${backend}`, ['-t', 'nat', '-F', 'KUBE-SERVICES']);
    const repaired = await syncer.sync({ full: true });
    expect(repaired.families[0]?.drift.map((d) => [d.chain, d.kind])).toEqual([
      ['KUBE-SERVICES', 'rulesDiffer'],
    ]);
    expect(await save('nat')).toMatch(/^-A KUBE-SERVICES -d 10\.96\.0\.10\/32 /m);
    // a partial sync with nothing changed writes nothing
    const restoresBefore = logger.records.filter((r) => r.message === 'iptables rules applied').length;
    await syncer.sync();
    expect(logger.records.filter((r) => r.message === 'iptables rules applied').length).toBe(restoresBefore);
  });

  it('takes over stale kube-proxy chains without a flush and cleanup removes only portway’s rules', async () => {
    await execa('ip', ['netns', 'exec', NS, `iptables-${backend}-restore`, '--noflush'], {
      input: [
        '*nat',
        ':KUBE-SVC-STALESTALESTALE1 - [0:0]',
        ':DOCKER - [0:0]',
        '-A KUBE-SERVICES -d 10.96.9.9/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-STALESTALESTALE1',
        '-A DOCKER -j RETURN',
        '-A PREROUTING -j DOCKER',
        'COMMIT',
        '',
      ].join('\n'),
    });
    const takeover = new RecordingLogger();
    expect(await agent(takeover)).toBe(0);
    // Adopted: only KUBE-SERVICES (it had the stale rule) rewritten, the stale chain deleted.
    expect(takeover.records.find((r) => r.message === 'iptables rules applied')?.fields).toMatchObject({
      adopted: { rewritten: 1, deleted: 1 },
    });
    let nat = await save('nat');
    expect(nat).not.toContain('KUBE-SVC-STALESTALESTALE1');
    expect(nat).not.toContain('10.96.9.9');

    const report = await cleanup({ logger: new RecordingLogger(), families: ['IPv4'], dataplane, stateDir });
    expect(report.errors).toEqual([]);
    nat = await save('nat');
    const filter = await save('filter');
    expect(nat + filter).not.toMatch(
      /KUBE-(SERVICES|NODEPORTS|POSTROUTING|MARK-MASQ|SVC|SEP|EXT|FW|FORWARD|PROXY-FIREWALL|EXTERNAL-SERVICES)/,
    );
    expect(filter).not.toContain('KUBE-FIREWALL'); // portway created it here (no kubelet in the namespace)
    expect(nat).toContain('-A PREROUTING -j DOCKER');
    expect(nat).toContain('-A DOCKER -j RETURN');
    expect((await inNs('cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim()).toBe('0');
  });
});
