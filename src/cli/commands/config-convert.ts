// `portway config convert -f FILE [-o yaml|json]`: the portway configuration a kube-proxy configuration
// (a KubeProxyConfiguration, or kubeadm's kube-proxy ConfigMap) amounts to, on stdout; one line per
// kube-proxy field portway does not implement on stderr. The same translation `--config` applies.
import type { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import {
  MAX_CONFIG_BYTES,
  parseConfigText,
  readConfigFile,
  warnOnStderr,
  type LoadedConfig,
} from '../../config/load.js';
import { CliExit } from '../exit.js';
import { outputOption } from '../output.js';

const OUTPUTS = ['yaml', 'json'] as const;

/** The converted document as text: YAML with a header naming the source, or JSON. Pure. */
export function formatConvertedConfig(document: unknown, source: string, output: 'yaml' | 'json'): string {
  if (output === 'json') return `${JSON.stringify(document, null, 2)}\n`;
  return `# portway configuration converted from ${source} by \`portway config convert\`\n${toYaml(document)}`;
}

export function registerConfigCommand(program: Command): void {
  const config = program.command('config').description('work with configuration files');
  config
    .command('convert')
    .description(
      "print the portway configuration equivalent to a kube-proxy KubeProxyConfiguration (or kubeadm's kube-proxy " +
        'ConfigMap); fields portway does not implement are listed on stderr',
    )
    .requiredOption('-f, --filename <file>', 'the configuration file ("-" for stdin)')
    .addOption(outputOption(OUTPUTS, 'yaml'))
    .action(async (opts: { filename: string; output: string }) => {
      const { document, warnings } =
        opts.filename === '-' ? await readStdinConfig() : await readConfigFile(opts.filename);
      warnings.forEach((line) => warnOnStderr(line));
      process.stdout.write(formatConvertedConfig(document, opts.filename, opts.output as 'yaml' | 'json'));
    });
}

/** The configuration piped in (`-f -`), at most MAX_CONFIG_BYTES. */
async function readStdinConfig(): Promise<LoadedConfig> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > MAX_CONFIG_BYTES) throw new CliExit(2, `stdin: larger than ${MAX_CONFIG_BYTES} bytes`);
    chunks.push(chunk);
  }
  return parseConfigText(Buffer.concat(chunks).toString('utf8'), 'stdin');
}
