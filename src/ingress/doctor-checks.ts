// The Ingress checks of `portway doctor`: per Ingress of a configured class, whether an address can be
// published, and per Ingress (any class) whether its backends work. Pure; the findings have doctor's shape.
import type { DoctorFinding } from '../troubleshoot/doctor.js';
import type { IngressReport } from './evaluate.js';

const FAILING = new Set(['noService', 'noPort', 'noEndpoints']);

export function ingressDoctorFindings(reports: readonly IngressReport[]): DoctorFinding[] {
  const findings: DoctorFinding[] = [];
  for (const r of reports) {
    const key = `${r.ingress.namespace}/${r.ingress.name}`;
    const failing = r.backends.filter((b) => FAILING.has(b.state));
    const details = failing.map((b) => `${b.path === null ? 'defaultBackend' : `${b.host || '*'}${b.path.path || '/'}`} -> ${b.target}: ${b.reason}`);
    if (r.handled !== null && r.address !== null && r.address.addresses.length === 0) {
      findings.push({
        severity: 'error',
        check: `ingress/${key}`,
        message: `class ${r.handled.name}: no address to publish (${r.address.reason})`,
        details,
      });
    } else if (failing.length > 0) {
      findings.push({
        severity: 'warning',
        check: `ingress/${key}`,
        message: `${failing.length} of ${r.backends.length} backends failing`,
        details,
      });
    } else if (r.handled !== null) {
      findings.push({
        severity: 'ok',
        check: `ingress/${key}`,
        message: `publishes ${r.address?.addresses.map((a) => a.ip).join(', ')}; ${r.backends.length} backend(s) checked`,
        details: [],
      });
    }
  }
  return findings;
}
