import {
  dns1035LabelProblem,
  dns1123LabelProblem,
  dns1123SubdomainProblem,
  ianaSvcNameProblem,
  interfaceNameProblem,
  labelValueProblem,
  printableLine,
  printableLines,
  printableName,
  quoteText,
} from '../../../src/model/names.js';

const ok = (rule: (s: string) => string | null, names: string[]) =>
  expect(names.filter((n) => rule(n) !== null)).toEqual([]);
const bad = (rule: (s: string) => string | null, names: string[]) =>
  expect(names.filter((n) => rule(n) === null)).toEqual([]);

describe('DNS-1123 label (namespaces, slice port names)', () => {
  it('accepts lowercase alphanumerics and inner dashes up to 63 characters', () => {
    ok(dns1123LabelProblem, ['a', '0', 'kube-system', '1abc', 'a-b-c', 'a'.repeat(63), 'a--b']);
  });
  it('refuses empty, too long, upper case, dots, edge dashes, spaces and markup', () => {
    bad(dns1123LabelProblem, [
      '',
      'a'.repeat(64),
      'Web',
      'a.b',
      '-a',
      'a-',
      'a b',
      'a_b',
      'a\nb',
      'a<b',
      'ä',
    ]);
  });
});

describe('DNS-1123 subdomain (slice, node, ingress, pool names)', () => {
  it('accepts dot-separated labels up to 253 characters', () => {
    ok(dns1123SubdomainProblem, [
      'a',
      'node-1.example.com',
      'web-abc12',
      `${'a'.repeat(63)}.${'b'.repeat(63)}`,
      'a'.repeat(253),
    ]);
  });
  it('refuses empty parts, edge dashes or dots, upper case and more than 253 characters', () => {
    bad(dns1123SubdomainProblem, [
      '',
      'a..b',
      '.a',
      'a.',
      'a.-b',
      'a-.b',
      'Node1',
      'a'.repeat(254),
      'a/b',
      'a:b',
    ]);
  });
});

describe('DNS-1035 label (Service names)', () => {
  it('accepts names starting with a letter', () => {
    ok(dns1035LabelProblem, ['a', 'web', 'web-2', 'a'.repeat(63)]);
  });
  it('refuses a leading digit, edge dashes, dots, upper case and markup', () => {
    bad(dns1035LabelProblem, [
      '',
      '1web',
      'web-',
      '-web',
      'web.a',
      'Web',
      'a'.repeat(64),
      'innocent</code>',
      'a\nb',
      'a"b',
    ]);
  });
});

describe('IANA_SVC_NAME (Service port names)', () => {
  it('accepts up to 15 characters with a letter and single inner dashes', () => {
    ok(ianaSvcNameProblem, ['http', 'h2c', 'grpc-web', 'a', 'a1', '8080a', 'a'.repeat(15), 'x-1-y']);
  });
  it('refuses digits only, edge or double dashes, upper case, 16 characters and other punctuation', () => {
    bad(ianaSvcNameProblem, [
      '',
      '8080',
      '1-2',
      '-http',
      'http-',
      'my--port',
      'HTTP',
      'a'.repeat(16),
      'http.s',
      'a:b',
      'a b',
    ]);
  });
});

describe('label values (the kubernetes.io/service-name label)', () => {
  it('accepts empty, mixed case, dots and underscores inside', () => {
    ok(labelValueProblem, ['', 'web', 'Web_1.x', 'a'.repeat(63)]);
  });
  it('refuses punctuation at the ends, slashes, spaces and more than 63 characters', () => {
    bad(labelValueProblem, ['_a', 'a.', 'a/b', 'a b', 'a'.repeat(64)]);
  });
});

describe('interface names (L2Advertisement interfaces)', () => {
  it('accepts 1-15 bytes without separators', () => {
    ok(interfaceNameProblem, ['eth0', 'enp0s31f6', 'br-lan', 'vlan.10', 'a'.repeat(15)]);
  });
  it("refuses '.', '..', '/', ':', spaces, control characters and 16 bytes", () => {
    bad(interfaceNameProblem, [
      '',
      '.',
      '..',
      'a/b',
      'eth0:1',
      'eth 0',
      'eth\n0',
      'a'.repeat(16),
      'éééééééé',
    ]);
  });
});

describe('quoting for output', () => {
  it('quotes a name that is not a plain word, escaping newlines, bidi and C1 controls', () => {
    expect(printableName('web')).toBe('web');
    expect(printableName('a\nb')).toBe('"a\\nb"');
    expect(quoteText('a\u202eb\u0085c\u2028')).toBe('"a\\u202eb\\u0085c\\u2028"');
  });
  it('escapes each line of a multi-line output and ends it with one newline', () => {
    expect(printableLines('verdict: ACCEPT\nrule: -m comment --comment "\u001b[2Jx"\n')).toBe(
      'verdict: ACCEPT\nrule: -m comment --comment "\\u001b[2Jx"\n',
    );
    expect(printableLines('a')).toBe('a\n');
  });

  it('keeps a printed line on one line', () => {
    expect(printableLine('file\nname\u001b[31m: x')).toBe('file\\u000aname\\u001b[31m: x');
  });
});
