// Lists portway keeps on disk across restarts of the agent (what it changed, so that `portway cleanup`
// undoes exactly that). Two rules make a full or broken disk survivable:
//  - a file is replaced atomically (temporary file, fsync, rename, fsync of the directory), so a failed
//    write (ENOSPC, EROFS, a crash) leaves the previous content, never an empty or half-written file;
//  - a file that cannot be read or parsed is reported and read as empty: the agent and cleanup keep
//    going. Reading it as empty is the safe direction — portway then undoes less, never something it
//    did not do.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../observe/logger.js';

/** A list portway keeps across restarts of the agent (and reads back in `portway cleanup`). */
export interface Journal<T> {
  load(): Promise<T[]>;
  /** Durable once it resolves; throws (and leaves the previous list) when it cannot be written. */
  save(items: T[]): Promise<void>;
  clear(): Promise<void>;
}

/**
 * Replace `path` with `text` so that readers see either the old or the new content: write a sibling
 * temporary file, fsync it, rename it over `path`, fsync the directory (the rename itself is durable).
 * On failure the temporary file is removed and the error says which file could not be written.
 */
export async function writeFileAtomically(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    const file = await open(tmp, 'wx', 0o600);
    try {
      await file.writeFile(text);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`cannot write ${path}${code ? ` (${code})` : ''}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  // The rename is in place; making it durable is best effort (some filesystems refuse fsync on a directory).
  const d = await open(dir, 'r').catch(() => null);
  if (d) {
    await d.sync().catch(() => undefined);
    await d.close();
  }
}

/**
 * A JSON-array file journal. `isItem` drops entries of the wrong shape (a hand-edited or older file)
 * instead of trusting them; an unreadable file is logged (once per content) and read as empty.
 */
export class JsonFileJournal<T> implements Journal<T> {
  private reported = '';

  constructor(
    readonly path: string,
    private readonly isItem: (x: unknown) => x is T,
    private readonly what: string,
    private readonly logger?: Logger,
  ) {}

  async load(): Promise<T[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      this.reportUnreadable((e as Error).message, '');
      return [];
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      this.reportUnreadable(text === '' ? 'the file is empty' : (e as Error).message, text);
      return [];
    }
    if (!Array.isArray(parsed)) {
      this.reportUnreadable(`expected a JSON array of ${this.what}`, text);
      return [];
    }
    return parsed.filter(this.isItem);
  }

  async save(items: T[]): Promise<void> {
    await writeFileAtomically(this.path, JSON.stringify(items, null, 2) + '\n');
  }

  async clear(): Promise<void> {
    await rm(this.path, { force: true });
  }

  private reportUnreadable(problem: string, text: string): void {
    const key = `${problem}\0${text}`;
    if (key === this.reported) return;
    this.reported = key;
    this.logger?.warn(
      { path: this.path, problem },
      `state file unreadable: read as no ${this.what} recorded (the next change rewrites it)`,
    );
  }
}

export class MemoryJournal<T> implements Journal<T> {
  items: T[] = [];
  async load(): Promise<T[]> {
    return [...this.items];
  }
  async save(items: T[]): Promise<void> {
    this.items = [...items];
  }
  async clear(): Promise<void> {
    this.items = [];
  }
}

/** Where nothing can be recorded (the namespace could not be marked): reads empty, refuses every save. */
export class UnavailableJournal<T> implements Journal<T> {
  constructor(private readonly reason: string) {}
  async load(): Promise<T[]> {
    return [];
  }
  async save(): Promise<void> {
    throw new Error(this.reason);
  }
  async clear(): Promise<void> {}
}
