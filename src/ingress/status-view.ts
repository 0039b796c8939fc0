// The Ingress view of `portway status`: per Ingress its class, the published address and the node that
// answers ARP for it, then every host/path → Service:port → endpoint count or the reason it fails.
// Pure; text and JSON from the same records.

import type { OwnerDecision } from '../l2/election.js';
import { printableLines } from '../model/names.js';
import type { IngressReport } from './evaluate.js';

export interface IngressStatusRecord {
  ingress: string;
  class: string | null;
  classSource: string;
  /** Why there is no class, or why portway does not publish for it ('' when it does). */
  note: string;
  published: boolean;
  addresses: Array<{ ip: string; ports?: number[]; arpOwner?: string | null; arpReason?: string }>;
  addressReason: string;
  routes: Array<{
    host: string;
    path: string | null;
    pathType: string | null;
    target: string;
    state: string;
    endpoints: number;
    reason: string;
  }>;
}

/** The records of the view, with the layer2 decision of each published LoadBalancer address. */
export function ingressStatusRecords(reports: readonly IngressReport[], owners: readonly OwnerDecision[]): IngressStatusRecord[] {
  const byIp = new Map(owners.map((d) => [d.ip, d]));
  return reports.map((r) => {
    const cls = r.class;
    const note =
      cls.class === null
        ? cls.message
        : r.handled === null
          ? `class ${cls.class} is not in ingress.classes: its controller publishes the address`
          : '';
    const addresses = (r.address?.addresses ?? []).map((a) => {
      if (a.ports) return { ip: a.ip, ports: a.ports.map((p) => p.port) };
      const d = byIp.get(a.ip);
      return d ? { ip: a.ip, arpOwner: d.owner, arpReason: d.owner ? '' : d.reason } : { ip: a.ip };
    });
    return {
      ingress: `${r.ingress.namespace}/${r.ingress.name}`,
      class: cls.class,
      classSource: cls.class === null ? '' : cls.source,
      note,
      published: r.handled !== null,
      addresses,
      addressReason: r.address?.reason ?? '',
      routes: r.backends.map((b) => ({
        host: b.host,
        path: b.path?.path ?? null,
        pathType: b.path?.pathType ?? null,
        target: b.target,
        state: b.state,
        endpoints: b.endpoints,
        reason: b.reason,
      })),
    };
  });
}

function addressText(a: IngressStatusRecord['addresses'][number]): string {
  if (a.ports) return `${a.ip} node ports ${a.ports.join(',')}`;
  if (a.arpOwner === undefined) return `${a.ip} (ARP: not decided here)`;
  return a.arpOwner ? `${a.ip} (ARP: ${a.arpOwner})` : `${a.ip} (ARP: no node, ${a.arpReason})`;
}

export function formatIngressStatus(records: readonly IngressStatusRecord[]): string {
  const lines = [`Ingresses: ${records.length}`];
  for (const r of records) {
    const cls = r.class === null ? 'no class' : `class ${r.class} (${r.classSource})`;
    lines.push(`  ${r.ingress}: ${cls}`);
    if (r.note !== '') lines.push(`    ${r.note}`);
    if (r.published) {
      lines.push(
        r.addresses.length > 0
          ? `    published: ${r.addresses.map(addressText).join(', ')}`
          : `    published: nothing (${r.addressReason})`,
      );
    }
    for (const route of r.routes) {
      const where = route.path === null ? '(defaultBackend)' : `${route.host || '*'}${route.path || '/'} (${route.pathType})`;
      const outcome = route.state === 'ok' ? `${route.endpoints} ready endpoint${route.endpoints === 1 ? '' : 's'}` : `${route.state}: ${route.reason}`;
      lines.push(`    ${where} -> ${route.target} -> ${outcome}`);
    }
  }
  // Reasons quote what the Ingress wrote (a resource backend's kind and name are free text).
  return printableLines(lines.join('\n'));
}
