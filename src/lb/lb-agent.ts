// The LoadBalancer part of `portway run`: allocation applied to every new cluster state (so the rendered
// rules use the allocated ingress IPs), layer2 announcement of the addresses this node owns, and the
// strictARP sysctls. run.ts creates one, feeds it every state through process() and start()s/stop()s it.
import type { Config } from '../config/config.js';
import type { NetworkLink, Sysctl } from '../dataplane/interfaces.js';
import { createSysctl } from '../dataplane/sysctl.js';
import type { ClusterState } from '../model/cluster-state.js';
import type { Logger } from '../observe/logger.js';
import { L2Speaker, type L2SpeakerOptions } from '../l2/speaker.js';
import { ensureStrictArp, strictArpWanted } from '../l2/strict-arp.js';
import type { SysctlJournal } from '../sync/sysctls.js';
import type { AllocationResult } from './allocator.js';
import { LoadBalancerController } from './lb-controller.js';

export interface LoadBalancerAgentOptions {
  config: Pick<Config, 'mode' | 'ipvs' | 'loadBalancer'>;
  nodeName: string;
  nodeIPs: string[];
  logger: Logger;
  // Injection points for tests (habit 12).
  sysctl?: Sysctl;
  /** Where the strictARP sysctls' values before portway are recorded, so `portway cleanup` restores them. */
  sysctlJournal?: SysctlJournal;
  /** This namespace's links for the layer2 interface choice. Default: `ip -j -d link show`. */
  listLinks?: () => Promise<NetworkLink[]>;
  /** Overrides for the layer2 speaker (fake sockets, timers, probes). */
  speaker?: Partial<L2SpeakerOptions>;
  /** Cluster mode: writes status.loadBalancer.ingress and Events while this node holds the Lease. */
  statusWriter?: AllocationStatusWriter;
  /** Cluster mode with ingress.classes: writes Ingress status and backend Events while it holds its Lease. */
  ingressWriter?: IngressWriterHook;
}

/** ── Ingress writer hook (src/ingress/status-writer.ts): fed the state with the allocation applied ── */
export interface IngressWriterHook {
  update(state: ClusterState): void;
  start(): void;
  stop(): Promise<void>;
}

/** ── status writer hook (src/lb/status-writer.ts): what the agent needs of it ── */
export interface AllocationStatusWriter {
  /** The Services as read (their current status) and the allocation computed from them. */
  update(services: ClusterState['services'], allocation: AllocationResult): void;
  start(): void;
  stop(): Promise<void>;
}

export class LoadBalancerAgent {
  private readonly controller: LoadBalancerController;
  private speaker: L2Speaker | null = null;
  private last: { state: ClusterState; allocation: AllocationResult } | null = null;
  private running = false;
  private starting: Promise<void> | null = null;

  constructor(private readonly opts: LoadBalancerAgentOptions) {
    const lb = opts.config.loadBalancer;
    this.controller = new LoadBalancerController({
      enabled: lb.enabled,
      loadBalancerClass: lb.loadBalancerClass,
      logger: opts.logger,
    });
  }

  /** Allocate and apply: returns the state to render. Feeds the layer2 speaker when it runs. Synchronous. */
  process(state: ClusterState): ClusterState {
    const decision = this.controller.process(state);
    const allocation = decision.allocation ?? { assignments: new Map(), reasons: new Map(), problems: [] };
    this.last = { state: decision.state, allocation };
    // Status hook: only when portway allocated (with no pools, status is someone else's to write).
    if (decision.allocation) this.opts.statusWriter?.update(state.services, decision.allocation);
    // The controller Service's address as allocated (or as written, without pools) is what Ingresses get.
    this.opts.ingressWriter?.update(decision.state);
    if (this.speaker) void this.speaker.update(decision.state, allocation);
    else if (this.running) void this.startLayer2();
    return decision.state;
  }

  /**
   * strictARP (warns when it cannot be made right), then layer2 when enabled and some L2Advertisement
   * exists (member health serves a port only then). A layer2 failure (port taken, addon missing) is logged
   * and leaves the rules working: it never stops the agent.
   */
  async start(): Promise<void> {
    const { config, logger } = this.opts;
    this.running = true;
    this.opts.statusWriter?.start(); // status hook: Lease election begins
    this.opts.ingressWriter?.start();
    if (strictArpWanted(config)) {
      const result = await ensureStrictArp(this.opts.sysctl ?? createSysctl(), this.opts.sysctlJournal);
      for (const c of result.changed) logger.info(c, 'strictARP: sysctl set');
      for (const p of result.problems)
        logger.warn({}, `strictARP: ${p}; more than one node may answer ARP for service addresses`);
    }
    await this.startLayer2();
  }

  private startLayer2(): Promise<void> {
    const lb = this.opts.config.loadBalancer;
    if (!this.running || this.speaker || !lb.enabled || !lb.layer2) return Promise.resolve();
    if (!this.last || this.last.state.l2Advertisements.length === 0) return Promise.resolve();
    this.starting ??= this.createSpeaker().finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  private async createSpeaker(): Promise<void> {
    const { logger } = this.opts;
    const lb = this.opts.config.loadBalancer;
    const speaker = new L2Speaker({
      nodeName: this.opts.nodeName,
      nodeIPs: this.opts.nodeIPs,
      logger,
      memberPort: lb.memberPort,
      memberBindAddress: lb.memberBindAddress,
      memberProbeIntervalMs: lb.memberProbeInterval,
      memberProbeTimeoutMs: lb.memberProbeTimeout,
      memberDownAfterMs: lb.memberDownAfter,
      startupHoldMs: lb.startupHold,
      ...(this.opts.listLinks ? { listLinks: this.opts.listLinks } : {}),
      ...(lb.excludeInterfaces ? { excludeInterfaces: lb.excludeInterfaces } : {}),
      ...this.opts.speaker,
    });
    try {
      await speaker.start();
    } catch (e) {
      logger.error(
        { err: (e as Error).message, memberPort: lb.memberPort },
        'layer2: cannot start member health; this node announces no LoadBalancer address',
      );
      return;
    }
    if (!this.running) {
      await speaker.stop();
      return;
    }
    this.speaker = speaker;
    logger.info({ memberPort: lb.memberPort, startupHoldMs: lb.startupHold }, 'layer2: started');
    if (this.last) await speaker.update(this.last.state, this.last.allocation);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.opts.statusWriter?.stop(); // status hook: release the Lease
    await this.opts.ingressWriter?.stop();
    await this.starting;
    const speaker = this.speaker;
    this.speaker = null;
    await speaker?.stop();
  }

  /** Wait for pending layer2 work (tests). */
  async settled(): Promise<void> {
    await this.starting;
    await this.speaker?.idle();
  }

  allocation(): AllocationResult | undefined {
    return this.controller.current();
  }

  layer2(): L2Speaker | null {
    return this.speaker;
  }
}
