// Interfaces and addresses through iproute2 (`ip -j addr`, `ip addr add/del`, dummy links).
import type { IPFamily } from '../model/cluster-state.js';
import { canonicalIP, parseCIDR } from '../model/ip.js';
import { CommandError, type CommandRunner, type ExecutorRunOptions, RestoreError, runChecked, runnerFor } from './exec.js';
import type { InterfaceAddress, IpLinks, NetworkLink } from './interfaces.js';

interface IpJsonLink {
  ifname?: string;
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number; scope?: string }>;
}

/** Parse `ip -j addr show` output. */
export function parseIpAddrJson(json: string): InterfaceAddress[] {
  const links = JSON.parse(json || '[]') as IpJsonLink[];
  const out: InterfaceAddress[] = [];
  for (const link of links) {
    for (const a of link.addr_info ?? []) {
      if ((a.family !== 'inet' && a.family !== 'inet6') || !a.local || a.prefixlen === undefined || !link.ifname) continue;
      out.push({
        ifname: link.ifname,
        family: a.family === 'inet' ? 'IPv4' : 'IPv6',
        address: canonicalIP(a.local) ?? a.local,
        prefixLength: a.prefixlen,
        scope: a.scope ?? 'global',
      });
    }
  }
  return out;
}

interface IpJsonLinkDetail {
  ifindex?: number;
  ifname?: string;
  flags?: string[];
  master?: string;
  link_type?: string;
  linkinfo?: { info_kind?: string; info_slave_kind?: string };
}

/**
 * Parse `ip -j -d link show` output. Entries without a name or index are dropped; a document that is not
 * a JSON array is an error naming the command, since a half-read interface list would silently announce
 * on the wrong interfaces.
 */
export function parseIpLinkJson(json: string): NetworkLink[] {
  const parsed = JSON.parse(json.trim() === '' ? '[]' : json) as unknown;
  if (!Array.isArray(parsed)) throw new Error('ip -j -d link show: output is not a JSON array');
  const out: NetworkLink[] = [];
  for (const raw of parsed as IpJsonLinkDetail[]) {
    if (typeof raw?.ifname !== 'string' || typeof raw.ifindex !== 'number') continue;
    out.push({
      ifname: raw.ifname,
      ifindex: raw.ifindex,
      flags: Array.isArray(raw.flags) ? raw.flags.filter((f): f is string => typeof f === 'string') : [],
      master: typeof raw.master === 'string' ? raw.master : null,
      kind: typeof raw.linkinfo?.info_kind === 'string' ? raw.linkinfo.info_kind : null,
      slaveKind: typeof raw.linkinfo?.info_slave_kind === 'string' ? raw.linkinfo.info_slave_kind : null,
      linkType: typeof raw.link_type === 'string' ? raw.link_type : 'none',
    });
  }
  return out.sort((a, b) => a.ifindex - b.ifindex);
}

/** "10.0.0.1" → "10.0.0.1/32"; "10.0.0.1/24" kept (the host part matters for an interface address). */
export function interfaceCidr(cidr: string): { text: string; family: IPFamily } {
  const [addr = '', prefix] = cidr.split('/');
  const ip = canonicalIP(addr);
  const parsed = parseCIDR(cidr);
  if (ip === null || parsed === null) throw new Error(`address "${cidr}" is not an IP address or CIDR`);
  const bits = parsed.family === 'IPv4' ? 32 : 128;
  return { text: `${ip}/${prefix ?? bits}`, family: parsed.family };
}

/** A bare address as a host prefix (/32, /128): what kube-proxy binds on its dummy link, never a subnet route. */
function hostCidr(address: string): string {
  return address.includes('/') ? address : `${address}/${address.includes(':') ? 128 : 32}`;
}

/** `ip -batch` lines: the additions first, then the deletions. */
function addressBatchLines(ifname: string, changes: { add: readonly string[]; del: readonly string[] }): string[] {
  const line = (verb: 'add' | 'del', address: string): string => {
    const { text, family } = interfaceCidr(hostCidr(address));
    return `addr ${verb} ${text} dev ${ifname}${verb === 'add' && family === 'IPv6' ? ' nodad' : ''}`;
  };
  return [...changes.add.map((a) => line('add', a)), ...changes.del.map((a) => line('del', a))];
}

/**
 * The batch lines (1-based) that failed for a reason other than "already there" (an add) or "not
 * there" (a del). `ip -force -batch` prints the kernel's answer, then "Command failed -:N".
 */
export function fatalBatchFailures(stderr: string, lines: readonly string[]): number[] {
  const fatal: number[] = [];
  let said: string[] = [];
  for (const raw of stderr.split('\n')) {
    const m = /^Command failed (?:-|\S+):(\d+)/.exec(raw.trim());
    if (!m) {
      if (raw.trim() !== '') said.push(raw);
      continue;
    }
    const n = Number(m[1]);
    const text = said.join(' ');
    said = [];
    const verb = lines[n - 1]?.split(' ')[1];
    if (verb === 'add' && /File exists/.test(text)) continue;
    if (verb === 'del' && /Cannot assign requested address|Address not found/.test(text)) continue;
    fatal.push(n);
  }
  // A failure without a "Command failed" line (the tool itself could not run the batch).
  if (fatal.length === 0 && said.length > 0) fatal.push(1);
  return fatal;
}

function checkIfname(name: string): void {
  if (!/^[A-Za-z0-9_.\-@]{1,15}$/.test(name)) throw new Error(`interface name "${name}" is not valid (1-15 of [A-Za-z0-9_.-@])`);
}

export type IpLinksOptions = ExecutorRunOptions;

export class RealIpLinks implements IpLinks {
  private readonly runner: CommandRunner;

  constructor(opts: IpLinksOptions = {}) {
    this.runner = runnerFor(opts);
  }

  async listAddresses(ifname?: string): Promise<InterfaceAddress[]> {
    if (ifname !== undefined) checkIfname(ifname);
    const args = ['-j', 'addr', 'show', ...(ifname !== undefined ? ['dev', ifname] : [])];
    const res = await runChecked(this.runner, 'ip', args);
    return parseIpAddrJson(res.stdout);
  }

  async listLinks(): Promise<NetworkLink[]> {
    const res = await runChecked(this.runner, 'ip', ['-j', '-d', 'link', 'show']);
    return parseIpLinkJson(res.stdout);
  }

  async addAddress(ifname: string, cidr: string): Promise<void> {
    checkIfname(ifname);
    const { text, family } = interfaceCidr(cidr);
    // nodad: a service address on a dummy link must be usable at once, not after IPv6 DAD.
    const args = ['addr', 'add', text, 'dev', ifname, ...(family === 'IPv6' ? ['nodad'] : [])];
    const res = await this.runner.run('ip', args);
    if (res.exitCode === 0 || /File exists|already assigned/.test(res.stderr)) return;
    throw new CommandError({ command: 'ip', args, ...res });
  }

  async deleteAddress(ifname: string, cidr: string): Promise<boolean> {
    checkIfname(ifname);
    const args = ['addr', 'del', interfaceCidr(cidr).text, 'dev', ifname];
    const res = await this.runner.run('ip', args);
    if (res.exitCode === 0) return true;
    if (/Cannot assign requested address|Address not found|Cannot find device/.test(res.stderr)) return false;
    throw new CommandError({ command: 'ip', args, ...res });
  }

  async ensureDummyInterface(name: string, opts: { up?: boolean } = {}): Promise<void> {
    checkIfname(name);
    const args = ['link', 'add', name, 'type', 'dummy'];
    const res = await this.runner.run('ip', args);
    if (res.exitCode !== 0 && /Unknown device type/.test(res.stderr)) {
      throw new CommandError({ command: 'ip', args, ...res, context: 'this kernel has no dummy interface support (CONFIG_DUMMY)' });
    }
    if (res.exitCode !== 0 && !/File exists/.test(res.stderr)) throw new CommandError({ command: 'ip', args, ...res });
    if (opts.up) await runChecked(this.runner, 'ip', ['link', 'set', name, 'up']);
  }

  async applyAddressChanges(ifname: string, changes: { add: readonly string[]; del: readonly string[] }): Promise<void> {
    checkIfname(ifname);
    const lines = addressBatchLines(ifname, changes);
    if (lines.length === 0) return;
    // -force: go on past a failing line, so one address already there does not stop the others; each
    // failure is then reported as "Command failed -:N" after the kernel's answer.
    const args = ['-force', '-batch', '-'];
    const payload = lines.join('\n') + '\n';
    const res = await this.runner.run('ip', args, { input: payload });
    if (res.exitCode === 0) return;
    const fatal = fatalBatchFailures(res.stderr, lines);
    if (fatal.length === 0) return;
    throw new RestoreError({
      command: 'ip',
      args,
      ...res,
      payload,
      line: fatal[0]!,
      context: `binding addresses on ${ifname}`,
    });
  }

  async deleteInterface(name: string): Promise<boolean> {
    checkIfname(name);
    const args = ['link', 'del', name];
    const res = await this.runner.run('ip', args);
    if (res.exitCode === 0) return true;
    if (/Cannot find device/.test(res.stderr)) return false;
    throw new CommandError({ command: 'ip', args, ...res });
  }
}

export function createIpLinks(opts: IpLinksOptions = {}): IpLinks {
  return new RealIpLinks(opts);
}

/** Links and addresses in memory, with the real executor's validation and idempotence. */
export class FakeIpLinks implements IpLinks {
  readonly links = new Map<string, { up: boolean; dummy: boolean; addresses: InterfaceAddress[] }>();

  constructor(initial: Record<string, string[]> = {}) {
    for (const [ifname, cidrs] of Object.entries(initial)) {
      this.links.set(ifname, { up: true, dummy: false, addresses: [] });
      for (const c of cidrs) this.addSync(ifname, c);
    }
  }

  async listAddresses(ifname?: string): Promise<InterfaceAddress[]> {
    if (ifname !== undefined) {
      checkIfname(ifname);
      const link = this.links.get(ifname);
      if (!link) throw notFound('ip', ['-j', 'addr', 'show', 'dev', ifname], `Device "${ifname}" does not exist.`);
      return link.addresses.map((a) => ({ ...a }));
    }
    return [...this.links.values()].flatMap((l) => l.addresses.map((a) => ({ ...a })));
  }

  async addAddress(ifname: string, cidr: string): Promise<void> {
    checkIfname(ifname);
    this.addSync(ifname, cidr);
  }

  async deleteAddress(ifname: string, cidr: string): Promise<boolean> {
    checkIfname(ifname);
    const link = this.links.get(ifname);
    if (!link) return false;
    const { text } = interfaceCidr(cidr);
    const idx = link.addresses.findIndex((a) => `${a.address}/${a.prefixLength}` === text);
    if (idx < 0) return false;
    link.addresses.splice(idx, 1);
    return true;
  }

  async ensureDummyInterface(name: string, opts: { up?: boolean } = {}): Promise<void> {
    checkIfname(name);
    const link = this.links.get(name) ?? { up: false, dummy: true, addresses: [] };
    if (opts.up) link.up = true;
    this.links.set(name, link);
  }

  async deleteInterface(name: string): Promise<boolean> {
    checkIfname(name);
    return this.links.delete(name);
  }

  /** Counts batches, so tests can see that a sync binds its addresses in one command. */
  addressBatches = 0;

  async applyAddressChanges(ifname: string, changes: { add: readonly string[]; del: readonly string[] }): Promise<void> {
    checkIfname(ifname);
    const lines = addressBatchLines(ifname, changes);
    if (lines.length === 0) return;
    this.addressBatches++;
    if (!this.links.has(ifname)) {
      const payload = lines.join('\n') + '\n';
      throw new RestoreError({ command: 'ip', args: ['-force', '-batch', '-'], exitCode: 1, stderr: `Cannot find device "${ifname}"\nCommand failed -:1\n`, durationMs: 0, payload, line: 1 });
    }
    for (const c of changes.add) this.addSync(ifname, hostCidr(c));
    for (const c of changes.del) await this.deleteAddress(ifname, hostCidr(c));
  }

  /**
   * Link facts as `ip -j -d link` would give them: a dummy is NOARP like the kernel's; `linkFacts`
   * overrides or adds what a test needs (a bridge port, a down interface, loopback).
   */
  async listLinks(): Promise<NetworkLink[]> {
    const byName = new Map<string, NetworkLink>();
    let index = 1;
    for (const [ifname, l] of this.links) {
      byName.set(ifname, {
        ifname,
        ifindex: index++,
        flags: ['BROADCAST', 'MULTICAST', ...(l.dummy ? ['NOARP'] : []), ...(l.up ? ['UP', 'LOWER_UP'] : [])],
        master: null,
        kind: l.dummy ? 'dummy' : null,
        slaveKind: null,
        linkType: 'ether',
      });
    }
    for (const [ifname, facts] of this.linkFacts) {
      const base = byName.get(ifname) ?? {
        ifname,
        ifindex: 1000 + byName.size,
        flags: [],
        master: null,
        kind: null,
        slaveKind: null,
        linkType: 'ether',
      };
      byName.set(ifname, { ...base, ...facts, ifname });
    }
    return [...byName.values()].sort((a, b) => a.ifindex - b.ifindex).map((l) => ({ ...l, flags: [...l.flags] }));
  }

  /** Facts listLinks reports for `ifname` beyond what the address table knows. */
  readonly linkFacts = new Map<string, Partial<Omit<NetworkLink, 'ifname'>>>();

  private addSync(ifname: string, cidr: string): void {
    const link = this.links.get(ifname);
    if (!link) throw notFound('ip', ['addr', 'add', cidr, 'dev', ifname], `Cannot find device "${ifname}"`);
    const { text, family } = interfaceCidr(cidr);
    const [address = '', prefix = ''] = text.split('/');
    if (link.addresses.some((a) => a.address === address)) return;
    link.addresses.push({ ifname, family, address, prefixLength: Number(prefix), scope: 'global' });
  }
}

function notFound(command: string, args: string[], stderr: string): CommandError {
  return new CommandError({ command, args, exitCode: 1, stderr, durationMs: 0 });
}
