// The portway command line. Each command lives in ./commands; this file only wires them together
// and turns errors into exit codes (0 ok, 1 "differences found" for diff, 2 errors).
//
// Start-up: a command's module pulls in what it runs on (the renderers, the Kubernetes client, metrics,
// the ARP addon…), together most of a second of module loading. Only the module of the command named on
// the command line is imported; help, completion and an unknown command load them all. `version`
// loads none.
import { readFileSync } from 'node:fs';
import { Argument, Command, CommanderError } from 'commander';
import { CliExit } from './exit.js';
import { completionScript, COMPLETION_SHELLS, type CompletionShell } from './completion.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

type Register = (program: Command) => void;

/** Each command module, the commands it registers, and how to load it. */
const COMMAND_MODULES: ReadonlyArray<{ commands: readonly string[]; load: () => Promise<Register> }> = [
  {
    commands: ['render', 'diff'],
    load: async () => (await import('./commands/dry-run.js')).registerDryRunCommands,
  },
  {
    commands: ['run', 'cleanup'],
    load: async () => (await import('./commands/register-agent.js')).registerAgentCommands,
  },
  { commands: ['trace'], load: async () => (await import('./commands/trace.js')).registerTraceCommand },
  { commands: ['doctor'], load: async () => (await import('./commands/doctor.js')).registerDoctorCommand },
  { commands: ['status'], load: async () => (await import('./commands/status.js')).registerStatusCommand },
  {
    commands: ['config'],
    load: async () => (await import('./commands/config-convert.js')).registerConfigCommand,
  },
];

/** The command named on the command line: the first word that is not an option. */
function commandOf(argv: readonly string[]): string | undefined {
  return argv.find((a) => !a.startsWith('-'));
}

/**
 * The program with every command (help, completion), or with only the commands argv needs: the module
 * of the command it names, none for `version`/`completion`'s own parsing, all when it names none known.
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  const program = new Command();
  program
    .name('portway')
    .description(
      'kube-proxy-compatible service rules, LoadBalancer addresses and layer2 ARP for bare-metal Kubernetes',
    )
    .version(`portway ${pkg.version}`, '--version', 'print the portway version')
    .exitOverride()
    .showHelpAfterError();
  program
    .command('version')
    .description('print the portway version')
    .action(() => {
      process.stdout.write(`portway ${pkg.version}\n`);
    });
  program
    .command('completion')
    .description('print a shell completion script: source <(portway completion bash), or zsh')
    .addArgument(new Argument('<shell>', 'the shell').choices(COMPLETION_SHELLS))
    .action(async (shell: CompletionShell) => {
      // Generated from the command definitions, so it cannot drift from them.
      process.stdout.write(completionScript(await buildProgram(), shell));
    });
  const named = argv === undefined ? undefined : commandOf(argv);
  const own = named === 'version' || named === 'completion';
  const wanted = COMMAND_MODULES.filter((m) => named === undefined || (!own && m.commands.includes(named)));
  const modules = wanted.length > 0 || own ? wanted : COMMAND_MODULES;
  // One after the other: the order of the commands in help stays fixed (and jest's ESM runtime
  // mislinks modules imported concurrently).
  for (const m of modules) (await m.load())(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await (await buildProgram(argv)).parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CliExit) {
      if (e.message) process.stderr.write(`portway: ${e.message}\n`);
      return e.code;
    }
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    // The classes of errors thrown by modules loaded on demand are imported only now, on the error path:
    // importing them above would load those modules for every command.
    const { PacketWalkError } = await import('../troubleshoot/packet-walker.js');
    const { ConfigError } = await import('../config/config.js');
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
