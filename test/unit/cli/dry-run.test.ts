// The dry-run CLI as a CI pipeline runs it: a real process, real files, exit codes and output.
import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../../', import.meta.url).pathname;
const portway = (args: string[], input?: string) =>
  execa('node', ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], {
    cwd: root,
    reject: false,
    input: input ?? '',
  });
const examples = join(root, 'examples/manifests');
const config = join(root, 'examples/config.yaml');
const fixtures = join(root, 'test/fixtures/cli');

describe('portway render', () => {
  it('prints a deterministic restore payload for the examples', async () => {
    const a = await portway(['render', '-f', examples, '--config', config]);
    expect(a.stderr).toBe('');
    expect(a.exitCode).toBe(0);
    expect(a.stdout).toMatch(/^\*filter$/m);
    expect(a.stdout).toMatch(/^\*nat$/m);
    expect(a.stdout).toContain('-A KUBE-SERVICES');
    expect(a.stdout).toContain('demo/hello:http cluster IP');
    expect(a.stdout).toMatch(/--dport 30080/);
    const b = await portway(['render', '-f', examples, '--config', config]);
    expect(b.stdout).toBe(a.stdout);
  });

  it('reads stdin and renders json', async () => {
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(join(examples, 'hello.yaml'), 'utf8');
    const r = await portway(['render', '-f', '-', '-o', 'json'], text);
    expect(r.exitCode).toBe(0);
    const parsed = JSON.parse(r.stdout) as { family: string; tables: Array<{ name: string }> };
    expect(parsed.family).toBe('IPv4');
    expect(parsed.tables.map((t) => t.name)).toEqual(['filter', 'nat']);
  });

  it('uses the address the pool allocator gives a LoadBalancer Service, as the agent does', async () => {
    const r = await portway(['render', '-f', join(fixtures, 'pool.yaml')]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/"team-b\/shop:https loadbalancer IP" -m tcp -p tcp -d 192\.0\.2\.200 --dport 443/);
  });

  it('renders the IPv6 family separately', async () => {
    const r = await portway(['render', '-f', examples, '--family', 'ipv6']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toContain('10.96.0.10');
  });

  it('reports a malformed object with file, object and field, and renders the rest', async () => {
    const r = await portway(['render', '-f', join(fixtures, 'malformed.yaml')]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/malformed\.yaml.*team-a\/broken.*spec\.ports\[0\]\.port/);
    expect(r.stdout).toContain('10.96.1.1');
    expect(r.stdout).not.toContain('10.96.1.2');
  });

  it('--strict turns a report into exit 2 with nothing on stdout', async () => {
    const r = await portway(['render', '--strict', '-f', join(fixtures, 'malformed.yaml')]);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/team-a\/broken/);
  });

  it('rejects a config with an unknown key, naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-cli-'));
    writeFileSync(join(dir, 'c.yaml'), 'nodeName: a\nmasqueradeAl: true\n');
    const r = await portway(['render', '-f', examples, '--config', join(dir, 'c.yaml')]);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/masqueradeAl: unknown key/);
  });
});

describe('portway diff', () => {
  it('exits 0 when nothing changes', async () => {
    const r = await portway(['diff', '--before', examples, '--after', examples, '--config', config]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/No changes/);
  });

  it('exits 1 and names the Service when an endpoint is added', async () => {
    const after = [examples, join(fixtures, 'scale-up.yaml')];
    const r = await portway(['diff', '--before', examples, '--after', ...after, '--config', config]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('Service demo/hello:http/tcp');
    expect(r.stdout).toContain('Service demo/hello:echo-udp/udp');
    expect(r.stdout).toMatch(/\+ -A KUBE-SEP-\S+ .*--to-destination 10\.244\.2\.12:8080/);
    expect(r.stdout).toMatch(/2 service port\(s\) affected/);
    const md = await portway(['diff', '--before', examples, '--after', ...after, '--config', config, '-o', 'markdown']);
    expect(md.exitCode).toBe(1);
    expect(md.stdout).toContain('| `demo/hello:http/tcp` |');
    const json = await portway(['diff', '--before', examples, '--after', ...after, '-o', 'json']);
    expect(JSON.parse(json.stdout).summary.servicePortsAffected).toBe(2);
  });

  it('exits 2 on an unreadable input', async () => {
    const r = await portway(['diff', '--before', '/nonexistent/dir', '--after', examples]);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/before: no such file or directory: \/nonexistent\/dir/);
  });
});
