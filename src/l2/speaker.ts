// Layer2 inside the agent: member health (which agents are alive), the announcer (owner election + ARP
// responders) and the choice of interfaces from the L2Advertisements. Every cluster state change feeds
// update(); member health changes re-run the election. Constructors start nothing (start()/stop()).
import { readdir } from 'node:fs/promises';
import type { InterfaceAddress } from '../dataplane/interfaces.js';
import type { ClusterState, L2Advertisement, NodeInfo } from '../model/cluster-state.js';
import type { AllocationResult } from '../lb/allocator.js';
import { matchesAnySelector } from '../lb/label-selector.js';
import { ipFamilyOf } from '../model/ip.js';
import type { Logger } from '../observe/logger.js';
import { L2Announcer, type ClusterInputs } from './announcer.js';
import type { GratuitousBurst, Timers } from './arp-responder.js';
import { type ArpSocketOpener, openArpSocket } from './arp-socket.js';
import type { OwnerDecision } from './election.js';
import { MemberHealth, type Peer } from './member-health.js';

export interface InterfacePlan {
  /** Interfaces to open a responder on, sorted. */
  interfaces: string[];
  /** What an advertisement without interfaces means here: the interface holding the node IP (or none). */
  defaults: string[];
  /** One line per problem, naming the L2Advertisement and the field. */
  problems: string[];
}

function selectsNode(ad: L2Advertisement, node: NodeInfo | undefined): boolean {
  return ad.nodeSelectors.length === 0 || matchesAnySelector(ad.nodeSelectors, node?.labels ?? {});
}

/**
 * Which interfaces this node announces on. Pure. Only advertisements selecting this node count; an empty
 * interface list means the interface holding the node IP; a named interface that does not exist is a
 * problem naming the advertisement and field, and the others still work.
 */
export function planInterfaces(
  nodeName: string,
  state: Pick<ClusterState, 'nodes' | 'l2Advertisements'>,
  existing: ReadonlySet<string>,
  nodeIPInterface: string | null,
  nodeIPs: readonly string[],
): InterfacePlan {
  const me = state.nodes.find((n) => n.name === nodeName);
  const interfaces = new Set<string>();
  const problems: string[] = [];
  let usesDefault = false;
  const ads = [...state.l2Advertisements].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const ad of ads) {
    if (!selectsNode(ad, me)) continue;
    if (ad.interfaces.length === 0) {
      usesDefault = true;
      if (nodeIPInterface === null) {
        problems.push(
          `L2Advertisement ${ad.name}: spec.interfaces is empty and no interface on node ${nodeName} holds the node IP (${nodeIPs.join(', ') || 'none known'}); name the interfaces`,
        );
      }
      continue;
    }
    ad.interfaces.forEach((ifname, i) => {
      if (existing.has(ifname)) interfaces.add(ifname);
      else
        problems.push(
          `L2Advertisement ${ad.name}: spec.interfaces[${i}]: interface "${ifname}" does not exist on node ${nodeName}`,
        );
    });
  }
  const defaults = usesDefault && nodeIPInterface !== null ? [nodeIPInterface] : [];
  for (const d of defaults) interfaces.add(d);
  return { interfaces: [...interfaces].sort(), defaults, problems };
}

/** The interface holding the first IPv4 node IP (ARP is IPv4), else the first node IP; null if none does. */
export function interfaceOfNodeIP(
  addresses: readonly Pick<InterfaceAddress, 'ifname' | 'address'>[],
  nodeIPs: readonly string[],
): string | null {
  const ordered = [
    ...nodeIPs.filter((ip) => ipFamilyOf(ip) === 'IPv4'),
    ...nodeIPs.filter((ip) => ipFamilyOf(ip) !== 'IPv4'),
  ];
  for (const ip of ordered) {
    const hit = addresses.find((a) => a.address === ip);
    if (hit) return hit.ifname;
  }
  return null;
}

/** Peers for member health: every other node with an address (IPv4 first). */
export function peersOf(nodes: readonly NodeInfo[], self: string): Peer[] {
  const peers: Peer[] = [];
  for (const n of nodes) {
    if (n.name === self) continue;
    const address = n.addresses.find((a) => ipFamilyOf(a) === 'IPv4') ?? n.addresses[0];
    if (address !== undefined) peers.push({ name: n.name, address });
  }
  return peers.sort((a, b) => (a.name < b.name ? -1 : 1));
}

export interface L2SpeakerOptions {
  nodeName: string;
  nodeIPs: string[];
  logger: Logger;
  memberPort: number;
  memberBindAddress?: string;
  memberProbeIntervalMs?: number;
  memberProbeTimeoutMs?: number;
  memberDownAfterMs?: number;
  startupHoldMs?: number;
  // Injection points (habit 12).
  openSocket?: ArpSocketOpener;
  /** Names of this network namespace's interfaces. Default: /sys/class/net. */
  listInterfaces?: () => Promise<string[]>;
  /** Addresses of this namespace's interfaces (to find the one holding the node IP). */
  listAddresses: () => Promise<Pick<InterfaceAddress, 'ifname' | 'address'>[]>;
  timers?: Timers;
  burst?: GratuitousBurst;
  now?: () => number;
  probe?: (peer: Peer, port: number, timeoutMs: number) => Promise<boolean>;
}

export async function listSysInterfaces(root = '/sys/class/net'): Promise<string[]> {
  return (await readdir(root)).sort();
}

export class L2Speaker {
  private readonly health: MemberHealth;
  private readonly announcer: L2Announcer;
  private queue: Promise<void> = Promise.resolve();
  private lastProblems = '';
  private started = false;

  constructor(private readonly opts: L2SpeakerOptions) {
    const log = opts.logger;
    this.announcer = new L2Announcer({
      nodeName: opts.nodeName,
      interfaces: [],
      openSocket: opts.openSocket ?? openArpSocket,
      aliveNodes: () => this.health.aliveNodes(),
      ...(opts.timers ? { timers: opts.timers } : {}),
      ...(opts.burst ? { burst: opts.burst } : {}),
      startupHoldMs: opts.startupHoldMs ?? 0,
      log: (event) => {
        const { msg, ...fields } = event as { msg?: string };
        if (msg === 'gratuitous ARP') log.debug(fields, msg);
        else if (msg === 'ARP send failed') log.warn(fields, msg);
        else log.info(fields, `layer2: ${msg ?? 'event'}`);
      },
    });
    this.health = new MemberHealth({
      self: opts.nodeName,
      bindAddress: opts.memberBindAddress ?? '',
      port: opts.memberPort,
      ...(opts.memberProbeIntervalMs !== undefined ? { intervalMs: opts.memberProbeIntervalMs } : {}),
      ...(opts.memberProbeTimeoutMs !== undefined ? { timeoutMs: opts.memberProbeTimeoutMs } : {}),
      ...(opts.memberDownAfterMs !== undefined ? { downAfterMs: opts.memberDownAfterMs } : {}),
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.timers ? { timers: opts.timers } : {}),
      ...(opts.probe ? { probe: opts.probe } : {}),
      onChange: (alive) => {
        log.info({ alive: [...alive].sort() }, 'layer2: alive agents changed');
        this.announcer.membershipChanged();
      },
    });
  }

  /** Serve member health and open nothing yet (interfaces come with the first update). Throws when the port is taken. */
  async start(): Promise<void> {
    if (this.started) return;
    await this.health.start();
    this.announcer.start();
    this.started = true;
  }

  async stop(): Promise<void> {
    await this.queue;
    this.announcer.stop();
    await this.health.stop();
    this.started = false;
  }

  /** New cluster state and allocation; resolves when the interfaces and owners are in place. Never rejects. */
  update(state: ClusterInputs, allocation: AllocationResult): Promise<void> {
    this.queue = this.queue
      .then(() => this.apply(state, allocation))
      .catch((e: unknown) => {
        this.opts.logger.error({ err: (e as Error).message }, 'layer2: update failed');
      });
    return this.queue;
  }

  /** Resolves when every queued update has been applied. */
  idle(): Promise<void> {
    return this.queue;
  }

  decisions(): OwnerDecision[] {
    return this.announcer.decisions();
  }

  owned(): Record<string, string[]> {
    return this.announcer.owned();
  }

  aliveNodes(): ReadonlySet<string> {
    return this.health.aliveNodes();
  }

  private async apply(state: ClusterInputs, allocation: AllocationResult): Promise<void> {
    const { nodeName, nodeIPs, logger } = this.opts;
    this.health.setPeers(peersOf(state.nodes, nodeName));
    const [existing, addresses] = await Promise.all([
      (this.opts.listInterfaces ?? listSysInterfaces)(),
      this.opts.listAddresses(),
    ]);
    const plan = planInterfaces(
      nodeName,
      state,
      new Set(existing),
      interfaceOfNodeIP(addresses, nodeIPs),
      nodeIPs,
    );
    const failures = this.announcer.setInterfaces(plan.interfaces, plan.defaults);
    const problems = [...plan.problems];
    if (!state.nodes.some((n) => n.name === nodeName) && state.l2Advertisements.length > 0) {
      problems.push(
        `node ${nodeName} is not among the Node objects: it is not eligible to announce any address`,
      );
    }
    for (const f of failures) {
      const users = state.l2Advertisements
        .filter(
          (ad) =>
            ad.interfaces.includes(f.ifname) ||
            (ad.interfaces.length === 0 && plan.defaults.includes(f.ifname)),
        )
        .map((ad) => ad.name);
      problems.push(
        `L2Advertisement ${users.join(', ') || '?'}: cannot announce on interface "${f.ifname}": ${f.error}`,
      );
    }
    this.report(problems);
    this.announcer.update(state, allocation);
    logger.debug({ owned: this.announcer.owned() }, 'layer2: updated');
  }

  /** Log problems when they change (not on every update). */
  private report(problems: string[]): void {
    const key = problems.join('\n');
    if (key === this.lastProblems) return;
    this.lastProblems = key;
    for (const p of problems) this.opts.logger.error({}, p);
  }
}
