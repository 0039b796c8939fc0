import {
  chainOwner,
  endpointChainName,
  externalChainName,
  firewallChainName,
  isServiceChainName,
  localServiceChainName,
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
