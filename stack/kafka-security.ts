// Secured listeners for the stack's Kafka (startKafka's `security` option): SASL_PLAINTEXT, SSL,
// SASL_SSL and MTLS (SSL that requires a client certificate) beside the PLAINTEXT one, with a CA,
// a server certificate and client certificates that this file makes with `openssl` on first use
// of a data dir, and SASL users for PLAIN (in the broker's JAAS config) and SCRAM-SHA-256/512
// (written into the metadata log when the data dir is formatted).
// For tests of the clients' TLS and SASL options against a real broker; not a hardened setup.
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StrataError } from '../lib/errors.ts';
import { fileExists, requireCommand, runCommand } from './util.ts';

export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
export type KafkaSaslMechanism = (typeof SASL_MECHANISMS)[number];

export interface KafkaUser {
  username: string;
  password: string;
  /** Mechanisms this user can authenticate with. Default: all three. */
  mechanisms?: readonly KafkaSaslMechanism[];
}

/** The default user of a secured stack broker (a development credential, like the stack itself). */
export const DEFAULT_KAFKA_USERS: readonly KafkaUser[] = [{ username: 'strata', password: 'strata-secret' }];

export interface KafkaSecurityOptions {
  /** SASL_PLAINTEXT listener on 127.0.0.1 (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512). Absent: none. */
  saslPlaintextPort?: number;
  /** SSL listener (TLS, no authentication) on 127.0.0.1. Absent: none. */
  sslPort?: number;
  /** SASL_SSL listener (TLS + the SASL mechanisms) on 127.0.0.1. Absent: none. */
  saslSslPort?: number;
  /**
   * Listener named MTLS on 127.0.0.1: SSL with `ssl.client.auth=required` and the test CA as its
   * truststore, so a client must present a certificate signed by that CA. Absent: none.
   */
  mtlsPort?: number;
  /** SASL users. Default DEFAULT_KAFKA_USERS. */
  users?: readonly KafkaUser[];
}

/** What a client needs to reach the secured listeners. */
export interface KafkaSecurityInfo {
  /** "127.0.0.1:<port>" of each listener that was asked for. */
  saslPlaintext?: string;
  ssl?: string;
  saslSsl?: string;
  /** The MTLS listener (client certificate required). */
  mtls?: string;
  /** PEM of the CA that signed the broker's certificate: the clients' `caFile`. */
  caFile: string;
  /** PEM server certificate (SAN IP:127.0.0.1, DNS:localhost). */
  certFile: string;
  /** PEM client certificate and key (CN=strata-client) signed by `caFile`: accepted on `mtls`. '' without mtlsPort. */
  clientCertFile: string;
  clientKeyFile: string;
  /** PEM client certificate and key signed by another CA, one the broker does not trust: refused on `mtls`. */
  untrustedClientCertFile: string;
  untrustedClientKeyFile: string;
  users: readonly KafkaUser[];
}

export interface TlsFiles {
  caFile: string;
  caKeyFile: string;
  certFile: string;
  /** PKCS#12 keystore (server key + certificate chain) for the broker. */
  keystoreFile: string;
  keystorePassword: string;
}

/** Client certificates for the MTLS listener, in <tls dir>/clients. */
export interface ClientTlsFiles {
  /** Signed by the stack CA (TlsFiles.caFile). */
  certFile: string;
  keyFile: string;
  /** A CA of its own, not in the broker's truststore, and a client certificate it signed. */
  untrustedCaFile: string;
  untrustedCertFile: string;
  untrustedKeyFile: string;
}

const SAFE = /^[A-Za-z0-9._-]+$/;

/** Throws unless every user name and password fits the JAAS and --add-scram syntaxes unquoted. */
export function checkUsers(users: readonly KafkaUser[]): void {
  if (!users.length) throw new StrataError('kafka security: at least one SASL user is needed');
  for (const u of users) {
    for (const [what, v] of [
      ['username', u.username],
      ['password', u.password],
    ] as const) {
      if (!SAFE.test(v)) {
        throw new StrataError(
          `kafka security: SASL user ${JSON.stringify(u.username)}: the ${what} must be letters, digits, ".", "_" or "-" ` +
            '(it is written into the JAAS config and the --add-scram argument unquoted)',
        );
      }
    }
  }
}

const mechanismsOf = (u: KafkaUser) => u.mechanisms ?? SASL_MECHANISMS;

/**
 * A CA and a server certificate for 127.0.0.1/localhost in `dir`, made with openssl once and
 * reused while they are valid for another day (clients keep trusting the same ca.pem across
 * restarts on the same data dir). EC P-256 keys: fast to make, accepted by Java 17 and Node.
 */
export async function ensureTlsFiles(
  dir: string,
  hosts = { ips: ['127.0.0.1'], dns: ['localhost'] },
): Promise<TlsFiles> {
  const files: TlsFiles = {
    caFile: path.join(dir, 'ca.pem'),
    caKeyFile: path.join(dir, 'ca.key'),
    certFile: path.join(dir, 'server.pem'),
    keystoreFile: path.join(dir, 'server.p12'),
    keystorePassword: '',
  };
  const passwordFile = path.join(dir, 'keystore.password');
  if (
    [files.caFile, files.certFile, files.keystoreFile, passwordFile].every(fileExists) &&
    validForADay(files.certFile)
  ) {
    return { ...files, keystorePassword: readFileSync(passwordFile, 'utf8').trim() };
  }
  const { tmp, run, publish } = opensslWorkDir(dir, 'to make the Kafka test CA and certificates');
  const at = (f: string) => path.join(tmp, f);
  const password = randomBytes(12).toString('hex');
  const san = [...hosts.ips.map((ip) => `IP:${ip}`), ...hosts.dns.map((d) => `DNS:${d}`)].join(',');
  writeFileSync(
    at('openssl.cnf'),
    `# Written by strata stack (stack/kafka-security.ts).
[req]
distinguished_name = dn
prompt = no
[dn]
CN = strata stack
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = ${san}
authorityKeyIdentifier = keyid
`,
  );
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run([
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '3650',
    '-config',
    'openssl.cnf',
    '-extensions',
    'ca',
    '-subj',
    `/CN=strata stack test CA ${randomBytes(4).toString('hex')}`,
  ]);
  await run([
    'req',
    '-new',
    ...ecKey,
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-config',
    'openssl.cnf',
    '-subj',
    '/CN=localhost',
  ]);
  await run([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '825',
    '-extfile',
    'openssl.cnf',
    '-extensions',
    'server',
    '-out',
    'server.pem',
  ]);
  await run([
    'pkcs12',
    '-export',
    '-in',
    'server.pem',
    '-inkey',
    'server.key',
    '-certfile',
    'ca.pem',
    '-name',
    'kafka',
    '-out',
    'server.p12',
    '-passout',
    `pass:${password}`,
  ]);
  writeFileSync(at('keystore.password'), `${password}\n`, { mode: 0o600 });
  rmSync(at('server.csr'));
  publish();
  return { ...files, keystorePassword: password };
}

function validForADay(certFile: string, issuerFile?: string): boolean {
  try {
    const cert = new X509Certificate(readFileSync(certFile));
    if (issuerFile && !cert.verify(new X509Certificate(readFileSync(issuerFile)).publicKey)) return false;
    return new Date(cert.validTo).getTime() > Date.now() + 86_400_000;
  } catch {
    return false;
  }
}

/**
 * Client certificates for the MTLS listener in <tls dir>/clients: one signed by the stack CA and
 * one signed by a CA of its own that the broker does not trust (for tests of the refusal). Made
 * with openssl once and reused while valid for another day and (the first) signed by the current
 * CA: a CA remade by ensureTlsFiles remakes them too. EC P-256 keys, PKCS#8 PEM, no passphrase.
 */
export async function ensureClientTlsFiles(tls: TlsFiles): Promise<ClientTlsFiles> {
  const dir = path.join(path.dirname(tls.caFile), 'clients');
  const files: ClientTlsFiles = {
    certFile: path.join(dir, 'client.pem'),
    keyFile: path.join(dir, 'client.key'),
    untrustedCaFile: path.join(dir, 'untrusted-ca.pem'),
    untrustedCertFile: path.join(dir, 'untrusted-client.pem'),
    untrustedKeyFile: path.join(dir, 'untrusted-client.key'),
  };
  if (
    Object.values(files).every(fileExists) &&
    validForADay(files.certFile, tls.caFile) &&
    validForADay(files.untrustedCertFile, files.untrustedCaFile)
  ) {
    return files;
  }
  const { tmp, run, publish } = opensslWorkDir(dir, 'to make the Kafka test client certificates');
  writeFileSync(
    path.join(tmp, 'openssl.cnf'),
    `# Written by strata stack (stack/kafka-security.ts).
[req]
distinguished_name = dn
prompt = no
[dn]
CN = strata-client
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`,
  );
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const sign = async (name: string, caFile: string, caKeyFile: string, cn: string) => {
    await run([
      'req',
      '-new',
      ...ecKey,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-config',
      'openssl.cnf',
      '-subj',
      `/CN=${cn}`,
    ]);
    await run([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      caFile,
      '-CAkey',
      caKeyFile,
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '825',
      '-extfile',
      'openssl.cnf',
      '-extensions',
      'client',
      '-out',
      `${name}.pem`,
    ]);
    rmSync(path.join(tmp, `${name}.csr`));
  };
  await sign('client', tls.caFile, tls.caKeyFile, 'strata-client');
  await run([
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    'untrusted-ca.key',
    '-out',
    'untrusted-ca.pem',
    '-days',
    '3650',
    '-config',
    'openssl.cnf',
    '-extensions',
    'ca',
    '-subj',
    `/CN=strata untrusted test CA ${randomBytes(4).toString('hex')}`,
  ]);
  await sign('untrusted-client', 'untrusted-ca.pem', 'untrusted-ca.key', 'strata-untrusted-client');
  rmSync(path.join(tmp, 'untrusted-ca.key'));
  publish();
  return files;
}

/**
 * A private directory to make a set of certificates in with openssl, and `publish()`, which
 * renames it to `dir` (replacing the old set): a half-written set is never picked up.
 */
function opensslWorkDir(dir: string, why: string) {
  const openssl = requireCommand('openssl', why, 'apt-get install -y openssl');
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  return {
    tmp,
    run: (args: string[]) => runCommand(openssl, args, { cwd: tmp }),
    publish: () => {
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
    },
  };
}

/** Listener lines and the security settings for server.properties. */
export function securityProperties(
  security: KafkaSecurityOptions,
  tls: TlsFiles | undefined,
): { listeners: string[]; protocolMap: string[]; properties: string } {
  const users = security.users ?? DEFAULT_KAFKA_USERS;
  const listeners: string[] = [];
  const lines: string[] = [];
  const sasl = (listener: string) => {
    const name = listener.toLowerCase();
    const plain = users
      .filter((u) => mechanismsOf(u).includes('PLAIN'))
      .map((u) => ` user_${u.username}="${u.password}"`)
      .join('');
    lines.push(
      `listener.name.${name}.sasl.enabled.mechanisms=${SASL_MECHANISMS.join(',')}`,
      `listener.name.${name}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required${plain};`,
      `listener.name.${name}.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
      `listener.name.${name}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
    );
  };
  if (security.saslPlaintextPort !== undefined) {
    listeners.push(`SASL_PLAINTEXT://127.0.0.1:${security.saslPlaintextPort}`);
    sasl('SASL_PLAINTEXT');
  }
  if (security.sslPort !== undefined) listeners.push(`SSL://127.0.0.1:${security.sslPort}`);
  if (security.saslSslPort !== undefined) {
    listeners.push(`SASL_SSL://127.0.0.1:${security.saslSslPort}`);
    sasl('SASL_SSL');
  }
  if (security.mtlsPort !== undefined && tls) {
    // SSL with a client certificate required; only this listener has a truststore (the test CA).
    listeners.push(`MTLS://127.0.0.1:${security.mtlsPort}`);
    lines.push(
      'listener.name.mtls.ssl.client.auth=required',
      'listener.name.mtls.ssl.truststore.type=PEM',
      `listener.name.mtls.ssl.truststore.location=${tls.caFile}`,
    );
  }
  if (tls) {
    lines.push(
      'ssl.keystore.type=PKCS12',
      `ssl.keystore.location=${tls.keystoreFile}`,
      `ssl.keystore.password=${tls.keystorePassword}`,
      `ssl.key.password=${tls.keystorePassword}`,
      'ssl.client.auth=none',
    );
  }
  const protocolMap = listeners.map((l) => {
    const name = l.split(':')[0]!;
    return `${name}:${name === 'MTLS' ? 'SSL' : name}`;
  });
  return { listeners, protocolMap, properties: lines.length ? `${lines.join('\n')}\n` : '' };
}

/** `--add-scram` arguments of kafka-storage format for the SCRAM users. */
export function addScramArgs(users: readonly KafkaUser[]): string[] {
  const args: string[] = [];
  for (const u of users) {
    for (const m of mechanismsOf(u)) {
      if (m === 'PLAIN') continue;
      args.push('--add-scram', `${m}=[name=${u.username},password=${u.password}]`);
    }
  }
  return args;
}

/** SCRAM users as a line per user+mechanism, to tell whether a formatted data dir has them. */
export function scramFingerprint(users: readonly KafkaUser[]): string {
  return addScramArgs(users)
    .filter((a) => a !== '--add-scram')
    .sort()
    .join('\n');
}

export function needsTls(security: KafkaSecurityOptions): boolean {
  return (
    security.sslPort !== undefined || security.saslSslPort !== undefined || security.mtlsPort !== undefined
  );
}

export function securityInfo(
  security: KafkaSecurityOptions,
  tls: TlsFiles | undefined,
  clients?: ClientTlsFiles,
): KafkaSecurityInfo | undefined {
  const addr = (p: number | undefined) => (p === undefined ? undefined : `127.0.0.1:${p}`);
  return {
    saslPlaintext: addr(security.saslPlaintextPort),
    ssl: addr(security.sslPort),
    saslSsl: addr(security.saslSslPort),
    mtls: addr(security.mtlsPort),
    caFile: tls?.caFile ?? '',
    certFile: tls?.certFile ?? '',
    clientCertFile: clients?.certFile ?? '',
    clientKeyFile: clients?.keyFile ?? '',
    untrustedClientCertFile: clients?.untrustedCertFile ?? '',
    untrustedClientKeyFile: clients?.untrustedKeyFile ?? '',
    users: security.users ?? DEFAULT_KAFKA_USERS,
  };
}
