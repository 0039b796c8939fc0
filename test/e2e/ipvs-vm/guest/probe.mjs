/* global process, setTimeout, clearTimeout */
// The client side of the IPVS e2e in the guest: many requests from one process (node starts slowly
// under emulation). Usage: probe.mjs JSON, where JSON is a list of steps:
//   {label, proto: 'tcp'|'udp', host, port, count, source?, timeoutMs?}  → "R <label> <answer|failed>" per request
//   {loop: label, host, port, durationMs, intervalMs, stopFile?}         → the same, for a while (TCP),
//        until durationMs has passed or stopFile exists
//   {hold: label, host, port, stopFile}  → one TCP connection: "H <label> <first line>", then every
//        second a line sent and "H <label> <reply>", until stopFile exists; then "H <label> closed"
import { connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (line) => process.stdout.write(line + '\n');

function tcpOnce(host, port, timeoutMs, source) {
  return new Promise((resolve) => {
    const sock = connect({ host, port, ...(source ? { localAddress: source } : {}) });
    const timer = setTimeout(() => (sock.destroy(), resolve(null)), timeoutMs);
    let data = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      data += d;
      if (data.includes('\n')) {
        clearTimeout(timer);
        sock.end();
        resolve(data.split('\n')[0]);
      }
    });
    sock.on('error', () => (clearTimeout(timer), resolve(null)));
  });
}

function udpOnce(host, port, timeoutMs, source) {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => (s.close(), resolve(null)), timeoutMs);
    s.on('message', (m) => (clearTimeout(timer), s.close(), resolve(m.toString().trim())));
    s.on('error', () => (clearTimeout(timer), resolve(null)));
    s.bind(source ? { address: source } : {}, () => s.send('?', port, host));
  });
}

async function hold(step) {
  const sock = connect({ host: step.host, port: step.port });
  sock.setEncoding('utf8');
  let buffered = '';
  const lines = [];
  let closed = false;
  sock.on('data', (d) => {
    buffered += d;
    let i;
    while ((i = buffered.indexOf('\n')) >= 0) {
      lines.push(buffered.slice(0, i));
      buffered = buffered.slice(i + 1);
    }
  });
  sock.on('error', (e) => say(`H ${step.hold} error ${e.code ?? e.message}`));
  sock.on('close', () => (closed = true));
  let n = 0;
  while (!existsSync(step.stopFile) && !closed) {
    while (lines.length > 0) say(`H ${step.hold} ${lines.shift()}`);
    sock.write(`ping${n++}\n`);
    await sleep(1000);
  }
  while (lines.length > 0) say(`H ${step.hold} ${lines.shift()}`);
  sock.end();
  say(`H ${step.hold} ${closed ? 'lost' : 'closed'}`);
}

for (const step of JSON.parse(process.argv[2] ?? '[]')) {
  if (step.hold) {
    await hold(step);
  } else if (step.loop) {
    const end = Date.now() + step.durationMs;
    while (Date.now() < end && !(step.stopFile && existsSync(step.stopFile))) {
      say(`R ${step.loop} ${(await tcpOnce(step.host, step.port, 1000)) ?? 'failed'}`);
      await sleep(step.intervalMs);
    }
  } else {
    const once = step.proto === 'udp' ? udpOnce : tcpOnce;
    for (let i = 0; i < step.count; i++)
      say(
        `R ${step.label} ${(await once(step.host, step.port, step.timeoutMs ?? 2000, step.source)) ?? 'failed'}`,
      );
  }
}
