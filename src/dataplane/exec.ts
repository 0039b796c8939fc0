// Running system tools: one narrow CommandRunner (the real one uses execa with argument arrays,
// never a shell, optionally inside a named network namespace) and one structured error type.
import { execa } from 'execa';

export interface RunOptions {
  /**
   * Written to the command's stdin: a string at once, or chunks as an async iterable yields them
   * (the command reads the first chunks while later ones are still being computed). If the iterable
   * throws, the command is killed and run() rejects with that error.
   */
  input?: string | AsyncIterable<string>;
  /** Kill the command after this long (SIGKILL after a grace period); reported as timedOut. */
  timeoutMs?: number;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  durationMs: number;
}

/**
 * Runs one command and reports how it ended. A non-zero exit is a result, not an exception: callers
 * decide what an exit code means for their tool (conntrack exits 1 when nothing matched). It throws
 * CommandError only when the command could not run to completion (missing binary, timeout, signal).
 */
export interface CommandRunner {
  run(cmd: string, args: readonly string[], opts?: RunOptions): Promise<CommandResult>;
}

export interface CommandErrorInit {
  command: string;
  args: readonly string[];
  /** null when the process never exited normally (not found, killed, timed out). */
  exitCode: number | null;
  stderr: string;
  stdout?: string;
  durationMs: number;
  timedOut?: boolean;
  /** errno-style code from spawning (e.g. "ENOENT"). */
  code?: string;
  /** Extra words in front of the generic message, e.g. "iptables-restore of table nat". */
  context?: string;
}

/** A system command that failed: what was run, how it ended, and what it said. */
export class CommandError extends Error {
  readonly command: string;
  readonly args: readonly string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  readonly stdout: string;
  readonly durationMs: number;
  readonly timedOut: boolean;
  readonly code: string | undefined;

  constructor(init: CommandErrorInit) {
    const how = init.timedOut
      ? `timed out after ${Math.round(init.durationMs)} ms`
      : init.code !== undefined && init.exitCode === null
        ? `could not start (${init.code})`
        : `exited with code ${init.exitCode ?? 'none'}`;
    const said = firstLines(init.stderr, 3);
    super(
      `${init.context ? init.context + ': ' : ''}${init.command} ${init.args.join(' ')} ${how}` +
        (said ? `: ${said}` : ''),
    );
    this.name = 'CommandError';
    this.command = init.command;
    this.args = init.args;
    this.exitCode = init.exitCode;
    this.stderr = init.stderr;
    this.stdout = init.stdout ?? '';
    this.durationMs = init.durationMs;
    this.timedOut = init.timedOut ?? false;
    this.code = init.code;
  }
}

/** Lines around the failing line of an iptables-restore / ipset restore payload. */
export interface PayloadLine {
  /** 1-based, as the tool counts. */
  number: number;
  text: string;
}

/** A restore (iptables-restore, ipset restore) that the tool rejected, with the offending line when known. */
export class RestoreError extends CommandError {
  /** 1-based line of the payload the tool blamed, or null when its message named none. */
  readonly line: number | null;
  /** The failing line's text, or null. */
  readonly lineText: string | null;
  /** The failing line and up to `radius` lines either side. */
  readonly neighbours: PayloadLine[];

  constructor(init: CommandErrorInit & { payload: string; line?: number | null; radius?: number }) {
    const lines = init.payload.split('\n');
    const line = init.line !== undefined ? init.line : parseRestoreFailureLine(init.stderr);
    const lineText = line !== null && line >= 1 && line <= lines.length ? (lines[line - 1] ?? null) : null;
    super({
      ...init,
      context: [init.context, line !== null ? `line ${line}${lineText !== null ? ` "${lineText}"` : ''}` : '']
        .filter(Boolean)
        .join(', '),
    });
    this.name = 'RestoreError';
    this.line = line;
    this.lineText = lineText;
    this.neighbours = line === null ? [] : neighbourLines(lines, line, init.radius ?? 2);
  }
}

/**
 * The payload line an iptables-restore / ip6tables-restore / ipset restore error names. The tools
 * use several shapes: "Error occurred at line: 4", "iptables-restore: line 2 failed",
 * "line 2: CHAIN_DEL failed (…)", "COMMIT expected at line 4", "ipset v7: Error in line 3: …".
 */
export function parseRestoreFailureLine(stderr: string): number | null {
  const patterns = [
    /Error occurred at line: (\d+)/,
    /\bline (\d+) failed/,
    /^line (\d+):/m,
    /expected at line (\d+)/,
    /Error in line (\d+)/,
    /\bat line:? (\d+)/,
  ];
  for (const p of patterns) {
    const m = p.exec(stderr);
    if (m?.[1]) return Number(m[1]);
  }
  return null;
}

function neighbourLines(lines: string[], line: number, radius: number): PayloadLine[] {
  const out: PayloadLine[] = [];
  for (let n = Math.max(1, line - radius); n <= Math.min(lines.length, line + radius); n++) {
    out.push({ number: n, text: lines[n - 1] ?? '' });
  }
  return out;
}

function firstLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, n)
    .join(' | ');
}

// ── classifiers ─────────────────────────────────────────────────────────────────────────────────

function asCommandError(err: unknown): CommandError | null {
  return err instanceof CommandError ? err : null;
}

/** Another process holds the xtables lock longer than our -w wait (iptables exit code 4). */
export function isLockTimeout(err: unknown): boolean {
  const e = asCommandError(err);
  return e !== null && /xtables lock|holding the xtables/i.test(e.stderr);
}

/** The object the command addressed does not exist (chain, rule, set, device, address). */
export function isNotFound(err: unknown): boolean {
  const e = asCommandError(err);
  return (
    e !== null &&
    e.code !== 'ENOENT' &&
    /No chain\/target\/match by that name|does not exist|Address not found|Bad rule \(does a matching rule exist|Cannot find device|Cannot assign requested address|No such (file or directory|process)/i.test(
      e.stderr,
    )
  );
}

/** The object already exists (address, link, set). */
export function isAlreadyExists(err: unknown): boolean {
  const e = asCommandError(err);
  return e !== null && /File exists|already exists|already added|already assigned/i.test(e.stderr);
}

/** The binary itself is missing (spawn ENOENT, or "ip netns exec" could not exec it). */
export function isCommandMissing(err: unknown): boolean {
  const e = asCommandError(err);
  return e !== null && (e.code === 'ENOENT' || /exec of ".*" failed: No such file/.test(e.stderr));
}

export function isPermissionDenied(err: unknown): boolean {
  const e = asCommandError(err);
  return e !== null && /Permission denied|Operation not permitted|you must be root/i.test(e.stderr);
}

export function isTimeout(err: unknown): boolean {
  const e = asCommandError(err);
  return e !== null && e.timedOut;
}

// ── the real runner ─────────────────────────────────────────────────────────────────────────────

export interface ExecaRunnerOptions {
  /** Run every command inside this network namespace (`ip netns exec NAME cmd …`). */
  netns?: string;
  /** Applied when a call gives no timeoutMs. */
  defaultTimeoutMs?: number;
}

/** iptables-save of a big table is tens of MB; execa's default 100 MB cap is too close. */
const MAX_BUFFER = 1024 * 1024 * 1024;

export class ExecaRunner implements CommandRunner {
  readonly netns: string | undefined;
  private readonly defaultTimeoutMs: number | undefined;

  constructor(opts: ExecaRunnerOptions = {}) {
    this.netns = opts.netns;
    this.defaultTimeoutMs = opts.defaultTimeoutMs;
  }

  async run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const [file, argv] =
      this.netns === undefined ? [cmd, [...args]] : ['ip', ['netns', 'exec', this.netns, cmd, ...args]];
    const timeout = opts.timeoutMs ?? this.defaultTimeoutMs;
    const started = performance.now();
    const input = opts.input;
    const subprocess = execa(file, argv, {
      reject: false,
      stripFinalNewline: false,
      // Error texts are parsed by the classifiers: keep them in English.
      env: { LC_ALL: 'C' },
      maxBuffer: MAX_BUFFER,
      ...(input === undefined
        ? { stdin: 'ignore' as const }
        : typeof input === 'string'
          ? { input }
          : { stdin: 'pipe' as const }),
      ...(timeout !== undefined ? { timeout, forceKillAfterDelay: 1000 } : {}),
    });
    // Chunks are written to the pipe as they come, with backpressure (execa's own iterable input
    // copies them through a transform: slower, and ~150 MB more at 10k Services).
    let inputError: { error: unknown } | null = null;
    if (input !== undefined && typeof input !== 'string') {
      const stdin = subprocess.stdin;
      // A command that exits early (a bad line) closes its end: later writes fail, quietly.
      stdin.on('error', () => undefined);
      void (async () => {
        try {
          for await (const chunk of input) {
            if (stdin.destroyed) return;
            if (!stdin.write(chunk)) await new Promise((r) => stdin.once('drain', r).once('close', r));
          }
          stdin.end();
        } catch (error) {
          // Nothing more may reach the command (an iptables-restore must not see its COMMIT).
          inputError = { error };
          subprocess.kill('SIGKILL');
        }
      })();
    }
    const result = await subprocess;
    if (inputError !== null) throw (inputError as { error: unknown }).error;
    const durationMs = performance.now() - started;
    const stdout = typeof result.stdout === 'string' ? result.stdout : '';
    const stderr = typeof result.stderr === 'string' ? result.stderr : '';
    if (result.timedOut || typeof result.exitCode !== 'number') {
      const code = (result as { code?: string }).code;
      throw new CommandError({
        command: cmd,
        args,
        exitCode: null,
        stderr: stderr || (result as { shortMessage?: string }).shortMessage || '',
        stdout,
        durationMs,
        timedOut: result.timedOut,
        ...(code !== undefined ? { code } : {}),
        ...(this.netns !== undefined ? { context: `in netns ${this.netns}` } : {}),
      });
    }
    return { stdout, stderr, exitCode: result.exitCode, durationMs };
  }
}

export function createRunner(opts: ExecaRunnerOptions = {}): CommandRunner {
  return new ExecaRunner(opts);
}

/** Where an executor runs its commands. */
export interface ExecutorRunOptions {
  /** Run inside this network namespace (ignored when `runner` is given). */
  netns?: string;
  /** Run through this runner instead (a recording fake in unit tests). */
  runner?: CommandRunner;
}

/** The runner an executor was given, or a real one in the given network namespace (or the current one). */
export function runnerFor(opts: ExecutorRunOptions): CommandRunner {
  return opts.runner ?? createRunner(opts.netns !== undefined ? { netns: opts.netns } : {});
}

/** Run and throw CommandError unless the exit code is one of `okExitCodes` (default: 0). */
export async function runChecked(
  runner: CommandRunner,
  cmd: string,
  args: readonly string[],
  opts: RunOptions & { okExitCodes?: readonly number[] } = {},
): Promise<CommandResult> {
  const { okExitCodes = [0], ...runOpts } = opts;
  const result = await runner.run(cmd, args, runOpts);
  if (!okExitCodes.includes(result.exitCode)) {
    throw new CommandError({
      command: cmd,
      args,
      exitCode: result.exitCode,
      stderr: result.stderr,
      stdout: result.stdout,
      durationMs: result.durationMs,
    });
  }
  return result;
}

// ── a recording fake runner for unit tests of the executors ─────────────────────────────────────

export interface RecordedCommand {
  cmd: string;
  args: string[];
  input: string | undefined;
}

/** All of a RunOptions input as one string (a fake runner reads it whole). */
export async function inputText(input: RunOptions['input']): Promise<string | undefined> {
  if (input === undefined || typeof input === 'string') return input;
  let text = '';
  for await (const chunk of input) text += chunk;
  return text;
}

export type FakeResponder = (call: RecordedCommand) => Partial<CommandResult> | undefined;

/**
 * Records every command and answers from responders (first one returning a result wins; default:
 * exit 0, empty output). Lets executor tests assert the exact argument arrays.
 */
export class RecordingRunner implements CommandRunner {
  readonly calls: RecordedCommand[] = [];
  private readonly responders: FakeResponder[] = [];

  respond(responder: FakeResponder): this {
    this.responders.push(responder);
    return this;
  }

  /** Answer commands whose "cmd args…" line starts with `prefix`. */
  on(prefix: string, result: Partial<CommandResult>): this {
    return this.respond((c) => ([c.cmd, ...c.args].join(' ').startsWith(prefix) ? result : undefined));
  }

  async run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const call = { cmd, args: [...args], input: await inputText(opts.input) };
    this.calls.push(call);
    for (const r of this.responders) {
      const res = r(call);
      if (res) return { stdout: '', stderr: '', exitCode: 0, durationMs: 0, ...res };
    }
    return { stdout: '', stderr: '', exitCode: 0, durationMs: 0 };
  }

  commandLines(): string[] {
    return this.calls.map((c) => [c.cmd, ...c.args].join(' '));
  }
}
