// Kafka TLS/SASL settings: the agent and the processor read the same env vars into the same
// shape (lib/kafka/security.ts), contradictions and unreadable PEM files are ConfigErrors that
// name the key and the variable, and both docs tables list every variable.
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV_VARS, loadAgentConfig } from '../../agent/config.ts';
import { collectorSchemas, defaultCollectors } from '../../collectors/registry.ts';
import { ConfigError } from '../../lib/errors.ts';
import {
  describeCertificateFile,
  describeKafkaSecurity,
  explainKafkaSecurityError,
  KAFKA_SECURITY_ENV,
  kafkaJsSecurity,
  kafkaPlaintextHint,
} from '../../lib/kafka/security.ts';
import { resolveProcessorConfig } from '../../processor/config.ts';
import {
  type ClientTlsFiles,
  ensureClientTlsFiles,
  ensureTlsFiles,
  securityInfo,
  securityProperties,
  type TlsFiles,
} from '../../stack/kafka-security.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-kafka-sec-cfg-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const agentKafka = (env: NodeJS.ProcessEnv, configFile?: string) =>
  loadAgentConfig({
    collectorSchemas: collectorSchemas(),
    defaultCollectors: defaultCollectors(),
    env,
    configFile,
  }).config.kafka;
const processorKafka = (env: NodeJS.ProcessEnv, config?: string) =>
  resolveProcessorConfig({ config }, env).kafka;

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('Kafka TLS/SASL config (agent and processor alike)', () => {
  const full = {
    STRATA_KAFKA_SSL_CA: '/etc/strata/ca.pem',
    STRATA_KAFKA_SSL_CERT: '/etc/strata/client.pem',
    STRATA_KAFKA_SSL_KEY: '/etc/strata/client.key',
    STRATA_KAFKA_SSL_REJECT_UNAUTHORIZED: 'false',
    STRATA_KAFKA_SASL_MECHANISM: 'scram-sha-512',
    STRATA_KAFKA_SASL_USERNAME: 'strata',
    STRATA_KAFKA_SASL_PASSWORD: 's3cret',
  };

  it('maps every security env var to the same keys in both components', () => {
    const expected = {
      ssl: {
        caFile: '/etc/strata/ca.pem',
        certFile: '/etc/strata/client.pem',
        keyFile: '/etc/strata/client.key',
        rejectUnauthorized: false,
      },
      sasl: { mechanism: 'scram-sha-512', username: 'strata', password: 's3cret' },
    };
    expect(agentKafka(full)).toMatchObject(expected);
    expect(processorKafka(full)).toMatchObject(expected);
    // Each variable is in the agent's table (docker-compose and docs checks read it).
    const agentEnv = new Set(ENV_VARS.map((e) => e.env));
    for (const e of KAFKA_SECURITY_ENV) expect(agentEnv, e.env).toContain(e.env);
  });

  it('defaults to plaintext without SASL; STRATA_KAFKA_SSL=true is TLS with the system CAs', () => {
    for (const k of [agentKafka({}), processorKafka({})]) {
      expect(k.ssl).toBe(false);
      expect(k.sasl).toBeUndefined();
      expect(describeKafkaSecurity(k)).toBe('plaintext');
    }
    expect(agentKafka({ STRATA_KAFKA_SSL: 'true' }).ssl).toBe(true);
    expect(processorKafka({ STRATA_KAFKA_SSL: '1' }).ssl).toBe(true);
  });

  it('keeps the CA of the config file when STRATA_KAFKA_SSL=true, and env beats the file', () => {
    const f = path.join(dir, 'both.yaml');
    fs.writeFileSync(
      f,
      'agent:\n  kafka:\n    ssl: { caFile: /file/ca.pem }\n    sasl: { mechanism: plain, username: u, password: p }\n' +
        'processor:\n  kafka:\n    ssl: { caFile: /file/ca.pem }\n    sasl: { mechanism: plain, username: u, password: p }\n',
    );
    const env = { STRATA_KAFKA_SSL: 'true', STRATA_KAFKA_SASL_PASSWORD: 'from-env' };
    for (const k of [agentKafka(env, f), processorKafka(env, f)]) {
      expect(k.ssl).toEqual({ caFile: '/file/ca.pem', rejectUnauthorized: true });
      expect(k.sasl).toEqual({ mechanism: 'plain', username: 'u', password: 'from-env' });
    }
  });

  it('refuses STRATA_KAFKA_SSL=false together with a CA variable, naming both', () => {
    const env = { STRATA_KAFKA_SSL: 'false', STRATA_KAFKA_SSL_CA: '/ca.pem' };
    for (const [where, fn] of [
      ['agent', () => agentKafka(env)],
      ['processor', () => processorKafka(env)],
    ] as const) {
      const msg = configError(fn);
      expect(msg).toContain(
        `${where}.kafka.ssl: STRATA_KAFKA_SSL=false turns TLS off, but STRATA_KAFKA_SSL_CA is set`,
      );
    }
  });

  it('names the key, the variable and the accepted mechanisms on a bad value', () => {
    const agentMsg = configError(() =>
      agentKafka({
        STRATA_KAFKA_SASL_MECHANISM: 'gssapi',
        STRATA_KAFKA_SASL_USERNAME: 'u',
        STRATA_KAFKA_SASL_PASSWORD: 'p',
      }),
    );
    expect(agentMsg).toContain('agent.kafka.sasl.mechanism');
    expect(agentMsg).toContain('"plain", "scram-sha-256", "scram-sha-512"');
    expect(agentMsg).toContain('env STRATA_KAFKA_SASL_MECHANISM');
    const procMsg = configError(() =>
      processorKafka({
        STRATA_KAFKA_SASL_MECHANISM: 'gssapi',
        STRATA_KAFKA_SASL_USERNAME: 'u',
        STRATA_KAFKA_SASL_PASSWORD: 'p',
      }),
    );
    expect(procMsg).toContain('processor.kafka.sasl.mechanism');
    expect(procMsg).toContain('env STRATA_KAFKA_SASL_MECHANISM');
  });

  it('names the accepted ssl keys on a typo, and what ssl accepts on a bad STRATA_KAFKA_SSL', () => {
    const f = path.join(dir, 'typo.yaml');
    fs.writeFileSync(f, 'processor:\n  kafka:\n    ssl: { caFle: /x.pem }\n');
    expect(configError(() => processorKafka({}, f))).toContain(
      'processor.kafka.ssl.caFle: unknown key; accepted keys: caFile, certFile, keyFile, rejectUnauthorized',
    );
    const msg = configError(() => agentKafka({ STRATA_KAFKA_SSL: 'yes' }));
    expect(msg).toContain('agent.kafka.ssl: expected true, false or a mapping with caFile');
    expect(msg).toContain('(set by env STRATA_KAFKA_SSL)');
  });

  it('reads the PEM files into kafkajs options, and names the key and variable of an unreadable one', () => {
    const ca = path.join(dir, 'ca.pem');
    fs.writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const k = processorKafka({
      STRATA_KAFKA_SSL_CA: ca,
      STRATA_KAFKA_SASL_MECHANISM: 'plain',
      STRATA_KAFKA_SASL_USERNAME: 'u',
      STRATA_KAFKA_SASL_PASSWORD: 'p',
    });
    const opts = kafkaJsSecurity(k, 'processor.kafka');
    expect(opts.ssl).toMatchObject({ ca: fs.readFileSync(ca, 'utf8'), rejectUnauthorized: true });
    expect(opts.sasl).toEqual({ mechanism: 'plain', username: 'u', password: 'p' });
    expect(describeKafkaSecurity(k)).toBe(`TLS (CA ${ca}), SASL PLAIN as u`);
    const msg = configError(() =>
      kafkaJsSecurity(agentKafka({ STRATA_KAFKA_SSL_CA: path.join(dir, 'missing.pem') }), 'agent.kafka'),
    );
    expect(msg).toContain(`agent.kafka.ssl.caFile: cannot read ${path.join(dir, 'missing.pem')}`);
    expect(msg).toContain('STRATA_KAFKA_SSL_CA');
  });

  it('refuses a client key without a certificate and the reverse, naming both keys and variables', () => {
    for (const [env, set, unset] of [
      [{ STRATA_KAFKA_SSL_KEY: '/k.pem' }, 'keyFile', 'certFile'],
      [{ STRATA_KAFKA_SSL_CERT: '/c.pem' }, 'certFile', 'keyFile'],
    ] as const) {
      for (const [where, fn] of [
        ['agent', () => agentKafka(env)],
        ['processor', () => processorKafka(env)],
      ] as const) {
        const msg = configError(fn);
        expect(msg).toContain(`${where}.kafka.ssl.${set}: ${set} is set but ${unset} is not`);
        expect(msg).toContain('certFile, env STRATA_KAFKA_SSL_CERT');
        expect(msg).toContain('keyFile, env STRATA_KAFKA_SSL_KEY');
      }
    }
    // From a config file as well.
    const f = path.join(dir, 'key-only.yaml');
    fs.writeFileSync(f, 'agent:\n  kafka:\n    ssl: { caFile: /ca.pem, keyFile: /k.pem }\n');
    expect(configError(() => agentKafka({}, f))).toContain(
      'agent.kafka.ssl.keyFile: keyFile is set but certFile is not',
    );
    // Both set: accepted (the files are read when the client is built).
    expect(agentKafka({ STRATA_KAFKA_SSL_CERT: '/c.pem', STRATA_KAFKA_SSL_KEY: '/k.pem' }).ssl).toEqual({
      certFile: '/c.pem',
      keyFile: '/k.pem',
      rejectUnauthorized: true,
    });
  });

  it('is documented: every variable in the config tables of docs/agent.md and docs/processor.md', () => {
    for (const doc of ['docs/agent.md', 'docs/processor.md']) {
      const text = fs.readFileSync(path.resolve(doc), 'utf8');
      for (const e of KAFKA_SECURITY_ENV) {
        expect(text, `${doc} lists ${e.env}`).toMatch(new RegExp(`^\\|.*\`${e.env}\``, 'm'));
      }
      expect(text, `${doc} has a Kafka security section`).toMatch(/^## Kafka security/m);
    }
  });
});

// The failures the integration test cannot provoke with its one broker (a listener without the
// mechanism, a certificate for another name, an expired one), built as kafkajs builds them
// (src/broker/saslAuthenticator, src/network/connection, src/retry); the others are checked
// against the real broker in test/integration/kafka-security.test.ts.
describe('explainKafkaSecurityError', () => {
  const { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSSASLAuthenticationError } = kafkajs;
  const base = {
    brokers: ['kafka-1:9094'],
    ssl: { caFile: '/etc/ca.pem', rejectUnauthorized: true },
  } as const;
  const scram = { ...base, sasl: { mechanism: 'scram-sha-256', username: 'agent', password: 'p' } } as const;
  const tlsFailure = (code: string, message: string) =>
    new KafkaJSNumberOfRetriesExceeded(
      new KafkaJSConnectionError(`Connection error: ${message}`, { broker: 'kafka-1:9094', code }),
      { retryCount: 3, retryTime: 2000 },
    );

  it('a mechanism the listener does not enable', () => {
    // kafkajs' typings declare no constructor arguments; the class takes the message.
    const SaslError = KafkaJSSASLAuthenticationError as unknown as new (message: string) => Error;
    const err = new SaslError('SASL SCRAM-SHA-256 mechanism is not supported by the server');
    const e = explainKafkaSecurityError(err, scram, 'agent.kafka');
    expect(e?.message).toContain('Kafka kafka-1:9094 does not offer SASL SCRAM-SHA-256 on this listener');
    expect(e?.message).toContain('STRATA_KAFKA_SASL_MECHANISM');
    expect(e?.retriable).toBe(false);
  });

  it('a certificate for another host name, and an expired one', () => {
    const name = explainKafkaSecurityError(
      tlsFailure(
        'ERR_TLS_CERT_ALTNAME_INVALID',
        "Hostname/IP does not match certificate's altnames: Host: kafka-1. is not in the cert's altnames: DNS:localhost",
      ),
      base,
      'processor.kafka',
    );
    expect(name?.message).toContain(
      "TLS to Kafka kafka-1:9094 failed: the broker's certificate does not name the host connected to",
    );
    expect(name?.message).toContain('subjectAltName');
    const expired = explainKafkaSecurityError(
      tlsFailure('CERT_HAS_EXPIRED', 'certificate has expired'),
      base,
      'agent.kafka',
    );
    expect(expired?.message).toContain('outside its validity period (CERT_HAS_EXPIRED)');
  });

  it('leaves other failures to the caller, with a hint when a broker closes a plaintext connection', () => {
    const refused = tlsFailure('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9094');
    expect(
      explainKafkaSecurityError(refused, { brokers: ['k:1'], ssl: false }, 'agent.kafka'),
    ).toBeUndefined();
    expect(kafkaPlaintextHint(refused, { ssl: false }, 'agent.kafka')).toBe('');
    const closed = new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('Closed connection'), {
      retryCount: 3,
      retryTime: 2000,
    });
    expect(kafkaPlaintextHint(closed, { ssl: false }, 'agent.kafka')).toContain(
      'set agent.kafka.ssl if the listener is SSL or SASL_SSL; set agent.kafka.sasl if it is SASL_PLAINTEXT or SASL_SSL',
    );
    expect(kafkaPlaintextHint(closed, scram, 'agent.kafka')).toBe('');
  });
});

// Client certificates (mutual TLS): made by the stack's openssl helper, as the secured test broker
// uses them; a key of another certificate, a non-PEM file and the broker's refusals.
describe('mutual TLS client certificate', () => {
  const { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded } = kafkajs;
  let tls: TlsFiles;
  let clients: ClientTlsFiles;
  beforeAll(async () => {
    tls = await ensureTlsFiles(path.join(dir, 'tls'));
    clients = await ensureClientTlsFiles(tls);
  });
  const alert = (code: string, message: string) =>
    new KafkaJSNumberOfRetriesExceeded(
      new KafkaJSConnectionError(`Connection error: ${message}`, { broker: '127.0.0.1:9095', code }),
      { retryCount: 3, retryTime: 2000 },
    );

  it('the stack signs one client certificate with its CA and the other with a CA it does not trust', () => {
    const ca = new X509Certificate(fs.readFileSync(tls.caFile));
    const good = new X509Certificate(fs.readFileSync(clients.certFile));
    const bad = new X509Certificate(fs.readFileSync(clients.untrustedCertFile));
    expect(good.verify(ca.publicKey)).toBe(true);
    expect(bad.verify(ca.publicKey)).toBe(false);
    expect(good.subject).toBe('CN=strata-client');
    expect(good.keyUsage).toContain('1.3.6.1.5.5.7.3.2'); // extendedKeyUsage clientAuth
    expect(describeCertificateFile(clients.untrustedCertFile)).toMatch(
      /^subject CN=strata-untrusted-client, issued by CN=strata untrusted test CA [0-9a-f]{8}, valid until 20\d\d-/,
    );
    expect(describeCertificateFile(path.join(dir, 'missing.pem'))).toBe('');
  });

  it('the MTLS listener requires a client certificate and trusts the stack CA; the others are unchanged', () => {
    const props = securityProperties({ sslPort: 9094, mtlsPort: 9095 }, tls);
    expect(props.listeners).toEqual(['SSL://127.0.0.1:9094', 'MTLS://127.0.0.1:9095']);
    expect(props.protocolMap).toEqual(['SSL:SSL', 'MTLS:SSL']);
    expect(props.properties).toContain('ssl.client.auth=none\n');
    expect(props.properties).toContain('listener.name.mtls.ssl.client.auth=required\n');
    expect(props.properties).toContain(`listener.name.mtls.ssl.truststore.location=${tls.caFile}\n`);
    expect(securityProperties({ sslPort: 9094 }, tls).properties).not.toContain('mtls');
    expect(securityInfo({ mtlsPort: 9095 }, tls, clients)).toMatchObject({
      mtls: '127.0.0.1:9095',
      clientCertFile: clients.certFile,
      clientKeyFile: clients.keyFile,
      untrustedClientCertFile: clients.untrustedCertFile,
    });
  });

  it('reads a matching certificate and key; a key of another certificate or a non-PEM file is a ConfigError', () => {
    const k = agentKafka({ STRATA_KAFKA_SSL_CERT: clients.certFile, STRATA_KAFKA_SSL_KEY: clients.keyFile });
    const opts = kafkaJsSecurity(k, 'agent.kafka');
    expect(opts.ssl).toMatchObject({
      cert: fs.readFileSync(clients.certFile, 'utf8'),
      key: fs.readFileSync(clients.keyFile, 'utf8'),
    });
    expect(describeKafkaSecurity(k)).toBe(`TLS (system CAs, client cert ${clients.certFile})`);

    const otherKey = path.join(dir, 'other.key');
    fs.writeFileSync(
      otherKey,
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    const mismatch = configError(() =>
      kafkaJsSecurity(
        processorKafka({ STRATA_KAFKA_SSL_CERT: clients.certFile, STRATA_KAFKA_SSL_KEY: otherKey }),
        'processor.kafka',
      ),
    );
    expect(mismatch).toContain(
      `processor.kafka.ssl.keyFile: ${otherKey} is not the private key of certFile ${clients.certFile}`,
    );
    expect(mismatch).toContain('STRATA_KAFKA_SSL_CERT and STRATA_KAFKA_SSL_KEY');

    const swapped = configError(() =>
      kafkaJsSecurity(
        agentKafka({ STRATA_KAFKA_SSL_CERT: clients.keyFile, STRATA_KAFKA_SSL_KEY: clients.keyFile }),
        'agent.kafka',
      ),
    );
    expect(swapped).toContain(`agent.kafka.ssl.certFile: ${clients.keyFile} is not a PEM certificate`);
    const notKey = configError(() =>
      kafkaJsSecurity(
        agentKafka({ STRATA_KAFKA_SSL_CERT: clients.certFile, STRATA_KAFKA_SSL_KEY: clients.certFile }),
        'agent.kafka',
      ),
    );
    expect(notKey).toContain(
      `agent.kafka.ssl.keyFile: ${clients.certFile} is not an unencrypted PEM private key`,
    );
  });

  it('explains a broker that wants a client certificate, and one that refuses the certificate given', () => {
    const caOnly = { brokers: ['127.0.0.1:9095'], ssl: { caFile: tls.caFile, rejectUnauthorized: true } };
    for (const [code, name] of [
      ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'bad_certificate'], // Java 17 (the stack's broker)
      ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'certificate_required'],
    ] as const) {
      const e = explainKafkaSecurityError(alert(code, `ssl alert ${name}`), caOnly, 'agent.kafka');
      expect(e?.message).toBe(
        'TLS to Kafka 127.0.0.1:9095 failed: the broker requires a client certificate (mutual TLS, ssl.client.auth=required) ' +
          `and none is set (SSL alert ${name}); set agent.kafka.ssl.certFile and agent.kafka.ssl.keyFile ` +
          '(STRATA_KAFKA_SSL_CERT / STRATA_KAFKA_SSL_KEY) to a PEM certificate signed by a CA the brokers trust and its private key',
      );
      expect(e?.retriable).toBe(false);
    }
    const handshake = explainKafkaSecurityError(
      alert('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 'handshake failure'),
      caOnly,
      'agent.kafka',
    );
    expect(handshake?.message).toContain('if the listener requires one (ssl.client.auth=required)');

    const withCert = {
      ...caOnly,
      ssl: { ...caOnly.ssl, certFile: clients.untrustedCertFile, keyFile: clients.untrustedKeyFile },
    };
    for (const code of ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA']) {
      const e = explainKafkaSecurityError(alert(code, 'alert'), withCert, 'processor.kafka');
      expect(e?.message).toContain(
        `TLS to Kafka 127.0.0.1:9095 failed: the broker rejected the client certificate ${clients.untrustedCertFile} ` +
          '(subject CN=strata-untrusted-client, issued by CN=strata untrusted test CA',
      );
      expect(e?.message).toContain("it must be signed by a CA in the brokers' truststore");
      expect(e?.message).toContain('processor.kafka.ssl.certFile and processor.kafka.ssl.keyFile');
    }
    const refused = explainKafkaSecurityError(
      alert('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 'handshake failure'),
      withCert,
      'processor.kafka',
    );
    expect(refused?.message).toContain(
      `the broker refused the TLS handshake with the client certificate ${clients.untrustedCertFile}`,
    );
    expect(refused?.message).toContain(
      "if it refused the certificate, it must be signed by a CA in the brokers' truststore",
    );
  });
});
