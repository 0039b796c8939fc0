// The dry-run CLI in nftables mode (mode: nftables in --config): render prints nft -f input of
// portway's table (per family), -o json its structure; diff per Service port with exit 1 on changes;
// --part and trace say they do not apply.
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NftRuleSet } from '../../../src/render/nftables/index.js';
import { repoRoot, runPortway } from '../../fixtures/cli-process.js';

const examples = join(repoRoot, 'examples/manifests');
const nftConfig = join(repoRoot, 'test/fixtures/cli/nftables-config.yaml');
const render = (...extra: string[]) =>
  runPortway(['render', '-f', examples, '--config', nftConfig, ...extra]);

describe('portway render, mode nftables', () => {
  it('prints nft -f input replacing table ip portway, deterministically', async () => {
    const a = await render();
    expect(a.stderr).toBe('');
    expect(a.exitCode).toBe(0);
    expect(a.stdout.startsWith('add table ip portway\ndelete table ip portway\nadd table ip portway\n')).toBe(
      true,
    );
    expect(a.stdout).toMatch(
      /^add element ip portway service-ips \{\n(\t.*\n)*\t10\.96\.0\.10 \. tcp \. 80 : goto svc-/m,
    );
    // No iptables or ipvs output.
    expect(a.stdout).not.toMatch(/KUBE-|^\*nat/m);
    expect((await render()).stdout).toBe(a.stdout);
  });

  it('--family ipv6 prints the ip6 table; -o json the structure', async () => {
    const v6 = await render('--family', 'ipv6');
    expect(v6.exitCode).toBe(0);
    expect(v6.stdout.split('\n')[0]).toBe('add table ip6 portway');
    const json = await render('-o', 'json');
    const rs = JSON.parse(json.stdout) as NftRuleSet;
    expect([rs.table, rs.nftFamily, rs.family]).toEqual(['portway', 'ip', 'IPv4']);
    expect(rs.chains.map((c) => c.name)).toContain('services');
    expect(rs.sets.find((s) => s.name === 'service-ips')?.elements.length).toBeGreaterThan(0);
  });

  it('--part and trace refuse the mode with exit 2 and say why', async () => {
    const part = await render('--part', 'iptables');
    expect([part.exitCode, part.stdout]).toEqual([2, '']);
    expect(part.stderr).toContain('mode nftables has one part');
    const trace = await runPortway([
      'trace',
      '-f',
      examples,
      '--config',
      nftConfig,
      '--src',
      '10.99.0.100',
      '--dst',
      '10.96.0.10',
      '--dport',
      '80',
    ]);
    expect(trace.exitCode).toBe(2);
    expect(trace.stderr).toContain('trace does not walk nftables rulesets yet');
  });
});

describe('portway diff, mode nftables', () => {
  it('exit 0 with no changes, exit 1 with the Service port’s elements when an endpoint goes', async () => {
    const same = await runPortway(['diff', '--before', examples, '--after', examples, '--config', nftConfig]);
    expect([same.exitCode, same.stdout]).toEqual([0, 'No changes: the nodes keep the same nftables table.']);
    const dir = mkdtempSync(join(tmpdir(), 'pw-nft-diff-'));
    try {
      const after = join(dir, 'after.yaml');
      // The example hello Service with one endpoint fewer.
      const text = readdirSync(examples)
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => readFileSync(join(examples, f), 'utf8'))
        .join('\n---\n');
      writeFileSync(after, text.replace(/\n\s*- addresses: \[10\.244\.2\.11\][^\n]*(\n\s+[a-z][^\n]*)*/, ''));
      const r = await runPortway(['diff', '--before', examples, '--after', after, '--config', nftConfig]);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toMatch(/elements changed in map eps-/);
      expect(r.stdout).not.toMatch(/^ {2}(added|removed|rules changed in) chain/m);
      const json = await runPortway([
        'diff',
        '--before',
        examples,
        '--after',
        after,
        '--config',
        nftConfig,
        '-o',
        'json',
      ]);
      expect((JSON.parse(json.stdout) as { mode: string }).mode).toBe('nftables');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
