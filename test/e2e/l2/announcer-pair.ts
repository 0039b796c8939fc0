// Two nodes and a client on one bridge, each node running the real announcer process
// (src/l2/standalone-main.ts: allocation → election → member health → packet responder) for one VIP,
// IPv4 or IPv6. Shared by the ARP and NDP failover suites; the VIP's family decides the client's probe.
import { isIPv6 } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ResultPromise, execa } from 'execa';
import { rankNodes } from '../../../src/l2/election.js';
import { pollFor } from '../../fixtures/polling.js';
import { Segment, collectLines, requireNativeAddon } from './topology.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export class AnnouncerPair {
  readonly nodes = ['node-a', 'node-b'];
  /** The node that must own the VIP and the other (the same sha256 ranking every agent computes). */
  readonly owner: string;
  readonly standby: string;
  readonly segment: Segment;
  readonly announcers = new Map<string, { proc: ResultPromise; log: string[] }>();

  constructor(
    readonly vip: string,
    prefix: string,
    subnet: string,
    subnet6?: string,
  ) {
    [this.owner, this.standby] = rankNodes(vip, this.nodes) as [string, string];
    this.segment = new Segment(prefix, subnet, subnet6);
  }

  /** Fails loudly, never skips: these suites are the proof that layer2 works. */
  async create(): Promise<void> {
    requireNativeAddon();
    if (process.getuid?.() !== 0)
      throw new Error('the layer2 e2e suite needs root (network namespaces, AF_PACKET)');
    await this.segment.create([
      { name: 'node-a', octet: 11 },
      { name: 'node-b', octet: 12 },
      { name: 'client', octet: 50 },
    ]);
    for (const n of this.nodes) this.start(n);
  }

  async destroy(): Promise<void> {
    for (const n of [...this.announcers.keys()]) await this.stop(n, 'SIGKILL');
    await this.segment.destroy();
  }

  start(node: string): void {
    const h = this.segment.host(node);
    const peers = this.nodes.map((n) => `${n}=${this.segment.host(n).ip}`).join(',');
    const proc = execa(
      'ip',
      [
        'netns',
        'exec',
        h.netns,
        process.execPath,
        '--import',
        'tsx',
        'src/l2/standalone-main.ts',
        '--node',
        node,
        '--interface',
        'eth0',
        '--vip',
        this.vip,
        '--bind',
        h.ip,
        '--peers',
        peers,
        '--port',
        '7473',
      ],
      { cwd: ROOT, reject: false, buffer: false, all: true },
    );
    const log: string[] = [];
    collectLines(proc, log);
    this.announcers.set(node, { proc, log });
  }

  async stop(node: string, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const a = this.announcers.get(node);
    if (!a) return;
    a.proc.kill(signal);
    await a.proc;
    this.announcers.delete(node);
  }

  /** pollFor, failing with the tail of every announcer's log. */
  waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> {
    return pollFor(what, timeoutMs, probe, () =>
      [...this.announcers].map(([n, a]) => `--- ${n}\n${a.log.slice(-15).join('\n')}`).join('\n'),
    );
  }

  /** Make the client resolve the VIP through its kernel (a UDP datagram triggers ARP or a solicitation). */
  async touchVip(): Promise<void> {
    const to = isIPv6(this.vip) ? `UDP6:[${this.vip}]:9` : `UDP:${this.vip}:9`;
    await execa('ip', ['netns', 'exec', this.segment.host('client').netns, 'socat', '-u', 'STDIN', to], {
      input: 'x',
      reject: false,
    });
  }
}
