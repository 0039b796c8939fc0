import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runningProcesses } from '../../../src/cli/commands/doctor.js';
import { parseIptablesSave } from '../../../src/dataplane/iptables-text.js';
import type { IptablesRuleSet } from '../../../src/render/types.js';
import { diagnose, formatDoctor, type DoctorInputs } from '../../../src/troubleshoot/doctor.js';

const desired: IptablesRuleSet = {
  family: 'IPv4',
  tables: [
    {
      name: 'nat',
      chains: [
        { name: 'KUBE-SERVICES', role: 'static', rules: ['-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-AAAAAAAAAAAAAAAA'] },
        { name: 'KUBE-SVC-AAAAAAAAAAAAAAAA', role: 'service', owner: 'ns/a:http/tcp', rules: [] },
      ],
    },
  ],
  builtinJumps: [{ table: 'nat', chain: 'PREROUTING', spec: '-j KUBE-SERVICES', position: 'prepend' }],
};

const goodSave = `*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-AAAAAAAAAAAAAAAA
COMMIT
`;

const inputs = (over: Partial<DoctorInputs> = {}): DoctorInputs => ({
  families: [{ family: 'IPv4', desired, saved: parseIptablesSave(goodSave) }],
  sysctls: [{ wanted: { key: 'net/ipv4/ip_forward', value: '1', why: 'forwarding' }, actual: '1' }],
  processes: ['systemd', 'kubelet'],
  backend: { inUse: 'nft', otherBackendHasKubeChains: false },
  ...over,
});

describe('diagnose', () => {
  it('passes a healthy node', () => {
    const findings = diagnose(inputs());
    expect(findings.every((f) => f.severity === 'ok')).toBe(true);
    expect(formatDoctor(findings)).toMatch(/All checks passed/);
  });

  it('mode ipvs without the IPVS state read: says so, and does not judge the kernel by iptables mode\'s rules', () => {
    const flushed = goodSave.replace(/^-A KUBE-SERVICES .*\n/m, '');
    const findings = diagnose(
      inputs({ mode: 'ipvs', families: [{ family: 'IPv4', desired, saved: parseIptablesSave(flushed) }] }),
    );
    expect(findings.find((f) => f.check === 'rules/IPv4')).toBeUndefined();
    const mode = findings.find((f) => f.check === 'mode');
    expect(mode?.severity).toBe('warning');
    expect(formatDoctor(findings)).toContain(
      'WARN mode: the configuration says mode: ipvs, and the IPVS state was not read',
    );
  });

  it('notices kube-proxy running beside portway', () => {
    const f = diagnose(inputs({ processes: ['kubelet', 'kube-proxy'] })).find((x) => x.check === 'kube-proxy')!;
    expect(f.severity).toBe('error');
    expect(f.message).toMatch(/overwrite each other/);
  });

  it('reports a flushed chain with the rule the kernel lacks', () => {
    const flushed = goodSave.replace(/^-A KUBE-SERVICES .*\n/m, '');
    const f = diagnose(inputs({ families: [{ family: 'IPv4', desired, saved: parseIptablesSave(flushed) }] })).find(
      (x) => x.check === 'rules/IPv4',
    )!;
    expect(f.severity).toBe('error');
    expect(f.details.join('\n')).toMatch(/nat KUBE-SERVICES: rules differ\n\s+kernel lacks: -A KUBE-SERVICES -d 10\.96\.0\.1\/32/);
  });

  it('reports a missing jump from a built-in chain', () => {
    const noJump = goodSave.replace('-A PREROUTING -j KUBE-SERVICES\n', '');
    const f = diagnose(inputs({ families: [{ family: 'IPv4', desired, saved: parseIptablesSave(noJump) }] })).find(
      (x) => x.check === 'rules/IPv4',
    )!;
    expect(f.details.join('\n')).toMatch(/PREROUTING: jump from a built-in chain missing/);
  });

  it('reports a wrong sysctl with why it matters, and a second backend with KUBE chains', () => {
    const findings = diagnose(
      inputs({
        sysctls: [{ wanted: { key: 'net/ipv4/ip_forward', value: '1', why: 'forwarding' }, actual: '0' }],
        backend: { inUse: 'nft', otherBackendHasKubeChains: true },
      }),
    );
    expect(findings.find((f) => f.check === 'sysctl/net/ipv4/ip_forward')).toMatchObject({
      severity: 'error',
      message: 'net/ipv4/ip_forward is 0, needs 1: forwarding',
    });
    expect(findings.find((f) => f.check === 'iptables-backend')?.severity).toBe('warning');
    expect(formatDoctor(findings)).toMatch(/1 problem\(s\), 1 warning\(s\)/);
  });
});

describe('runningProcesses', () => {
  it('reads command names from a proc root', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pw-proc-'));
    for (const [pid, comm] of [['1', 'systemd'], ['42', 'kube-proxy']] as const) {
      mkdirSync(join(root, pid));
      writeFileSync(join(root, pid, 'comm'), `${comm}\n`);
    }
    mkdirSync(join(root, 'sys'));
    expect((await runningProcesses(root)).sort()).toEqual(['kube-proxy', 'systemd']);
  });
});
