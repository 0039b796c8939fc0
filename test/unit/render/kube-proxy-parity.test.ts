// The rule set of kube-proxy's TestOverallIPTablesRules (pkg/proxy/iptables/proxier_test.go),
// rendered from the equivalent ClusterState; both live in test/fixtures/kube-proxy-overall.ts.
import { renderIptables, serializeRuleSet } from '../../../src/render/iptables/index.js';
import { KUBE_PROXY_OVERALL_RULES, overallState } from '../../fixtures/kube-proxy-overall.js';
import { options, payloadObject } from './fixtures.js';

describe('parity with kube-proxy TestOverallIPTablesRules', () => {
  test("every chain has exactly kube-proxy's rules in kube-proxy's order", () => {
    const rs = renderIptables(overallState(), options());
    const payload = serializeRuleSet(rs, { includeBuiltinJumps: false });
    expect(payloadObject(payload)).toEqual(payloadObject(KUBE_PROXY_OVERALL_RULES));
  });

  test('chains carry role and owner', () => {
    const rs = renderIptables(overallState(), options());
    const nat = rs.tables.find((t) => t.name === 'nat');
    const fw = nat?.chains.find((c) => c.name === 'KUBE-FW-NUKIZ6OKUXPJNT4C');
    expect(fw).toMatchObject({ role: 'firewall', owner: 'ns5/svc5:p80/tcp' });
    expect(nat?.chains.find((c) => c.name === 'KUBE-SEP-SXIVWICOYRO3J4NJ')).toMatchObject({
      role: 'endpoint',
      owner: 'ns1/svc1:p80/tcp',
    });
    expect(nat?.chains.find((c) => c.name === 'KUBE-SERVICES')?.role).toBe('static');
    expect(nat?.chains.slice(0, 4).map((c) => c.name)).toEqual([
      'KUBE-SERVICES',
      'KUBE-NODEPORTS',
      'KUBE-POSTROUTING',
      'KUBE-MARK-MASQ',
    ]);
  });
});
