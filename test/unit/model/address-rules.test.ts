import { allocate } from '../../../src/lb/allocator.js';
import { specialAddressProblem, specialRangeProblem } from '../../../src/model/address-rules.js';
import { canonicalIP, ipAddressHint, ipToBigInt } from '../../../src/model/ip.js';
import { pool, svc } from '../lb/fixtures.js';

describe('canonicalIP refuses what no rule can carry', () => {
  it('refuses IPv4-mapped IPv6 in both spellings, and says what to write', () => {
    expect(canonicalIP('::ffff:10.0.0.1')).toBeNull();
    expect(canonicalIP('::ffff:a00:1')).toBeNull();
    expect(ipAddressHint('::ffff:10.0.0.1')).toBe(
      ' (IPv4-mapped IPv6 addresses are not accepted: write 10.0.0.1)',
    );
    // Neighbours of the mapped block are ordinary IPv6 addresses.
    expect(canonicalIP('::fffe:a00:1')).toBe('::fffe:a00:1');
    expect(canonicalIP('64:ff9b::10.0.0.1')).toBe('64:ff9b::a00:1');
  });

  it('refuses a zone instead of dropping it', () => {
    expect(canonicalIP('fe80::1%eth0')).toBeNull();
    expect(ipAddressHint('fe80::1%eth0')).toBe(' (a zone such as %eth0 is not accepted)');
    expect(canonicalIP('fe80::1')).toBe('fe80::1');
  });
});

describe('special addresses', () => {
  it.each([
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.255', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['ff02::1', 'multicast'],
  ])('%s is refused (%s)', (ip, what) => {
    expect(specialAddressProblem(ip)).toContain(`(${what}`);
  });

  it.each([
    '1.0.0.0',
    '10.96.0.1',
    '126.255.255.255',
    '128.0.0.0',
    '169.253.255.255',
    '223.255.255.255',
    '240.0.0.1',
    '255.255.255.254',
    '::2',
    'fec0::1',
    'fd00::1',
    '2001:db8::1',
  ])('%s is an ordinary address', (ip) => {
    expect(specialAddressProblem(ip)).toBeNull();
  });

  it('a range is refused when any of its addresses is special', () => {
    const v4 = (a: string, b: string) => specialRangeProblem(ipToBigInt(a), ipToBigInt(b), 'IPv4');
    expect(v4('126.255.255.250', '127.0.0.0')).toContain('loopback');
    expect(v4('10.0.0.0', '10.0.0.255')).toBeNull();
    expect(specialRangeProblem(0n, 3n, 'IPv4')).toContain('unspecified');
  });
});

describe('pools never hand out special addresses', () => {
  it('reports and skips a pool over 127.0.0.0/30 or 0.0.0.0/30; the allocator gives nothing from it', () => {
    const r = allocate(
      [svc('a'), svc('b')],
      [pool('lo', ['127.0.0.0/30']), pool('zero', ['0.0.0.0-0.0.0.3'])],
      {},
    );
    expect(r.assignments.size).toBe(0);
    expect(r.problems.map((p) => p.message)).toEqual([
      expect.stringContaining('"127.0.0.0/30" includes addresses of 127.0.0.0/8 (loopback)'),
      expect.stringContaining('"0.0.0.0-0.0.0.3" includes addresses of 0.0.0.0/8'),
    ]);
  });
});
