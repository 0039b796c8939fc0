// Reading the configuration file (YAML or JSON) at the edge; validation is parseConfig's job.
import { open } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ConfigError, defaultConfig, parseConfig, type Config } from './config.js';
import { configDocumentKind, parseKubeProxyDocument } from './kube-proxy.js';

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

/** A loaded configuration and the warnings about what in the file portway does not implement. */
export interface LoadedConfig {
  config: Config;
  /**
   * The portway configuration document the file amounts to: the file itself when it is portway's, the
   * translation when it is kube-proxy's (what `portway config convert` prints).
   */
  document: unknown;
  /** One line each, naming the file and the field (KubeProxyConfiguration fields portway lacks). */
  warnings: string[];
}

/**
 * Read --config FILE (YAML or JSON; JSON is YAML): portway's configuration, a KubeProxyConfiguration
 * (kubeproxy.config.k8s.io/v1alpha1), or kubeadm's `kube-proxy` ConfigMap holding one in `config.conf`.
 * No file = the defaults. Throws ConfigError.
 */
export async function readConfigFile(path: string | undefined): Promise<LoadedConfig> {
  if (path === undefined) return { config: defaultConfig(), document: {}, warnings: [] };
  let text: string;
  try {
    text = await readCapped(path, MAX_CONFIG_BYTES);
  } catch (e) {
    throw new ConfigError(path, [{ path: '', message: `cannot read file: ${(e as Error).message}` }]);
  }
  return parseConfigText(text, path);
}

/** The text of a configuration file (see readConfigFile), named `source` in errors and warnings. Pure. */
export function parseConfigText(text: string, source: string): LoadedConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new ConfigError(source, [{ path: '', message: `not valid YAML/JSON: ${(e as Error).message}` }]);
  }
  if (configDocumentKind(raw) === 'portway') {
    return { config: parseConfig(raw ?? {}, source), document: raw ?? {}, warnings: [] };
  }
  const { config, document, warnings } = parseKubeProxyDocument(raw, source);
  return { config, document, warnings: warnings.map((w) => `${source}: ${w}`) };
}

/** Where loadConfigFile's warnings go unless told otherwise: one "portway: warning:" line each on stderr. */
export function warnOnStderr(line: string): void {
  process.stderr.write(`portway: warning: ${line}\n`);
}

/**
 * Load --config FILE for a command (see readConfigFile); each warning goes to `warn` (default: stderr),
 * so every command that takes --config reports a KubeProxyConfiguration's unimplemented fields.
 */
export async function loadConfigFile(
  path: string | undefined,
  warn: (line: string) => void = warnOnStderr,
): Promise<Config> {
  const { config, warnings } = await readConfigFile(path);
  for (const line of warnings) warn(line);
  return config;
}
