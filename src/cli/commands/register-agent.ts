// Commander wiring of the agent commands: `portway run` and `portway cleanup`.
import type { Command } from 'commander';
import { destination, pino } from 'pino';
import { parseBindAddress } from '../../observe/http-server.js';
import type { Logger } from '../../observe/logger.js';
import { CliExit } from '../exit.js';
import { defaultLogFormat, LOG_FORMATS, logFormatOption, textLogStream } from '../log-format.js';
import { cleanup } from './cleanup.js';
import { runAgent } from './run.js';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

interface RunFlags {
  kubeconfig?: string;
  master?: string;
  manifests?: string;
  config?: string;
  metricsBindAddress?: string;
  healthzBindAddress?: string;
  once: boolean;
  allowEmpty: boolean;
  logLevel: string;
  logFormat?: string;
}

/**
 * A pino logger writing to stderr (stdout stays free for command output): JSON lines, or with
 * `format: 'text'` one readable line per record. Default: text on a terminal, JSON otherwise (a pod's
 * log, a pipe), as kubectl users expect from components.
 */
export function createAgentLogger(level: string, format: string = defaultLogFormat()): Logger {
  if (!(LEVELS as readonly string[]).includes(level)) {
    throw new CliExit(2, `--log-level must be one of ${LEVELS.join(', ')} (got "${level}")`);
  }
  if (!(LOG_FORMATS as readonly string[]).includes(format)) {
    throw new CliExit(2, `--log-format must be one of ${LOG_FORMATS.join(', ')} (got "${format}")`);
  }
  const stderr = destination({ fd: 2, sync: true });
  return pino({ level, base: { app: 'portway' } }, format === 'json' ? stderr : textLogStream(stderr));
}

export function registerAgentCommands(program: Command): void {
  program
    .command('run')
    .description(
      'program this network namespace like kube-proxy, from the API (--kubeconfig/--master, or in-cluster) ' +
        'or from a watched directory of manifests (--manifests)',
    )
    .option('--kubeconfig <file>', 'kubeconfig of the API server to watch (cluster mode)')
    .option('--master <url>', 'API server URL (overrides the kubeconfig’s server; alone: no credentials)')
    .option(
      '--manifests <path>',
      'directory (or one file) of Service/EndpointSlice/Node manifests, YAML or JSON (manifest mode)',
    )
    .option('--config <file>', 'agent configuration (YAML or JSON)')
    .option('--metrics-bind-address <host:port>', 'serve /metrics here (overrides metricsBindAddress)')
    .option(
      '--healthz-bind-address <host:port>',
      'serve /healthz, /livez, /readyz here (overrides healthzBindAddress)',
    )
    .option(
      '--once',
      'sync once and exit (0 on success, 1 on failure, 2 when the source cannot be read or believed)',
      false,
    )
    .option(
      '--allow-empty',
      'manifest mode: believe a directory or file with no Service at start (removes every Service rule); ' +
        'without it an empty source is refused',
      false,
    )
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .addOption(logFormatOption())
    .addHelpText(
      'after',
      '\nExactly one source: --manifests, or --kubeconfig and/or --master. With none of them, inside a pod\n' +
        '(KUBERNETES_SERVICE_HOST set, service-account token mounted) the in-cluster config is used.\n' +
        'Node name: nodeName in the config, else $NODE_NAME, else the host name.\n' +
        'A --manifests path that is missing or unreadable is never synced from (--once: exit 2; running: not\n' +
        'ready until it is back); one with no Service is refused at start unless --allow-empty is given.',
    )
    .action(async (opts: RunFlags) => {
      for (const [flag, value] of [
        ['--metrics-bind-address', opts.metricsBindAddress],
        ['--healthz-bind-address', opts.healthzBindAddress],
      ] as const) {
        if (value === undefined) continue;
        try {
          parseBindAddress(value, flag);
        } catch (e) {
          throw new CliExit(2, (e as Error).message);
        }
      }
      if (opts.manifests !== undefined && (opts.kubeconfig !== undefined || opts.master !== undefined)) {
        throw new CliExit(
          2,
          '--manifests cannot be combined with --kubeconfig/--master: give exactly one source',
        );
      }
      const logger = createAgentLogger(opts.logLevel, opts.logFormat);
      const code = await runAgent({
        ...(opts.manifests !== undefined ? { manifests: opts.manifests } : {}),
        ...(opts.kubeconfig !== undefined ? { kubeconfig: opts.kubeconfig } : {}),
        ...(opts.master !== undefined ? { master: opts.master } : {}),
        ...(opts.config !== undefined ? { configPath: opts.config } : {}),
        ...(opts.metricsBindAddress !== undefined ? { metricsBindAddress: opts.metricsBindAddress } : {}),
        ...(opts.healthzBindAddress !== undefined ? { healthzBindAddress: opts.healthzBindAddress } : {}),
        once: opts.once,
        allowEmpty: opts.allowEmpty,
        logger,
      });
      if (code !== 0) throw new CliExit(code);
    });

  program
    .command('cleanup')
    .description(
      'remove every chain, built-in jump, ipset, IPVS virtual server, kube-ipvs0 and sysctl change portway made in this network namespace',
    )
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .addOption(logFormatOption())
    .action(async (opts: { logLevel: string; logFormat?: string }) => {
      const report = await cleanup({ logger: createAgentLogger(opts.logLevel, opts.logFormat) });
      const chains = report.families.reduce((n, f) => n + f.chainsDeleted.length, 0);
      const jumps = report.families.reduce((n, f) => n + f.jumpsRemoved.length, 0);
      process.stdout.write(
        `removed ${chains} chain(s), ${jumps} built-in jump(s), ${report.ipsetsDestroyed.length} ipset(s), ` +
          `${report.virtualServersDeleted.length} IPVS virtual server(s)${report.kubeIpvs0Deleted ? ', kube-ipvs0' : ''}; ` +
          `restored ${report.sysctlsReverted.length} sysctl(s)\n`,
      );
      if (report.errors.length > 0) throw new CliExit(1, report.errors.join('; '));
    });
}
