import type { IngressBackend, IngressInfo, IngressPathType } from '../../../src/model/cluster-state.js';
import { matchHost, matchPath, matchRoute, normaliseRequestHost } from '../../../src/ingress/match.js';

const svc = (name: string, port: number | string = 80): IngressBackend => ({ service: { name, port } });

function ingress(
  name: string,
  rules: Array<{ host?: string; paths: Array<[string, IngressPathType, string]> }>,
  extra: Partial<IngressInfo> = {},
): IngressInfo {
  return {
    namespace: 'web',
    name,
    ingressClassName: 'nginx',
    classAnnotation: '',
    rules: rules.map((r) => ({
      host: r.host ?? '',
      paths: r.paths.map(([path, pathType, backend]) => ({ path, pathType, backend: svc(backend) })),
    })),
    statusIngress: [],
    statusHostnames: [],
    ...extra,
  };
}

const backendOf = (ings: IngressInfo[], host: string, path: string): string | null => {
  const m = matchRoute(ings, host, path);
  if (!m) return null;
  return 'service' in m.backend ? m.backend.service.name : `resource:${m.backend.resource.name}`;
};

describe('path matching: the table of the Kubernetes Ingress documentation ("Examples")', () => {
  // [pathType, paths, request path, matches]
  const table: Array<[IngressPathType, string[], string, boolean]> = [
    ['Prefix', ['/'], '/anything/at/all', true],
    ['Exact', ['/foo'], '/foo', true],
    ['Exact', ['/foo'], '/bar', false],
    ['Exact', ['/foo'], '/foo/', false],
    ['Exact', ['/foo/'], '/foo', false],
    ['Prefix', ['/foo'], '/foo', true],
    ['Prefix', ['/foo'], '/foo/', true],
    ['Prefix', ['/foo/'], '/foo', true],
    ['Prefix', ['/foo/'], '/foo/', true],
    ['Prefix', ['/aaa/bb'], '/aaa/bbb', false],
    ['Prefix', ['/aaa/bbb'], '/aaa/bbb', true],
    ['Prefix', ['/aaa/bbb/'], '/aaa/bbb', true],
    ['Prefix', ['/aaa/bbb'], '/aaa/bbb/', true],
    ['Prefix', ['/aaa/bbb'], '/aaa/bbb/ccc', true],
    ['Prefix', ['/aaa/bbb'], '/aaa/bbbxyz', false],
    ['Prefix', ['/aaa'], '/ccc', false],
  ];
  it.each(table)('%s %j against %s: %s', (pathType, paths, request, expected) => {
    expect(paths.some((p) => matchPath(p, pathType, request))).toBe(expected);
  });

  it('several prefixes: the longest matching one wins (/, /aaa, /aaa/bbb)', () => {
    const ing = ingress('site', [
      { paths: [['/', 'Prefix', 'root'], ['/aaa', 'Prefix', 'aaa'], ['/aaa/bbb', 'Prefix', 'bbb']] },
    ]);
    expect(backendOf([ing], 'x', '/aaa/ccc')).toBe('aaa');
    expect(backendOf([ing], 'x', '/aaa/bbb')).toBe('bbb');
    expect(backendOf([ing], 'x', '/ccc')).toBe('root');
  });

  it('the same path as Prefix and Exact: Exact is preferred, whatever the order', () => {
    const a = ingress('site', [{ paths: [['/foo', 'Prefix', 'prefix'], ['/foo', 'Exact', 'exact']] }]);
    const b = ingress('site', [{ paths: [['/foo', 'Exact', 'exact'], ['/foo', 'Prefix', 'prefix']] }]);
    expect(backendOf([a], 'x', '/foo')).toBe('exact');
    expect(backendOf([b], 'x', '/foo')).toBe('exact');
    expect(backendOf([a], 'x', '/foo/bar')).toBe('prefix');
  });

  it('no path matches: the defaultBackend, else nothing (the controller answers 404)', () => {
    const withDefault = ingress('site', [{ paths: [['/aaa', 'Prefix', 'aaa']] }], { defaultBackend: svc('fallback') });
    expect(backendOf([withDefault], 'x', '/ccc')).toBe('fallback');
    expect(matchRoute([withDefault], 'x', '/ccc')?.path).toBeNull();
    expect(matchRoute([ingress('site', [{ paths: [['/aaa', 'Prefix', 'aaa']] }])], 'x', '/ccc')).toBeNull();
  });

  it('ImplementationSpecific matches as Prefix and says that it is a guess', () => {
    const ing = ingress('site', [{ paths: [['/app', 'ImplementationSpecific', 'app']] }]);
    const m = matchRoute([ing], 'x', '/app/x');
    expect(m?.path).toEqual({ path: '/app', pathType: 'ImplementationSpecific' });
    expect(m?.note).toMatch(/ImplementationSpecific/);
    expect(matchRoute([ing], 'x', '/application')).toBeNull();
  });
});

describe('host matching (docs "Hostname wildcards")', () => {
  it.each([
    ['*.foo.com', 'bar.foo.com', 'wildcard'],
    ['*.foo.com', 'baz.bar.foo.com', null],
    ['*.foo.com', 'foo.com', null],
    ['foo.bar.com', 'foo.bar.com', 'exact'],
    ['foo.bar.com', 'bar.foo.com', null],
    ['', 'anything.example', 'any'],
  ] as const)('rule host %j, request %j: %s', (rule, host, expected) => {
    expect(matchHost(rule, host)).toBe(expected);
  });

  it('request hosts are compared lower-case and without a port', () => {
    expect(normaliseRequestHost('Foo.Bar.com:8080')).toBe('foo.bar.com');
    expect(normaliseRequestHost('[2001:db8::1]:80')).toBe('[2001:db8::1]');
  });

  it('an exact host beats a wildcard, which beats a rule with no host', () => {
    const ing = ingress('site', [
      { paths: [['/', 'Prefix', 'catch-all']] },
      { host: '*.foo.com', paths: [['/', 'Prefix', 'wild']] },
      { host: 'bar.foo.com', paths: [['/', 'Prefix', 'exact']] },
    ]);
    expect(backendOf([ing], 'bar.foo.com', '/')).toBe('exact');
    expect(backendOf([ing], 'baz.foo.com', '/')).toBe('wild');
    expect(backendOf([ing], 'baz.bar.foo.com', '/')).toBe('catch-all');
    expect(matchRoute([ing], 'baz.foo.com', '/')?.hostMatch).toBe('wildcard');
  });

  it('the rules of every Ingress for the same host are merged, longest path across them', () => {
    const shop = ingress('shop', [{ host: 'myapp.example.com', paths: [['/', 'Prefix', 'frontend']] }]);
    const api = ingress('api', [{ host: 'myapp.example.com', paths: [['/api', 'Prefix', 'api']] }]);
    expect(backendOf([shop, api], 'myapp.example.com', '/api/v1')).toBe('api');
    expect(backendOf([shop, api], 'myapp.example.com', '/cart')).toBe('frontend');
    expect(matchRoute([shop, api], 'myapp.example.com', '/api')?.ingress).toEqual({ namespace: 'web', name: 'api' });
  });

  it('the same host and path in two Ingresses: the first in (namespace, name) order wins', () => {
    const b = ingress('b', [{ host: 'h.example.com', paths: [['/', 'Prefix', 'from-b']] }]);
    const a = ingress('a', [{ host: 'h.example.com', paths: [['/', 'Prefix', 'from-a']] }]);
    expect(backendOf([b, a], 'h.example.com', '/')).toBe('from-a');
  });

  it('a host whose rule has no matching path does not fall through to the no-host rule', () => {
    const ing = ingress('site', [
      { host: 'h.example.com', paths: [['/only', 'Exact', 'only']] },
      { paths: [['/', 'Prefix', 'catch-all']] },
    ]);
    expect(matchRoute([ing], 'h.example.com', '/other')).toBeNull();
  });
});
