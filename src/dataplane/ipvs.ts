// IPVS executor: ipvsadm-save -n, ipvsadm -R (batched, without clearing the table) and ipvsadm -Ln of
// one virtual server; and a stateful fake that applies the same lines and rejects what the kernel
// rejects. Why ipvsadm and not netlink: docs/adr/0006-ipvs-executor.md.
import { isIP } from 'node:net';
import { canonicalIP } from '../model/ip.js';
import {
  CommandError,
  type CommandRunner,
  type ExecutorRunOptions,
  RestoreError,
  runChecked,
  runnerFor,
} from './exec.js';
import type { Ipvs, IpvsRealServerConnections, IpvsServiceRef } from './interfaces.js';
import { parseIpvsadmList } from './ipvs-live.js';

export interface IpvsOptions extends ExecutorRunOptions {
  timeoutMs?: number;
}

const SERVICE_FLAG: Record<IpvsServiceRef['protocol'], string> = {
  TCP: '-t',
  UDP: '-u',
  SCTP: '--sctp-service',
};

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export class RealIpvs implements Ipvs {
  private readonly runner: CommandRunner;
  private readonly timeoutMs: number;

  constructor(opts: IpvsOptions = {}) {
    this.runner = runnerFor(opts);
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  async save(): Promise<string> {
    // ipvsadm-save is a shell wrapper around this very command.
    const res = await runChecked(this.runner, 'ipvsadm', ['-S', '-n'], { timeoutMs: this.timeoutMs });
    return res.stdout;
  }

  async restore(payload: string): Promise<void> {
    if (payload.trim() === '') return;
    const args = ['-R'];
    const res = await this.runner.run('ipvsadm', args, { input: payload, timeoutMs: this.timeoutMs });
    // ipvsadm -R goes on past a failing line and may still exit 0 (seen for "Service already exists"
    // in the IPVS test VM): whatever it says on stderr is a failure. It names no line.
    if (res.exitCode !== 0 || res.stderr.trim() !== '') {
      throw new RestoreError({
        command: 'ipvsadm',
        args,
        exitCode: res.exitCode,
        stderr: res.stderr,
        durationMs: res.durationMs,
        payload,
        line: null,
      });
    }
  }

  async realServerConnections(service: IpvsServiceRef): Promise<IpvsRealServerConnections[] | null> {
    const args = ['-L', '-n', SERVICE_FLAG[service.protocol], hostPort(service.address, service.port)];
    const res = await this.runner.run('ipvsadm', args, { timeoutMs: this.timeoutMs });
    if (res.exitCode !== 0) {
      if (/No such service/.test(res.stderr)) return null;
      throw new CommandError({ command: 'ipvsadm', args, ...res });
    }
    // One virtual server listed: its real servers (the listing parser is ipvs-live's, shared).
    return parseIpvsadmList(res.stdout).virtualServers.flatMap((vs) =>
      vs.realServers.map(({ address, port, weight, activeConnections, inactiveConnections }) => ({
        address,
        port,
        weight,
        activeConnections,
        inactiveConnections,
      })),
    );
  }
}

export function createIpvs(opts: IpvsOptions = {}): Ipvs {
  return new RealIpvs(opts);
}

// ── fake ────────────────────────────────────────────────────────────────────────────────────────

interface FakeRealServer {
  weight: number;
  forwarding: string;
  activeConnections: number;
  inactiveConnections: number;
}

interface FakeVirtualServer {
  protocol: IpvsServiceRef['protocol'];
  address: string;
  port: number;
  scheduler: string;
  persistence: number | null;
  flags: string[];
  realServers: Map<string, FakeRealServer>;
}

const PROTOCOL_OF: Record<string, IpvsServiceRef['protocol']> = {
  '-t': 'TCP',
  '--tcp-service': 'TCP',
  '-u': 'UDP',
  '--udp-service': 'UDP',
  '--sctp-service': 'SCTP',
};

/**
 * The IPVS table in memory. restore() applies lines like `ipvsadm -R`: in order, going on past a
 * failing line, and reports the failures as the real tool does (on stderr, as a RestoreError): a
 * virtual server or real server added twice, edited or deleted when missing, a real server of a
 * missing virtual server, an address of the wrong form. Connection counts are set by tests.
 */
export class FakeIpvs implements Ipvs {
  readonly calls: Array<
    { op: 'save' } | { op: 'restore'; payload: string } | { op: 'connections'; service: string }
  > = [];
  private readonly table = new Map<string, FakeVirtualServer>();

  async save(): Promise<string> {
    this.calls.push({ op: 'save' });
    return this.saveText();
  }

  /** The table as ipvsadm-save -n prints it (-p before -b, as the real tool). */
  saveText(): string {
    const lines: string[] = [];
    for (const vs of this.table.values()) {
      const service = `${SERVICE_FLAG[vs.protocol]} ${hostPort(vs.address, vs.port)}`;
      let add = `-A ${service} -s ${vs.scheduler}`;
      if (vs.persistence !== null) add += ` -p ${vs.persistence}`;
      if (vs.flags.length > 0) add += ` -b ${vs.flags.join(',')}`;
      lines.push(add);
      for (const [key, rs] of vs.realServers)
        lines.push(`-a ${service} -r ${key} -${rs.forwarding} -w ${rs.weight}`);
    }
    return lines.map((l) => l + '\n').join('');
  }

  async restore(payload: string): Promise<void> {
    this.calls.push({ op: 'restore', payload });
    const errors: string[] = [];
    let firstLine: number | null = null;
    payload.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      try {
        this.applyLine(line.split(/\s+/));
      } catch (err) {
        errors.push((err as Error).message);
        firstLine ??= i + 1;
      }
    });
    if (errors.length > 0) {
      throw new RestoreError({
        command: 'ipvsadm',
        args: ['-R'],
        exitCode: 255,
        stderr: errors.join('\n') + '\n',
        durationMs: 0,
        payload,
        line: firstLine,
      });
    }
  }

  async realServerConnections(service: IpvsServiceRef): Promise<IpvsRealServerConnections[] | null> {
    this.calls.push({
      op: 'connections',
      service: serviceKey(service.protocol, service.address, service.port),
    });
    const vs = this.table.get(serviceKey(service.protocol, service.address, service.port));
    if (!vs) return null;
    return [...vs.realServers].map(([key, rs]) => {
      const { address, port } = splitHostPort(key);
      return {
        address,
        port,
        weight: rs.weight,
        activeConnections: rs.activeConnections,
        inactiveConnections: rs.inactiveConnections,
      };
    });
  }

  /** Test hook: connections the kernel would count on a real server. */
  setConnections(service: IpvsServiceRef, server: string, active: number, inactive = 0): void {
    const rs = this.table
      .get(serviceKey(service.protocol, service.address, service.port))
      ?.realServers.get(server);
    if (!rs)
      throw new Error(
        `fake ipvs: no real server ${server} of ${service.protocol} ${service.address}:${service.port}`,
      );
    rs.activeConnections = active;
    rs.inactiveConnections = inactive;
  }

  /** Virtual servers as "TCP 10.96.0.10:80" → "10.244.1.11:8080 w1" lines, for assertions. */
  dump(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const vs of this.table.values())
      out[`${vs.protocol} ${hostPort(vs.address, vs.port)}`] = [...vs.realServers]
        .map(([k, rs]) => `${k} w${rs.weight}`)
        .sort();
    return out;
  }

  private applyLine(words: string[]): void {
    const command = words[0];
    let protocol: IpvsServiceRef['protocol'] | undefined;
    let service: { address: string; port: number } | undefined;
    let server: string | undefined;
    let scheduler: string | undefined;
    let persistence: number | null = null;
    let flags: string[] = [];
    let weight: number | undefined;
    let forwarding = 'g';
    for (let i = 1; i < words.length; i++) {
      const w = words[i]!;
      const value = (): string => {
        const v = words[++i];
        if (v === undefined) throw new Error(`Option ${w} requires an argument`);
        return v;
      };
      if (PROTOCOL_OF[w]) {
        protocol = PROTOCOL_OF[w];
        service = splitHostPort(value());
      } else if (w === '-r') {
        const hp = splitHostPort(value());
        server = hostPort(hp.address, hp.port);
      } else if (w === '-s') scheduler = value();
      else if (w === '-p') persistence = Number(value());
      else if (w === '-b') flags = value().split(',');
      else if (w === '-w') {
        weight = Number(value());
        if (!Number.isInteger(weight) || weight < 0 || weight > 65535)
          throw new Error('Illegal weight specified');
      } else if (w === '-m') forwarding = 'm';
      else if (w === '-g') forwarding = 'g';
      else if (w === '-i') forwarding = 'i';
      else if (command === '--set') continue;
      else throw new Error(`unknown option ${w}`);
    }
    if (command === '--set' || command === '-C') {
      if (command === '-C') this.table.clear();
      return;
    }
    if (!protocol || !service) throw new Error('no service given');
    const key = serviceKey(protocol, service.address, service.port);
    const vs = this.table.get(key);
    switch (command) {
      case '-A':
        if (vs) throw new Error('Service already exists');
        this.table.set(key, {
          protocol,
          ...service,
          scheduler: scheduler ?? 'wlc',
          persistence,
          flags,
          realServers: new Map(),
        });
        return;
      case '-E':
        if (!vs) throw new Error('No such service');
        vs.scheduler = scheduler ?? 'wlc';
        vs.persistence = persistence;
        vs.flags = flags;
        return;
      case '-D':
        if (!vs) throw new Error('No such service');
        this.table.delete(key);
        return;
    }
    if (!vs) throw new Error('Service not defined');
    if (server === undefined) throw new Error('no real server given');
    const rs = vs.realServers.get(server);
    switch (command) {
      case '-a':
        if (rs) throw new Error('Destination already exists');
        vs.realServers.set(server, {
          weight: weight ?? 1,
          forwarding,
          activeConnections: 0,
          inactiveConnections: 0,
        });
        return;
      case '-e':
        if (!rs) throw new Error('No such destination');
        rs.weight = weight ?? 1;
        rs.forwarding = forwarding;
        return;
      case '-d':
        if (!rs) throw new Error('No such destination');
        vs.realServers.delete(server);
        return;
      default:
        throw new Error(`unknown command ${command ?? ''}`);
    }
  }
}

function serviceKey(protocol: string, address: string, port: number): string {
  return `${protocol} ${hostPort(address, port)}`;
}

function splitHostPort(text: string): { address: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  const raw = m?.[1] ?? m?.[2];
  const address = raw !== undefined && isIP(raw) !== 0 ? canonicalIP(raw) : null;
  const port = Number(m?.[3]);
  if (!m || address === null || port > 65535 || (m[1] !== undefined) !== address.includes(':'))
    throw new Error(`Illegal address or port: ${text}`);
  return { address, port };
}
