// Where portway keeps what it changed in one network namespace: <stateDir>/netns-<inode>-<marker id>/.
// The inode names the namespace among live ones; the marker id (src/dataplane/netns-identity.ts) proves
// the directory was written in this namespace and not in a dead one whose inode was reused. Directories
// of this inode with another (or no) marker id belong to such a dead namespace: they are removed unread,
// so their sysctl values and chains are never applied here.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { newMarkerId, type NetnsIdentity } from '../dataplane/netns-identity.js';
import type { Logger } from '../observe/logger.js';
import { UnavailableJournal } from './journal.js';
import {
  FileSharedChainsJournal,
  FileSysctlJournal,
  type SharedChainRecord,
  type SharedChainsJournal,
  type SysctlChange,
  type SysctlJournal,
} from './sysctls.js';

/** The state root when none is given (a hostPath in the chart). */
export const DEFAULT_STATE_DIR = '/run/portway';

export interface NetnsStateOptions {
  /** The root, /run/portway by default (a hostPath in the chart, so a container restart keeps it). */
  stateDir: string;
  identity: NetnsIdentity;
  logger: Logger;
}

export class NetnsState {
  readonly sysctlJournal: SysctlJournal;
  readonly sharedChainsJournal: SharedChainsJournal;

  private constructor(
    private readonly opts: NetnsStateOptions,
    /** null when nothing can be recorded: `unavailable` says why. */
    readonly dir: string | null,
    private readonly markerId: string | null,
    readonly unavailable?: string,
  ) {
    if (dir !== null) {
      this.sysctlJournal = new FileSysctlJournal(join(dir, 'sysctl-changes.json'), opts.logger);
      this.sharedChainsJournal = new FileSharedChainsJournal(join(dir, 'shared-chains.json'), opts.logger);
    } else {
      const reason = `cannot record state for this network namespace: ${unavailable ?? 'unknown'}`;
      this.sysctlJournal = new UnavailableJournal<SysctlChange>(reason);
      this.sharedChainsJournal = new UnavailableJournal<SharedChainRecord>(reason);
    }
  }

  /**
   * For the agent: this namespace's state, marking the namespace first when it has no marker yet.
   * Never throws: when the namespace cannot be told or marked, the journals refuse every save (so
   * nothing is changed that could not be undone) and `unavailable` says why.
   */
  static async open(opts: NetnsStateOptions): Promise<NetnsState> {
    try {
      const inode = await opts.identity.inode();
      let id = await opts.identity.readMarker();
      if (id === null) {
        id = newMarkerId();
        await opts.identity.writeMarker(id);
        opts.logger.info({ inode, marker: id }, 'marked this network namespace for portway’s state');
      }
      await removeDeadNamespaceState(opts, inode, id);
      return new NetnsState(opts, join(opts.stateDir, `netns-${inode}-${id}`), id);
    } catch (err) {
      const why = (err as Error).message;
      opts.logger.error(
        { err: why, stateDir: opts.stateDir },
        'cannot keep state for this network namespace; nothing will be changed that would need it',
      );
      return new NetnsState(opts, null, null, why);
    }
  }

  /**
   * For cleanup: this namespace's state, or null when portway recorded nothing here (no marker).
   * Throws when the namespace cannot be told.
   */
  static async find(opts: NetnsStateOptions): Promise<NetnsState | null> {
    const inode = await opts.identity.inode();
    const id = await opts.identity.readMarker();
    await removeDeadNamespaceState(opts, inode, id);
    return id === null ? null : new NetnsState(opts, join(opts.stateDir, `netns-${inode}-${id}`), id);
  }

  /** Cleanup is complete: forget everything, the directory and the marker. */
  async remove(): Promise<void> {
    if (this.dir !== null) await rm(this.dir, { recursive: true, force: true });
    if (this.markerId !== null) await this.opts.identity.removeMarker(this.markerId);
  }
}

/** Remove netns-<inode> (portway before markers) and netns-<inode>-<other id>: a dead namespace's. */
async function removeDeadNamespaceState(
  opts: NetnsStateOptions,
  inode: string,
  id: string | null,
): Promise<void> {
  let names: string[];
  try {
    names = await readdir(opts.stateDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      opts.logger.warn(
        { stateDir: opts.stateDir, err: (err as Error).message },
        'cannot list the state directory',
      );
    return;
  }
  const ours = id === null ? null : `netns-${inode}-${id}`;
  for (const name of names) {
    if (name === ours || !isRecordOfInode(name, inode)) continue;
    await rm(join(opts.stateDir, name), { recursive: true, force: true });
    opts.logger.warn(
      { dir: join(opts.stateDir, name), inode },
      'removed state left by a network namespace that no longer exists (its inode is reused); none of it was applied',
    );
  }
}

/** A directory name under the state root that holds a record for the namespace with this inode (any marker, or none). */
function isRecordOfInode(name: string, inode: string): boolean {
  return name === `netns-${inode}` || name.startsWith(`netns-${inode}-`);
}

/** Remove every record kept for the namespace with this inode: for teardowns, once the namespace is deleted. */
export async function forgetNetnsState(inode: string, stateDir = DEFAULT_STATE_DIR): Promise<void> {
  const names = await readdir(stateDir).catch(() => [] as string[]);
  for (const name of names) if (isRecordOfInode(name, inode)) await rm(join(stateDir, name), { recursive: true, force: true });
}
