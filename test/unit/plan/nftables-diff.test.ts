// The nftables-mode diff a reviewer reads: changes grouped by Service port, endpoint changes shown as
// interval-map elements, shared objects under the node-wide group.
import { describe, expect, it } from '@jest/globals';
import type { ServicePort } from '../../../src/model/cluster-state.js';
import { NODE_WIDE } from '../../../src/plan/diff.js';
import {
  diffNftRuleSets,
  formatNftDiffMarkdown,
  formatNftDiffText,
  nftDiffIsEmpty,
} from '../../../src/plan/nftables-diff.js';
import { renderNftables, servicePortNameBase } from '../../../src/render/nftables/index.js';
import { nftOptions } from '../../fixtures/nftables-options.js';
import { ep, stateOf, svcPort } from '../render/fixtures.js';

const web = (ips: string[]): ServicePort =>
  svcPort('ns1', 'web', 'http', { clusterIPs: ['10.96.0.10'], endpoints: ips.map((ip) => ep(ip, 8080)) });
const db = svcPort('ns1', 'db', '', { clusterIPs: ['10.96.0.20'], endpoints: [ep('10.244.3.3', 5432)] });
const render = (...ports: ServicePort[]) => [renderNftables(stateOf(...ports), nftOptions())];
const BASE = servicePortNameBase({ namespace: 'ns1', serviceName: 'web', portName: 'http', protocol: 'TCP' });

describe('diffNftRuleSets', () => {
  it('is empty for equal renderings', () => {
    expect(nftDiffIsEmpty(diffNftRuleSets(render(web(['10.244.1.2'])), render(web(['10.244.1.2']))))).toBe(
      true,
    );
  });

  it('an added endpoint is the Service port’s map elements and its hairpin element, nothing else', () => {
    const d = diffNftRuleSets(render(web(['10.244.1.2']), db), render(web(['10.244.1.2', '10.244.2.3']), db));
    expect(d.groups.map((g) => g.owner)).toEqual(['ns1/web:http/tcp']);
    expect(d.groups[0]?.changes).toEqual([
      {
        family: 'IPv4',
        kind: 'set',
        name: 'hairpin-endpoints',
        role: 'static',
        change: 'elements',
        added: ['10.244.2.3 . 10.244.2.3'],
        removed: [],
      },
      {
        family: 'IPv4',
        kind: 'map',
        name: `eps-${BASE}`,
        role: 'endpoints',
        change: 'elements',
        added: ['0-524287 : 10.244.1.2 . 8080', '524288-1048575 : 10.244.2.3 . 8080'],
        removed: ['0-1048575 : 10.244.1.2 . 8080'],
      },
    ]);
    expect(d.summary).toMatchObject({
      servicePortsAffected: 1,
      chainsAdded: 0,
      elementsAdded: 3,
      elementsRemoved: 1,
    });
    expect(formatNftDiffText(d)).toContain(
      `  elements changed in map eps-${BASE} (IPv4)\n    - 0-1048575 : 10.244.1.2 . 8080\n`,
    );
  });

  it('a removed Service port lists its chain and map removed, and its dispatch element under its name', () => {
    const d = diffNftRuleSets(render(web(['10.244.1.2']), db), render(web(['10.244.1.2'])));
    expect(d.groups.map((g) => g.owner)).toEqual(['ns1/db/tcp']);
    const changes = d.groups[0]!.changes.map(
      (c) => `${c.change} ${c.kind} ${c.name.replace(/-[A-Z2-7]{8}-.*/, '')}`,
    );
    expect(changes).toEqual(
      expect.arrayContaining([
        'elements map service-ips',
        'elements set cluster-ips',
        'removed chain svc',
        'removed map eps',
      ]),
    );
    expect(d.summary.chainsRemoved).toBe(1);
    const md = formatNftDiffMarkdown(d);
    expect(md).toContain('| `ns1/db/tcp` | 0 | 1 | 0 |');
    expect(md).not.toContain(NODE_WIDE);
  });
});
