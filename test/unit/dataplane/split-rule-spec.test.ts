// splitRuleSpec was rewritten for speed (full syncs split every line of a big iptables-save dump):
// it must split exactly as the original character-by-character version did, errors included.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { splitRuleSpec } from '../../../src/dataplane/iptables-text.js';

/** The original implementation, kept as the reference. */
function referenceSplit(text: string): string[] {
  const tokens: string[] = [];
  let current = '';
  let inToken = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quote !== null) {
      if (ch === '\\' && (text[i + 1] === quote || text[i + 1] === '\\')) {
        current += text[i + 1];
        i++;
      } else if (ch === quote) {
        quote = null;
      } else {
        current += ch;
      }
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      inToken = true;
    } else if (/\s/.test(ch)) {
      if (inToken) tokens.push(current);
      current = '';
      inToken = false;
    } else {
      current += ch;
      inToken = true;
    }
  }
  if (quote !== null) throw new Error(`unterminated ${quote} quote in "${text}"`);
  if (inToken) tokens.push(current);
  return tokens;
}

const outcome = (f: () => string[]): { tokens?: string[]; error?: string } => {
  try {
    return { tokens: f() };
  } catch (e) {
    return { error: (e as Error).message };
  }
};

describe('splitRuleSpec', () => {
  it('splits iptables-save lines', () => {
    expect(
      splitRuleSpec('-A KUBE-SVC-X -m comment --comment "ns/svc:http -> 10.0.0.1:80" -j KUBE-SEP-Y'),
    ).toEqual([
      '-A',
      'KUBE-SVC-X',
      '-m',
      'comment',
      '--comment',
      'ns/svc:http -> 10.0.0.1:80',
      '-j',
      'KUBE-SEP-Y',
    ]);
    // Quotes group even mid-token; a backslash escapes only inside quotes (outside it is a character).
    expect(splitRuleSpec(`  a'b c'd  "" x\\y "g\\"h\\\\" `)).toEqual(['ab cd', '', 'x\\y', 'g"h\\']);
    expect(() => splitRuleSpec('-m comment --comment "open')).toThrow(
      'unterminated " quote in "-m comment --comment "open"',
    );
  });

  it('agrees with the original implementation on any input', () => {
    const chars = fc.constantFrom(
      ' ',
      ' ',
      '\t',
      '\n',
      '\u00a0',
      '\u2003',
      '"',
      "'",
      '\\',
      'a',
      'b',
      '-',
      '/',
      ':',
      '1',
      'é',
    );
    fc.assert(
      fc.property(
        fc.array(chars, { maxLength: 40 }).map((cs) => cs.join('')),
        (text) => {
          expect(outcome(() => splitRuleSpec(text))).toEqual(outcome(() => referenceSplit(text)));
        },
      ),
      { numRuns: 3000 },
    );
  });
});
