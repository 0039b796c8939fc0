// Reading back a node's live ipvs-mode state: IPVS virtual and real servers (`ipvsadm -S -n`, through the
// same reader the rendered part is checked with), their connection counts (`ipvsadm -Ln`: graceful
// termination deletes a weight-0 real server once it has no active connections), the ipsets (`ipset
// save`) and the addresses bound on kube-ipvs0 (`ip -j addr show dev kube-ipvs0`). Pure parsers over the
// tools' text, and one thin reader behind an interface with an in-memory fake. Nothing here writes.
//
// What the kernel may hold is wider than what portway renders: a firewall-mark service (`-A -f 7`), or a
// scheduler portway does not know (`fo`, `ovf`, `twos`) set up by another tool. Those are kept apart as
// `foreign` lines instead of failing the whole read, so cleanup and doctor still work on such a node and
// can name them.
import { IPVS_SCHEDULERS } from '../config/config.js';
import { canonicalIP } from '../model/ip.js';
import {
  KUBE_IPVS_DUMMY_DEVICE,
  parseIpvsadmRules,
  splitHostPort,
  type IpvsProtocol,
  type ParsedIpvsTable,
  type ParsedVirtualServer,
} from '../render/ipvs/index.js';
import {
  CommandError,
  isCommandMissing,
  isNotFound,
  runChecked,
  runnerFor,
  type CommandRunner,
  type ExecutorRunOptions,
} from './exec.js';
import type { InterfaceAddress, IpLinks, Ipset, IpsetEntrySet } from './interfaces.js';
import { RealIpLinks } from './ip.js';
import { RealIpset } from './ipset.js';

// ── ipvsadm -S -n ───────────────────────────────────────────────────────────────────────────────

/** The kernel's virtual servers as `ipvsadm -S -n` prints them. */
export interface LiveIpvsTable {
  /** What portway's reader understands (the shape renderIpvs produces), in the kernel's order. */
  virtualServers: ParsedVirtualServer[];
  /**
   * `-A` lines of services portway never makes, kept verbatim (their `-a` lines dropped): firewall-mark
   * services and schedulers outside IPVS_SCHEDULERS. Another tool's business; reported, never parsed.
   */
  foreign: string[];
}

const KNOWN_SCHEDULERS = new Set<string>(IPVS_SCHEDULERS);

/** The service an ipvsadm rule line names ("-t 10.0.0.1:80" → "TCP 10.0.0.1:80"), "FWM 7", or null. */
function ruleServiceKey(words: string[]): string | null {
  for (let i = 0; i < words.length - 1; i++) {
    const w = words[i]!;
    if (w === '-t' || w === '--tcp-service') return `TCP ${words[i + 1]}`;
    if (w === '-u' || w === '--udp-service') return `UDP ${words[i + 1]}`;
    if (w === '--sctp-service') return `SCTP ${words[i + 1]}`;
    if (w === '-f' || w === '--fwmark-service') return `FWM ${words[i + 1]}`;
  }
  return null;
}

function schedulerOf(words: string[]): string | null {
  const i = words.findIndex((w) => w === '-s' || w === '--scheduler');
  return i >= 0 ? (words[i + 1] ?? null) : null;
}

/**
 * Parse `ipvsadm -S -n` output. Firewall-mark services and unknown schedulers go to `foreign`; anything
 * else that does not parse is an IpvsadmParseError naming the line (lines keep their numbers).
 */
export function parseLiveIpvsadmSave(text: string): LiveIpvsTable {
  const foreignKeys = new Set<string>();
  const foreign: string[] = [];
  const lines = text.split('\n');
  const kept = lines.map((raw) => {
    const words = raw.trim().split(/\s+/);
    if (words[0] !== '-A' && words[0] !== '-a') return raw;
    const key = ruleServiceKey(words);
    if (key === null) return raw; // the reader reports it
    if (words[0] === '-A') {
      const scheduler = schedulerOf(words);
      if (key.startsWith('FWM ') || (scheduler !== null && !KNOWN_SCHEDULERS.has(scheduler))) {
        foreignKeys.add(key);
        foreign.push(raw.trim());
        return '';
      }
    }
    return foreignKeys.has(key) ? '' : raw;
  });
  const table: ParsedIpvsTable = parseIpvsadmRules(kept.join('\n'));
  return { virtualServers: table.virtualServers, foreign };
}

// ── ipvsadm -Ln ─────────────────────────────────────────────────────────────────────────────────

/** How a real server is reached, as `ipvsadm -Ln` names it (Masq, Route, Tunnel, Local). */
export type IpvsForwarding = 'masquerade' | 'gatewaying' | 'ipip' | 'local';

export interface ListedRealServer {
  address: string;
  port: number;
  forwarding: IpvsForwarding;
  weight: number;
  /** Connections in ESTABLISHED (TCP) or any state IPVS counts as active. */
  activeConnections: number;
  /** Other connections still tracked (TIME_WAIT, FIN_WAIT, UDP entries …). */
  inactiveConnections: number;
}

export interface ListedVirtualServer {
  protocol: IpvsProtocol;
  address: string;
  port: number;
  /** As printed: any scheduler the kernel has, known to portway or not. */
  scheduler: string;
  flags: string[];
  persistenceTimeoutSeconds: number | null;
  realServers: ListedRealServer[];
}

export interface IpvsListing {
  virtualServers: ListedVirtualServer[];
  /** Firewall-mark services (`FWM 7 rr`): their marks. Their real servers are not listed here. */
  firewallMarks: number[];
}

/** A line of `ipvsadm -Ln` the parser cannot take, with its number (1-based) and text. */
export class IpvsadmListParseError extends Error {
  constructor(
    readonly line: number,
    readonly text: string,
    readonly detail: string,
  ) {
    super(`ipvsadm -Ln line ${line}: ${detail}: ${text}`);
    this.name = 'IpvsadmListParseError';
  }
}

const LIST_PROTOCOLS: Record<string, IpvsProtocol> = { TCP: 'TCP', UDP: 'UDP', SCTP: 'SCTP' };
const FORWARDING: Record<string, IpvsForwarding> = {
  Masq: 'masquerade',
  Route: 'gatewaying',
  Tunnel: 'ipip',
  Local: 'local',
};

function nonNegativeInt(text: string | undefined): number | null {
  if (text === undefined || !/^\d+$/.test(text)) return null;
  return Number(text);
}

/**
 * Parse `ipvsadm -Ln` (also with --stats' header absent: only the default listing is read). The three
 * header lines are skipped; a service line is `PROTO ADDR:PORT SCHED [(flags)] [persistent N [mask M]]
 * [pe NAME] [ops]`, a real server line `-> ADDR:PORT FORWARD WEIGHT ACTIVE INACTIVE`.
 */
export function parseIpvsadmList(text: string): IpvsListing {
  const virtualServers: ListedVirtualServer[] = [];
  const firewallMarks: number[] = [];
  let current: ListedVirtualServer | null = null;
  let inFirewallMark = false;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    const fail = (detail: string): never => {
      throw new IpvsadmListParseError(index + 1, raw, detail);
    };
    if (
      line === '' ||
      line.startsWith('IP Virtual Server version') ||
      line.startsWith('Prot LocalAddress') ||
      line.startsWith('-> RemoteAddress')
    )
      return;
    const words = line.split(/\s+/);
    if (words[0] === '->') {
      if (inFirewallMark) return;
      if (current === null) return fail('a real server before any virtual server');
      const server = splitHostPort(words[1] ?? '') ?? fail('a real server is host:port ([v6]:port)');
      const forwarding = FORWARDING[words[2] ?? ''] ?? fail(`unknown forwarding ${words[2] ?? ''}`);
      const [weight, active, inactive] = [words[3], words[4], words[5]].map(nonNegativeInt);
      if (weight === null || active === null || inactive === null || words.length !== 6)
        fail('expected weight, active and inactive connection counts');
      current.realServers.push({
        address: canonicalIP(server.address) ?? server.address,
        port: server.port,
        forwarding,
        weight: weight!,
        activeConnections: active!,
        inactiveConnections: inactive!,
      });
      return;
    }
    if (words[0] === 'FWM') {
      const mark = nonNegativeInt(words[1]) ?? fail('FWM takes a mark');
      firewallMarks.push(mark);
      inFirewallMark = true;
      current = null;
      return;
    }
    const protocol = LIST_PROTOCOLS[words[0] ?? ''] ?? fail(`unknown protocol ${words[0] ?? ''}`);
    const service = splitHostPort(words[1] ?? '') ?? fail('a service address is host:port ([v6]:port)');
    const scheduler = words[2] ?? fail('no scheduler');
    let flags: string[] = [];
    let persistence: number | null = null;
    for (let i = 3; i < words.length; i++) {
      const word = words[i]!;
      if (word.startsWith('(') && word.endsWith(')')) {
        flags = word.slice(1, -1).split(',').filter(Boolean).sort();
      } else if (word === 'persistent') {
        persistence = nonNegativeInt(words[++i]) ?? fail('persistent takes seconds');
      } else if (word === 'mask' || word === 'pe') {
        i++; // persistence netmask / persistence engine: not part of what portway programs or compares
      } else if (word !== 'ops') {
        fail(`unknown service option ${word}`);
      }
    }
    current = {
      protocol,
      address: canonicalIP(service.address) ?? service.address,
      port: service.port,
      scheduler,
      flags,
      persistenceTimeoutSeconds: persistence,
      realServers: [],
    };
    inFirewallMark = false;
    virtualServers.push(current);
  });
  return { virtualServers, firewallMarks };
}

/** "TCP 10.96.0.10:80" / "TCP [fd00::1]:80": one virtual server, as ipvsadm writes its address. */
export function virtualServerKey(vs: { protocol: IpvsProtocol; address: string; port: number }): string {
  const address = canonicalIP(vs.address) ?? vs.address;
  return `${vs.protocol} ${address.includes(':') ? `[${address}]` : address}:${vs.port}`;
}

/** "TCP 10.96.0.10:80 -> 10.244.1.11:8080": one real server of one virtual server. */
export function realServerKey(
  vs: { protocol: IpvsProtocol; address: string; port: number },
  rs: { address: string; port: number },
): string {
  const address = canonicalIP(rs.address) ?? rs.address;
  return `${virtualServerKey(vs)} -> ${address.includes(':') ? `[${address}]` : address}:${rs.port}`;
}

export interface ConnectionCounts {
  active: number;
  inactive: number;
}

/** realServerKey → its connection counts, for graceful termination. */
export function connectionCountsByRealServer(listing: IpvsListing): Map<string, ConnectionCounts> {
  const counts = new Map<string, ConnectionCounts>();
  for (const vs of listing.virtualServers) {
    for (const rs of vs.realServers) {
      counts.set(realServerKey(vs, rs), { active: rs.activeConnections, inactive: rs.inactiveConnections });
    }
  }
  return counts;
}

// ── kube-ipvs0 ──────────────────────────────────────────────────────────────────────────────────

export interface DummyLinkState {
  /** False when the link does not exist (a node never in ipvs mode, or cleaned up): not an error. */
  exists: boolean;
  addresses: InterfaceAddress[];
}

// ── the reader ──────────────────────────────────────────────────────────────────────────────────

export type IpvsAvailability = { available: true } | { available: false; reason: string };

/** Everything ipvs mode programs on a node, read back. */
export interface IpvsLiveState {
  ipvs: LiveIpvsTable;
  ipsets: IpsetEntrySet[];
  dummy: DummyLinkState;
}

export interface IpvsLiveReader {
  /** `ipvsadm -S -n`. */
  readVirtualServers(): Promise<LiveIpvsTable>;
  /** `ipvsadm -Ln`: every virtual server with its real servers' weights and connection counts. */
  readListing(): Promise<IpvsListing>;
  /** `ipset save`: every set of the namespace, portway's or not. */
  readIpsets(): Promise<IpsetEntrySet[]>;
  /** `ip -j addr show dev kube-ipvs0` (or another dummy name). */
  readDummyLink(name?: string): Promise<DummyLinkState>;
  /** Whether this kernel (this namespace) has IPVS, and why not. Never throws for "no". */
  checkIpvsAvailable(): Promise<IpvsAvailability>;
}

/** Read the three parts at once (independent commands, run in parallel). */
export async function readIpvsLiveState(
  reader: IpvsLiveReader,
  dummyName: string = KUBE_IPVS_DUMMY_DEVICE,
): Promise<IpvsLiveState> {
  const [ipvs, ipsets, dummy] = await Promise.all([
    reader.readVirtualServers(),
    reader.readIpsets(),
    reader.readDummyLink(dummyName),
  ]);
  return { ipvs, ipsets, dummy };
}

/** ipvsadm's words when the kernel has no IPVS (and modprobe could not load it). */
export function isIpvsUnavailable(err: unknown): boolean {
  return (
    err instanceof CommandError &&
    /Can't initialize ipvs|Protocol not available|IP Virtual Server is built/i.test(err.stderr)
  );
}

export interface IpvsLiveReaderOptions extends ExecutorRunOptions {
  /** Defaults: the real executors over the same runner. */
  ipset?: Ipset;
  ip?: IpLinks;
  timeoutMs?: number;
}

export class RealIpvsLiveReader implements IpvsLiveReader {
  private readonly runner: CommandRunner;
  private readonly ipset: Ipset;
  private readonly ip: IpLinks;
  private readonly timeoutMs: number;

  constructor(opts: IpvsLiveReaderOptions = {}) {
    this.runner = runnerFor(opts);
    this.ipset = opts.ipset ?? new RealIpset({ runner: this.runner });
    this.ip = opts.ip ?? new RealIpLinks({ runner: this.runner });
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  async readVirtualServers(): Promise<LiveIpvsTable> {
    // ipvsadm -S -n is what the ipvsadm-save script runs, without its bash.
    const res = await runChecked(this.runner, 'ipvsadm', ['-S', '-n'], { timeoutMs: this.timeoutMs });
    return parseLiveIpvsadmSave(res.stdout);
  }

  async readListing(): Promise<IpvsListing> {
    const res = await runChecked(this.runner, 'ipvsadm', ['-L', '-n'], { timeoutMs: this.timeoutMs });
    return parseIpvsadmList(res.stdout);
  }

  readIpsets(): Promise<IpsetEntrySet[]> {
    return this.ipset.list();
  }

  async readDummyLink(name: string = KUBE_IPVS_DUMMY_DEVICE): Promise<DummyLinkState> {
    return readDummyLink(this.ip, name);
  }

  async checkIpvsAvailable(): Promise<IpvsAvailability> {
    try {
      await runChecked(this.runner, 'ipvsadm', ['-L', '-n'], { timeoutMs: this.timeoutMs });
      return { available: true };
    } catch (err) {
      if (isCommandMissing(err)) return { available: false, reason: 'ipvsadm is not installed' };
      if (isIpvsUnavailable(err))
        return {
          available: false,
          reason: 'the kernel has no IPVS (ip_vs not built in, and modprobe ip_vs failed or is not allowed)',
        };
      if (err instanceof CommandError) return { available: false, reason: err.message };
      throw err;
    }
  }
}

/** A dummy link's addresses through the link executor; a missing link is `exists: false`, not an error. */
export async function readDummyLink(ip: IpLinks, name: string = KUBE_IPVS_DUMMY_DEVICE): Promise<DummyLinkState> {
  try {
    return { exists: true, addresses: await ip.listAddresses(name) };
  } catch (err) {
    if (isNotFound(err)) return { exists: false, addresses: [] };
    throw err;
  }
}

/**
 * In-memory reader for unit tests: a table of virtual servers (with connection counts) set by the test,
 * sets and links from the validating fakes it is given (so what a test's code wrote through them reads back).
 */
export class FakeIpvsLiveReader implements IpvsLiveReader {
  virtualServers: ParsedVirtualServer[] = [];
  foreign: string[] = [];
  firewallMarks: number[] = [];
  /** realServerKey → counts; a real server without an entry has none. */
  readonly connections = new Map<string, ConnectionCounts>();
  availability: IpvsAvailability = { available: true };

  constructor(
    private readonly ipset: Ipset,
    private readonly ip: IpLinks,
  ) {}

  async readVirtualServers(): Promise<LiveIpvsTable> {
    return { virtualServers: structuredClone(this.virtualServers), foreign: [...this.foreign] };
  }

  async readListing(): Promise<IpvsListing> {
    return {
      virtualServers: this.virtualServers.map((vs) => ({
        protocol: vs.protocol,
        address: vs.address,
        port: vs.port,
        scheduler: vs.scheduler,
        flags: [...vs.flags],
        persistenceTimeoutSeconds: vs.persistenceTimeoutSeconds,
        realServers: vs.realServers.map((rs) => {
          const counts = this.connections.get(realServerKey(vs, rs)) ?? { active: 0, inactive: 0 };
          return {
            address: rs.address,
            port: rs.port,
            forwarding: rs.forwarding,
            weight: rs.weight,
            activeConnections: counts.active,
            inactiveConnections: counts.inactive,
          };
        }),
      })),
      firewallMarks: [...this.firewallMarks],
    };
  }

  readIpsets(): Promise<IpsetEntrySet[]> {
    return this.ipset.list();
  }

  readDummyLink(name: string = KUBE_IPVS_DUMMY_DEVICE): Promise<DummyLinkState> {
    return readDummyLink(this.ip, name);
  }

  async checkIpvsAvailable(): Promise<IpvsAvailability> {
    return this.availability;
  }
}
