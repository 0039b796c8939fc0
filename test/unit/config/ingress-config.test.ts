import { defaultConfig, parseConfig } from '../../../src/config/config.js';

describe('ingress config block', () => {
  it('defaults to no classes (nothing published)', () => {
    expect(defaultConfig().ingress).toEqual({ classes: [] });
  });
  it('reads classes with their controller Service', () => {
    expect(parseConfig({ ingress: { classes: [{ name: 'nginx', service: 'ingress-nginx/ingress-nginx-controller' }] } }).ingress)
      .toEqual({ classes: [{ name: 'nginx', service: 'ingress-nginx/ingress-nginx-controller' }] });
  });
  it.each([
    [{ classes: [{ name: 'nginx', service: 'controller' }] }, /ingress\.classes\.0\.service.*namespace\/name/],
    [{ classes: [{ name: 'nginx', service: 'a/b/c' }] }, /ingress\.classes\.0\.service/],
    [{ classes: [{ name: 'Nginx', service: 'a/b' }] }, /ingress\.classes\.0\.name.*DNS-1123/],
    [{ classes: [{ name: 'nginx', service: 'a/b' }, { name: 'nginx', service: 'c/d' }] }, /ingress\.classes.*listed twice/],
    [{ classes: [{ name: 'nginx', service: 'a/b', extra: 1 }] }, /extra/],
  ])('refuses %j naming the key', (ingress, message) => {
    expect(() => parseConfig({ ingress })).toThrow(message);
  });
});
