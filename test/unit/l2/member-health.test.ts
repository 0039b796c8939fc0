import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemberHealth, type Peer, computeAlive } from '../../../src/l2/member-health.js';
import { ManualTimers } from './fakes.js';

describe('computeAlive', () => {
  test('a peer is alive while its last success is within downAfterMs; self always', () => {
    const peers = [
      { name: 'a', lastSuccessAt: 1000 },
      { name: 'b', lastSuccessAt: 0 },
    ];
    expect([...computeAlive('me', peers, 1000, 1000)].sort()).toEqual(['a', 'b', 'me']);
    expect([...computeAlive('me', peers, 1001, 1000)].sort()).toEqual(['a', 'me']);
  });
});

describe('MemberHealth with a fake probe', () => {
  function setup() {
    const timers = new ManualTimers();
    const up = new Set(['b', 'c']);
    const changes: string[][] = [];
    const health = new MemberHealth({
      self: 'a',
      bindAddress: '127.0.0.1',
      port: 0,
      intervalMs: 300,
      downAfterMs: 1000,
      now: () => timers.now,
      timers,
      probe: async (peer: Peer) => up.has(peer.name),
      onChange: (alive) => changes.push([...alive].sort()),
    });
    health.setPeers([
      { name: 'a', address: '10.0.0.1' },
      { name: 'b', address: '10.0.0.2' },
      { name: 'c', address: '10.0.0.3' },
    ]);
    return { health, timers, up, changes };
  }
  const flush = () => new Promise((r) => setImmediate(r));

  test('stop() while start() waits for the server to listen: start settles and nothing keeps probing', async () => {
    const { health, timers } = setup();
    const starting = health.start();
    await health.stop();
    await starting; // a server closed before listening never calls back: this used to hang for ever
    expect(timers.size).toBe(0);
  });

  test('peers start alive; a silent peer is dropped after downAfterMs and comes back on its first answer', async () => {
    const { health, timers, up, changes } = setup();
    expect([...health.aliveNodes()].sort()).toEqual(['a', 'b', 'c']);
    up.delete('c');
    const step = async () => {
      timers.advance(300);
      health.tick();
      await flush();
    };
    health.tick();
    await flush();
    for (let i = 0; i < 3; i++) await step(); // t = 900: b answered at 900, c last at 0
    expect(health.aliveNodes().has('c')).toBe(true);
    await step(); // t = 1200 > 1000
    expect([...health.aliveNodes()].sort()).toEqual(['a', 'b']);
    up.add('c');
    await step();
    expect([...health.aliveNodes()].sort()).toEqual(['a', 'b', 'c']);
    expect(changes).toEqual([
      ['a', 'b', 'c'],
      ['a', 'b'],
      ['a', 'b', 'c'],
    ]);
  });

  test('removed peers are forgotten', () => {
    const { health } = setup();
    health.setPeers([{ name: 'b', address: '10.0.0.2' }]);
    expect([...health.aliveNodes()].sort()).toEqual(['a', 'b']);
  });
});

describe('MemberHealth over HTTP on loopback', () => {
  test('serves /alive with its node name, and probes a peer by name', async () => {
    const health = new MemberHealth({ self: 'node-x', bindAddress: '127.0.0.1', port: 0 });
    // Port 0 is not usable for peers, so probe a separate tiny server standing in for a peer.
    const peer = createServer((req, res) => res.end(req.url === '/alive' ? 'node-y' : ''));
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', () => r()));
    const port = (peer.address() as AddressInfo).port;
    const probing = new MemberHealth({
      self: 'node-z',
      bindAddress: '127.0.0.1',
      port,
      intervalMs: 50,
      downAfterMs: 10_000,
    });
    try {
      await health.start();
      const probe = (
        probing as unknown as { httpProbe(p: Peer, port: number, t: number): Promise<boolean> }
      ).httpProbe.bind(probing);
      expect(await probe({ name: 'node-y', address: '127.0.0.1' }, port, 1000)).toBe(true);
      // An answer with another node's name does not count (a reused address is not the same agent).
      expect(await probe({ name: 'node-q', address: '127.0.0.1' }, port, 1000)).toBe(false);
      // Nothing listening: refused quickly.
      const t0 = Date.now();
      expect(await probe({ name: 'node-y', address: '127.0.0.1' }, 1, 1000)).toBe(false);
      expect(Date.now() - t0).toBeLessThan(1000);
    } finally {
      await health.stop();
      await probing.stop();
      await new Promise((r) => peer.close(() => r(undefined)));
    }
  });
});
