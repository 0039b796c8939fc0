// Which network namespace this is. Its inode number is unique among live namespaces but is reused once
// a namespace is gone, so state keyed by the inode alone is inherited by a stranger. portway therefore
// places a random marker inside the namespace itself — an alternative name of `lo`
// (`ip link property add dev lo altname portway-state-<id>`, Linux ≥ 5.5), or lo's ifalias where
// altnames are not supported and lo has no alias — which dies with the namespace and so can never be
// inherited. State recorded outside the namespace carries the marker's id and is believed only while
// the namespace still shows it. Neither is a sysctl, and both are invisible to traffic.
import { randomBytes } from 'node:crypto';
import { runChecked, runnerFor, type CommandRunner, type ExecutorRunOptions } from './exec.js';

const MARKER_PREFIX = 'portway-state-';

export interface NetnsIdentity {
  /** The namespace's inode number ("4026532240"). */
  inode(): Promise<string>;
  /** The id of portway's marker in this namespace, or null when there is none. */
  readMarker(): Promise<string | null>;
  /** Place a marker with this id (a fresh random id from newMarkerId()). */
  writeMarker(id: string): Promise<void>;
  /** Remove the marker with this id (a no-op when it is not there). */
  removeMarker(id: string): Promise<void>;
}

/** 96 random bits: unguessable, and short enough for an interface name. */
export function newMarkerId(): string {
  return randomBytes(12).toString('hex');
}

interface LoopbackJson {
  altnames?: unknown;
  ifalias?: unknown;
}

/** The marker id in `ip -j link show dev lo` output, from an altname first, then from the ifalias. */
export function parseMarker(ipLinkJson: string): string | null {
  const lo = (JSON.parse(ipLinkJson) as LoopbackJson[])[0];
  const names = Array.isArray(lo?.altnames)
    ? lo.altnames.filter((n): n is string => typeof n === 'string')
    : [];
  const fromAltname = names.find((n) => n.startsWith(MARKER_PREFIX));
  if (fromAltname !== undefined) return fromAltname.slice(MARKER_PREFIX.length);
  if (typeof lo?.ifalias === 'string' && lo.ifalias.startsWith(MARKER_PREFIX))
    return lo.ifalias.slice(MARKER_PREFIX.length);
  return null;
}

export class RealNetnsIdentity implements NetnsIdentity {
  private readonly runner: CommandRunner;

  constructor(opts: ExecutorRunOptions = {}) {
    this.runner = runnerFor(opts);
  }

  async inode(): Promise<string> {
    // Run as a command so that it names the namespace the other executors run in (`ip netns exec`).
    const res = await runChecked(this.runner, 'readlink', ['/proc/self/ns/net']); // "net:[4026531840]"
    const inode = /\[(\d+)\]/.exec(res.stdout)?.[1];
    if (inode === undefined)
      throw new Error(`cannot tell the network namespace: readlink said "${res.stdout.trim()}"`);
    return inode;
  }

  async readMarker(): Promise<string | null> {
    return parseMarker((await runChecked(this.runner, 'ip', ['-j', 'link', 'show', 'dev', 'lo'])).stdout);
  }

  async writeMarker(id: string): Promise<void> {
    checkId(id);
    const name = MARKER_PREFIX + id;
    const altname = await this.runner.run('ip', ['link', 'property', 'add', 'dev', 'lo', 'altname', name]);
    if (altname.exitCode === 0) return;
    // No altnames (Linux < 5.5): lo's ifalias, but never over someone else's.
    const lo = JSON.parse(
      (await runChecked(this.runner, 'ip', ['-j', 'link', 'show', 'dev', 'lo'])).stdout,
    ) as LoopbackJson[];
    const alias = lo[0]?.ifalias;
    if (typeof alias === 'string' && alias !== '' && !alias.startsWith(MARKER_PREFIX)) {
      throw new Error(
        `cannot mark this network namespace: lo has no room for an altname (${altname.stderr.trim()}) and its alias "${alias}" is someone else's`,
      );
    }
    await runChecked(this.runner, 'ip', ['link', 'set', 'dev', 'lo', 'alias', name]);
  }

  async removeMarker(id: string): Promise<void> {
    checkId(id);
    const name = MARKER_PREFIX + id;
    const out = (await runChecked(this.runner, 'ip', ['-j', 'link', 'show', 'dev', 'lo'])).stdout;
    const lo = (JSON.parse(out) as LoopbackJson[])[0];
    if (Array.isArray(lo?.altnames) && lo.altnames.includes(name))
      await runChecked(this.runner, 'ip', ['link', 'property', 'del', 'dev', 'lo', 'altname', name]);
    if (lo?.ifalias === name) await runChecked(this.runner, 'ip', ['link', 'set', 'dev', 'lo', 'alias', '']);
  }
}

function checkId(id: string): void {
  if (!/^[0-9a-f]{1,64}$/.test(id)) throw new Error(`namespace marker id "${id}" is not lower-case hex`);
}

let fakeInodes = 0;

/** A namespace in memory: a fresh inode per instance unless given (to play a reused inode). */
export class FakeNetnsIdentity implements NetnsIdentity {
  marker: string | null = null;
  readonly inodeNumber: string;

  constructor(opts: { inode?: string } = {}) {
    this.inodeNumber = opts.inode ?? `${9_000_000 + process.pid * 1000 + ++fakeInodes}`;
  }

  async inode(): Promise<string> {
    return this.inodeNumber;
  }
  async readMarker(): Promise<string | null> {
    return this.marker;
  }
  async writeMarker(id: string): Promise<void> {
    checkId(id);
    this.marker = id;
  }
  async removeMarker(id: string): Promise<void> {
    if (this.marker === id) this.marker = null;
  }
}
