// parseManifestText reads with js-yaml first and falls back to the `yaml` package: the two readings
// must agree on every text the quick one accepts, or a manifest would mean different things depending
// on whether some other document in its file has an error.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseManifestText, parseQuickly, parseThoroughly } from '../../../src/model/load.js';

const repo = new URL('../../../', import.meta.url).pathname;

function manifestFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return manifestFiles(path);
    return /\.(ya?ml|json)$/.test(name) ? [path] : [];
  });
}

/** Same objects in the same documents; NaN compared as NaN. */
function expectSameReading(text: string): void {
  const quick = parseQuickly(text, 's');
  if (quick === null) return;
  const thorough = parseThoroughly(text, 's');
  expect(thorough.problems).toEqual([]);
  expect(quick).toEqual(thorough);
}

describe('the quick and the thorough manifest readings', () => {
  // YAML 1.1 leftovers, edge forms of numbers, nulls and booleans, quoting and block scalars.
  const scalars = [
    '010',
    '0o10',
    '0x10',
    '0X10',
    '0b101',
    '-0x1',
    '+0x1',
    '1_000',
    '1e3',
    '1E3',
    '+.5e5',
    '.5',
    '+1',
    '-0',
    '0.',
    '1.',
    '-1.5e-3',
    '08',
    '0777',
    '00',
    '1.2.3',
    '.',
    '~',
    'null',
    'Null',
    'NULL',
    'nULL',
    'true',
    'True',
    'TRUE',
    'tRUE',
    'false',
    'yes',
    'no',
    'on',
    'off',
    'y',
    '2024-01-01',
    '2024-01-01T00:00:00Z',
    '12:30',
    '190:20:30',
    '.inf',
    '-.Inf',
    '+.INF',
    '.NaN',
    '.nan',
    '=',
    '<<',
    "'q'",
    '"d\\u00e9"',
    '!!str 5',
    '!!int "5"',
    '"\\x41"',
    '|\n  a\n  b',
    '>-\n  a\n  b',
    '"10.0.0.1"',
    '10.0.0.1',
    '2001:db8::1',
    'fd00::',
    '::1',
    '0.0.0.0/0',
    '"*.example.com"',
    'a*b',
    'a&b',
  ];
  it.each(scalars)('read the scalar %j the same way', (scalar) => {
    const text = `apiVersion: v1\nkind: X\nv: ${scalar}\nlist: [${scalar.includes('\n') ? 'x' : scalar}]\n`;
    // Where the thorough reading finds no error, the quick one must have accepted the text too.
    if (parseThoroughly(text, 's').problems.length === 0) expect(parseQuickly(text, 's')).not.toBeNull();
    expectSameReading(text);
  });

  it('number multi-document streams the same way (empty and comment-only documents count)', () => {
    const fragments = [
      'kind: A\nmetadata: {name: a}\n',
      '',
      '# only a comment\n',
      '{"kind":"B","items":[]}\n',
      'kind: ServiceList\napiVersion: v1\nitems:\n- metadata: {name: s}\n',
      '- {kind: C}\n- {kind: D}\n',
      'null\n',
      'plain scalar\n',
      'kind: E\nspec: {ports: [{port: 80, nodePort: 30080}]}\n',
    ];
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...fragments), { maxLength: 8 }),
        fc.boolean(),
        fc.constantFrom('---\n', '--- \n', '...\n---\n'),
        (docs, leadingMarker, separator) => {
          const text = (leadingMarker ? '---\n' : '') + docs.join(separator);
          expectSameReading(text);
        },
      ),
    );
  });

  it('agree on every manifest in the repository (fixtures, goldens, examples, chart CRDs)', () => {
    const files = ['test', 'examples', 'charts'].flatMap((d) => manifestFiles(join(repo, d)));
    expect(files.length).toBeGreaterThan(20);
    let quick = 0;
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      if (text.includes('{{')) continue; // Helm templates are not YAML until rendered
      expectSameReading(text);
      if (parseQuickly(text, file) !== null) quick++;
    }
    // Most of them have no errors and no anchors: the quick path must really be the one taken.
    expect(quick).toBeGreaterThan(files.length / 2);
  });

  it('leave texts with anchors, errors or duplicate keys to the thorough reading', () => {
    expect(parseQuickly('a: &x {k: 1}\nb: *x\n', 's')).toBeNull();
    expect(parseQuickly('- &x 1\n- *x\n', 's')).toBeNull();
    expect(parseQuickly('kind: B\nmetadata: {name: [oops\n', 's')).toBeNull();
    expect(parseQuickly('{"kind":"A","kind":"B"}', 's')).toBeNull();
    expect(parseQuickly('!!binary aGk=\n', 's')).toBeNull();
    // …and parseManifestText still reports them through it.
    expect(
      parseManifestText('kind: A\n---\nkind: B\nmetadata: {name: [oops\n', 'bad.yaml').problems[0]?.message,
    ).toMatch(/^YAML syntax error in document 2 at line \d+/);
    expect(parseManifestText('a: &x {k: 1}\nb: *x\n', 's').objects[0]?.object).toEqual({
      a: { k: 1 },
      b: { k: 1 },
    });
  });

  it('take the quick path for a large ordinary manifest', () => {
    const doc = (i: number): string =>
      `apiVersion: v1\nkind: Service\nmetadata: { name: svc${i}, namespace: ns }\nspec:\n  clusterIP: 10.96.0.${i % 250}\n  ports: [{ port: 80, targetPort: 8080 }]\n`;
    const text = Array.from({ length: 500 }, (_, i) => doc(i)).join('---\n');
    const quick = parseQuickly(text, 'big.yaml');
    expect(quick?.objects).toHaveLength(500);
    expect(quick?.objects[499]?.document).toBe(500);
  });
});
