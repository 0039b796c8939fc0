// Rendered chains keep their rules as one text and make `rules` from it on first read; to every
// consumer they must still look exactly like the plain RenderedChain objects of types.ts.
import { splitRuleText, untouchedRuleText } from '../../../src/render/iptables/chain-record.js';
import { renderIptables, serializeRuleSet } from '../../../src/render/iptables/index.js';
import type { IptablesRuleSet, RenderedChain } from '../../../src/render/types.js';
import { ep, options, stateOf, svcPort } from './fixtures.js';

function render(): IptablesRuleSet {
  return renderIptables(
    stateOf(
      svcPort('ns1', 'svc1', 'p80', {
        clusterIPs: ['172.30.0.41'],
        endpoints: [ep('10.180.0.1', 80), ep('10.180.0.2', 80)],
      }),
    ),
    options(),
  );
}

function nat(rs: IptablesRuleSet, name: string): RenderedChain {
  const c = rs.tables.find((t) => t.name === 'nat')?.chains.find((x) => x.name === name);
  if (c === undefined) throw new Error(`no nat chain ${name}`);
  return c;
}

const SVC1 = 'KUBE-SVC-XPGD46QRK7WJZT7O';

describe('rendered chains', () => {
  test('rules are the lines of text; text is every rule followed by "\\n"', () => {
    for (const table of render().tables) {
      for (const c of table.chains) {
        expect(c.text).toBe(c.rules.map((r) => r + '\n').join(''));
        for (const r of c.rules) expect(r.startsWith(`-A ${c.name} `)).toBe(true);
      }
    }
  });

  test('look like plain objects: keys, JSON, equality, spread', () => {
    const svc = nat(render(), SVC1);
    expect(Object.keys(svc)).toEqual(['name', 'role', 'owner', 'rules']);
    const plain = { name: SVC1, role: 'service', owner: 'ns1/svc1:p80/tcp', rules: [...svc.rules] };
    expect(svc).toEqual(plain);
    expect({ ...svc }).toEqual(plain);
    expect(JSON.parse(JSON.stringify(svc))).toEqual(plain);
    expect(JSON.stringify(svc).startsWith(`{"name":"${SVC1}","role":"service","owner":`)).toBe(true);
    expect(JSON.stringify(svc)).not.toContain('"text"');
    // A static chain has no owner key at all.
    expect(Object.keys(nat(render(), 'KUBE-MARK-MASQ'))).toEqual(['name', 'role', 'rules']);
  });

  test('equality sees different rules (rules is an own enumerable property, not hidden)', () => {
    const a = nat(render(), SVC1);
    const b = nat(render(), SVC1);
    expect(a).toEqual(b);
    b.rules.push(`-A ${SVC1} -j DROP`);
    expect(a).not.toEqual(b);
  });

  test('the text is trusted only until rules are read or assigned', () => {
    const rs = render();
    const svc = nat(rs, SVC1);
    const text = svc.text;
    expect(untouchedRuleText(svc)).toBe(text);
    const rules = svc.rules;
    expect(svc.rules).toBe(rules); // made once, then kept
    expect(untouchedRuleText(svc)).toBeUndefined();

    const sep = rs.tables[1]!.chains.find((c) => c.name.startsWith('KUBE-SEP-'))!;
    sep.rules = ['-A ' + sep.name + ' -j RETURN'];
    expect(sep.text).toBeUndefined();
    expect(sep.rules).toEqual(['-A ' + sep.name + ' -j RETURN']);
    expect(serializeRuleSet(rs)).toContain(`-A ${sep.name} -j RETURN\n`);
  });

  test('plain chains have no stored text to trust', () => {
    expect(
      untouchedRuleText({ name: 'KUBE-X', role: 'static', rules: [], text: '-A KUBE-X -j DROP\n' }),
    ).toBeUndefined();
  });

  test('splitRuleText', () => {
    expect(splitRuleText('')).toEqual([]);
    expect(splitRuleText('-A X -j Y\n')).toEqual(['-A X -j Y']);
    expect(splitRuleText('-A X -j Y\n-A X -j Z\n')).toEqual(['-A X -j Y', '-A X -j Z']);
  });
});
