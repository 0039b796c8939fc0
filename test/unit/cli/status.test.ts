import { describe, expect, jest, test } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { formatStatusReport, registerStatusCommand } from '../../../src/cli/commands/status.js';
import { defaultConfig, parseConfig } from '../../../src/config/config.js';
import { rankNodes } from '../../../src/l2/election.js';
import { lbManifests, stateOf } from '../lb/manifest-fixtures.js';

const [OWNER, STANDBY] = rankNodes('10.99.0.200', ['node1', 'node2']) as [string, string];

describe('formatStatusReport', () => {
  test('assignment, announcing node and election order', () => {
    const text = formatStatusReport(stateOf(lbManifests()), defaultConfig());
    expect(text).toContain('LoadBalancer Services: 1, with addresses: 1, without: 0');
    expect(text).toMatch(new RegExp(`^demo/web\\s+lan\\s+10\\.99\\.0\\.200\\s+${OWNER}$`, 'm'));
    expect(text).toContain(`  10.99.0.200: owner ${OWNER}; election order ${OWNER} > ${STANDBY}`);
  });

  test('the same input gives the same text (every node agrees)', () => {
    expect(formatStatusReport(stateOf(lbManifests()), defaultConfig())).toBe(
      formatStatusReport(stateOf(lbManifests()), defaultConfig()),
    );
  });

  test('reasons: no address, and no eligible node for eTP Local without endpoints', () => {
    const noAddr = lbManifests().replace(
      'type: LoadBalancer',
      'type: LoadBalancer\n  loadBalancerIP: 10.1.1.1',
    );
    expect(formatStatusReport(stateOf(noAddr), defaultConfig())).toMatch(
      /demo\/web\s+-\s+-\s+-\s+address 10\.1\.1\.1 is not in any address pool/,
    );
    const local = lbManifests({ etp: 'Local' }).replace(
      /conditions: \{ ready: true \}/g,
      'conditions: { ready: false }',
    );
    const text = formatStatusReport(stateOf(local), defaultConfig());
    expect(text).toContain('10.99.0.200: no owner (noLocalEndpoints)');
  });

  test('a node not Ready is not elected', () => {
    const text = lbManifests().replace(
      new RegExp(
        `(name: ${OWNER}, labels: \\{ role: edge \\} \\}\\nstatus:\\n  addresses: \\[[^\\]]*\\]\\n  conditions: \\[\\{ type: Ready, status: )"True"`,
      ),
      '$1"False"',
    );
    const report = formatStatusReport(stateOf(text), defaultConfig());
    expect(report).toContain(`${OWNER} (not Ready)`);
    expect(report).toContain(`10.99.0.200: owner ${STANDBY}; election order ${STANDBY}`);
  });

  test('a node with NetworkUnavailable True is marked and not elected', () => {
    const unavailable = (name: string, text: string) =>
      text.replace(
        new RegExp(
          `(name: ${name}, labels: \\{ role: edge \\} \\}\\nstatus:\\n  addresses: \\[[^\\]]*\\]\\n  conditions: \\[\\{ type: Ready, status: "True" \\})`,
        ),
        '$1, { type: NetworkUnavailable, status: "True" }',
      );
    const one = formatStatusReport(stateOf(unavailable(OWNER, lbManifests())), defaultConfig());
    expect(one).toContain(`${OWNER} (NetworkUnavailable)`);
    expect(one).toContain(`10.99.0.200: owner ${STANDBY}; election order ${STANDBY}\n`);
    const both = formatStatusReport(
      stateOf(unavailable(STANDBY, unavailable(OWNER, lbManifests()))),
      defaultConfig(),
    );
    expect(both).toContain('10.99.0.200: no owner (nodeNetworkUnavailable)');
  });

  test('no pools, or disabled: says that status is used as written', () => {
    expect(formatStatusReport(stateOf(lbManifests({ pools: false })), defaultConfig())).toMatch(
      /^No IPAddressPool/,
    );
    expect(
      formatStatusReport(stateOf(lbManifests()), parseConfig({ loadBalancer: { enabled: false } })),
    ).toMatch(/disabled/);
  });
});

test('portway status --manifests DIR prints the report and exits normally', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portway-status-'));
  const out: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  });
  try {
    await writeFile(join(dir, 'all.yaml'), lbManifests());
    const program = new Command().exitOverride();
    registerStatusCommand(program);
    await program.parseAsync(['status', '--manifests', dir], { from: 'user' });
  } finally {
    spy.mockRestore();
    await rm(dir, { recursive: true, force: true });
  }
  expect(out.join('')).toContain(`10.99.0.200: owner ${OWNER}`);
});
