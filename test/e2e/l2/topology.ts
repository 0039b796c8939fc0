// A layer2 segment made of network namespaces: a switch namespace holding a bridge, and one namespace per
// host with eth0 attached to the bridge. Everything lives in namespaces this test creates; nothing is
// sent to any other address.
import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import { BUILD_NATIVE_COMMAND, nativeAddonPath } from '../../../src/l2/arp-socket.js';

export interface Host {
  name: string;
  netns: string;
  ip: string;
  /** The host's IPv6 address when the segment has an IPv6 prefix. */
  ip6?: string;
  mac: string;
}

export class Segment {
  readonly hosts = new Map<string, Host>();
  private readonly created: string[] = [];

  constructor(
    readonly prefix: string,
    readonly subnet: string, // e.g. "192.168.77" (a /24)
    readonly subnet6?: string, // e.g. "2001:db8:77" (a /64: hosts get <subnet6>::<octet>)
  ) {}

  get switchNs(): string {
    return `${this.prefix}-sw`;
  }

  async create(hosts: Array<{ name: string; octet: number }>): Promise<void> {
    await this.addNs(this.switchNs);
    await ip('-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', this.switchNs, 'link', 'set', 'br0', 'up');
    for (const [i, h] of hosts.entries()) {
      const netns = `${this.prefix}-${h.name}`;
      const mac = `02:00:00:00:${(i + 1).toString(16).padStart(2, '0')}:01`;
      const hostIp = `${this.subnet}.${h.octet}`;
      await this.addNs(netns);
      const tmp = `${this.prefix}${i}`;
      await ip(
        'link',
        'add',
        tmp,
        'netns',
        netns,
        'type',
        'veth',
        'peer',
        'name',
        `p${i}`,
        'netns',
        this.switchNs,
      );
      await ip('-n', netns, 'link', 'set', tmp, 'name', 'eth0');
      await ip('-n', netns, 'link', 'set', 'eth0', 'address', mac);
      await ip('-n', netns, 'addr', 'add', `${hostIp}/24`, 'dev', 'eth0');
      const hostIp6 = this.subnet6 === undefined ? undefined : `${this.subnet6}::${h.octet}`;
      // nodad: usable at once (no tentative second while duplicate address detection runs).
      if (hostIp6) await ip('-n', netns, 'addr', 'add', `${hostIp6}/64`, 'dev', 'eth0', 'nodad');
      await ip('-n', netns, 'link', 'set', 'eth0', 'up');
      await ip('-n', netns, 'link', 'set', 'lo', 'up');
      await ip('-n', this.switchNs, 'link', 'set', `p${i}`, 'master', 'br0');
      await ip('-n', this.switchNs, 'link', 'set', `p${i}`, 'up');
      this.hosts.set(h.name, { name: h.name, netns, ip: hostIp, ...(hostIp6 ? { ip6: hostIp6 } : {}), mac });
    }
  }

  host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name} in segment ${this.prefix}`);
    return h;
  }

  async destroy(): Promise<void> {
    for (const ns of this.created.reverse()) await execa('ip', ['netns', 'del', ns], { reject: false });
    this.created.length = 0;
  }

  private async addNs(name: string): Promise<void> {
    await execa('ip', ['netns', 'del', name], { reject: false });
    await execa('ip', ['netns', 'add', name]);
    this.created.push(name);
  }
}

async function ip(...args: string[]): Promise<void> {
  await execa('ip', args);
}

/** MAC in the neighbour table of `netns` for `addr`, or null. */
export async function neighbourMac(netns: string, addr: string): Promise<string | null> {
  const { stdout } = await execa('ip', ['-n', netns, 'neigh', 'show', addr, 'dev', 'eth0']);
  const m = /lladdr ([0-9a-f:]{17})/.exec(stdout);
  return m?.[1] ?? null;
}

export interface ArpingResult {
  transmitted: number;
  received: number;
  /** Replies beyond one per request: two nodes answering. */
  extra: number;
  /** Sender MAC of each reply, in order. */
  macs: string[];
}

/** arping (Thomas Habets' arping) from `netns`: `count` requests `intervalS` apart. */
export async function arping(
  netns: string,
  target: string,
  count: number,
  intervalS = 0.2,
): Promise<ArpingResult> {
  const { stdout } = await execa(
    'ip',
    ['netns', 'exec', netns, 'arping', '-i', 'eth0', '-c', String(count), '-W', String(intervalS), target],
    { reject: false },
  );
  const macs = [...stdout.matchAll(/bytes from ([0-9a-f:]{17})/g)].map((m) => m[1] as string);
  const summary = /(\d+) packets transmitted, (\d+) packets received.*?(?:\((\d+) extra\))?$/m.exec(stdout);
  if (!summary) throw new Error(`unexpected arping output:\n${stdout}`);
  return {
    transmitted: Number(summary[1]),
    received: Number(summary[2]),
    extra: Number(summary[3] ?? 0),
    macs,
  };
}

/** Fails clearly when the native ARP/NDP addon is not built (the l2 e2e tests need real packet sockets). */
export function requireNativeAddon(): void {
  if (!existsSync(nativeAddonPath()))
    throw new Error(`native ARP addon missing: run \`${BUILD_NATIVE_COMMAND}\``);
}

/** Append every non-empty line a process prints (its `all` stream: stdout and stderr) to `into`. */
export function collectLines(proc: { all?: Readable | undefined }, into: string[]): void {
  proc.all?.on('data', (chunk: Buffer) =>
    into.push(
      ...chunk
        .toString()
        .split('\n')
        .filter((l) => l !== ''),
    ),
  );
}
