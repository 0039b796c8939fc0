// Commander wiring of the agent commands: `portway run` and `portway cleanup`.
import type { Command } from 'commander';
import { destination, pino } from 'pino';
import type { Logger } from '../../observe/logger.js';
import { CliExit } from '../exit.js';
import { cleanup } from './cleanup.js';
import { runAgent } from './run.js';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** A pino logger writing JSON lines to stderr (stdout stays free for command output). */
export function createAgentLogger(level: string): Logger {
  if (!(LEVELS as readonly string[]).includes(level)) {
    throw new CliExit(2, `--log-level must be one of ${LEVELS.join(', ')} (got "${level}")`);
  }
  return pino({ level, base: { app: 'portway' } }, destination({ fd: 2, sync: true }));
}

export function registerAgentCommands(program: Command): void {
  program
    .command('run')
    .description('program this network namespace from a directory of manifests (watched), like kube-proxy')
    .requiredOption('--manifests <dir>', 'directory of Service/EndpointSlice/Node manifests (YAML or JSON)')
    .option('--config <file>', 'agent configuration (YAML or JSON)')
    .option('--once', 'sync once and exit (0 on success, 1 on failure)', false)
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .action(async (opts: { manifests: string; config?: string; once: boolean; logLevel: string }) => {
      const logger = createAgentLogger(opts.logLevel);
      const code = await runAgent({
        manifests: opts.manifests,
        ...(opts.config !== undefined ? { configPath: opts.config } : {}),
        once: opts.once,
        logger,
      });
      if (code !== 0) throw new CliExit(code);
    });

  program
    .command('cleanup')
    .description('remove every chain, built-in jump, ipset and sysctl change portway made in this network namespace')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .action(async (opts: { logLevel: string }) => {
      const report = await cleanup({ logger: createAgentLogger(opts.logLevel) });
      const chains = report.families.reduce((n, f) => n + f.chainsDeleted.length, 0);
      const jumps = report.families.reduce((n, f) => n + f.jumpsRemoved.length, 0);
      process.stdout.write(
        `removed ${chains} chain(s), ${jumps} built-in jump(s), ${report.ipsetsDestroyed.length} ipset(s); ` +
          `restored ${report.sysctlsReverted.length} sysctl(s)\n`,
      );
      if (report.errors.length > 0) throw new CliExit(1, report.errors.join('; '));
    });
}
