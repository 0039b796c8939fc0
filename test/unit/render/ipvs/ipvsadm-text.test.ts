// The ipvsadm part cannot be loaded here (no IPVS in this kernel): it is checked by reading it back.
// Every golden .ipvs file parses into exactly the virtual and real servers its rule set holds, and
// the reader takes ipvsadm-save -n's own shapes and rejects what ipvsadm-restore would.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadClusterState } from '../../../../src/model/index.js';
import {
  ipvsRenderOptionsFromConfig,
  parseIpvsadmRules,
  renderIpvs,
  serializeIpvs,
} from '../../../../src/render/ipvs/index.js';
import { caseConfig, GOLDEN_DIR, goldenCases, IPVS_FILES } from '../../../golden/golden-cases.js';

describe('golden ipvsadm parts read back', () => {
  it.each(goldenCases())('%s', async (name) => {
    const { state } = await loadClusterState([join(GOLDEN_DIR, name, 'input.yaml')]);
    const config = caseConfig(name);
    for (const { family, file } of IPVS_FILES.filter((f) => f.part === 'ipvs')) {
      const rs = renderIpvs(state, ipvsRenderOptionsFromConfig(config, family, config.nodeIPs));
      const parsed = parseIpvsadmRules(readFileSync(join(GOLDEN_DIR, name, file), 'utf8'));
      expect(parsed.timeouts).toEqual(rs.timeouts);
      expect(parsed.virtualServers).toEqual(
        rs.virtualServers.map((vs) => ({
          protocol: vs.protocol,
          address: vs.address,
          port: vs.port,
          scheduler: vs.scheduler,
          flags: vs.flags,
          persistenceTimeoutSeconds: vs.persistenceTimeoutSeconds,
          realServers: vs.realServers,
        })),
      );
    }
  });
});

describe('parseIpvsadmRules', () => {
  it('reads ipvsadm-save -n output: TCP, UDP, SCTP, IPv6 in brackets, flags, persistence, weights', () => {
    const parsed = parseIpvsadmRules(
      [
        '-A -t 10.96.0.1:443 -s rr',
        '-a -t 10.96.0.1:443 -r 172.18.0.2:6443 -m -w 1',
        '-A -u 10.96.0.10:53 -s wrr',
        '-a -u 10.96.0.10:53 -r 10.244.0.2:53 -m -w 0',
        '-A --sctp-service 10.96.0.9:9 -s lc',
        '-A -t [fd00::10]:80 -s sh -b sh-fallback,sh-port -p 300',
        '-a -t [fd00::10]:80 -r [fd00:244::2]:8080 -m -w 1',
        '',
      ].join('\n'),
    );
    expect(
      parsed.virtualServers.map((vs) => [
        vs.protocol,
        vs.address,
        vs.port,
        vs.scheduler,
        vs.flags,
        vs.persistenceTimeoutSeconds,
        vs.realServers.map((r) => `${r.address}:${r.port}/${r.weight}/${r.forwarding}`),
      ]),
    ).toEqual([
      ['TCP', '10.96.0.1', 443, 'rr', [], null, ['172.18.0.2:6443/1/masquerade']],
      ['UDP', '10.96.0.10', 53, 'wrr', [], null, ['10.244.0.2:53/0/masquerade']],
      ['SCTP', '10.96.0.9', 9, 'lc', [], null, []],
      ['TCP', 'fd00::10', 80, 'sh', ['sh-fallback', 'sh-port'], 300, ['fd00:244::2:8080/1/masquerade']],
    ]);
  });

  it('round-trips a rendered part with timeouts', () => {
    const text =
      '--set 900 120 300\n-A -t 10.96.0.1:80 -s mh -p 10800 -b mh-port\n-a -t 10.96.0.1:80 -r 10.244.0.2:80 -m -w 1\n';
    const parsed = parseIpvsadmRules(text);
    expect(parsed.timeouts).toEqual({ tcpSeconds: 900, tcpFinSeconds: 120, udpSeconds: 300 });
    const vs = parsed.virtualServers[0]!;
    expect(
      serializeIpvs({
        family: 'IPv4',
        virtualServers: [
          {
            ...vs,
            kind: 'clusterIP',
            owner: 'ns/s:p/tcp',
            realServers: vs.realServers.map((r) => ({ ...r, forwarding: 'masquerade' })),
          },
        ],
        ipsets: [],
        iptables: { family: 'IPv4', tables: [], builtinJumps: [] },
        boundAddresses: [],
        dummyDevice: 'kube-ipvs0',
        sysctls: [],
        timeouts: parsed.timeouts,
      }),
    ).toBe(text);
  });

  it.each([
    [
      '-a -t 10.96.0.1:80 -r 10.244.0.2:80 -m -w 1',
      'line 1: real server of a virtual server not added before',
    ],
    ['-A -t 10.96.0.1:80 -s fastest', 'line 1: unknown scheduler fastest'],
    ['-A -t 10.96.0.1 -s rr', 'line 1: a service address is host:port'],
    ['-A -t fd00::1:80 -s rr', 'line 1: a service address is host:port'],
    ['-A -t 10.96.0.1:80 -s rr\n-A -t 10.96.0.1:80 -s rr', 'line 2: virtual server added twice'],
    ['-A -t 10.96.0.1:80 -s rr\n-a -t 10.96.0.1:80 -r 10.0.0.1:80 -w 70000', 'line 2: -w takes 0..65535'],
    ['-D -t 10.96.0.1:80', 'line 1: unknown command -D'],
  ])('rejects %j', (text, message) => {
    expect(() => parseIpvsadmRules(text)).toThrow(message);
  });
});
