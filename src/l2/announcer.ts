// Layer2 announcement for this node: joins the allocation, the cluster state and member health into owner
// decisions (election.ts, pure) and drives one ARP responder per interface for IPv4 addresses and one NDP
// responder per interface for IPv6 ones (the effects). NDP sockets are opened only on an interface that
// has an IPv6 address to announce, so an IPv4-only cluster opens none. Recomputes on every input change;
// constructors start nothing (start()/stop()).
import type { ClusterState } from '../model/cluster-state.js';
import type { AllocationResult } from '../lb/allocator.js';
import {
  ArpResponder,
  DEFAULT_BURST,
  type GratuitousBurst,
  type Timers,
  realTimers,
} from './arp-responder.js';
import { type ArpSocketOpener, type NdpSocketOpener, openNdpSocket } from './arp-socket.js';
import { type OwnerDecision, collectAnnouncedAddresses, decideOwner } from './election.js';
import { NdpResponder } from './ndp-responder.js';
import { ipFamilyOf } from '../model/ip.js';

export interface L2AnnouncerOptions {
  nodeName: string;
  /** Interfaces this agent may announce on; an advertisement's interface list narrows it. */
  interfaces: string[];
  openSocket: ArpSocketOpener;
  /** Opens the NDP sockets for IPv6 addresses (default: the native addon's, openNdpSocket). */
  openNdpSocket?: NdpSocketOpener;
  /** Which agents are alive (member health). */
  aliveNodes: () => ReadonlySet<string>;
  timers?: Timers;
  burst?: GratuitousBurst;
  /**
   * After start, announce nothing for this long: peers need one probe round to see this agent alive and
   * hand over, otherwise a restarted owner and its stand-in would both answer for a moment.
   */
  startupHoldMs?: number;
  log?: (event: Record<string, unknown>) => void;
}

export type ClusterInputs = Pick<
  ClusterState,
  'services' | 'servicePorts' | 'nodes' | 'addressPools' | 'l2Advertisements'
>;

export class L2Announcer {
  private readonly responders = new Map<string, ArpResponder>();
  /** Interface → NDP responder, opened on the first IPv6 address owned there. */
  private readonly ndpResponders = new Map<string, NdpResponder>();
  /** Interface → the last NDP open error (logged when it changes). */
  private readonly ndpFailures = new Map<string, string>();
  private inputs: { state: ClusterInputs; allocation: AllocationResult } | null = null;
  private holding = true;
  private holdTimer: unknown = null;
  private started = false;
  /** Interfaces set by setInterfaces (null: only the constructor's). */
  private wanted: string[] | null = null;
  /** What an advertisement without interfaces means; null = every interface. */
  private defaults: string[] | null = null;
  /** The latest interface indexes given to setInterfaces (name → ifindex). */
  private linkIndexes: ReadonlyMap<string, number> = new Map();
  /** Interface → the index it had when its responders were opened (known only from setInterfaces). */
  private readonly openedIndexes = new Map<string, number>();
  private lastDecisions: OwnerDecision[] = [];
  private readonly timers: Timers;

  constructor(private readonly opts: L2AnnouncerOptions) {
    this.timers = opts.timers ?? realTimers;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    // The constructor's interfaces are required: failing to open one fails start (the caller decides).
    for (const ifname of this.opts.interfaces) {
      const responder = this.newResponder(ifname);
      responder.start();
      this.responders.set(ifname, responder);
    }
    if (this.wanted) this.openWanted();
    const hold = this.opts.startupHoldMs ?? 0;
    this.holding = hold > 0;
    if (this.holding) {
      this.holdTimer = this.timers.setTimeout(() => {
        this.holding = false;
        this.reconcile();
      }, hold);
    }
    this.reconcile();
  }

  /**
   * Change the interfaces announced on (e.g. when L2Advertisements change): responders of interfaces no
   * longer listed stop at once, new ones are opened (when started). `defaults` are the interfaces used for
   * a decision whose advertisements name none (every suitable interface, interface-choice.ts); without it
   * such a decision is announced on every open interface. Never throws: returns the interfaces that could not be
   * opened, with why; the others work, and a failed one is tried again on the next call. `ifindexes`
   * (name → index, from the same link read) lets an interface deleted and created again under the same
   * name be noticed: a packet socket stays bound to the old index and hears nothing, so its responders
   * are reopened.
   */
  setInterfaces(
    interfaces: string[],
    defaults?: string[],
    ifindexes?: ReadonlyMap<string, number>,
  ): Array<{ ifname: string; error: string }> {
    this.wanted = [...new Set(interfaces)].sort();
    this.defaults = defaults ? [...new Set(defaults)].sort() : null;
    if (ifindexes) this.linkIndexes = new Map(ifindexes);
    const failures = this.started ? this.openWanted() : [];
    this.reconcile();
    return failures;
  }

  private openWanted(): Array<{ ifname: string; error: string }> {
    const wanted = new Set([...this.opts.interfaces, ...(this.wanted ?? [])]);
    for (const [ifname, responder] of [...this.responders]) {
      const opened = this.openedIndexes.get(ifname);
      const now = this.linkIndexes.get(ifname);
      const recreated = opened !== undefined && now !== undefined && opened !== now;
      if (wanted.has(ifname) && !recreated) {
        if (opened === undefined && now !== undefined) this.openedIndexes.set(ifname, now);
        continue;
      }
      if (recreated)
        this.opts.log?.({
          msg: 'interface recreated, reopening',
          interface: ifname,
          was: opened,
          ifindex: now,
        });
      responder.stop();
      this.responders.delete(ifname);
      this.openedIndexes.delete(ifname);
      this.ndpResponders.get(ifname)?.stop();
      this.ndpResponders.delete(ifname);
      this.ndpFailures.delete(ifname);
    }
    const failures: Array<{ ifname: string; error: string }> = [];
    for (const ifname of wanted) {
      if (this.responders.has(ifname)) continue;
      const responder = this.newResponder(ifname);
      try {
        responder.start();
        this.responders.set(ifname, responder);
        const index = this.linkIndexes.get(ifname);
        if (index !== undefined) this.openedIndexes.set(ifname, index);
      } catch (e) {
        failures.push({ ifname, error: (e as Error).message });
      }
    }
    return failures;
  }

  private newResponder(ifname: string): ArpResponder {
    return new ArpResponder(ifname, this.opts.openSocket, this.timers, this.opts.burst ?? DEFAULT_BURST, {
      onGratuitous: (ip) => this.opts.log?.({ msg: 'gratuitous ARP', ip, interface: ifname }),
      onError: (err) => this.opts.log?.({ msg: 'ARP send failed', interface: ifname, error: err.message }),
    });
  }

  /** The NDP responder of `ifname`, opened now if needed; null (logged once per error) when it cannot be. */
  private ndpResponder(ifname: string): NdpResponder | null {
    const existing = this.ndpResponders.get(ifname);
    if (existing) return existing;
    const responder = new NdpResponder(
      ifname,
      this.opts.openNdpSocket ?? openNdpSocket,
      this.timers,
      this.opts.burst ?? DEFAULT_BURST,
      {
        onUnsolicited: (ip) => this.opts.log?.({ msg: 'unsolicited NA', ip, interface: ifname }),
        onError: (err) => this.opts.log?.({ msg: 'NDP send failed', interface: ifname, error: err.message }),
      },
    );
    try {
      responder.start();
    } catch (e) {
      const error = (e as Error).message;
      if (this.ndpFailures.get(ifname) !== error) {
        this.ndpFailures.set(ifname, error);
        this.opts.log?.({ msg: 'cannot open NDP socket', interface: ifname, error });
      }
      return null;
    }
    this.ndpFailures.delete(ifname);
    this.ndpResponders.set(ifname, responder);
    return responder;
  }

  stop(): void {
    if (this.holdTimer !== null) this.timers.clearTimeout(this.holdTimer);
    this.holdTimer = null;
    for (const r of this.responders.values()) r.stop();
    this.responders.clear();
    this.openedIndexes.clear();
    for (const r of this.ndpResponders.values()) r.stop();
    this.ndpResponders.clear();
    this.ndpFailures.clear();
    this.started = false;
  }

  /** New cluster state or allocation. */
  update(state: ClusterInputs, allocation: AllocationResult): void {
    this.inputs = { state, allocation };
    this.reconcile();
  }

  /** Member health changed. */
  membershipChanged(): void {
    this.reconcile();
  }

  /** The latest decision per address (for status, metrics, trace). */
  decisions(): OwnerDecision[] {
    return this.lastDecisions;
  }

  /** Addresses currently answered (ARP and NDP), per interface. */
  owned(): Record<string, string[]> {
    return Object.fromEntries(
      [...this.responders].map(([ifname, r]) => [
        ifname,
        [...r.ownedAddresses(), ...(this.ndpResponders.get(ifname)?.ownedAddresses() ?? [])],
      ]),
    );
  }

  private reconcile(): void {
    if (!this.inputs) {
      this.lastDecisions = [];
      return;
    }
    const { state, allocation } = this.inputs;
    const alive = this.opts.aliveNodes();
    const decisions = collectAnnouncedAddresses(state, allocation).map((addr) =>
      decideOwner(this.opts.nodeName, addr, {
        nodes: state.nodes,
        pools: state.addressPools,
        advertisements: state.l2Advertisements,
        aliveNodes: alive,
      }),
    );
    const changed = JSON.stringify(decisions) !== JSON.stringify(this.lastDecisions);
    this.lastDecisions = decisions;
    if (!this.started) return;
    const perInterface = new Map<string, string[]>([...this.responders.keys()].map((i) => [i, []]));
    if (!this.holding) {
      for (const d of decisions) {
        if (d.reason !== '') continue;
        const targets =
          this.defaults === null
            ? d.interfaces.length > 0
              ? d.interfaces
              : null
            : [...(d.namedInterfaces ?? d.interfaces), ...(d.defaultInterface ? this.defaults : [])];
        for (const ifname of this.responders.keys()) {
          if (targets === null || targets.includes(ifname)) perInterface.get(ifname)?.push(d.ip);
        }
      }
    }
    for (const [ifname, ips] of perInterface) {
      const v6 = ips.filter((ip) => ipFamilyOf(ip) === 'IPv6');
      this.responders.get(ifname)?.setOwned(ips.filter((ip) => ipFamilyOf(ip) !== 'IPv6'));
      // An interface without IPv6 addresses to announce keeps an open NDP socket quiet (no groups).
      const ndp = v6.length > 0 ? this.ndpResponder(ifname) : (this.ndpResponders.get(ifname) ?? null);
      ndp?.setOwned(v6);
    }
    if (changed) {
      this.opts.log?.({
        msg: 'layer2 decisions',
        holding: this.holding,
        alive: [...alive].sort(),
        decisions: decisions.map((d) => ({ ip: d.ip, owner: d.owner, reason: d.reason })),
      });
    }
  }
}
