// The dry-run CLI in ipvs mode (mode: ipvs in --config), as CI and on-call people run it: render's
// three parts and --part, -o json, and diff in text, json and markdown with the usual exit codes.
// (Each part piped to the real tool: test/e2e/cli/render-ipvs-parts.test.ts.)
import { describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { parseIpvsadmRules } from '../../../src/render/ipvs/index.js';
import { repoRoot, runPortway } from '../../fixtures/cli-process.js';

const root = repoRoot;
const portway = runPortway;
const examples = join(root, 'examples/manifests');
const fixtures = join(root, 'test/fixtures/cli');
const ipvsConfig = join(fixtures, 'ipvs-config.yaml');
const iptablesConfig = join(root, 'examples/config.yaml');
const render = (...extra: string[]) => portway(['render', '-f', examples, '--config', ipvsConfig, ...extra]);

describe('portway render, mode ipvs', () => {
  it('prints the three parts, each under one # header, deterministically', async () => {
    const a = await render();
    expect(a.stderr).toBe('');
    expect(a.exitCode).toBe(0);
    const headers = a.stdout.split('\n').filter((l) => l.startsWith('# '));
    expect(headers).toEqual([
      '# ipset restore input, IPv4',
      '# ipvsadm-restore input (as ipvsadm-save -n prints it), IPv4',
      '# iptables-restore input, IPv4',
    ]);
    expect(a.stdout).toContain('add KUBE-CLUSTER-IP 10.96.0.10,tcp:80\n');
    expect(a.stdout).toContain(
      '-A -t 10.96.0.10:80 -s rr\n-a -t 10.96.0.10:80 -r 10.244.1.11:8080 -m -w 1\n',
    );
    expect(a.stdout).toContain('-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port');
    // Not iptables mode's per-service chains.
    expect(a.stdout).not.toMatch(/KUBE-SVC-|KUBE-SEP-/);
    const b = await render();
    expect(b.stdout).toBe(a.stdout);
  });

  it('--part ipset prints only ipset restore input', async () => {
    const r = await render('--part', 'ipset');
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.every((l) => /^(create|add) KUBE-/.test(l))).toBe(true);
    expect(lines).toContain('add KUBE-NODE-PORT-TCP 30080');
    expect(lines).toContain('add KUBE-IPVS-IPS 192.0.2.100');
  });

  it('--part ipvs prints only ipvsadm-restore input, which the ipvsadm-save reader takes back', async () => {
    const r = await render('--part', 'ipvs');
    expect(r.exitCode).toBe(0);
    expect(
      r.stdout
        .split('\n')
        .filter((l) => l !== '')
        .every((l) => /^-[Aa] -[tu] /.test(l)),
    ).toBe(true);
    const table = parseIpvsadmRules(r.stdout);
    const vs = table.virtualServers.find((v) => v.address === '10.99.0.2' && v.port === 30080);
    expect(vs?.realServers.map((s) => `${s.address}:${s.port} w${s.weight}`)).toEqual([
      '10.244.1.11:8080 w1',
      '10.244.1.12:8080 w1',
      '10.244.2.11:8080 w1',
    ]);
  });

  it('--part iptables prints only the iptables-restore payload of the mode', async () => {
    const r = await render('--part', 'iptables');
    expect(r.exitCode).toBe(0);
    expect(r.stdout.startsWith('*filter\n')).toBe(true);
    expect(r.stdout).not.toContain('# ');
    expect(r.stdout).toContain(
      '-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ',
    );
  });

  it('--family ipv6 renders the IPv6 sets (KUBE-6-…)', async () => {
    const r = await render('--family', 'ipv6', '--part', 'ipset');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('create KUBE-6-CLUSTER-IP hash:ip,port family inet6');
    expect(r.stdout).not.toContain('10.96.0.10');
  });

  it('-o json gives virtual servers with real servers, sets with entries, bound addresses and sysctls', async () => {
    const r = await render('-o', 'json');
    expect(r.exitCode).toBe(0);
    const rs = JSON.parse(r.stdout) as {
      family: string;
      virtualServers: Array<{
        address: string;
        port: number;
        protocol: string;
        owner: string;
        realServers: unknown[];
      }>;
      ipsets: Array<{ name: string; entries: Array<{ value: string; owners: string[] }> }>;
      boundAddresses: string[];
      sysctls: Array<{ key: string; value: string }>;
      iptables: { tables: Array<{ name: string }> };
    };
    expect(rs.family).toBe('IPv4');
    const clusterIP = rs.virtualServers.find((v) => v.address === '10.96.0.10' && v.protocol === 'TCP');
    expect(clusterIP).toMatchObject({ port: 80, owner: 'demo/hello:http/tcp' });
    expect(clusterIP?.realServers).toHaveLength(3);
    expect(rs.ipsets.find((s) => s.name === 'KUBE-CLUSTER-IP')?.entries).toContainEqual({
      value: '10.96.0.10,tcp:80',
      owners: ['demo/hello:http/tcp'],
    });
    expect(rs.boundAddresses).toEqual(['10.96.0.10', '10.96.0.11', '10.96.0.12', '192.0.2.100']);
    expect(rs.sysctls.map((s) => `${s.key}=${s.value}`)).toContain('net/ipv4/vs/conntrack=1');
    expect(rs.iptables.tables.map((t) => t.name)).toEqual(['filter', 'nat']);
  });

  it('refuses an unknown part, and --part with -o json', async () => {
    const bad = await render('--part', 'nft');
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--part must be ipset, ipvs or iptables (got "nft")');
    const json = await render('--part', 'ipvs', '-o', 'json');
    expect(json.exitCode).toBe(2);
    expect(json.stdout).toBe('');
  });
});

describe('portway render, mode iptables, --part', () => {
  it('--part iptables is the whole payload; ipset and ipvs are errors (the mode has no such part)', async () => {
    const whole = await portway(['render', '-f', examples, '--config', iptablesConfig]);
    const part = await portway(['render', '-f', examples, '--config', iptablesConfig, '--part', 'iptables']);
    expect(part.exitCode).toBe(0);
    expect(part.stdout).toBe(whole.stdout);
    expect(part.stdout).toContain('KUBE-SVC-');
    for (const name of ['ipset', 'ipvs']) {
      const r = await portway(['render', '-f', examples, '--config', iptablesConfig, '--part', name]);
      expect(r.exitCode).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`--part ${name}: mode iptables has no ${name} part`);
    }
  });
});

describe('portway diff, mode ipvs', () => {
  const after = [examples, join(fixtures, 'scale-up.yaml')];
  const diff = (...extra: string[]) =>
    portway(['diff', '--before', examples, '--after', ...after, '--config', ipvsConfig, ...extra]);

  it('exits 0 when nothing changes', async () => {
    const r = await portway(['diff', '--before', examples, '--after', examples, '--config', ipvsConfig]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('No changes: the nodes keep the same virtual servers, sets and rules.');
  });

  it('text: exits 1 and lists the real servers added per Service port', async () => {
    const r = await diff();
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(
      'Service demo/hello:http/tcp\n  + real server 10.244.2.12:8080 weight 1 of TCP 10.96.0.10:80\n',
    );
    expect(r.stdout).toContain('  + real server 10.244.2.12:8053 weight 1 of UDP 10.96.0.10:5353\n');
    expect(r.stdout).not.toContain('KUBE-SEP-');
  });

  it('json: the structured changes, marked as ipvs mode', async () => {
    const r = await diff('-o', 'json');
    expect(r.exitCode).toBe(1);
    const d = JSON.parse(r.stdout) as {
      mode: string;
      summary: { servicePortsAffected: number; realServersAdded: number };
      groups: Array<{ owner: string; realServersAdded: Array<{ realServer: string }> }>;
      skipped: unknown[];
    };
    expect(d.mode).toBe('ipvs');
    expect(d.summary).toMatchObject({ servicePortsAffected: 2, realServersAdded: 2 });
    expect(d.groups.map((g) => g.owner)).toEqual(['demo/hello:echo-udp/udp', 'demo/hello:http/tcp']);
    expect(d.skipped).toEqual([]);
  });

  it('markdown: a row per Service port and the changes in a collapsed block', async () => {
    const r = await diff('-o', 'markdown');
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(
      '| `demo/hello:http/tcp` | +0 / −0 | +1 / −0 | 0 | +0 / −0 | +0 / −0 | +0 / −0 |',
    );
    expect(r.stdout).toContain('+ real server 10.244.2.12:8080 weight 1 of TCP 10.96.0.10:80');
  });

  it('a hostile Service name is skipped and listed escaped; the real change is shown', async () => {
    const hostile = join(fixtures, 'hostile-name');
    const r = await portway([
      'diff',
      '--before',
      join(hostile, 'before.yaml'),
      '--after',
      join(hostile, 'after.yaml'),
      '--config',
      ipvsConfig,
      '-o',
      'markdown',
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).not.toContain('<!--');
    expect(r.stdout).not.toMatch(/^\*\*No/m);
    expect(r.stdout).toContain('**⚠ 1 invalid object(s) skipped');
    expect(r.stdout).toContain('| `shop/web:http/tcp` |');
    expect(r.stdout).toContain('+ real server 10.244.1.6:8080 weight 1 of TCP 10.96.5.1:80');
    const count = (needle: string) => r.stdout.split(needle).length - 1;
    expect([count('<details>'), count('</details>')]).toEqual([1, 1]);
  });

  it('exit 2 on broken input, as in iptables mode', async () => {
    const r = await portway([
      'diff',
      '--strict',
      '--before',
      examples,
      '--after',
      join(fixtures, 'malformed.yaml'),
      '--config',
      ipvsConfig,
    ]);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
  });
});
