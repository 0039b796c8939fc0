/* global process */
// A pod's server in the IPVS test guest: each TCP connection first gets "<name> <client-ip>", then one
// "<name> <line>" per line it sends, until it closes (an open connection a test can keep using); each
// UDP datagram gets "<name> <client-ip>". Usage: pod-server.mjs NAME TCP_PORT UDP_PORT (prints "ready").
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';

const [name = 'pod', tcpPort = '8080', udpPort = '8081'] = process.argv.slice(2);
const plain = (addr) => (addr ?? '').replace(/^::ffff:/, '');
let pending = 2;
const ready = () => {
  if (--pending === 0) process.stdout.write('ready\n');
};
createServer((sock) => {
  sock.on('error', () => {});
  sock.write(`${name} ${plain(sock.remoteAddress)}\n`);
  createInterface({ input: sock }).on('line', (line) => sock.write(`${name} ${line}\n`));
}).listen(Number(tcpPort), ready);
const udp = createSocket('udp4');
udp.on('message', (_msg, r) => udp.send(`${name} ${plain(r.address)}\n`, r.port, r.address));
udp.bind(Number(udpPort), ready);
