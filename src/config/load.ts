// Reading the configuration file (YAML or JSON) at the edge; validation is parseConfig's job.
import { open } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ConfigError, defaultConfig, parseConfig, type Config } from './config.js';

/**
 * The largest configuration file read. A real one is a few kilobytes; the cap keeps a wrong path
 * (a device such as /dev/urandom, a log file) from being read without end.
 */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * The file's text, at most `limit` bytes: read in chunks (not by size: a device or pipe reports 0),
 * and refused as soon as it is longer.
 */
async function readCapped(path: string, limit: number): Promise<string> {
  const file = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    while (length <= limit) {
      const { bytesRead } = await file.read(buffer, length, limit + 1 - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > limit) throw new Error(`larger than ${limit} bytes (is this the configuration file?)`);
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await file.close();
  }
}

/** Load --config FILE (YAML or JSON; JSON is YAML). No file = the defaults. */
export async function loadConfigFile(path: string | undefined): Promise<Config> {
  if (path === undefined) return defaultConfig();
  let text: string;
  try {
    text = await readCapped(path, MAX_CONFIG_BYTES);
  } catch (e) {
    throw new ConfigError(path, [{ path: '', message: `cannot read file: ${(e as Error).message}` }]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new ConfigError(path, [{ path: '', message: `not valid YAML/JSON: ${(e as Error).message}` }]);
  }
  return parseConfig(raw ?? {}, path);
}
