#!/usr/bin/env node
/* global process, setTimeout, clearTimeout */
// One request to an echo server, from whatever network namespace it runs in.
// Usage: echo-client.mjs tcp|udp HOST PORT [TIMEOUT_MS] [SOURCE_ADDRESS]
// Prints the answer line and exits 0; exits 2 with a reason on stderr on timeout/refusal.
import { connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';

const [proto, host, portText, timeoutText = '2000', source] = process.argv.slice(2);
const port = Number(portText);
const timeoutMs = Number(timeoutText);
const fail = (why) => {
  process.stderr.write(`${proto} ${host}:${port}: ${why}\n`);
  process.exit(2);
};
const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);

if (proto === 'tcp') {
  let data = '';
  const sock = connect({ host, port, ...(source ? { localAddress: source } : {}) });
  sock.setEncoding('utf8');
  sock.on('data', (d) => (data += d));
  sock.on('end', () => {
    clearTimeout(timer);
    process.stdout.write(data);
    process.exit(data ? 0 : 2);
  });
  sock.on('error', (e) => fail(e.code ?? e.message));
} else if (proto === 'udp') {
  const sock = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
  sock.on('message', (msg) => {
    clearTimeout(timer);
    process.stdout.write(msg.toString());
    process.exit(0);
  });
  sock.on('error', (e) => fail(e.code ?? e.message));
  const send = () => sock.send('?', port, host, (e) => e && fail(e.code ?? e.message));
  if (source) sock.bind(0, source, send);
  else send();
} else {
  fail('protocol must be tcp or udp');
}
