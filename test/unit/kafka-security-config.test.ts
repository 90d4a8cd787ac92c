// Kafka TLS/SASL settings: the agent and the processor read the same env vars into the same
// shape (lib/kafka-security.ts), contradictions and unreadable PEM files are ConfigErrors that
// name the key and the variable, and both docs tables list every variable.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { ENV_VARS, loadAgentConfig } from '../../agent/config.ts';
import { collectorSchemas, defaultCollectors } from '../../collectors/registry.ts';
import { ConfigError } from '../../lib/errors.ts';
import {
  describeKafkaSecurity,
  explainKafkaSecurityError,
  KAFKA_SECURITY_ENV,
  kafkaJsSecurity,
  kafkaPlaintextHint,
} from '../../lib/kafka-security.ts';
import { resolveProcessorConfig } from '../../processors/runtime/config.ts';

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
