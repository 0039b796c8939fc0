// The IPVS test VM from jest: this machine's kernel has no IPVS and no dummy links, so ipvs-mode e2e tests
// run their script inside a QEMU guest (Debian's cloud kernel under software emulation) built and booted
// by hack/ipvs-vm. prepareIpvsVm() builds the image (cached) and boots it once; when that cannot be done
// here the tests skip with a loud reason — or fail, when PORTWAY_IPVS_VM_REQUIRED=1 says the VM must exist.
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const HACK = join(dirname(fileURLToPath(import.meta.url)), '../../../hack/ipvs-vm');
const BUILD_IMAGE = join(HACK, 'build-image.sh');
const RUN_IN_VM = join(HACK, 'run-in-vm');

/** build-image.sh's exit code for "cannot be built here" (not root, apt or download refused, no kernel). */
const EXIT_UNAVAILABLE = 3;
const EXIT_TIMEOUT = 124;
const EXIT_NO_REPORT = 125;

export type IpvsVmAvailability = { ok: true; image: string } | { ok: false; reason: string };

export interface IpvsVmRunOptions {
  /** Bash script run in the guest, in /payload (where the files are). */
  script: string;
  /** Files put in /payload beside the script: relative path in the guest → content. */
  files?: Record<string, string>;
  /** Host files or directories copied into /payload as is (binaries too): relative path in the guest → host path. */
  paths?: Record<string, string>;
  /** The guest's memory in MiB (default 512). */
  memoryMb?: number;
  /** The whole run: build check, boot, script (default 300 s; emulation on a loaded machine is slow). */
  timeoutMs?: number;
}

export interface IpvsVmRun {
  /** The script's exit code. */
  exitCode: number;
  /** Its stdout and stderr, interleaved as written. */
  output: string;
  /** Wall time of the run, boot included. */
  durationMs: number;
}

/** The guest did not report the script's end: it timed out, QEMU failed or the kernel never got there. */
export class IpvsVmError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly output: string,
    readonly diagnostics: string,
  ) {
    super(`${message}\n${diagnostics}`);
    this.name = 'IpvsVmError';
  }
}

/** Run a script in a fresh guest. Throws IpvsVmError when the guest does not report the script's end. */
export async function runInIpvsVm(opts: IpvsVmRunOptions): Promise<IpvsVmRun> {
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const dir = await mkdtemp(join(tmpdir(), 'pw-ipvs-vm-'));
  try {
    const scriptPath = join(dir, 'run.sh');
    await writeFile(scriptPath, opts.script);
    const fileArgs: string[] = [];
    for (const [name, content] of Object.entries(opts.files ?? {})) {
      if (name.startsWith('/') || name.split('/').includes('..'))
        throw new Error(`runInIpvsVm: file name ${name} must be relative, without ".."`);
      const path = join(dir, 'files', name);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, content);
      fileArgs.push(`${name}=${path}`);
    }
    for (const [name, path] of Object.entries(opts.paths ?? {})) {
      if (name.startsWith('/') || name.split('/').includes('..') || name.includes('='))
        throw new Error(`runInIpvsVm: path name ${name} must be relative, without ".." or "="`);
      fileArgs.push(`${name}=${path}`);
    }
    const started = performance.now();
    const result = await execa(
      RUN_IN_VM,
      ['--timeout', String(Math.ceil(timeoutMs / 1000)), scriptPath, ...fileArgs],
      {
        reject: false,
        stdin: 'ignore',
        stripFinalNewline: false,
        ...(opts.memoryMb !== undefined ? { env: { PORTWAY_IPVS_VM_MEMORY_MB: String(opts.memoryMb) } } : {}),
      },
    );
    const durationMs = Math.round(performance.now() - started);
    if (result.exitCode === EXIT_TIMEOUT || result.exitCode === EXIT_NO_REPORT) {
      throw new IpvsVmError(
        result.exitCode === EXIT_TIMEOUT
          ? `IPVS test VM: no result within ${timeoutMs} ms`
          : 'IPVS test VM: the guest ended without reporting the script end',
        result.exitCode,
        result.stdout,
        result.stderr,
      );
    }
    if (result.exitCode === EXIT_UNAVAILABLE && result.stderr.includes('cannot build the IPVS test VM')) {
      throw new IpvsVmError('IPVS test VM: image unavailable', result.exitCode, result.stdout, result.stderr);
    }
    return { exitCode: result.exitCode ?? -1, output: result.stdout, durationMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

let availability: Promise<IpvsVmAvailability> | undefined;

/**
 * Build the image (or find it cached) and boot it once (remembered in the image directory). Resolves
 * {ok: false, reason} when this machine cannot do it — not root, packages or the kernel not downloadable,
 * a guest that does not boot — and throws on anything else (a broken build script is a failure, not a skip).
 */
export function prepareIpvsVm(): Promise<IpvsVmAvailability> {
  availability ??= (async (): Promise<IpvsVmAvailability> => {
    const verdict = await checkIpvsVm();
    if (!verdict.ok && process.env.PORTWAY_IPVS_VM_REQUIRED === '1')
      throw new Error(`PORTWAY_IPVS_VM_REQUIRED=1 but ${verdict.reason}`);
    return verdict;
  })();
  return availability;
}

async function checkIpvsVm(): Promise<IpvsVmAvailability> {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (apt, and the image cache)' };
  const build = await execa(BUILD_IMAGE, [], { reject: false, stdin: 'ignore', timeout: 900_000 });
  if (build.exitCode === EXIT_UNAVAILABLE) {
    return { ok: false, reason: lastLine(build.stderr) || 'build-image.sh: unavailable' };
  }
  if (build.exitCode !== 0) {
    throw new Error(`hack/ipvs-vm/build-image.sh failed (exit ${build.exitCode}):\n${build.stderr}`);
  }
  const image = lastLine(build.stdout);
  const bootedStamp = join(image, 'booted');
  if (existsSync(bootedStamp)) return { ok: true, image };
  try {
    const probe = await runInIpvsVm({ script: 'cat /proc/net/ip_vs >/dev/null && echo ipvs-ok\n' });
    if (probe.exitCode !== 0 || !probe.output.includes('ipvs-ok'))
      return { ok: false, reason: `the guest booted but has no IPVS: ${probe.output.trim()}` };
  } catch (err) {
    if (err instanceof IpvsVmError) return { ok: false, reason: `the guest does not boot: ${err.message}` };
    throw err;
  }
  await writeFile(bootedStamp, '');
  return { ok: true, image };
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}

/** The loud skip notice every ipvs-vm test file prints when the VM is unavailable. */
export function warnIpvsVmSkipped(suite: string, reason: string): void {
  console.warn(
    `\n${'*'.repeat(100)}\n*** ${suite}: SKIPPED — the IPVS test VM is unavailable here: ${reason}\n` +
      `*** (set PORTWAY_IPVS_VM_REQUIRED=1 to make this a failure)\n${'*'.repeat(100)}\n`,
  );
}
