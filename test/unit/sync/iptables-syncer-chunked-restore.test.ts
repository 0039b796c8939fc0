// A full sync writes the big nat table to iptables-restore in chunks made as the tool reads them, never
// as one string: at 10k Services that string is ~40 MB, and with its "-S" copy and the pipe's buffer it
// was ~120 MB of the agent's peak. The bytes the tool reads stay exactly the one-shot payload's.
import { describe, expect, it } from '@jest/globals';
import { defaultConfig } from '../../../src/config/config.js';
import type { CommandResult, CommandRunner, RunOptions } from '../../../src/dataplane/exec.js';
import { FakeIptables } from '../../../src/dataplane/fake-iptables.js';
import type { RestoreOptions, RestoreText } from '../../../src/dataplane/interfaces.js';
import { RealIptables } from '../../../src/dataplane/iptables.js';
import { RestoreError } from '../../../src/dataplane/exec.js';
import type { ClusterState } from '../../../src/model/cluster-state.js';
import { RecordingLogger } from '../../../src/observe/logger.js';
import {
  planFullRestoreStreamed,
  planIptablesRestore,
  RESTORE_CHUNK_CHARS,
} from '../../../src/plan/iptables-plan.js';
import { renderIptables, renderOptionsFromConfig } from '../../../src/render/iptables/index.js';
import { ManualClock } from '../../../src/sync/clock.js';
import { builtinJumpsPayload, IptablesSyncer } from '../../../src/sync/iptables-syncer.js';
import { endpoint, servicePort, stateOf } from '../../fixtures/cluster-state.js';

const config = { ...defaultConfig(), nodeName: 'node-a' };
const renderOptions = renderOptionsFromConfig(config, 'IPv4', ['192.168.50.2']);

/** Enough Services for a nat table of several chunks (~2.5 MB of rules). */
function bigCluster(services = 450): ClusterState {
  return stateOf(
    ...Array.from({ length: services }, (_, i) =>
      servicePort(`ns/s${i}:http`, {
        clusterIPs: [`10.96.${i >> 8}.${i & 255}`],
        endpoints: Array.from({ length: 10 }, (_, k) =>
          endpoint(`10.${128 + (i >> 8)}.${i & 255}.${k + 2}`, 8080),
        ),
      }),
    ),
  );
}

/** Keeps what restoreStreamed was handed, then applies it as the fake does. */
class HeadRecordingIptables extends FakeIptables {
  heads: RestoreText[] = [];
  override async restoreStreamed(
    head: RestoreText,
    rest: Promise<string>,
    opts: RestoreOptions,
  ): Promise<void> {
    this.heads.push(head);
    await super.restoreStreamed(head, rest, opts);
  }
}

/** A runner that records the chunks of a streamed input as they come, and fails when told to. */
class ChunkRecordingRunner implements CommandRunner {
  chunks: string[] = [];
  constructor(private readonly result: Partial<CommandResult> = {}) {}
  async run(_cmd: string, _args: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    const input = opts?.input;
    if (input !== undefined && typeof input !== 'string') for await (const c of input) this.chunks.push(c);
    return { stdout: '', stderr: '', exitCode: 0, durationMs: 1, ...this.result };
  }
}

describe('full sync restore in chunks', () => {
  it('the syncer hands the nat table over as chunks of about RESTORE_CHUNK_CHARS, the same bytes as one string', async () => {
    const state = bigCluster();
    const iptables = new HeadRecordingIptables();
    const syncer = new IptablesSyncer({
      families: [{ family: 'IPv4', iptables }],
      render: (s) => renderIptables(s, renderOptions),
      clock: new ManualClock(0),
      logger: new RecordingLogger(),
    });
    syncer.setState(state);
    await syncer.sync({ full: true });
    expect(iptables.heads).toHaveLength(1);
    const head = iptables.heads[0]!;
    expect(typeof head).not.toBe('string');
    const chunks = [...head];
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) {
      expect(c.endsWith('\n')).toBe(true);
      // A chunk is whole pieces (chain texts) up to the first that reaches the size.
      expect(c.length).toBeLessThan(RESTORE_CHUNK_CHARS + 64 * 1024);
    }
    const desired = renderIptables(state, renderOptions);
    expect(chunks.join('')).toBe(planFullRestoreStreamed(desired, null).head);
    // Made again on every read (nothing kept between reads), identical each time.
    expect([...head].join('')).toBe(chunks.join(''));
    // And the kernel holds what the one-shot full plan makes.
    const oneShot = new FakeIptables();
    await oneShot.restore(planIptablesRestore(desired, null, { full: true }).payload, { noflush: true });
    await oneShot.restore(builtinJumpsPayload(desired.builtinJumps), { noflush: true });
    expect(iptables.dump()).toBe(oneShot.dump());
  });

  it('RealIptables writes each chunk as it comes ("-S" after the first part\'s header only)', async () => {
    const runner = new ChunkRecordingRunner();
    const ipt = new RealIptables({ family: 'IPv4', backend: 'nft', runner });
    const head = ['*nat\n:A - [0:0]\n', '-A A -j RETURN\n', ':B - [0:0]\n'];
    await ipt.restoreStreamed(head, Promise.resolve('COMMIT\n*filter\nCOMMIT\n'), {
      noflush: true,
      listFirst: true,
    });
    expect(runner.chunks).toEqual([
      '*nat\n-S\n:A - [0:0]\n',
      '-A A -j RETURN\n',
      ':B - [0:0]\n',
      'COMMIT\n*filter\nCOMMIT\n',
    ]);
  });

  it("a failed chunked restore reports the whole payload and the caller's line number", async () => {
    const runner = new ChunkRecordingRunner({
      exitCode: 2,
      stderr: "iptables-restore v1.8.9 (nf_tables): Chain 'C' does not exist\nError occurred at line: 4\n",
    });
    const ipt = new RealIptables({ family: 'IPv4', backend: 'nft', runner });
    const err = await ipt
      .restoreStreamed(['*nat\n:A - [0:0]\n', '-A A -j C\n'], Promise.resolve('COMMIT\n'), {
        noflush: true,
        listFirst: true,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).line).toBe(3);
    expect((err as RestoreError).lineText).toBe('-A A -j C');
  });
});
