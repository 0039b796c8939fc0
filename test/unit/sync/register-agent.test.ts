import { describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { createAgentLogger, registerAgentCommands } from '../../../src/cli/commands/register-agent.js';

describe('registerAgentCommands', () => {
  it('adds run (--manifests --config --once --log-level) and cleanup', () => {
    const program = new Command();
    registerAgentCommands(program);
    const run = program.commands.find((c) => c.name() === 'run');
    expect(run?.options.map((o) => o.long)).toEqual(['--manifests', '--config', '--once', '--log-level']);
    expect(program.commands.map((c) => c.name())).toEqual(['run', 'cleanup']);
  });

  it('run without --manifests is a usage error', async () => {
    const program = new Command().exitOverride();
    program.configureOutput({ writeErr: () => undefined });
    registerAgentCommands(program);
    program.commands.forEach((c) => c.exitOverride().configureOutput({ writeErr: () => undefined }));
    await expect(program.parseAsync(['run', '--once'], { from: 'user' })).rejects.toThrow(/--manifests <dir>/);
  });

  it('rejects an unknown log level by name', () => {
    expect(() => createAgentLogger('loud')).toThrow(/--log-level must be one of debug, info, warn, error \(got "loud"\)/);
  });
});
