// The native addon itself (needs it built and root): fails loudly when missing, never skips.
import { loadArpAddon, openArpSocket } from '../../../src/l2/arp-socket.js';
import { requireNativeAddon } from './topology.js';

beforeAll(() => {
  requireNativeAddon();
});

test('loadArpAddon names the build command when the addon is missing', () => {
  expect(() => loadArpAddon('/nonexistent/arp.node')).toThrow(
    /native ARP addon not built .*node-gyp rebuild -C native\/arp/,
  );
});

test('opens a packet socket on lo: index, 6-byte MAC, close is idempotent', () => {
  const socket = openArpSocket('lo', () => undefined);
  try {
    expect(socket.ifname).toBe('lo');
    expect(socket.ifindex).toBeGreaterThan(0);
    expect(socket.mac).toHaveLength(6);
  } finally {
    socket.close();
    socket.close();
  }
  expect(() => socket.send(Buffer.alloc(42))).toThrow(/closed/);
});

test('a missing interface is an error naming it', () => {
  expect(() => openArpSocket('pw-nonexist0', () => undefined)).toThrow(
    /if_nametoindex on interface "pw-nonexist0"/,
  );
  expect(() => openArpSocket('', () => undefined)).toThrow(/invalid interface name/);
});
