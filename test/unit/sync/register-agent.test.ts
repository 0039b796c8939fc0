import { describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { createAgentLogger, registerAgentCommands } from '../../../src/cli/commands/register-agent.js';

describe('registerAgentCommands', () => {
  it('adds run (source, config, bind addresses, --once, --allow-empty, --log-level) and cleanup', () => {
    const program = new Command();
    registerAgentCommands(program);
    const run = program.commands.find((c) => c.name() === 'run');
    expect(run?.options.map((o) => o.long)).toEqual([
      '--kubeconfig',
      '--master',
      '--manifests',
      '--config',
      '--metrics-bind-address',
      '--healthz-bind-address',
      '--once',
      '--allow-empty',
      '--log-level',
      '--log-format',
    ]);
    expect(program.commands.map((c) => c.name())).toEqual(['run', 'cleanup']);
  });

  const parse = async (args: string[]) => {
    const program = new Command().exitOverride();
    program.configureOutput({ writeErr: () => undefined });
    registerAgentCommands(program);
    program.commands.forEach((c) => c.exitOverride().configureOutput({ writeErr: () => undefined }));
    return program.parseAsync(args, { from: 'user' });
  };

  it('run with two sources is a usage error naming both', async () => {
    await expect(parse(['run', '--manifests', '/tmp/x', '--kubeconfig', '/tmp/k', '--once'])).rejects.toThrow(
      /--manifests cannot be combined with --kubeconfig\/--master/,
    );
  });

  it('a malformed bind address is a usage error naming the flag', async () => {
    await expect(parse(['run', '--manifests', '/tmp/x', '--metrics-bind-address', 'localhost', '--once'])).rejects.toThrow(
      /--metrics-bind-address: expected host:port, got "localhost"/,
    );
  });

  it('rejects an unknown log level by name', () => {
    expect(() => createAgentLogger('loud')).toThrow(/--log-level must be one of debug, info, warn, error \(got "loud"\)/);
  });
});
