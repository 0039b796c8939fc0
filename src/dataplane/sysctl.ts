// Kernel parameters. On the host (or in tests, over a temporary directory) they are files under
// /proc/sys; inside another network namespace /proc/sys/net shows the reader's namespace, so the
// values are read and written by a command run in that namespace.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandError, createRunner, type CommandRunner } from './exec.js';
import type { Sysctl } from './interfaces.js';

/** "net.ipv4.ip_forward" or "net/ipv4/ip_forward" → "net/ipv4/ip_forward" (slash form is unambiguous). */
export function sysctlPath(key: string): string {
  const k = key.trim();
  if (!/^[A-Za-z0-9_.\-/]+$/.test(k) || k.split(/[/.]/).some((p) => p === '')) {
    throw new Error(`sysctl key "${key}" is not a valid key`);
  }
  return k.includes('/') ? k : k.replace(/\./g, '/');
}

export class FileSysctl implements Sysctl {
  constructor(private readonly root = '/proc/sys') {}

  async get(key: string): Promise<string | null> {
    try {
      return (await readFile(join(this.root, sysctlPath(key)), 'utf8')).trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async set(key: string, value: string): Promise<void> {
    try {
      await writeFile(join(this.root, sysctlPath(key)), `${value}\n`);
    } catch (err) {
      throw new Error(`sysctl ${sysctlPath(key)}=${value}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Reads with `cat /proc/sys/KEY` and writes with `sysctl -w KEY=VALUE` through a runner (e.g. in a netns). */
export class CommandSysctl implements Sysctl {
  constructor(private readonly runner: CommandRunner) {}

  async get(key: string): Promise<string | null> {
    const res = await this.runner.run('cat', [`/proc/sys/${sysctlPath(key)}`]);
    if (res.exitCode === 0) return res.stdout.trim();
    if (/No such file/.test(res.stderr)) return null;
    throw new CommandError({ command: 'cat', args: [`/proc/sys/${sysctlPath(key)}`], ...res });
  }

  async set(key: string, value: string): Promise<void> {
    const args = ['-q', '-w', `${sysctlPath(key)}=${value}`];
    const res = await this.runner.run('sysctl', args);
    if (res.exitCode !== 0) throw new CommandError({ command: 'sysctl', args, ...res });
  }
}

export interface SysctlOptions {
  /** Use this network namespace (through `ip netns exec`). */
  netns?: string;
  /** Root of the sysctl tree when not in a netns; tests point it at a temporary directory. */
  root?: string;
  runner?: CommandRunner;
}

export function createSysctl(opts: SysctlOptions = {}): Sysctl {
  if (opts.runner) return new CommandSysctl(opts.runner);
  if (opts.netns !== undefined) return new CommandSysctl(createRunner({ netns: opts.netns }));
  return new FileSysctl(opts.root);
}

/** In-memory sysctls; keys absent from `values` read as null (not on this kernel) and cannot be set. */
export class FakeSysctl implements Sysctl {
  readonly values: Map<string, string>;
  readonly writes: Array<{ key: string; value: string }> = [];

  constructor(values: Record<string, string> = {}) {
    this.values = new Map(Object.entries(values).map(([k, v]) => [sysctlPath(k), v]));
  }

  async get(key: string): Promise<string | null> {
    return this.values.get(sysctlPath(key)) ?? null;
  }

  async set(key: string, value: string): Promise<void> {
    const path = sysctlPath(key);
    if (!this.values.has(path)) throw new Error(`sysctl ${path}=${value}: no such key on this kernel`);
    this.writes.push({ key: path, value });
    this.values.set(path, value);
  }
}
