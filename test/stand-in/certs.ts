// A throw-away CA and a server certificate for 127.0.0.1, made with the openssl CLI (node:crypto
// cannot issue X.509 certificates). Generated once per process: key generation is the slow part
// and every stand-in in a test run can share one CA.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export interface StandInCertificates {
  caCert: string;
  serverCert: string;
  serverKey: string;
}

let shared: Promise<StandInCertificates> | undefined;

/** The process-wide stand-in certificates (CA + server cert for IP 127.0.0.1 and DNS localhost). */
export function standInCertificates(): Promise<StandInCertificates> {
  shared ??= generateCertificates();
  return shared;
}

async function generateCertificates(): Promise<StandInCertificates> {
  const dir = await mkdtemp(join(tmpdir(), 'portway-stand-in-ca-'));
  const at = (name: string): string => join(dir, name);
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    await execa('openssl', [
      'req',
      '-x509',
      ...ecKey,
      '-keyout',
      at('ca.key'),
      '-out',
      at('ca.crt'),
      '-days',
      '2',
      '-subj',
      '/CN=portway-stand-in-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    await execa('openssl', [
      'req',
      ...ecKey,
      '-keyout',
      at('server.key'),
      '-out',
      at('server.csr'),
      '-subj',
      '/CN=127.0.0.1',
    ]);
    await writeFile(
      at('server.ext'),
      [
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth',
        '',
      ].join('\n'),
    );
    await execa('openssl', [
      'x509',
      '-req',
      '-in',
      at('server.csr'),
      '-CA',
      at('ca.crt'),
      '-CAkey',
      at('ca.key'),
      '-CAcreateserial',
      '-out',
      at('server.crt'),
      '-days',
      '2',
      '-extfile',
      at('server.ext'),
    ]);
    const [caCert, serverCert, serverKey] = await Promise.all(
      ['ca.crt', 'server.crt', 'server.key'].map((f) => readFile(at(f), 'utf8')),
    );
    return { caCert: caCert!, serverCert: serverCert!, serverKey: serverKey! };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
