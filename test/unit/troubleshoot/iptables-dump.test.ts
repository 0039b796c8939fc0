import {
  IptablesParseError,
  parseIptablesDump,
  tokenizeRuleLine,
  type DumpRule,
  type IptablesDump,
} from '../../../src/troubleshoot/iptables-dump.js';
import { KUBE_PROXY_RULES } from './kube-proxy-rules.js';

function rule(dump: IptablesDump, table: string, chain: string, index: number): DumpRule {
  const r = dump.tables.get(table)?.chains.get(chain)?.rules[index];
  if (r === undefined) throw new Error(`no rule ${table} ${chain} ${index}`);
  return r;
}

const wrap = (table: string, body: string): string => `*${table}\n${body}\nCOMMIT\n`;

describe('tokenizeRuleLine', () => {
  it('groups double-quoted words and unescapes quotes', () => {
    expect(tokenizeRuleLine('-A X -m comment --comment "a b  c" -j ACCEPT')).toEqual([
      '-A',
      'X',
      '-m',
      'comment',
      '--comment',
      'a b  c',
      '-j',
      'ACCEPT',
    ]);
    expect(tokenizeRuleLine('--comment "say \\"hi\\"" x')).toEqual(['--comment', 'say "hi"', 'x']);
    expect(tokenizeRuleLine('--comment ""')).toEqual(['--comment', '']);
  });

  it('rejects an unterminated quote', () => {
    expect(() => tokenizeRuleLine('--comment "abc')).toThrow('unterminated double quote');
  });
});

describe('parseIptablesDump', () => {
  const dump = parseIptablesDump(KUBE_PROXY_RULES);

  it('reads tables, chains in declaration order, policies and rules', () => {
    expect([...dump.tables.keys()]).toEqual(['filter', 'nat']);
    const nat = dump.tables.get('nat');
    expect([...(nat?.chains.keys() ?? [])].slice(0, 6)).toEqual([
      'PREROUTING',
      'INPUT',
      'OUTPUT',
      'POSTROUTING',
      'KUBE-EXT-4SW47YFZTEDKD3PK',
      'KUBE-EXT-GNZBNJ2PO5MGZ6GT',
    ]);
    expect(nat?.chains.get('PREROUTING')?.policy).toBe('ACCEPT');
    expect(nat?.chains.get('KUBE-SERVICES')?.policy).toBeNull();
    expect(nat?.chains.get('KUBE-SVC-4SW47YFZTEDKD3PK')?.rules).toHaveLength(3);
  });

  it('decodes addresses with negation, protocol, ports and the jump target', () => {
    const r = rule(dump, 'nat', 'KUBE-SVC-4SW47YFZTEDKD3PK', 0);
    expect(r.comment).toBe('ns4/svc4:p80 cluster IP');
    expect(r.spec).toBe(
      '-m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
    );
    expect(r.matches).toEqual([
      { kind: 'comment', text: 'ns4/svc4:p80 cluster IP' },
      { kind: 'protocol', negated: false, protocol: 'tcp' },
      { kind: 'destination', negated: false, cidr: expect.objectContaining({ text: '172.30.0.44/32' }) },
      { kind: 'port', which: 'dport', negated: false, ranges: [{ from: 80, to: 80 }] },
      { kind: 'source', negated: true, cidr: expect.objectContaining({ text: '10.0.0.0/8' }) },
    ]);
    expect(r.target).toEqual({ kind: 'jump', chain: 'KUBE-MARK-MASQ' });
  });

  it('decodes statistic, recent, mark, conntrack, addrtype, DNAT, MARK and MASQUERADE', () => {
    expect(rule(dump, 'nat', 'KUBE-SVC-4SW47YFZTEDKD3PK', 1).matches).toContainEqual({
      kind: 'statistic',
      negated: false,
      probability: 0.5,
      text: '0.5000000000',
    });
    expect(rule(dump, 'nat', 'KUBE-SVC-NUKIZ6OKUXPJNT4C', 1).matches).toContainEqual({
      kind: 'recent',
      negated: false,
      name: 'KUBE-SEP-I77PXRDZVX7PMWMN',
      mode: 'rcheck',
      seconds: 10800,
      reap: true,
      mask: '255.255.255.255',
      side: 'rsource',
    });
    expect(rule(dump, 'nat', 'KUBE-POSTROUTING', 0).matches).toEqual([
      { kind: 'mark', negated: true, value: 0x4000, mask: 0x4000 },
    ]);
    expect(rule(dump, 'nat', 'KUBE-POSTROUTING', 0).target).toEqual({ kind: 'RETURN' });
    expect(rule(dump, 'nat', 'KUBE-POSTROUTING', 1).target).toEqual({
      kind: 'MARK',
      operation: 'xor',
      value: 0x4000,
      mask: 0xffffffff,
    });
    expect(rule(dump, 'nat', 'KUBE-POSTROUTING', 2).target).toEqual({
      kind: 'MASQUERADE',
      random: false,
      randomFully: true,
    });
    expect(rule(dump, 'filter', 'KUBE-FIREWALL', 0).matches).toContainEqual({
      kind: 'ctstate',
      negated: true,
      states: ['RELATED', 'ESTABLISHED', 'DNAT'],
    });
    expect(rule(dump, 'nat', 'KUBE-SERVICES', 10).matches).toContainEqual({
      kind: 'addrtype',
      which: 'dst',
      negated: false,
      types: ['LOCAL'],
    });
    expect(rule(dump, 'nat', 'KUBE-SEP-C6EBXVWJJZMIWKLZ', 1).target).toEqual({
      kind: 'DNAT',
      toDestination: '10.180.0.5:80',
      random: false,
      persistent: false,
    });
    expect(rule(dump, 'filter', 'KUBE-SERVICES', 0).target).toEqual({ kind: 'REJECT' });
  });

  it('keeps a rule with no target', () => {
    expect(rule(dump, 'nat', 'KUBE-FW-NUKIZ6OKUXPJNT4C', 1).target).toBeNull();
  });

  it('parses multiport, set, negated addrtype and mark, goto, SNAT, LOG and --set-xmark', () => {
    const d = parseIptablesDump(
      wrap(
        'nat',
        [
          ':KUBE-A - [0:0]',
          ':KUBE-B - [0:0]',
          '-A KUBE-A -p udp -m multiport --dports 53,1000:1010 -m set --match-set KUBE-CLUSTER-IP dst,dst -g KUBE-B',
          '-A KUBE-A -m addrtype ! --dst-type LOCAL -m mark ! --mark 0x8000/0x8000 -j LOG --log-prefix "x y"',
          '-A KUBE-B -j MARK --set-xmark 0x4000/0xffffffff',
          '-A KUBE-B -j SNAT --to-source 192.0.2.1 --random-fully',
          '-A POSTROUTING -m statistic --mode nth --every 4 --packet 0 -j KUBE-B',
        ].join('\n'),
      ),
    );
    const a0 = rule(d, 'nat', 'KUBE-A', 0);
    expect(a0.matches).toContainEqual({
      kind: 'port',
      which: 'dport',
      negated: false,
      ranges: [
        { from: 53, to: 53 },
        { from: 1000, to: 1010 },
      ],
    });
    expect(a0.matches).toContainEqual({
      kind: 'set',
      negated: false,
      name: 'KUBE-CLUSTER-IP',
      flags: ['dst', 'dst'],
    });
    expect(a0.target).toEqual({ kind: 'goto', chain: 'KUBE-B' });
    const a1 = rule(d, 'nat', 'KUBE-A', 1);
    expect(a1.matches).toEqual([
      { kind: 'addrtype', which: 'dst', negated: true, types: ['LOCAL'] },
      { kind: 'mark', negated: true, value: 0x8000, mask: 0x8000 },
    ]);
    expect(a1.target).toEqual({ kind: 'LOG', prefix: 'x y' });
    expect(rule(d, 'nat', 'KUBE-B', 0).target).toEqual({
      kind: 'MARK',
      operation: 'set-xmark',
      value: 0x4000,
      mask: 0xffffffff,
    });
    expect(rule(d, 'nat', 'KUBE-B', 1).target).toEqual({
      kind: 'SNAT',
      toSource: '192.0.2.1',
      random: false,
      randomFully: true,
      persistent: false,
    });
    // A built-in chain used without a declaration exists with ACCEPT policy.
    expect(d.tables.get('nat')?.chains.get('POSTROUTING')?.policy).toBe('ACCEPT');
    expect(rule(d, 'nat', 'POSTROUTING', 0).matches).toContainEqual({
      kind: 'statistic',
      negated: false,
      probability: 0.25,
      text: '1/4',
    });
  });

  it('accepts -p tcp --dport without -m tcp, IPv6 addresses, and -I/-X/-F/-S commands', () => {
    const d = parseIptablesDump(
      wrap(
        'filter',
        [
          ':KUBE-A - [0:0]',
          ':KUBE-OLD - [0:0]',
          '-S',
          '-A KUBE-A -p tcp --dport 80 -d fd00::1/128 -j ACCEPT',
          '-I KUBE-A 1 -s 2001:db8::/64 -j DROP',
          '-A KUBE-OLD -j ACCEPT',
          '-F KUBE-OLD',
          '-X KUBE-OLD',
        ].join('\n'),
      ),
    );
    const chain = d.tables.get('filter')?.chains.get('KUBE-A');
    expect(chain?.rules.map((r) => [r.index, r.spec])).toEqual([
      [0, '-s 2001:db8::/64 -j DROP'],
      [1, '-p tcp --dport 80 -d fd00::1/128 -j ACCEPT'],
    ]);
    expect(d.tables.get('filter')?.chains.has('KUBE-OLD')).toBe(false);
  });

  it('tolerates unquoted multi-word comments as in kube-proxy test payloads', () => {
    const d = parseIptablesDump(
      wrap(
        'filter',
        ':KUBE-NODEPORTS - [0:0]\n-A INPUT -m comment --comment kubernetes health check service ports -j KUBE-NODEPORTS',
      ),
    );
    expect(rule(d, 'filter', 'INPUT', 0).comment).toBe('kubernetes health check service ports');
  });

  describe('errors name the line', () => {
    const cases: Array<[string, string, RegExp]> = [
      [
        'unknown module',
        wrap('filter', '-A INPUT -m owner --uid-owner 0 -j ACCEPT'),
        /line 2: unknown match module "owner"/,
      ],
      [
        'undeclared jump',
        wrap('nat', ':KUBE-A - [0:0]\n-A KUBE-A -j KUBE-MISSING'),
        /line 3: jump to undeclared chain KUBE-MISSING in table nat/,
      ],
      [
        'undeclared chain',
        wrap('nat', '-A KUBE-NOPE -j ACCEPT'),
        /line 2: chain KUBE-NOPE is not declared in table nat/,
      ],
      [
        'unknown option',
        wrap('filter', '-A INPUT -m tcp --flags SYN -j ACCEPT'),
        /line 2: option --flags does not belong/,
      ],
      [
        'bad address',
        wrap('filter', '-A INPUT -s 10.0.0.300 -j ACCEPT'),
        /line 2: invalid address "10.0.0.300" for -s/,
      ],
      [
        'DNAT without destination',
        wrap('nat', '-A PREROUTING -j DNAT'),
        /line 2: DNAT needs --to-destination/,
      ],
      ['missing COMMIT', '*nat\n:KUBE-A - [0:0]\n', /line 1: table has no COMMIT/],
      ['rule outside a table', '-A INPUT -j ACCEPT\n', /line 1: line outside a table/],
      ['unknown table', '*bogus\nCOMMIT\n', /line 1: unknown table "bogus"/],
      [
        'bad probability',
        wrap('nat', '-A PREROUTING -m statistic --mode random --probability 2 -j ACCEPT'),
        /probability between 0 and 1/,
      ],
      ['unsupported target', wrap('nat', '-A PREROUTING -j CONNMARK --set-mark 1'), /line 2: /],
      [
        'policy on a user chain',
        wrap('nat', ':KUBE-A ACCEPT [0:0]'),
        /user chain KUBE-A cannot have a policy/,
      ],
    ];
    it.each(cases)('%s', (_name, text, message) => {
      expect(() => parseIptablesDump(text)).toThrow(IptablesParseError);
      expect(() => parseIptablesDump(text)).toThrow(message);
    });
  });
});
