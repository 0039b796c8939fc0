// Kubernetes label selector semantics (metav1.LabelSelector). Pure.
import type { LabelSelector } from '../model/cluster-state.js';

/** True when `labels` satisfy every matchLabels pair and every expression; an empty selector matches all. */
export function matchesLabelSelector(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels)) {
    if (labels[key] !== value) return false;
  }
  for (const expr of selector.matchExpressions) {
    const has = Object.prototype.hasOwnProperty.call(labels, expr.key);
    const value = labels[expr.key];
    switch (expr.operator) {
      case 'In':
        if (!has || !expr.values.includes(value as string)) return false;
        break;
      case 'NotIn':
        if (has && expr.values.includes(value as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** True when any selector in the list matches (a list of selectors is an OR, as in MetalLB's CRDs). */
export function matchesAnySelector(selectors: LabelSelector[], labels: Record<string, string>): boolean {
  return selectors.some((s) => matchesLabelSelector(s, labels));
}
