// `portway doctor`: where this node's live state differs from what the cluster asks for. Pure: the
// command gathers the inputs (iptables-save, sysctls, processes) and this module only judges them.
import type { SavedTable } from '../dataplane/iptables-text.js';
import type { IptablesBackend } from '../dataplane/interfaces.js';
import type { IPFamily } from '../model/cluster-state.js';
import type { IptablesRuleSet } from '../render/types.js';
import { detectDrift, type DriftFinding } from '../sync/drift.js';
import type { WantedSysctl } from '../sync/sysctls.js';
import { diagnoseIpvs, type IpvsDoctorInputs } from './ipvs-doctor.js';

export type Severity = 'ok' | 'warning' | 'error';

export interface DoctorFinding {
  severity: Severity;
  /** Short stable name of the check, for scripts: "kube-proxy", "rules/IPv4", "sysctl/net/ipv4/ip_forward", … */
  check: string;
  message: string;
  details: string[];
}

export interface DoctorInputs {
  families: Array<{ family: IPFamily; desired: IptablesRuleSet; saved: ReadonlyMap<string, SavedTable> }>;
  sysctls: Array<{ wanted: WantedSysctl; actual: string | null }>;
  /** Command names of the processes running on the node (/proc/PID/comm). */
  processes: string[];
  backend: { inUse: IptablesBackend; otherBackendHasKubeChains: boolean };
  /**
   * The configured proxy mode (default iptables). In ipvs mode `families[].desired` are ipvs mode's
   * constant rules and `ipvs` holds the rest to compare; without `ipvs` the rule check is skipped with a
   * warning (the kernel is not judged by iptables mode's rules).
   */
  mode?: 'iptables' | 'ipvs' | 'nftables';
  /** ipvs mode: IPVS availability, the rendered state per family and what the kernel holds. */
  ipvs?: IpvsDoctorInputs;
}

const DRIFT_WORDS: Record<DriftFinding['kind'], string> = {
  missingChain: 'chain missing',
  unexpectedChain: 'chain not expected',
  rulesDiffer: 'rules differ',
  missingJump: 'jump from a built-in chain missing',
};

function describeDrift(d: DriftFinding): string[] {
  const head = `${d.table} ${d.chain}: ${DRIFT_WORDS[d.kind]}`;
  return [
    head,
    ...d.missingRules.map((r) => `  kernel lacks: ${r}`),
    ...d.extraRules.map((r) => `  kernel has extra: ${r}`),
  ];
}

export function diagnose(inputs: DoctorInputs): DoctorFinding[] {
  const findings: DoctorFinding[] = [];

  const kubeProxy = inputs.processes.filter((p) => p === 'kube-proxy');
  findings.push(
    kubeProxy.length > 0
      ? {
          severity: 'error',
          check: 'kube-proxy',
          message:
            'kube-proxy is running on this node: it programs the same chains as portway and the two overwrite each other. ' +
            'Remove the kube-proxy DaemonSet (portway takes its rules over without a gap).',
          details: [],
        }
      : { severity: 'ok', check: 'kube-proxy', message: 'kube-proxy is not running', details: [] },
  );

  if (inputs.backend.otherBackendHasKubeChains) {
    findings.push({
      severity: 'warning',
      check: 'iptables-backend',
      message: `portway uses iptables-${inputs.backend.inUse}, but the other backend also holds KUBE-* chains: packets meet both rule sets`,
      details: [
        'remove the stale ones (e.g. `portway cleanup` run with the other backend, or reboot after switching)',
      ],
    });
  }

  const ipvsUnchecked = inputs.mode === 'ipvs' && inputs.ipvs === undefined;
  if (ipvsUnchecked) {
    findings.push({
      severity: 'warning',
      check: 'mode',
      message:
        'the configuration says mode: ipvs, and the IPVS state was not read: the virtual servers, ipsets, ' +
        'kube-ipvs0 addresses and the rules of ipvs mode are not compared with the kernel',
      details: ['`portway render --config FILE` (mode: ipvs) prints what this node should hold'],
    });
  }
  if (inputs.mode === 'nftables') {
    findings.push({
      severity: 'warning',
      check: 'mode',
      message:
        'the configuration says mode: nftables, and doctor checks iptables mode only: the portway nftables ' +
        'tables are not compared with the kernel (issue 14)',
      details: ['`portway render --config FILE` (mode: nftables) prints what this node should hold'],
    });
  }
  if (inputs.ipvs) findings.push(...diagnoseIpvs(inputs.ipvs));
  const rulesUnchecked = ipvsUnchecked || inputs.mode === 'nftables';
  for (const { family, desired, saved } of rulesUnchecked ? [] : inputs.families) {
    const drift = detectDrift(desired, saved);
    findings.push(
      drift.length === 0
        ? {
            severity: 'ok',
            check: `rules/${family}`,
            message: `${family} rules match what the cluster asks for`,
            details: [],
          }
        : {
            severity: 'error',
            check: `rules/${family}`,
            message: `${family} rules differ from what the cluster asks for in ${drift.length} place(s) (the agent's next full sync repairs this if it is running)`,
            details: drift.flatMap(describeDrift),
          },
    );
  }

  for (const { wanted, actual } of inputs.sysctls) {
    const ok = actual === wanted.value;
    findings.push({
      severity: ok ? 'ok' : 'error',
      check: `sysctl/${wanted.key}`,
      message: ok
        ? `${wanted.key} = ${wanted.value}`
        : `${wanted.key} is ${actual ?? 'absent'}, needs ${wanted.value}: ${wanted.why}`,
      details: [],
    });
  }
  return findings;
}

export function formatDoctor(findings: DoctorFinding[]): string {
  const mark: Record<Severity, string> = { ok: 'ok  ', warning: 'WARN', error: 'FAIL' };
  const lines = findings.flatMap((f) => [
    `${mark[f.severity]} ${f.check}: ${f.message}`,
    ...f.details.map((d) => `       ${d}`),
  ]);
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.filter((f) => f.severity === 'warning').length;
  lines.push(
    errors + warnings === 0 ? 'All checks passed.' : `${errors} problem(s), ${warnings} warning(s).`,
  );
  return lines.join('\n') + '\n';
}
