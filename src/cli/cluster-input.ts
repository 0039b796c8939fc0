// The objects a one-shot command (status, trace, doctor) reads: manifest files (-f PATH…), or the
// cluster itself (--kubeconfig / --master / in-cluster), listed once through the agent's own API source
// (the same client, lists, selectors and normalisation as `portway run`) and then closed. The
// Kubernetes client is imported only here, and only when the cluster is asked for: commands on
// manifests never load it.
import { existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { ClusterState, InputProblem } from '../model/cluster-state.js';
import { formatProblem, loadClusterState } from '../model/index.js';
import { CliExit } from './exit.js';

export interface ClusterInputFlags {
  /** -f PATH… (and the old spellings, folded in by the command). */
  filename?: string[];
  kubeconfig?: string;
  master?: string;
  /** How long to wait for the initial lists, in seconds (--request-timeout). */
  requestTimeout?: string;
}

/**
 * The input flags every command that reads objects shares: `-f, --filename PATH…` (kubectl's), the
 * command's old spelling kept as an alias (`--manifests`), and with `cluster` the live cluster's
 * `--kubeconfig`, `--master` and `--request-timeout`.
 */
export function addInputOptions(
  cmd: Command,
  opts: { cluster: boolean; alias?: string; description?: string },
): Command {
  cmd.option(
    '-f, --filename <paths...>',
    opts.description ?? 'manifest files or directories (YAML/JSON, kind: List), - for stdin',
  );
  if (opts.alias !== undefined) cmd.addOption(new Option(`${opts.alias} <paths...>`, 'the same as -f'));
  if (opts.cluster) {
    cmd
      .option('--kubeconfig <file>', 'read the objects from this cluster instead of manifests')
      .option('--master <url>', "API server URL (overrides the kubeconfig's server)")
      .option('--request-timeout <seconds>', 'how long to wait for the API lists', '30');
  }
  return cmd;
}

/** -f and its alias together (both may be given; the paths add up). */
export function inputPaths(flags: {
  filename?: string[];
  manifests?: string[] | string;
}): string[] | undefined {
  const alias = flags.manifests === undefined ? [] : ([] as string[]).concat(flags.manifests);
  const all = [...(flags.filename ?? []), ...alias];
  return all.length > 0 ? all : undefined;
}

/** Inside a pod (the service account's environment is there): status and doctor read the cluster by default. */
export const inPod = (): boolean => process.env.KUBERNETES_SERVICE_HOST !== undefined;

export const wantsCluster = (f: ClusterInputFlags): boolean =>
  f.kubeconfig !== undefined || f.master !== undefined;

/** Seconds → ms for --request-timeout (default 30 s). */
function timeoutMs(text: string | undefined): number {
  if (text === undefined) return 30_000;
  const n = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1))
    throw new CliExit(2, `--request-timeout must be a whole number of seconds ≥ 1 (got "${text}")`);
  return n * 1000;
}

/**
 * List every kind the agent watches, once, and return the state the agent would build from it.
 * Never hangs: an API server that does not answer every list within the timeout is an error naming the
 * kinds that did not sync and the last error of each.
 */
export async function readClusterFromApi(
  flags: Pick<ClusterInputFlags, 'kubeconfig' | 'master' | 'requestTimeout'>,
): Promise<{ state: ClusterState; problems: InputProblem[] }> {
  const limit = timeoutMs(flags.requestTimeout);
  const { createApiSource, ApiConfigError } = await import('../sources/api/index.js');
  let source;
  try {
    source = createApiSource({
      ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig } : {}),
      ...(flags.master !== undefined ? { master: flags.master } : {}),
      // A command waits at most `limit`: retry soon rather than after a long backoff.
      backoff: { initialMs: 200, maxMs: 2000 },
    });
  } catch (e) {
    if (e instanceof ApiConfigError) throw new CliExit(2, e.message);
    throw e;
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), limit);
  });
  try {
    const started = await Promise.race([source.start().then(() => 'synced' as const), timedOut]);
    if (started === 'timeout') {
      const waiting = source
        .connection()
        .informers.filter((i) => !i.synced)
        .map((i) => `${i.kind}${i.lastError ? ` (${i.lastError})` : ''}`);
      throw new CliExit(
        2,
        `the API server did not answer every list within ${limit / 1000} s: not listed: ${waiting.join(', ')}`,
      );
    }
    return source.current();
  } finally {
    clearTimeout(timer);
    await source.stop().catch(() => undefined);
  }
}

/**
 * The command's input: the cluster when --kubeconfig/--master is given, else the manifest paths (objects
 * that fail to load are reported on stderr and skipped, as everywhere). `inCluster`: with neither given,
 * read the cluster through the in-cluster service account (a command run inside the agent's pod);
 * without it, neither given is a usage error.
 */
export async function readClusterInput(
  flags: ClusterInputFlags,
  opts: { inCluster?: boolean } = {},
): Promise<ClusterState> {
  const paths = flags.filename ?? [];
  if (wantsCluster(flags) && paths.length > 0)
    throw new CliExit(2, '-f PATH… cannot be combined with --kubeconfig/--master: give one input');
  if (!wantsCluster(flags) && paths.length === 0 && !opts.inCluster)
    throw new CliExit(2, 'give -f PATH… (manifests) or --kubeconfig FILE (a cluster)');
  let read: { state: ClusterState; problems: InputProblem[] };
  if (wantsCluster(flags) || paths.length === 0) read = await readClusterFromApi(flags);
  else {
    for (const p of paths)
      if (p !== '-' && !existsSync(p)) throw new CliExit(2, `no such file or directory: ${p}`);
    read = await loadClusterState(paths);
  }
  for (const p of read.problems) process.stderr.write(`portway: skipped: ${formatProblem(p)}\n`);
  return read.state;
}

/**
 * The input of a command declared with addInputOptions (status, doctor): -f and its alias together, or
 * the cluster; with neither, inside a pod, the cluster through the in-cluster service account.
 */
export function readCommandInput(flags: ClusterInputFlags & { manifests?: string[] }): Promise<ClusterState> {
  return readClusterInput({ ...flags, filename: inputPaths(flags) }, { inCluster: inPod() });
}
