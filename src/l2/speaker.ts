// Layer2 inside the agent: member health (which agents are alive), the announcer (owner election + ARP
// responders) and the choice of interfaces from the L2Advertisements. Every cluster state change feeds
// update(); member health changes re-run the election. Constructors start nothing (start()/stop()).
import type { NetworkLink } from '../dataplane/interfaces.js';
import { RealIpLinks } from '../dataplane/ip.js';
import type { ClusterState, L2Advertisement, NodeInfo } from '../model/cluster-state.js';
import type { AllocationResult } from '../lb/allocator.js';
import { matchesAnySelector } from '../lb/label-selector.js';
import { ipFamilyOf } from '../model/ip.js';
import type { Logger } from '../observe/logger.js';
import { L2Announcer, type ClusterInputs } from './announcer.js';
import { type GratuitousBurst, type Timers, realTimers } from './arp-responder.js';
import { type ArpSocketOpener, type NdpSocketOpener, openArpSocket, openNdpSocket } from './arp-socket.js';
import type { OwnerDecision } from './election.js';
import {
  DEFAULT_EXCLUDED_INTERFACES,
  type InterfaceVerdict,
  chooseAnnounceInterfaces,
  compileInterfaceExclusion,
  describeSkipped,
} from './interface-choice.js';
import { MemberHealth, type Peer } from './member-health.js';

export interface InterfacePlan {
  /** Interfaces to open a responder on, sorted. */
  interfaces: string[];
  /**
   * What an advertisement without interfaces means here: every suitable interface, as MetalLB's speaker
   * chooses them (interface-choice.ts). Empty when no advertisement selecting this node leaves them out.
   */
  defaults: string[];
  /** One line per problem, naming the L2Advertisement and the field. */
  problems: string[];
  /** Every interface and why it is or is not a default one (for logs, doctor). */
  verdicts: InterfaceVerdict[];
}

function selectsNode(ad: L2Advertisement, node: NodeInfo | undefined): boolean {
  return ad.nodeSelectors.length === 0 || matchesAnySelector(ad.nodeSelectors, node?.labels ?? {});
}

/**
 * Which interfaces this node announces on. Pure. Only advertisements selecting this node count. An empty
 * interface list means every suitable interface (up, broadcast-capable, ARP on, not enslaved to a bridge
 * or bond, not excluded), as in MetalLB; a named interface is used when it exists, whatever its state
 * (unchanged portway behaviour), and one that does not exist is a problem naming the advertisement and
 * field while the others still work.
 */
export function planInterfaces(
  nodeName: string,
  state: Pick<ClusterState, 'nodes' | 'l2Advertisements'>,
  links: readonly NetworkLink[],
  exclude: RegExp | null,
): InterfacePlan {
  const me = state.nodes.find((n) => n.name === nodeName);
  const existing = new Set(links.map((l) => l.ifname));
  const choice = chooseAnnounceInterfaces(links, exclude);
  const interfaces = new Set<string>();
  const problems: string[] = [];
  let usesDefault = false;
  const ads = [...state.l2Advertisements].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const ad of ads) {
    if (!selectsNode(ad, me)) continue;
    if (ad.interfaces.length === 0) {
      usesDefault = true;
      if (choice.suitable.length === 0) {
        const skipped = describeSkipped(choice.verdicts);
        problems.push(
          `L2Advertisement ${ad.name}: spec.interfaces is empty and node ${nodeName} has no interface suitable for ARP ` +
            `(up, broadcast, ARP on, not a bridge port or bond slave, not excluded)` +
            `${skipped ? `: ${skipped}` : ''}; name the interfaces`,
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
  const defaults = usesDefault ? choice.suitable : [];
  for (const d of defaults) interfaces.add(d);
  return { interfaces: [...interfaces].sort(), defaults, problems, verdicts: choice.verdicts };
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
  /** Opens NDP sockets (IPv6 addresses); default the native addon's. */
  openNdpSocket?: NdpSocketOpener;
  /**
   * This namespace's interfaces with flags, master and kind, read once per update. Default:
   * `ip -j -d link show` (RealIpLinks.listLinks).
   */
  listLinks?: () => Promise<NetworkLink[]>;
  /**
   * Interface names never announced on by default, as regexps joined like MetalLB's
   * announcedInterfacesToExclude. Default: the list MetalLB's manifests ship (DEFAULT_EXCLUDED_INTERFACES);
   * [] excludes nothing. A bad pattern makes the constructor throw, naming it.
   */
  excludeInterfaces?: readonly string[];
  timers?: Timers;
  /**
   * Re-read the links this often even without a cluster change, so an interface that comes up, goes
   * down or is enslaved is followed (MetalLB rescans every 10 s). Default 10000; 0 disables.
   */
  linkRefreshMs?: number;
  burst?: GratuitousBurst;
  now?: () => number;
  probe?: (peer: Peer, port: number, timeoutMs: number) => Promise<boolean>;
}

export class L2Speaker {
  private readonly health: MemberHealth;
  private readonly announcer: L2Announcer;
  private queue: Promise<void> = Promise.resolve();
  private lastProblems = '';
  private lastDefaults = '';
  private lastInputs: { state: ClusterInputs; allocation: AllocationResult } | null = null;
  private refreshTimer: unknown = null;
  private started = false;
  /** Counts stop() calls, so a start() that a stop() overtook does not start anything afterwards. */
  private stops = 0;
  private readonly exclude: RegExp | null;

  constructor(private readonly opts: L2SpeakerOptions) {
    const log = opts.logger;
    this.exclude = compileInterfaceExclusion(opts.excludeInterfaces ?? DEFAULT_EXCLUDED_INTERFACES);
    this.announcer = new L2Announcer({
      nodeName: opts.nodeName,
      interfaces: [],
      openSocket: opts.openSocket ?? openArpSocket,
      openNdpSocket: opts.openNdpSocket ?? openNdpSocket,
      aliveNodes: () => this.health.aliveNodes(),
      ...(opts.timers ? { timers: opts.timers } : {}),
      ...(opts.burst ? { burst: opts.burst } : {}),
      startupHoldMs: opts.startupHoldMs ?? 0,
      log: (event) => {
        const { msg, ...fields } = event as { msg?: string };
        if (msg === 'gratuitous ARP' || msg === 'unsolicited NA') log.debug(fields, msg);
        else if (msg === 'ARP send failed' || msg === 'NDP send failed') log.warn(fields, msg);
        else if (msg === 'cannot open NDP socket') log.error(fields, `layer2: ${msg}`);
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
    const stops = this.stops;
    await this.health.start();
    if (stops !== this.stops) return; // stop() was called while member health was starting
    this.announcer.start();
    this.started = true;
    this.scheduleLinkRefresh();
  }

  async stop(): Promise<void> {
    this.started = false;
    this.stops++;
    if (this.refreshTimer !== null) (this.opts.timers ?? realTimers).clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    await this.queue;
    this.announcer.stop();
    await this.health.stop();
  }

  /** New cluster state and allocation; resolves when the interfaces and owners are in place. Never rejects. */
  update(state: ClusterInputs, allocation: AllocationResult): Promise<void> {
    this.lastInputs = { state, allocation };
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
    const { nodeName, logger } = this.opts;
    this.health.setPeers(peersOf(state.nodes, nodeName));
    const links = await this.readLinks();
    const plan = planInterfaces(nodeName, state, links, this.exclude);
    this.reportDefaults(plan);
    const failures = this.announcer.setInterfaces(
      plan.interfaces,
      plan.defaults,
      new Map(links.map((l) => [l.ifname, l.ifindex])),
    );
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

  private scheduleLinkRefresh(): void {
    const every = this.opts.linkRefreshMs ?? 10_000;
    if (every <= 0 || !this.started) return;
    this.refreshTimer = (this.opts.timers ?? realTimers).setTimeout(() => {
      this.refreshTimer = null;
      if (!this.started) return;
      const last = this.lastInputs;
      const done = last ? this.update(last.state, last.allocation) : Promise.resolve();
      void done.then(() => this.scheduleLinkRefresh());
    }, every);
  }

  private async readLinks(): Promise<NetworkLink[]> {
    if (this.opts.listLinks) return this.opts.listLinks();
    return new RealIpLinks().listLinks();
  }

  /** Log the default interfaces and why the others are skipped, when that changes. */
  private reportDefaults(plan: InterfacePlan): void {
    if (plan.defaults.length === 0) return;
    const skipped = describeSkipped(plan.verdicts);
    const key = `${plan.defaults.join(',')}|${skipped}`;
    if (key === this.lastDefaults) return;
    this.lastDefaults = key;
    this.opts.logger.info({ interfaces: plan.defaults, skipped }, 'layer2: default announce interfaces');
  }

  /** Log problems when they change (not on every update). */
  private report(problems: string[]): void {
    const key = problems.join('\n');
    if (key === this.lastProblems) return;
    this.lastProblems = key;
    for (const p of problems) this.opts.logger.error({}, p);
  }
}
