// The restore payload as chunks and as one string; chains' stored texts are written without copying
// and never trusted once `rules` may have changed.
import {
  renderIptables,
  serializeRuleSet,
  serializeRuleSetChunks,
  writeRuleSet,
} from '../../../src/render/iptables/index.js';
import type { IptablesRuleSet, RenderedChain } from '../../../src/render/types.js';
import { ep, options, stateOf, svcPort } from './fixtures.js';

function sampleRuleSet(): IptablesRuleSet {
  return renderIptables(
    stateOf(
      svcPort('ns1', 'svc1', 'p80', {
        clusterIPs: ['172.30.0.41'],
        endpoints: [ep('10.180.0.1', 80), ep('10.180.0.2', 80)],
      }),
      svcPort('ns2', 'svc2', 'p80', {
        type: 'NodePort',
        nodePort: 3001,
        clusterIPs: ['172.30.0.42'],
        endpoints: [ep('10.180.0.3', 80)],
      }),
      svcPort('ns3', 'empty', 'p80', { clusterIPs: ['172.30.0.43'] }),
    ),
    options(),
  );
}

function natChain(rs: IptablesRuleSet, prefix: string): RenderedChain {
  const c = rs.tables.find((t) => t.name === 'nat')?.chains.find((x) => x.name.startsWith(prefix));
  if (c === undefined) throw new Error(`no nat chain ${prefix}*`);
  return c;
}

/** The payload as the original line-by-line serializer wrote it: the reference for every shape. */
function referencePayload(rs: IptablesRuleSet, includeBuiltinJumps = true): string {
  const lines: string[] = [];
  for (const name of ['filter', 'nat'] as const) {
    const table = rs.tables.find((t) => t.name === name);
    if (table === undefined) continue;
    lines.push(`*${name}`);
    for (const c of table.chains) lines.push(`:${c.name} - [0:0]`);
    for (const c of table.chains) lines.push(...c.rules);
    if (includeBuiltinJumps) {
      for (const j of rs.builtinJumps) {
        if (j.table === name) lines.push(`${j.position === 'prepend' ? '-I' : '-A'} ${j.chain} ${j.spec}`);
      }
    }
    lines.push('COMMIT');
  }
  return lines.join('\n') + '\n';
}

describe('serializeRuleSet', () => {
  test('equals the line-by-line payload, with and without built-in jumps', () => {
    const rs = sampleRuleSet();
    expect(serializeRuleSet(rs)).toBe(referencePayload(rs));
    expect(serializeRuleSet(rs, { includeBuiltinJumps: false })).toBe(referencePayload(rs, false));
    expect(serializeRuleSet(rs, { includeBuiltinJumps: false })).not.toContain('-I PREROUTING');
  });

  test('chunks concatenate to the payload, are non-empty and end at line ends', () => {
    const rs = sampleRuleSet();
    const chunks = serializeRuleSetChunks(rs);
    expect(chunks.join('')).toBe(serializeRuleSet(rs));
    for (const c of chunks) {
      expect(c.length).toBeGreaterThan(0);
      expect(c.endsWith('\n')).toBe(true);
    }
    const streamed: string[] = [];
    writeRuleSet(rs, (c) => streamed.push(c), { includeBuiltinJumps: false });
    expect(streamed.join('')).toBe(serializeRuleSet(rs, { includeBuiltinJumps: false }));
  });

  test("a rendered chain's text is written as it is stored, not rebuilt rule by rule", () => {
    const rs = sampleRuleSet();
    const sep = natChain(rs, 'KUBE-SEP-');
    const chunks = serializeRuleSetChunks(rs);
    // The very string the chain holds (same length and content; a rebuilt copy would still be
    // equal, so also check that nothing was materialised: see chain-record.test.ts).
    expect(chunks).toContain(sep.text);
  });

  test('chains built by other code (no text) serialise from their rules', () => {
    const rs: IptablesRuleSet = {
      family: 'IPv4',
      tables: [
        {
          name: 'nat',
          chains: [
            { name: 'KUBE-SERVICES', role: 'static', rules: ['-A KUBE-SERVICES -j KUBE-SVC-X'] },
            { name: 'KUBE-SVC-X', role: 'service', owner: 'ns/x:p/tcp', rules: [] },
          ],
        },
      ],
      builtinJumps: [],
    };
    expect(serializeRuleSet(rs)).toBe(
      '*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-X - [0:0]\n-A KUBE-SERVICES -j KUBE-SVC-X\nCOMMIT\n',
    );
  });

  test('an empty table is only its header and COMMIT', () => {
    const rs: IptablesRuleSet = {
      family: 'IPv6',
      tables: [{ name: 'filter', chains: [] }],
      builtinJumps: [],
    };
    expect(serializeRuleSet(rs)).toBe('*filter\nCOMMIT\n');
  });

  test('rules edited after render (pushed, replaced, reassigned) are what gets written', () => {
    const rs = sampleRuleSet();
    const svc = natChain(rs, 'KUBE-SVC-');
    const sep = natChain(rs, 'KUBE-SEP-');
    const services = rs.tables.find((t) => t.name === 'nat')?.chains.find((c) => c.name === 'KUBE-SERVICES');
    svc.rules.push(`-A ${svc.name} -j DROP`);
    // Same length as before: a length check alone would not notice.
    sep.rules[0] = (sep.rules[0] ?? '').replace('-s 10.180.0.', '-s 10.180.9.');
    services!.rules = ['-A KUBE-SERVICES -j RETURN'];
    const payload = serializeRuleSet(rs);
    expect(payload).toBe(referencePayload(rs));
    expect(payload).toContain(`-A ${svc.name} -j DROP\n`);
    expect(payload).toContain('-s 10.180.9.');
    expect(payload).toContain('-A KUBE-SERVICES -j RETURN\n');
  });

  test('a plain chain whose text disagrees with its rules is written from its rules', () => {
    const rs: IptablesRuleSet = {
      family: 'IPv4',
      tables: [
        {
          name: 'filter',
          chains: [
            {
              name: 'KUBE-FORWARD',
              role: 'static',
              rules: ['-A KUBE-FORWARD -j ACCEPT'],
              text: '-A KUBE-FORWARD -j DROPIT\n',
            },
          ],
        },
      ],
      builtinJumps: [],
    };
    expect(serializeRuleSet(rs)).toBe('*filter\n:KUBE-FORWARD - [0:0]\n-A KUBE-FORWARD -j ACCEPT\nCOMMIT\n');
    // …and a matching one is used as is.
    rs.tables[0]!.chains[0]!.text = '-A KUBE-FORWARD -j ACCEPT\n';
    expect(serializeRuleSet(rs)).toBe('*filter\n:KUBE-FORWARD - [0:0]\n-A KUBE-FORWARD -j ACCEPT\nCOMMIT\n');
  });
});
