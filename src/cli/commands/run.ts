// `portway run`: the node agent with a directory of manifests as its source. It programs the network
// namespace it runs in (so `ip netns exec NS portway run …` just works): watches the directory,
// re-syncs on change (coalesced by the BoundedFrequencyRunner), resyncs fully every syncPeriod, and
// on SIGTERM/SIGINT stops cleanly, leaving the rules in place (traffic keeps flowing while the agent
// restarts; `portway cleanup` removes them).
import { readlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../config/config.js';
import { loadConfigFile } from '../../config/load.js';
import { createDataplane, type Dataplane } from '../../dataplane/index.js';
import type { InterfaceAddress, IpLinks } from '../../dataplane/interfaces.js';
import { RealIpLinks } from '../../dataplane/ip.js';
import type { ClusterState, IPFamily } from '../../model/cluster-state.js';
import { ipFamilyOf } from '../../model/ip.js';
import { LoadBalancerAgent } from '../../lb/lb-agent.js'; // LoadBalancer addresses + layer2 hook
import type { Logger } from '../../observe/logger.js';
import { renderIptables, renderOptionsFromConfig } from '../../render/iptables/index.js';
import { ManifestDirectorySource } from '../../sources/manifests/directory-source.js';
import { BoundedFrequencyRunner } from '../../sync/bounded-frequency-runner.js';
import { SystemClock, type Clock } from '../../sync/clock.js';
import { IptablesSyncer, SyncFailedError, type FamilyDataplane } from '../../sync/iptables-syncer.js';
import { FileCreatedChainsJournal, FileSysctlJournal } from '../../sync/sysctls.js';

export const DEFAULT_STATE_DIR = '/run/portway';

export interface RunAgentOptions {
  /** Directory of manifests (Services, EndpointSlices, …). */
  manifests: string;
  configPath?: string;
  /** Sync once and return: 0 on success, 1 on failure. */
  once: boolean;
  logger: Logger;
  /** Where the sysctl journal lives (per network namespace below it). Default /run/portway. */
  stateDir?: string;
  /** Stop the agent (instead of, or besides, SIGTERM/SIGINT). */
  signal?: AbortSignal;
  /** Install SIGTERM/SIGINT handlers (default true). */
  handleSignals?: boolean;
  // Injection points for tests (habit 12).
  clock?: Clock;
  ipLinks?: IpLinks;
  createDataplane?: (families: IPFamily[]) => Promise<Dataplane>;
  hostname?: string;
  /** Called after every sync attempt (tests, metrics). */
  onSync?: (ok: boolean) => void;
}

/**
 * The node's addresses when the configuration names none: global-scope addresses of every interface
 * but loopback, in the order `ip addr` lists them (the first of a family is its primary).
 */
export function nodeIPsFromInterfaces(addresses: readonly InterfaceAddress[]): string[] {
  const out: string[] = [];
  for (const a of addresses) {
    if (a.ifname === 'lo' || a.scope !== 'global') continue;
    if (a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80:')) continue;
    if (!out.includes(a.address)) out.push(a.address);
  }
  return out;
}

/** An identifier of the current network namespace ("4026531840"), so journals of namespaces do not mix. */
export async function currentNetnsId(): Promise<string> {
  try {
    const link = await readlink('/proc/self/ns/net'); // "net:[4026531840]"
    return /\[(\d+)\]/.exec(link)?.[1] ?? 'default';
  } catch {
    return 'default';
  }
}

export async function sysctlJournalPath(stateDir = DEFAULT_STATE_DIR): Promise<string> {
  return join(stateDir, `netns-${await currentNetnsId()}`, 'sysctl-changes.json');
}

export async function createdChainsJournalPath(stateDir = DEFAULT_STATE_DIR): Promise<string> {
  return join(stateDir, `netns-${await currentNetnsId()}`, 'created-chains.json');
}

interface AgentSetup {
  config: Config;
  nodeName: string;
  nodeIPs: string[];
  families: IPFamily[];
  syncer: IptablesSyncer;
  source: ManifestDirectorySource;
  clock: Clock;
  /** LoadBalancer allocation + layer2 (src/lb/lb-agent.ts): every state goes through lb.process(). */
  lb: LoadBalancerAgent;
}

async function setUp(opts: RunAgentOptions, onChange: (s: ClusterState) => void): Promise<AgentSetup> {
  const log = opts.logger;
  const config = await loadConfigFile(opts.configPath);
  if (config.mode !== 'iptables') {
    throw new Error(`config mode: "${config.mode}" is not supported by \`portway run\` yet (use mode: iptables)`);
  }
  const nodeName = config.nodeName || opts.hostname || hostname();
  let nodeIPs = [...config.nodeIPs];
  if (nodeIPs.length === 0) {
    const links = opts.ipLinks ?? new RealIpLinks();
    nodeIPs = nodeIPsFromInterfaces(await links.listAddresses());
  }
  const families = (['IPv4', 'IPv6'] as const).filter((f) => nodeIPs.some((ip) => ipFamilyOf(ip) === f));
  if (families.length === 0) {
    throw new Error('no node IPs: set nodeIPs in the configuration or give an interface a global address');
  }
  const effective: Config = { ...config, nodeName };
  const dataplane = await (opts.createDataplane ?? ((fams) => createDataplane({ families: fams })))([...families]);
  const familyDataplanes: FamilyDataplane[] = families.flatMap((family) => {
    const iptables = dataplane.iptables[family];
    return iptables ? [{ family, iptables, conntrack: dataplane.conntrack }] : [];
  });
  const clock = opts.clock ?? new SystemClock();
  const syncer = new IptablesSyncer({
    families: familyDataplanes,
    render: (state, family) => renderIptables(state, renderOptionsFromConfig(effective, family, nodeIPs)),
    clock,
    logger: log,
    sysctl: dataplane.sysctl,
    sysctlJournal: new FileSysctlJournal(await sysctlJournalPath(opts.stateDir)),
    localhostNodePorts: config.iptables.localhostNodePorts,
    createdChainsJournal: new FileCreatedChainsJournal(await createdChainsJournalPath(opts.stateDir)),
  });
  // ── LoadBalancer addresses + layer2 hook (src/lb/lb-agent.ts) ──
  const lb = new LoadBalancerAgent({
    config,
    nodeName,
    nodeIPs,
    logger: log,
    sysctl: dataplane.sysctl,
    ...(opts.ipLinks ? { listAddresses: () => (opts.ipLinks as IpLinks).listAddresses() } : {}),
  });
  // ── end LoadBalancer hook ──
  const source = new ManifestDirectorySource({
    dir: opts.manifests,
    logger: log,
    clock,
    onChange: (snap) => onChange(snap.state),
  });
  log.info(
    {
      nodeName,
      nodeIPs,
      families,
      backend: familyDataplanes[0]?.iptables.backend,
      manifests: opts.manifests,
      minSyncPeriodMs: config.iptables.minSyncPeriod,
      syncPeriodMs: config.iptables.syncPeriod,
    },
    'portway agent starting',
  );
  return { config, nodeName, nodeIPs, families: [...families], syncer, source, clock, lb };
}

/** Run the agent; resolves with the process exit code. */
export async function runAgent(opts: RunAgentOptions): Promise<number> {
  const log = opts.logger;
  let runner: BoundedFrequencyRunner | null = null;
  let setup: AgentSetup;
  try {
    setup = await setUp(opts, (state) => {
      setup.syncer.setState(setup.lb.process(state));
      runner?.request();
    });
  } catch (err) {
    log.error({ err: (err as Error).message }, 'portway agent cannot start');
    return 2;
  }
  const { syncer, source, config, clock, lb } = setup;

  if (opts.once) {
    const snap = await source.load();
    syncer.setState(lb.process(snap.state));
    try {
      const result = await syncer.sync({ full: true });
      opts.onSync?.(true);
      log.info({ durationMs: result.durationMs, sysctlsChanged: result.sysctlsChanged }, 'synced once');
      return 0;
    } catch (err) {
      opts.onSync?.(false);
      log.error({ err: (err as Error).message }, 'sync failed');
      return 1;
    }
  }

  runner = new BoundedFrequencyRunner({
    name: 'iptables-sync',
    clock,
    minIntervalMs: config.iptables.minSyncPeriod,
    maxIntervalMs: config.iptables.syncPeriod,
    retryMaxIntervalMs: Math.max(config.iptables.minSyncPeriod, Math.min(config.iptables.syncPeriod || 30_000, 30_000)),
    // The periodic run and every retry are full: they repair drift and recover from failures.
    run: async (trigger) => {
      try {
        await syncer.sync({ full: trigger !== 'requested' });
        opts.onSync?.(true);
      } catch (err) {
        opts.onSync?.(false);
        throw err;
      }
    },
    onFailure: (err, retryInMs, failures) => {
      const reason = err instanceof SyncFailedError ? err.message : (err as Error).message;
      log.warn({ retryInMs, consecutiveFailures: failures, reason }, 'sync failed; retrying with a full sync');
    },
  });

  const handlers: Array<[NodeJS.Signals, () => void]> = [];
  const stopped = new Promise<string>((resolve) => {
    if (opts.handleSignals !== false) {
      for (const sig of ['SIGTERM', 'SIGINT'] as const) {
        const h = (): void => resolve(sig);
        handlers.push([sig, h]);
        process.once(sig, h);
      }
    }
    if (opts.signal) {
      if (opts.signal.aborted) resolve('abort');
      else opts.signal.addEventListener('abort', () => resolve('abort'), { once: true });
    }
  });

  const first = await source.start();
  syncer.setState(lb.process(first.state));
  runner.start();
  await lb.start(); // LoadBalancer hook: strictARP + layer2
  runner.request();
  // Keep the event loop alive while the agent runs (the clock's timers are unref'd).
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const why = await stopped;
  clearInterval(keepAlive);
  for (const [sig, h] of handlers) process.off(sig, h);
  log.info({ signal: why }, 'stopping; rules stay in place');
  await source.stop();
  await runner.stop();
  await lb.stop(); // LoadBalancer hook
  return 0;
}
