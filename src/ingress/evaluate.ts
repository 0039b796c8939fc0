// One pass over the ClusterState: for every Ingress, its class, whether portway publishes for it, the
// address to publish and the check of each backend. The agent's writer, metrics, `status` and `doctor`
// all read this one result. Pure.

import type { ClusterState, IngressInfo } from '../model/cluster-state.js';
import { type AddressDecision, decidePublishedAddress } from './address.js';
import { type IngressBackendCheck, checkIngressBackends, indexServices } from './backends.js';
import { type ClassDecision, type HandledClass, ingressClassOf } from './classes.js';

export interface IngressReport {
  ingress: IngressInfo;
  class: ClassDecision;
  /** The configured class entry serving this Ingress, or null (its own controller publishes). */
  handled: HandledClass | null;
  /** What portway publishes (null when not handled). */
  address: AddressDecision | null;
  backends: IngressBackendCheck[];
}

/** Reports for every Ingress, in the state's (namespace, name) order. */
export function evaluateIngresses(
  state: Pick<ClusterState, 'ingresses' | 'ingressClasses' | 'services' | 'servicePorts' | 'nodes'>,
  handledClasses: readonly HandledClass[],
  nodePortAddresses: readonly string[] = [],
): IngressReport[] {
  const index = indexServices(state);
  const addresses = new Map<string, AddressDecision>();
  return state.ingresses.map((ingress) => {
    const cls = ingressClassOf(ingress, state.ingressClasses);
    const handled = cls.class === null ? null : (handledClasses.find((h) => h.name === cls.class) ?? null);
    let address: AddressDecision | null = null;
    if (handled) {
      address = addresses.get(handled.service) ?? decidePublishedAddress(handled.service, state, index.services, nodePortAddresses);
      addresses.set(handled.service, address);
    }
    return { ingress, class: cls, handled, address, backends: checkIngressBackends(ingress, index) };
  });
}
