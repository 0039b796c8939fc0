// The kubectl habits of issue 13: `--version`, `-o text|json|yaml`, `-f` everywhere (old names as aliases),
// `--log-format`, shell completion generated from the command definitions, and commands that load only
// the modules they use.
import { describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { buildProgram } from '../../../src/cli/program.js';
import { completionScript } from '../../../src/cli/completion.js';
import { defaultLogFormat, formatLogLine } from '../../../src/cli/log-format.js';
import { runPortway, repoRoot } from '../../fixtures/cli-process.js';

const examples = join(repoRoot, 'examples/manifests');
const exampleConfig = join(repoRoot, 'examples/config.yaml');
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };

describe('--version and version', () => {
  it('both print the version', async () => {
    for (const args of [['--version'], ['version']]) {
      const r = await runPortway(args);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe(`portway ${pkg.version}`);
    }
  });
});

describe('-o yaml: the same document as -o json', () => {
  it.each([
    ['status', ['status', '-f', examples, '--config', exampleConfig]],
    ['render', ['render', '-f', examples, '--config', exampleConfig]],
    [
      'trace',
      [
        'trace',
        '-f',
        examples,
        '--config',
        exampleConfig,
        '--src',
        '10.99.0.100',
        '--dst',
        '10.96.0.10',
        '--dport',
        '80',
      ],
    ],
  ])('%s', async (_name, args) => {
    const [json, yaml] = await Promise.all([
      runPortway([...args, '-o', 'json']),
      runPortway([...args, '-o', 'yaml']),
    ]);
    expect(yaml.exitCode).toBe(0);
    expect(parseYaml(yaml.stdout)).toEqual(JSON.parse(json.stdout));
  });

  it('an unknown format is refused with exit 2, naming the choices', async () => {
    const r = await runPortway(['status', '-f', examples, '-o', 'xml']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("argument 'xml' is invalid. Allowed choices are text, json, yaml.");
  });
});

describe('the same input flags everywhere', () => {
  it('status: -f and the old --manifests give the same report; neither is a usage error', async () => {
    const [f, old] = await Promise.all([
      runPortway(['status', '-f', examples, '--config', exampleConfig]),
      runPortway(['status', '--manifests', examples, '--config', exampleConfig]),
    ]);
    expect(f.exitCode).toBe(0);
    expect(f.stdout).toBe(old.stdout);
    const none = await runPortway(['status']);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toBe('portway: give -f PATH… (manifests) or --kubeconfig FILE (a cluster)');
  });

  it('diff: -f is the after side (--after kept)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portway-conventions-'));
    const [f, old] = await Promise.all([
      runPortway(['diff', '--before', examples, '-f', dir, '--config', exampleConfig]),
      runPortway(['diff', '--before', examples, '--after', dir, '--config', exampleConfig]),
    ]);
    expect(f.exitCode).toBe(1);
    expect(f.stdout).toBe(old.stdout);
    const none = await runPortway(['diff', '--before', examples]);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('give the manifests after the change: -f PATH… (or --after)');
  });

  it('status and doctor take --kubeconfig (and refuse it together with -f)', async () => {
    const program = await buildProgram();
    for (const name of ['status', 'doctor']) {
      const longs = program.commands.find((c) => c.name() === name)!.options.map((o) => o.long);
      expect(longs).toEqual(
        expect.arrayContaining(['--filename', '--manifests', '--kubeconfig', '--master', '--output']),
      );
    }
    const r = await runPortway(['status', '-f', examples, '--kubeconfig', '/nonexistent']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('-f PATH… cannot be combined with --kubeconfig/--master');
  });
});

describe('--log-format', () => {
  it('text on a terminal, json otherwise', () => {
    expect(defaultLogFormat(true)).toBe('text');
    expect(defaultLogFormat(false)).toBe('json');
  });

  it('text: one line per record, time, level, message, then the fields; control characters escaped', () => {
    const line = formatLogLine(
      JSON.stringify({
        level: 40,
        time: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
        app: 'portway',
        pid: 1,
        hostname: 'h',
        msg: 'bad\nthing',
        file: 'a b.yaml',
        count: 3,
      }),
    );
    expect(line).toBe('2026-01-02T03:04:05.678Z WARN  bad\\nthing file="a b.yaml" count=3\n');
  });

  it('cleanup --log-format xml is refused with exit 2', async () => {
    const r = await runPortway(['cleanup', '--log-format', 'xml']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("argument 'xml' is invalid. Allowed choices are text, json.");
  });
});

describe('portway completion', () => {
  it('bash: sourced in a bash subprocess, completes commands, flags, -o values and the shell names', async () => {
    const script = completionScript(await buildProgram(), 'bash');
    const dir = mkdtempSync(join(tmpdir(), 'portway-completion-'));
    writeFileSync(join(dir, 'portway.bash'), script);
    // COMP_WORDS/COMP_CWORD as bash sets them for a TAB at the end of the line; print COMPREPLY.
    const complete = async (...words: string[]) => {
      const r = await execa('bash', [
        '-c',
        `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _portway; printf '%s\\n' "\${COMPREPLY[@]}"`,
        'bash',
        join(dir, 'portway.bash'),
        'portway',
        ...words,
      ]);
      return r.stdout.split('\n').filter((w) => w !== '');
    };
    expect(await complete('')).toEqual(
      expect.arrayContaining(['render', 'diff', 'run', 'trace', 'doctor', 'status', 'completion', 'version']),
    );
    expect(await complete('st')).toEqual(['status']);
    expect(await complete('status', '--kube')).toEqual(['--kubeconfig']);
    expect(await complete('status', '-o', '')).toEqual(['text', 'json', 'yaml']);
    expect(await complete('render', '-o', 'y')).toEqual(['yaml']);
    expect(await complete('run', '--log-f')).toEqual(['--log-format']);
    expect(await complete('completion', '')).toEqual(['bash', 'zsh']);
    // A group of subcommands: its subcommand, then that subcommand's flags and values.
    expect(await complete('config', '')).toEqual(['convert']);
    expect(await complete('config', 'convert', '--out')).toEqual(['--output']);
    expect(await complete('config', 'convert', '-o', '')).toEqual(['yaml', 'json']);
    // A flag added to a command shows up without touching the generator.
    const r = await runPortway(['completion', 'bash']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(script.trimEnd());
  });

  it('zsh: every command and flag is in the script; an unknown shell is exit 2', async () => {
    const script = completionScript(await buildProgram(), 'zsh');
    expect(script.startsWith('#compdef portway\n')).toBe(true);
    expect(script).toContain("'status:show LoadBalancer address assignments");
    expect(script).toContain("'(-o --output)--output[output format]:value:(text json yaml)'");
    expect(script).toContain("'1:completion:(bash zsh)'");
    expect(script).toContain("_values 'subcommand' convert");
    const bad = await runPortway(['completion', 'fish']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain(
      "value 'fish' is invalid for argument 'shell'. Allowed choices are bash, zsh.",
    );
  });
});

describe('start-up: a command loads only what it uses', () => {
  const loaded = async (args: string[]): Promise<string[]> => {
    const file = join(mkdtempSync(join(tmpdir(), 'portway-imports-')), 'urls');
    writeFileSync(file, '');
    const r = await execa(
      'node',
      [
        '--import',
        'tsx',
        '--import',
        join(repoRoot, 'test/fixtures/cli/record-imports.mjs'),
        join(repoRoot, 'src/cli/main.ts'),
        ...args,
      ],
      { cwd: repoRoot, reject: false, env: { PORTWAY_RECORD_IMPORTS: file } },
    );
    expect(r.exitCode).toBe(0);
    return readFileSync(file, 'utf8').split('\n');
  };
  const heavy =
    /@kubernetes\/client-node|prom-client|\/src\/(dataplane|l2|lb|ingress|sources|observe|render|sync)\//;

  it('version loads none of the Kubernetes client, metrics, pools/ARP, ingress, renderers or dataplane', async () => {
    const urls = await loaded(['version']);
    expect(urls.filter((u) => heavy.test(u))).toEqual([]);
    expect(urls.some((u) => u.includes('/src/cli/program.ts'))).toBe(true);
  });

  it('render loads the renderers but not the Kubernetes client, metrics or the ARP responder', async () => {
    const urls = await loaded(['render', '-f', examples, '--config', exampleConfig]);
    expect(urls.some((u) => u.includes('/src/render/iptables/'))).toBe(true);
    expect(urls.filter((u) => /@kubernetes\/client-node|prom-client|\/src\/l2\/(arp|ndp)/.test(u))).toEqual(
      [],
    );
  });
});
