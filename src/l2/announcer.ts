// Layer2 announcement for this node: joins the allocation, the cluster state and member health into owner
// decisions (election.ts, pure) and drives one ARP responder per interface (the effects). Recomputes on
// every input change; constructors start nothing (start()/stop()).
import type { ClusterState } from '../model/cluster-state.js';
import type { AllocationResult } from '../lb/allocator.js';
import {
  ArpResponder,
  DEFAULT_BURST,
  type GratuitousBurst,
  type Timers,
  realTimers,
} from './arp-responder.js';
import type { ArpSocketOpener } from './arp-socket.js';
import { type OwnerDecision, collectAnnouncedAddresses, decideOwner } from './election.js';

export interface L2AnnouncerOptions {
  nodeName: string;
  /** Interfaces this agent may announce on; an advertisement's interface list narrows it. */
  interfaces: string[];
  openSocket: ArpSocketOpener;
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
  private inputs: { state: ClusterInputs; allocation: AllocationResult } | null = null;
  private holding = true;
  private holdTimer: unknown = null;
  private started = false;
  /** Interfaces set by setInterfaces (null: only the constructor's). */
  private wanted: string[] | null = null;
  /** What an advertisement without interfaces means; null = every interface. */
  private defaults: string[] | null = null;
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
   * opened, with why; the others work, and a failed one is tried again on the next call.
   */
  setInterfaces(interfaces: string[], defaults?: string[]): Array<{ ifname: string; error: string }> {
    this.wanted = [...new Set(interfaces)].sort();
    this.defaults = defaults ? [...new Set(defaults)].sort() : null;
    const failures = this.started ? this.openWanted() : [];
    this.reconcile();
    return failures;
  }

  private openWanted(): Array<{ ifname: string; error: string }> {
    const wanted = new Set([...this.opts.interfaces, ...(this.wanted ?? [])]);
    for (const [ifname, responder] of [...this.responders]) {
      if (wanted.has(ifname)) continue;
      responder.stop();
      this.responders.delete(ifname);
    }
    const failures: Array<{ ifname: string; error: string }> = [];
    for (const ifname of wanted) {
      if (this.responders.has(ifname)) continue;
      const responder = this.newResponder(ifname);
      try {
        responder.start();
        this.responders.set(ifname, responder);
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

  stop(): void {
    if (this.holdTimer !== null) this.timers.clearTimeout(this.holdTimer);
    this.holdTimer = null;
    for (const r of this.responders.values()) r.stop();
    this.responders.clear();
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

  /** Addresses currently answered, per interface. */
  owned(): Record<string, string[]> {
    return Object.fromEntries([...this.responders].map(([ifname, r]) => [ifname, r.ownedAddresses()]));
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
    for (const [ifname, ips] of perInterface) this.responders.get(ifname)?.setOwned(ips);
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
