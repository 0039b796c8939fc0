// The portway command line. Each command lives in ./commands; this file only wires them together
// and turns errors into exit codes (0 ok, 1 "differences found" for diff, 2 errors).
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/config.js';
import { registerAgentCommands } from './commands/register-agent.js';
import { registerConfigCommand } from './commands/config-convert.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerDryRunCommands } from './commands/dry-run.js';
import { registerStatusCommand } from './commands/status.js';
import { registerTraceCommand } from './commands/trace.js';
import { CliExit } from './exit.js';
import { PacketWalkError } from '../troubleshoot/packet-walker.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('portway')
    .description('kube-proxy-compatible service rules, LoadBalancer addresses and layer2 ARP for bare-metal Kubernetes')
    .exitOverride()
    .showHelpAfterError();
  program
    .command('version')
    .description('print the portway version')
    .action(() => {
      process.stdout.write(`portway ${pkg.version}\n`);
    });
  registerDryRunCommands(program);
  registerAgentCommands(program);
  registerTraceCommand(program);
  registerDoctorCommand(program);
  registerStatusCommand(program);
  registerConfigCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CliExit) {
      if (e.message) process.stderr.write(`portway: ${e.message}\n`);
      return e.code;
    }
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    // A rule the walker cannot evaluate, or a fact it needs and will not guess: a clear message, no stack.
    if (e instanceof PacketWalkError) {
      process.stderr.write(`portway: trace: ${e.message}\n`);
      return 2;
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`portway: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`portway: ${(e as Error).stack ?? String(e)}\n`);
    return 2;
  }
}
