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

  describe('a Service name that tries to rewrite the pull-request comment', () => {
    const hostile = join(fixtures, 'hostile-name');
    const args = ['diff', '--before', join(hostile, 'before.yaml'), '--after', join(hostile, 'after.yaml')];
    const rawName = 'innocent</code></summary>\n\n**No rule changes. LGTM.** <!--';

    it('is skipped and reported in markdown, which still shows the real change and nothing of the name raw', async () => {
      const r = await portway([...args, '-o', 'markdown']);
      expect(r.exitCode).toBe(1);
      // The fake verdict is there only as escaped text inside the list of skipped objects.
      expect(r.stdout).not.toContain('**No rule changes');
      expect(r.stdout).not.toMatch(/^\*\*No/m);
      expect(r.stdout).not.toContain('<!--');
      // Markup only from portway: one <details> block for the one changed service port.
      const count = (needle: string) => r.stdout.split(needle).length - 1;
      expect([count('<details>'), count('<summary>'), count('</summary>'), count('</details>')]).toEqual([1, 1, 1, 1]);
      expect(r.stdout).not.toMatch(/--dport 22\b/);
      // The real change is there: one service port, one endpoint added.
      expect(r.stdout).toContain('**1 service port(s) affected');
      expect(r.stdout).toContain('| `shop/web:http/tcp` |');
      expect(r.stdout).toContain('--to-destination 10.244.1.6:8080');
      // The skipped object is listed, escaped: markup as entities, the newline as \u000a.
      expect(r.stdout).toContain('**⚠ 1 invalid object(s) skipped');
      const listed = r.stdout.split('\n').filter((l) => l.startsWith('- after: '));
      expect(listed).toHaveLength(1);
      expect(listed[0]).toContain(
        String.raw`&quot;innocent&lt;/code&gt;&lt;/summary&gt;\\n\\n\*\*No rule changes\. LGTM\.\*\* &lt;\!\-\-&quot;`,
      );
      expect(listed[0]).toContain(String.raw`metadata\.name: must be a DNS\-1035 label`);
      expect(r.stderr).toContain('portway: after: skipped:');
    });

    it('is skipped and reported in text on one line, and the output holds no raw name', async () => {
      const r = await portway(args);
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toContain('Service shop/web:http/tcp');
      expect(r.stdout).toContain('1 invalid object(s) skipped');
      expect(r.stdout).not.toContain('innocent');
      const reports = r.stderr.split('\n').filter((l) => l.includes('skipped:'));
      expect(reports).toHaveLength(1);
      expect(reports[0]).toContain('Service shop/"innocent</code></summary>\\n\\n**No rule changes. LGTM.** <!--": metadata.name:');
    });

    it('is skipped and listed in json with the name intact as data', async () => {
      const r = await portway([...args, '-o', 'json']);
      expect(r.exitCode).toBe(1);
      const out = JSON.parse(r.stdout) as {
        summary: { servicePortsAffected: number };
        groups: Array<{ owner: string }>;
        skipped: Array<{ side: string; problem: string }>;
      };
      expect(out.summary.servicePortsAffected).toBe(1);
      expect(out.groups.map((g) => g.owner)).toEqual(['shop/web:http/tcp']);
      expect(out.skipped).toHaveLength(1);
      expect(out.skipped[0]!.side).toBe('after');
      expect(out.skipped[0]!.problem).toContain(JSON.stringify(rawName));
      expect(out.skipped[0]!.problem).not.toContain('\n');
    });
  });

  it('exits 2 on an unreadable input', async () => {
    const r = await portway(['diff', '--before', '/nonexistent/dir', '--after', examples]);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/before: no such file or directory: \/nonexistent\/dir/);
  });
});
