#!/usr/bin/env node
/* global process, setTimeout, clearTimeout */
// A long-lived client for the traffic e2e tests and the demo: started once inside a network namespace,
// it takes one JSON request per stdin line and answers each with one JSON line on stdout, so a test can
// make hundreds of requests without starting a process per request (which costs ~100 ms each here).
//
//   in:  {"id":1,"proto":"tcp"|"udp","host":"10.96.0.10","port":80,"timeoutMs":1000,
//         "source":"10.99.0.101"?, "sourcePort":40000?}
//   out: {"id":1,"ok":true,"pod":"node1-pod1","client":"10.99.0.100","ms":3}
//        {"id":1,"ok":false,"error":"ECONNREFUSED"|"timeout"|…,"ms":2}
// Prints "ready" first. Requests run concurrently; answers come in completion order.
import { connect, isIPv6 } from 'node:net';
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';

const write = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

function tcpRequest(req, done) {
  let data = '';
  const sock = connect({
    host: req.host,
    port: req.port,
    ...(req.source ? { localAddress: req.source } : {}),
    ...(req.sourcePort ? { localPort: req.sourcePort } : {}),
  });
  sock.setEncoding('utf8');
  const timer = setTimeout(() => {
    sock.destroy();
    done({ ok: false, error: 'timeout' });
  }, req.timeoutMs);
  sock.on('data', (d) => (data += d));
  sock.on('end', () => {
    clearTimeout(timer);
    sock.destroy();
    done(data ? answer(data) : { ok: false, error: 'empty answer' });
  });
  sock.on('error', (e) => {
    clearTimeout(timer);
    done({ ok: false, error: e.code ?? e.message });
  });
}

function udpRequest(req, done) {
  const sock = createSocket({ type: isIPv6(req.host) ? 'udp6' : 'udp4', reuseAddr: true });
  let finished = false;
  const finish = (r) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    try {
      sock.close();
    } catch {
      // already closed
    }
    done(r);
  };
  const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), req.timeoutMs);
  sock.on('message', (msg) => finish(answer(msg.toString())));
  sock.on('error', (e) => finish({ ok: false, error: e.code ?? e.message }));
  const send = () =>
    sock.send('?', req.port, req.host, (e) => e && finish({ ok: false, error: e.code ?? e.message }));
  if (req.source || req.sourcePort) sock.bind(req.sourcePort ?? 0, req.source, send);
  else send();
}

function answer(line) {
  const [pod = '', client = ''] = line.trim().split(/\s+/);
  return { ok: true, pod, client };
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    write({ id: null, ok: false, error: `bad request line: ${line}` });
    return;
  }
  const started = Date.now();
  const done = (r) => write({ id: req.id, ...r, ms: Date.now() - started });
  req.timeoutMs ??= 1000;
  if (req.proto === 'tcp') tcpRequest(req, done);
  else if (req.proto === 'udp') udpRequest(req, done);
  else done({ ok: false, error: `proto must be tcp or udp, got ${req.proto}` });
});
rl.on('close', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
write({ ready: true });
