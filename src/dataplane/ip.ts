// Interfaces and addresses through iproute2 (`ip -j addr`, `ip addr add/del`, dummy links).
import type { IPFamily } from '../model/cluster-state.js';
import { canonicalIP, parseCIDR } from '../model/ip.js';
import { CommandError, type CommandRunner, type ExecutorRunOptions, runChecked, runnerFor } from './exec.js';
import type { InterfaceAddress, IpLinks } from './interfaces.js';

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

/** "10.0.0.1" → "10.0.0.1/32"; "10.0.0.1/24" kept (the host part matters for an interface address). */
export function interfaceCidr(cidr: string): { text: string; family: IPFamily } {
  const [addr = '', prefix] = cidr.split('/');
  const ip = canonicalIP(addr);
  const parsed = parseCIDR(cidr);
  if (ip === null || parsed === null) throw new Error(`address "${cidr}" is not an IP address or CIDR`);
  const bits = parsed.family === 'IPv4' ? 32 : 128;
  return { text: `${ip}/${prefix ?? bits}`, family: parsed.family };
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
