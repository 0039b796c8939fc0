import {
  CommandError,
  ExecaRunner,
  isAlreadyExists,
  isCommandMissing,
  isLockTimeout,
  isNotFound,
  isTimeout,
  parseRestoreFailureLine,
  RecordingRunner,
  RestoreError,
  runChecked,
} from '../../../src/dataplane/exec.js';

describe('parseRestoreFailureLine', () => {
  it.each([
    ["iptables-restore v1.8.9 (nf_tables): Chain 'B' does not exist\nError occurred at line: 5\n", 5],
    ['iptables-restore: line 2 failed: No chain/target/match by that name.\n', 2],
    ['iptables-restore v1.8.9 (nf_tables): \nline 4: CHAIN_DEL failed (Device or resource busy): chain A\n', 4],
    ['iptables-restore: COMMIT expected at line 4\n', 4],
    ['ipset v7.17: Error in line 3: The set with the given name does not exist\n', 3],
    ['something else entirely', null],
  ])('finds the line in %j', (stderr, line) => {
    expect(parseRestoreFailureLine(stderr)).toBe(line);
  });
});

describe('RestoreError', () => {
  it('carries the failing line and its neighbours', () => {
    const payload = ['*nat', ':A - [0:0]', ':B - [0:0]', '-A A -j C', '-A B -j RETURN', 'COMMIT', ''].join('\n');
    const err = new RestoreError({
      command: 'iptables-nft-restore',
      args: ['-w', '5', '--noflush'],
      exitCode: 2,
      stderr: "iptables-restore v1.8.9 (nf_tables): Chain 'C' does not exist\nError occurred at line: 4\n",
      durationMs: 12,
      payload,
    });
    expect(err).toBeInstanceOf(CommandError);
    expect(err.line).toBe(4);
    expect(err.lineText).toBe('-A A -j C');
    expect(err.neighbours.map((l) => l.number)).toEqual([2, 3, 4, 5, 6]);
    expect(err.message).toContain('line 4 "-A A -j C"');
    expect(err.message).toContain('exited with code 2');
  });
});

describe('classifiers', () => {
  const err = (stderr: string, extra: Partial<ConstructorParameters<typeof CommandError>[0]> = {}) =>
    new CommandError({ command: 'x', args: [], exitCode: 1, stderr, durationMs: 1, ...extra });
  it('recognises the xtables lock timeout', () => {
    expect(isLockTimeout(err('Another app is currently holding the xtables lock. Stopped waiting after 5s.'))).toBe(true);
    expect(isLockTimeout(err('Bad rule'))).toBe(false);
    expect(isLockTimeout(new Error('xtables lock'))).toBe(false);
  });
  it('recognises missing objects, existing objects, missing binaries and timeouts', () => {
    expect(isNotFound(err('iptables: Bad rule (does a matching rule exist in that chain?).'))).toBe(true);
    expect(isNotFound(err('ipset v7.17: The set with the given name does not exist'))).toBe(true);
    expect(isNotFound(err('Cannot find device "kube-ipvs0"'))).toBe(true);
    expect(isAlreadyExists(err('RTNETLINK answers: File exists'))).toBe(true);
    expect(isCommandMissing(err('', { exitCode: null, code: 'ENOENT' }))).toBe(true);
    expect(isNotFound(err('', { exitCode: null, code: 'ENOENT' }))).toBe(false);
    expect(isTimeout(err('', { exitCode: null, timedOut: true }))).toBe(true);
  });
});

describe('ExecaRunner', () => {
  it('returns output and exit code without throwing on non-zero exit', async () => {
    const r = new ExecaRunner();
    const ok = await r.run('node', ['-e', 'process.stdin.pipe(process.stdout)'], { input: 'hello' });
    expect(ok).toMatchObject({ stdout: 'hello', exitCode: 0 });
    const bad = await r.run('node', ['-e', 'console.error("nope"); process.exit(3)']);
    expect(bad.exitCode).toBe(3);
    expect(bad.stderr).toContain('nope');
    expect(bad.durationMs).toBeGreaterThan(0);
  });
  it('throws a CommandError for a missing binary and for a timeout', async () => {
    const r = new ExecaRunner();
    const missing = await r.run('portway-no-such-binary', []).catch((e: unknown) => e);
    expect(isCommandMissing(missing)).toBe(true);
    const slow = await r.run('node', ['-e', 'setTimeout(() => {}, 10000)'], { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(isTimeout(slow)).toBe(true);
  });
  it('runChecked turns a bad exit into a CommandError with the arguments', async () => {
    const runner = new RecordingRunner().on('ipset destroy', { exitCode: 1, stderr: 'ipset v7.17: The set with the given name does not exist' });
    const e = await runChecked(runner, 'ipset', ['destroy', 'X']).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandError);
    expect((e as CommandError).args).toEqual(['destroy', 'X']);
    expect(isNotFound(e)).toBe(true);
  });
});
