import {
  chainOwner,
  endpointChainName,
  externalChainName,
  firewallChainName,
  isServiceChainName,
  localServiceChainName,
  perServiceChainNames,
  portProtoHash,
  serviceChainName,
} from '../../../src/render/naming.js';

// Literal names from kube-proxy's own tests (pkg/proxy/iptables/proxier_test.go, TestOverallIPTablesRules)
// and from real kube-proxy output: a change here would strand chains on upgraded nodes.
describe('kube-proxy chain names', () => {
  test('service chains of ns1/svc1:p80 tcp', () => {
    expect(portProtoHash('ns1/svc1:p80', 'TCP')).toBe('XPGD46QRK7WJZT7O');
    expect(serviceChainName('ns1/svc1:p80', 'TCP')).toBe('KUBE-SVC-XPGD46QRK7WJZT7O');
    expect(localServiceChainName('ns1/svc1:p80', 'TCP')).toBe('KUBE-SVL-XPGD46QRK7WJZT7O');
    expect(externalChainName('ns1/svc1:p80', 'TCP')).toBe('KUBE-EXT-XPGD46QRK7WJZT7O');
  });

  test('other pinned service hashes from proxier_test.go', () => {
    expect(externalChainName('ns2/svc2:p80', 'TCP')).toBe('KUBE-EXT-GNZBNJ2PO5MGZ6GT');
    expect(serviceChainName('ns3/svc3:p80', 'TCP')).toBe('KUBE-SVC-X27LE4BHSL4DOUIK');
    expect(serviceChainName('ns4/svc4:p80', 'TCP')).toBe('KUBE-SVC-4SW47YFZTEDKD3PK');
    expect(firewallChainName('ns5/svc5:p80', 'TCP')).toBe('KUBE-FW-NUKIZ6OKUXPJNT4C');
  });

  test('unnamed port (servicePortName without ":port") as seen on real nodes', () => {
    expect(serviceChainName('default/nginx', 'TCP')).toBe('KUBE-SVC-2CMXP7HKUVJN7L6M');
  });

  test('endpoint chains hash servicePortName + protocol + "ip:port"', () => {
    expect(endpointChainName('ns1/svc1:p80', 'TCP', '10.180.0.1:80')).toBe('KUBE-SEP-SXIVWICOYRO3J4NJ');
    expect(endpointChainName('ns2/svc2:p80', 'TCP', '10.180.0.2:80')).toBe('KUBE-SEP-RS4RBKLTHTF2IUXJ');
    expect(endpointChainName('ns3/svc3:p80', 'TCP', '10.180.0.3:80')).toBe('KUBE-SEP-OYPFS5VJICHGATKP');
    expect(endpointChainName('ns4/svc4:p80', 'TCP', '10.180.0.4:80')).toBe('KUBE-SEP-UKSFD7AGPMPPLUHC');
    expect(endpointChainName('ns4/svc4:p80', 'TCP', '10.180.0.5:80')).toBe('KUBE-SEP-C6EBXVWJJZMIWKLZ');
    expect(endpointChainName('ns5/svc5:p80', 'TCP', '10.180.0.3:80')).toBe('KUBE-SEP-I77PXRDZVX7PMWMN');
  });

  test('protocol is hashed lower-case, so UDP differs from TCP', () => {
    // Computed independently (python hashlib + base64.b32encode).
    expect(serviceChainName('ns1/svc1:p80', 'UDP')).toBe('KUBE-SVC-OJWW7NSBVZTDHXNW');
  });

  test('IPv6 endpoints hash the bracketed "[ip]:port" form', () => {
    // Computed independently (python hashlib + base64.b32encode).
    expect(endpointChainName('ns6/svc6:p80', 'TCP', '[fd00:10:180::1]:80')).toBe('KUBE-SEP-WQKLIGDYTS5ZFBZG');
  });

  test("names fit iptables' 28-character limit", () => {
    expect(
      externalChainName('a-very-long-namespace-name/a-very-long-service-name:https', 'SCTP').length,
    ).toBeLessThanOrEqual(28);
  });

  test('owner and service-chain recognition', () => {
    expect(chainOwner({ id: 'ns/svc:http', protocol: 'UDP' })).toBe('ns/svc:http/udp');
    expect(isServiceChainName('KUBE-SEP-SXIVWICOYRO3J4NJ')).toBe(true);
    expect(isServiceChainName('KUBE-SERVICES')).toBe(false);
    expect(isServiceChainName('KUBE-SVL-XPGD46QRK7WJZT7O')).toBe(true);
  });
});

describe('perServiceChainNames', () => {
  test('one hash, the same four names as the single-name functions', () => {
    const names = perServiceChainNames('ns1/svc1:p80', 'TCP');
    expect(names).toEqual({
      hash: 'XPGD46QRK7WJZT7O',
      service: 'KUBE-SVC-XPGD46QRK7WJZT7O',
      localService: 'KUBE-SVL-XPGD46QRK7WJZT7O',
      external: 'KUBE-EXT-XPGD46QRK7WJZT7O',
      firewall: 'KUBE-FW-XPGD46QRK7WJZT7O',
    });
    for (const [sp, proto] of [
      ['ns5/svc5:p80', 'TCP'],
      ['default/nginx', 'UDP'],
      ['a-very-long-namespace-name/a-very-long-service-name:https', 'SCTP'],
    ] as const) {
      const n = perServiceChainNames(sp, proto);
      expect(n.service).toBe(serviceChainName(sp, proto));
      expect(n.localService).toBe(localServiceChainName(sp, proto));
      expect(n.external).toBe(externalChainName(sp, proto));
      expect(n.firewall).toBe(firewallChainName(sp, proto));
      expect(n.hash).toBe(portProtoHash(sp, proto));
    }
  });

  test('names built one after another do not share state (scratch buffer reuse)', () => {
    const a = endpointChainName('ns1/svc1:p80', 'TCP', '10.180.0.1:80');
    const b = serviceChainName('ns3/svc3:p80', 'TCP');
    const c = endpointChainName('ns1/svc1:p80', 'TCP', '10.180.0.1:80');
    expect([a, b, c]).toEqual([
      'KUBE-SEP-SXIVWICOYRO3J4NJ',
      'KUBE-SVC-X27LE4BHSL4DOUIK',
      'KUBE-SEP-SXIVWICOYRO3J4NJ',
    ]);
  });

  test('non-ASCII service port names hash their UTF-8 bytes (as Go does)', () => {
    // Computed independently: python3 -c "import hashlib,base64;
    //   print(base64.b32encode(hashlib.sha256('ns/svc-é:p'.encode()+b'tcp').digest())[:16])"
    expect(portProtoHash('ns/svc-é:p', 'TCP')).toBe('QVYXJBSN3PXAOJUS');
  });
});
