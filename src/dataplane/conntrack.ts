// Clearing stale conntrack entries (UDP flows to a service whose endpoint went away keep being sent
// to the dead endpoint until their entry is removed). conntrack-tools' CLI, like kube-proxy used.
import type { IPFamily } from '../model/cluster-state.js';
import { CommandError, type CommandRunner, type ExecutorRunOptions, runnerFor } from './exec.js';
import type { Conntrack, ConntrackEntry, ConntrackFilter } from './interfaces.js';
import { canonicalIP, ipFamilyOf } from '../model/ip.js';

/** Arguments of `conntrack -D` for a filter; throws when the filter selects nothing specific. */
export function conntrackDeleteArgs(filter: ConntrackFilter): string[] {
  const args = ['-D', '-f', filter.family === 'IPv4' ? 'ipv4' : 'ipv6', '-p', filter.protocol];
  const addr = (flag: string, value: string | undefined) => {
    if (value === undefined) return;
    if (ipFamilyOf(value) !== filter.family) {
      throw new Error(`conntrack filter ${flag} "${value}" is not an ${filter.family} address`);
    }
    args.push(flag, value);
  };
  const port = (flag: string, value: number | undefined) => {
    if (value === undefined) return;
    if (!Number.isInteger(value) || value < 1 || value > 65535) throw new Error(`conntrack filter ${flag} ${value} is not a port`);
    args.push(flag, String(value));
  };
  addr('--orig-dst', filter.origDst);
  port('--orig-port-dst', filter.origDstPort);
  addr('--reply-src', filter.replySrc);
  port('--reply-port-src', filter.replySrcPort);
  if (args.length === 5) throw new Error('conntrack filter needs at least one address or port (refusing to delete every flow)');
  return args;
}

/** "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted." → 3 */
export function parseDeletedCount(output: string): number | null {
  const m = /(\d+) flow entr(?:y|ies) ha(?:s|ve) been deleted/.exec(output);
  return m?.[1] ? Number(m[1]) : null;
}

/**
 * `conntrack -L` lines → entries: the first src=/dst=/sport=/dport= are the original direction, the
 * second ones the reply. Lines of another protocol or without ports are skipped.
 * "udp      17 29 src=10.0.0.1 dst=10.96.0.10 sport=40000 dport=53 [UNREPLIED] src=10.244.1.5 dst=10.0.0.1 sport=53 dport=40000 mark=0 use=1"
 */
export function parseConntrackList(output: string, family: IPFamily, protocol: ConntrackEntry['protocol']): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of output.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] !== protocol) continue;
    const seen: Record<string, string[]> = {};
    for (const w of words) {
      const eq = w.indexOf('=');
      if (eq <= 0) continue;
      (seen[w.slice(0, eq)] ??= []).push(w.slice(eq + 1));
    }
    const origDst = canonicalIP(seen['dst']?.[0] ?? '');
    const replySrc = canonicalIP(seen['src']?.[1] ?? '');
    const origDstPort = Number(seen['dport']?.[0] ?? NaN);
    const replySrcPort = Number(seen['sport']?.[1] ?? NaN);
    if (origDst === null || replySrc === null || !Number.isInteger(origDstPort) || !Number.isInteger(replySrcPort)) continue;
    if (ipFamilyOf(origDst) !== family || ipFamilyOf(replySrc) !== family) continue;
    out.push({ family, protocol, origDst, origDstPort, replySrc, replySrcPort });
  }
  return out;
}

export type ConntrackOptions = ExecutorRunOptions;

export class RealConntrack implements Conntrack {
  private readonly runner: CommandRunner;

  constructor(opts: ConntrackOptions = {}) {
    this.runner = runnerFor(opts);
  }

  async deleteEntries(filter: ConntrackFilter): Promise<number> {
    const args = conntrackDeleteArgs(filter);
    const res = await this.runner.run('conntrack', args, { timeoutMs: 60_000 });
    const count = parseDeletedCount(res.stderr + res.stdout);
    // conntrack exits 1 when nothing matched ("0 flow entries have been deleted"): not a failure.
    if (res.exitCode === 0 || (res.exitCode === 1 && count === 0)) return count ?? 0;
    throw new CommandError({ command: 'conntrack', args, ...res });
  }

  async listEntries(family: IPFamily, protocol: ConntrackEntry['protocol']): Promise<ConntrackEntry[]> {
    const args = ['-L', '-f', family === 'IPv4' ? 'ipv4' : 'ipv6', '-p', protocol];
    const res = await this.runner.run('conntrack', args, { timeoutMs: 60_000 });
    if (res.exitCode !== 0) throw new CommandError({ command: 'conntrack', args, ...res });
    return parseConntrackList(res.stdout, family, protocol);
  }
}

export function createConntrack(opts: ConntrackOptions = {}): Conntrack {
  return new RealConntrack(opts);
}

export type FakeFlow = ConntrackEntry;

/** A conntrack table in memory: deleteEntries removes the matching flows and records the filter. */
export class FakeConntrack implements Conntrack {
  readonly deletions: ConntrackFilter[] = [];

  constructor(public flows: FakeFlow[] = []) {}

  async deleteEntries(filter: ConntrackFilter): Promise<number> {
    conntrackDeleteArgs(filter); // same validation as the real one
    this.deletions.push(filter);
    const matches = (f: FakeFlow) =>
      f.family === filter.family &&
      f.protocol === filter.protocol &&
      (filter.origDst === undefined || f.origDst === filter.origDst) &&
      (filter.origDstPort === undefined || f.origDstPort === filter.origDstPort) &&
      (filter.replySrc === undefined || f.replySrc === filter.replySrc) &&
      (filter.replySrcPort === undefined || f.replySrcPort === filter.replySrcPort);
    const before = this.flows.length;
    this.flows = this.flows.filter((f) => !matches(f));
    return before - this.flows.length;
  }

  async listEntries(family: IPFamily, protocol: ConntrackEntry['protocol']): Promise<ConntrackEntry[]> {
    return this.flows.filter((f) => f.family === family && f.protocol === protocol).map((f) => ({ ...f }));
  }
}
