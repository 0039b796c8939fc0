// Reading the configuration file (YAML or JSON) at the edge; validation is parseConfig's job.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ConfigError, defaultConfig, parseConfig, type Config } from './config.js';

/** Load --config FILE (YAML or JSON; JSON is YAML). No file = the defaults. */
export async function loadConfigFile(path: string | undefined): Promise<Config> {
  if (path === undefined) return defaultConfig();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
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
