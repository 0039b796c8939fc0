// Label and field selectors as the API server parses them (the subset portway and its tests use),
// and the three patch flavours a client can send. Pure.

export type ObjectMatcher = (obj: Record<string, unknown>) => boolean;

export class SelectorError extends Error {}

/** Split on commas that are not inside parentheses ("a in (x,y),!b" → ["a in (x,y)", "!b"]). */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  if (current.trim() !== '') terms.push(current.trim());
  return terms;
}

/** `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, comma = AND. */
export function parseLabelSelector(text: string): ObjectMatcher {
  const tests: Array<(labels: Record<string, string>) => boolean> = [];
  for (const term of splitTerms(text)) {
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term))) {
      const key = m[1]!;
      const values = new Set(m[3]!.split(',').map((v) => v.trim()));
      const negate = m[2] === 'notin';
      tests.push((l) => (negate ? !(key in l) || !values.has(l[key]!) : key in l && values.has(l[key]!)));
    } else if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(term))) {
      const key = m[1]!;
      const value = m[3]!;
      if (m[2] === '!=') tests.push((l) => l[key] !== value);
      else tests.push((l) => l[key] === value);
    } else if ((m = /^!([\w./-]+)$/.exec(term))) {
      const key = m[1]!;
      tests.push((l) => !(key in l));
    } else if ((m = /^([\w./-]+)$/.exec(term))) {
      const key = m[1]!;
      tests.push((l) => key in l);
    } else {
      throw new SelectorError(`unable to parse requirement: "${term}"`);
    }
  }
  return (obj) => {
    const labels = ((obj.metadata as Record<string, unknown> | undefined)?.labels ?? {}) as Record<
      string,
      string
    >;
    return tests.every((t) => t(labels));
  };
}

/** `path=v`, `path==v`, `path!=v` on any dotted field path (metadata.name, spec.nodeName, …). */
export function parseFieldSelector(text: string): ObjectMatcher {
  const tests: ObjectMatcher[] = [];
  for (const term of splitTerms(text)) {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw new SelectorError(`invalid field selector: "${term}"`);
    const path = m[1]!.split('.');
    const value = m[3]!;
    const negate = m[2] === '!=';
    tests.push((obj) => {
      let at: unknown = obj;
      for (const p of path)
        at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[p] : undefined;
      const text = at === undefined || at === null ? '' : String(at);
      return negate ? text !== value : text === value;
    });
  }
  return (obj) => tests.every((t) => t(obj));
}

/** RFC 7386 JSON merge patch. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as object) } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

export class PatchError extends Error {}

/** RFC 6902 JSON patch: add, remove, replace, test (what client-node sends by default). */
export function applyJsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError('JSON patch must be an array of operations');
  let doc: unknown = structuredClone(target);
  for (const op of ops as Array<{ op: string; path: string; value?: unknown }>) {
    const tokens = op.path
      .split('/')
      .slice(1)
      .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (tokens.length === 0) {
      if (op.op === 'add' || op.op === 'replace') doc = structuredClone(op.value);
      else throw new PatchError(`unsupported root operation ${op.op}`);
      continue;
    }
    let parent: unknown = doc;
    for (const t of tokens.slice(0, -1)) {
      parent = (parent as Record<string, unknown> | undefined)?.[t];
      if (parent === null || typeof parent !== 'object')
        throw new PatchError(`path ${op.path} does not exist`);
    }
    const last = tokens[tokens.length - 1]!;
    // Objects and arrays are both indexed by the token; arrays also splice.
    const container = parent as Record<string, unknown>;
    switch (op.op) {
      case 'add':
        if (Array.isArray(container)) {
          const index = last === '-' ? container.length : Number(last);
          (container as unknown[]).splice(index, 0, structuredClone(op.value));
        } else container[last] = structuredClone(op.value);
        break;
      case 'replace':
        if (!(last in container)) throw new PatchError(`path ${op.path} does not exist`);
        container[last] = structuredClone(op.value);
        break;
      case 'remove':
        if (!(last in container)) throw new PatchError(`path ${op.path} does not exist`);
        if (Array.isArray(container)) (container as unknown[]).splice(Number(last), 1);
        else delete container[last];
        break;
      case 'test':
        if (JSON.stringify(container[last]) !== JSON.stringify(op.value)) {
          throw new PatchError(`test failed at ${op.path}`);
        }
        break;
      default:
        throw new PatchError(`unsupported JSON patch operation "${op.op}"`);
    }
  }
  return doc;
}
