#!/usr/bin/env node
/* global process */
// A pod's backend for the e2e topology: answers every TCP connection and every UDP datagram with
// one line "<name> <client-ip>", so a test learns which pod served it and which source it saw.
// Usage: echo-server.mjs --name POD [--tcp 8080] [--udp 8081]   (prints "ready" when listening)
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

const args = process.argv.slice(2);
const opt = (flag, fallback) => {
  const i = args.indexOf(flag);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const name = opt('--name', 'unnamed');
const tcpPort = Number(opt('--tcp', '8080'));
const udpPort = Number(opt('--udp', '8081'));
const plain = (addr) => (addr ?? '').replace(/^::ffff:/, '');

let pending = 0;
const ready = () => {
  if (--pending === 0) process.stdout.write('ready\n');
};

if (tcpPort > 0) {
  pending++;
  const server = createServer((sock) => {
    sock.on('error', () => {});
    sock.end(`${name} ${plain(sock.remoteAddress)}\n`);
  });
  server.listen({ port: tcpPort, host: '::', ipv6Only: false }, ready);
}
if (udpPort > 0) {
  pending++;
  const udp = createSocket({ type: 'udp6', ipv6Only: false });
  udp.on('message', (_msg, rinfo) => udp.send(`${name} ${plain(rinfo.address)}\n`, rinfo.port, rinfo.address));
  udp.bind(udpPort, '::', ready);
}
process.on('SIGTERM', () => process.exit(0));
