// The real Iptables executor (iptables-save / iptables-restore / iptables for one IP family and one
// backend) and backend detection. Commands run through a CommandRunner, so they can run inside a
// network namespace and be recorded in tests.
import type { IPFamily } from '../model/cluster-state.js';
import type { TableName } from '../render/types.js';
import {
  CommandError,
  type CommandRunner,
  type ExecutorRunOptions,
  RestoreError,
  runChecked,
  runnerFor,
} from './exec.js';
import { restoreTextOf, type Iptables, type IptablesBackend, type RestoreOptions, type RestoreText } from './interfaces.js';
import { addListFirst } from './iptables-text.js';

/** Seconds to wait for the xtables lock (iptables -w); the legacy backend needs it, nft ignores it. */
export const DEFAULT_LOCK_WAIT_SECONDS = 5;

export interface IptablesCommands {
  iptables: string;
  save: string;
  restore: string;
}

/** Binary names for a family and backend: explicit "-nft"/"-legacy" so the choice never depends on alternatives. */
export function iptablesCommands(family: IPFamily, backend: IptablesBackend): IptablesCommands {
  const base = family === 'IPv4' ? 'iptables' : 'ip6tables';
  return {
    iptables: `${base}-${backend}`,
    save: `${base}-${backend}-save`,
    restore: `${base}-${backend}-restore`,
  };
}

export interface IptablesOptions extends ExecutorRunOptions {
  family: IPFamily;
  /** Detected (detectIptablesBackend) when not given. */
  backend?: IptablesBackend;
  lockWaitSeconds?: number;
  /** Per-command timeout; restores of big payloads take seconds, so this is generous. */
  timeoutMs?: number;
}

export class RealIptables implements Iptables {
  readonly family: IPFamily;
  readonly backend: IptablesBackend;
  readonly commands: IptablesCommands;
  private readonly runner: CommandRunner;
  private readonly wait: string[];
  private readonly timeoutMs: number;

  constructor(opts: IptablesOptions & { backend: IptablesBackend; runner: CommandRunner }) {
    this.family = opts.family;
    this.backend = opts.backend;
    this.runner = opts.runner;
    this.commands = iptablesCommands(opts.family, opts.backend);
    this.wait = ['-w', String(opts.lockWaitSeconds ?? DEFAULT_LOCK_WAIT_SECONDS)];
    this.timeoutMs = opts.timeoutMs ?? 10 * 60_000;
  }

  async save(table: TableName): Promise<string> {
    const res = await runChecked(this.runner, this.commands.save, ['-t', table], {
      timeoutMs: this.timeoutMs,
    });
    return res.stdout;
  }

  async restore(payload: string, opts: RestoreOptions): Promise<void> {
    await this.runRestore([payload], opts);
  }

  async restoreStreamed(head: RestoreText, rest: Promise<string>, opts: RestoreOptions): Promise<void> {
    // Not awaited until the head is written: a rejection before then must not count as unhandled.
    rest.catch(() => undefined);
    await this.runRestore([head, rest], opts);
  }

  /**
   * One iptables-restore fed `parts` in order (a promise is written when it resolves; chunks one by
   * one, as they are made).
   *
   * With listFirst, "-S" goes after each table header of the FIRST part only. It is a list command: it
   * prints the table (ignored) and changes nothing, but makes iptables-nft-restore load its cache once
   * (see addListFirst). A streamed restore's first part is the big table; a "-S" in a table after it
   * would make the tool fetch its cache again, the big table just committed included (+2.6 s at 10k).
   * Chunks end at line ends, so inserting after the headers of each chunk of the first part is
   * inserting after those of the whole part.
   */
  private async runRestore(
    parts: Array<RestoreText | Promise<string>>,
    opts: RestoreOptions,
  ): Promise<void> {
    const args = [...this.wait, ...(opts.noflush ? ['--noflush'] : [])];
    // The parts written (chunked ones are iterated again only when the restore fails).
    const written: RestoreText[] = [];
    async function* chunks(): AsyncGenerator<string> {
      for (const part of parts) {
        const text = await part;
        const first = written.length === 0;
        written.push(text);
        for (const chunk of typeof text === 'string' ? [text] : text)
          yield first && opts.listFirst ? addListFirst(chunk).payload : chunk;
      }
    }
    const res = await this.runner.run(this.commands.restore, args, {
      input: chunks(),
      timeoutMs: this.timeoutMs,
    });
    if (res.exitCode !== 0) {
      const texts = written.map(restoreTextOf);
      const payload = texts.join('');
      const shaped = opts.listFirst && texts.length > 0 ? addListFirst(texts[0]!) : null;
      const probe = new RestoreError({
        command: this.commands.restore,
        args,
        exitCode: res.exitCode,
        stderr: res.stderr,
        durationMs: res.durationMs,
        payload: shaped ? shaped.payload + payload.slice(texts[0]!.length) : payload,
      });
      // Report the line of the payload the caller wrote, not of the one with "-S" inserted: every
      // inserted line is in the first part.
      const inserted = shaped ? lineCount(shaped.payload) - lineCount(texts[0]!) : 0;
      const firstLines = shaped ? lineCount(shaped.payload) : 0;
      const originalLine = (n: number): number =>
        shaped === null ? n : n <= firstLines ? shaped.originalLine(n) : n - inserted;
      throw new RestoreError({
        command: this.commands.restore,
        args,
        exitCode: res.exitCode,
        stderr: res.stderr,
        durationMs: res.durationMs,
        payload,
        line: probe.line === null ? null : originalLine(probe.line),
      });
    }
  }

  checkRule(table: TableName, chain: string, spec: string[]): Promise<boolean> {
    return this.runOnRule('-C', table, chain, spec);
  }

  async insertRule(
    table: TableName,
    chain: string,
    spec: string[],
    position: 'prepend' | 'append',
  ): Promise<void> {
    const args = [...this.wait, '-t', table, position === 'prepend' ? '-I' : '-A', chain, ...spec];
    await runChecked(this.runner, this.commands.iptables, args, { timeoutMs: this.timeoutMs });
  }

  deleteRule(table: TableName, chain: string, spec: string[]): Promise<boolean> {
    return this.runOnRule('-D', table, chain, spec);
  }

  /** Check or delete one rule: true when it was there, false when it (or its chain) was not. */
  private async runOnRule(
    command: '-C' | '-D',
    table: TableName,
    chain: string,
    spec: string[],
  ): Promise<boolean> {
    const args = [...this.wait, '-t', table, command, chain, ...spec];
    const res = await this.runner.run(this.commands.iptables, args, { timeoutMs: this.timeoutMs });
    if (res.exitCode === 0) return true;
    // Exit 1: no such rule (or no such chain). Anything else is a bad spec or a lock timeout.
    if (res.exitCode === 1 && !/xtables lock/i.test(res.stderr)) return false;
    throw new CommandError({ command: this.commands.iptables, args, ...res });
  }
}

function lineCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

// ── backend detection ───────────────────────────────────────────────────────────────────────────

/** What the host looks like, gathered by detectIptablesBackend; the decision is the pure function below. */
export interface BackendObservations {
  /** `iptables --version` (the host's default through alternatives), or null if it failed. */
  defaultVersion: string | null;
  /** kubelet's KUBE-IPTABLES-HINT or KUBE-KUBELET-CANARY exists in an nft mangle table (either family). */
  nftKubeletChains: boolean;
  /** iptables-legacy-save / ip6tables-legacy-save of all tables, or '' */
  legacyAll: string;
  /** KUBE-SERVICES, KUBE-POSTROUTING or KUBE-NODEPORTS exists in an nft nat table (either family). */
  nftKubeChains: boolean;
}

export interface BackendChoice {
  backend: IptablesBackend;
  reason: string;
}

const KUBELET_CHAIN_NAMES = ['KUBE-IPTABLES-HINT', 'KUBE-KUBELET-CANARY'];
const KUBELET_CHAINS = new RegExp(`^:(${KUBELET_CHAIN_NAMES.join('|')})\\b`, 'm');
const KUBE_PROXY_CHAIN_NAMES = ['KUBE-SERVICES', 'KUBE-POSTROUTING', 'KUBE-NODEPORTS'];
const KUBE_PROXY_CHAINS = new RegExp(`^:(${KUBE_PROXY_CHAIN_NAMES.join('|')})\\b`, 'm');

/**
 * Which backend to use, as kube-proxy's iptables-wrapper decides: the one where kubelet left its
 * hint chains in mangle; else the one already holding kube-proxy/portway rules (so a takeover
 * programs the same backend); else the host's default `iptables`; else nft.
 */
export function chooseIptablesBackend(o: BackendObservations): BackendChoice {
  if (o.nftKubeletChains) return { backend: 'nft', reason: 'kubelet chains in nft mangle table' };
  if (KUBELET_CHAINS.test(o.legacyAll))
    return { backend: 'legacy', reason: 'kubelet chains in legacy tables' };
  const nftKube = o.nftKubeChains;
  const legacyKube = KUBE_PROXY_CHAINS.test(o.legacyAll);
  if (nftKube && !legacyKube) return { backend: 'nft', reason: 'service chains present in nft nat table' };
  if (legacyKube && !nftKube) return { backend: 'legacy', reason: 'service chains present in legacy tables' };
  if (o.defaultVersion?.includes('(legacy)')) return { backend: 'legacy', reason: 'host iptables is legacy' };
  if (o.defaultVersion?.includes('(nf_tables)'))
    return { backend: 'nft', reason: 'host iptables is nf_tables' };
  return { backend: 'nft', reason: 'no evidence; nft by default' };
}

async function stdoutOrEmpty(runner: CommandRunner, cmd: string, args: string[]): Promise<string> {
  try {
    const res = await runner.run(cmd, args, { timeoutMs: 60_000 });
    return res.exitCode === 0 ? res.stdout : '';
  } catch {
    return ''; // a missing binary is simply no evidence for that backend
  }
}

/**
 * Whether any of `chains` exists in an nf_tables `table` of either family: one `-S CHAIN` each, which
 * reads that chain alone. (iptables-nft-save reads every chain of every table even with -t: seconds
 * on a node already holding 10k Services, which every restart paid before its first sync.)
 */
async function nftHasChains(
  runner: CommandRunner,
  table: string,
  chains: readonly string[],
): Promise<boolean> {
  const probes = ['iptables-nft', 'ip6tables-nft'].flatMap((cmd) =>
    chains.map(async (chain) => {
      try {
        return (
          (await runner.run(cmd, ['-w', '-t', table, '-S', chain], { timeoutMs: 60_000 })).exitCode === 0
        );
      } catch {
        return false; // a missing binary is no evidence
      }
    }),
  );
  return (await Promise.all(probes)).some(Boolean);
}

/** Look at the host (or netns) and choose a backend. Read-only: legacy is saved whole, never with -t. */
export async function detectIptablesBackend(runner: CommandRunner): Promise<BackendChoice> {
  const [defaultVersion, nftKubeletChains, legacy4, legacy6, nftKubeChains] = await Promise.all([
    stdoutOrEmpty(runner, 'iptables', ['--version']),
    nftHasChains(runner, 'mangle', KUBELET_CHAIN_NAMES),
    // "-t mangle" would make the legacy kernel module create the table; save everything instead.
    stdoutOrEmpty(runner, 'iptables-legacy-save', []),
    stdoutOrEmpty(runner, 'ip6tables-legacy-save', []),
    nftHasChains(runner, 'nat', KUBE_PROXY_CHAIN_NAMES),
  ]);
  return chooseIptablesBackend({
    defaultVersion: defaultVersion || null,
    nftKubeletChains,
    legacyAll: legacy4 + legacy6,
    nftKubeChains,
  });
}

/** The real executor for one family; detects the backend when none is given. */
export async function createIptables(opts: IptablesOptions): Promise<RealIptables> {
  const runner = runnerFor(opts);
  const backend = opts.backend ?? (await detectIptablesBackend(runner)).backend;
  return new RealIptables({ ...opts, backend, runner });
}
