// Which paths of a checkout a .dockerignore keeps out of the build context, by Docker's rules: patterns
// are relative to the context root (a leading "/" is dropped), `*` and `?` stay within one path segment,
// `**` spans any number of them, a pattern that matches a directory excludes everything below it, `!`
// re-includes, and the last matching line wins. Pure, so the context can be checked without a Docker engine.

interface Rule {
  negated: boolean;
  pattern: RegExp;
}

function toRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      out += '.*';
      i++;
      if (pattern[i + 1] === '/') i++; // "**/x" also matches "x"
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

export function parseDockerignore(text: string): Rule[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negated = l.startsWith('!');
      const body = (negated ? l.slice(1) : l).trim().replace(/^\/+/, '').replace(/\/+$/, '');
      return { negated, pattern: toRegExp(body) };
    });
}

/** Whether `path` (relative to the context root, "/"-separated) is left out of the build context. */
export function isExcluded(rules: Rule[], path: string): boolean {
  const parts = path.split('/').filter(Boolean);
  // the path itself and each directory above it
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let excluded = false;
  for (const rule of rules) {
    if (candidates.some((c) => rule.pattern.test(c))) excluded = !rule.negated;
  }
  return excluded;
}
