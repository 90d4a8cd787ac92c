// TLS and SASL to Kafka, shared by the agent (agent.kafka) and the processor (processor.kafka):
// one schema, one set of environment variables, one way to build kafkajs' `ssl`/`sasl` options,
// and one explanation of the failures a secured cluster gives (bad credentials, a mechanism the
// listener does not offer, an untrusted certificate, TLS against a plaintext port and back), each
// naming the broker, the mechanism and what to check.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import type { KafkaConfig as KafkaJsConfig, SASLOptions } from 'kafkajs';
import { z } from 'zod';
import { ConfigError, ConnectionError, errorMessage, type StrataError } from '../errors.ts';

export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

export const KafkaSsl = z.union(
  [
    /** true: TLS with the system CA store; false: plaintext. */
    z.boolean(),
    z
      .strictObject({
        /** PEM file of the CA that signed the brokers' certificates. */
        caFile: z.string().min(1).optional(),
        /** PEM client certificate file (mutual TLS). */
        certFile: z.string().min(1).optional(),
        /** PEM client key file (mutual TLS). */
        keyFile: z.string().min(1).optional(),
        /** Verify the brokers' certificates. Turn off only for a throwaway test cluster. */
        rejectUnauthorized: z.boolean().default(true),
      })
      .superRefine((s, ctx) => {
        if (!s.certFile === !s.keyFile) return;
        const [set, unset] = s.certFile ? ['certFile', 'keyFile'] : ['keyFile', 'certFile'];
        ctx.addIssue({
          code: 'custom',
          path: [set],
          input: s,
          message:
            `${set} is set but ${unset} is not: mutual TLS needs both the client certificate ` +
            '(certFile, env STRATA_KAFKA_SSL_CERT) and its private key (keyFile, env STRATA_KAFKA_SSL_KEY)',
        });
      }),
  ],
  { error: 'expected true, false or a mapping with caFile, certFile, keyFile, rejectUnauthorized' },
);
export type KafkaSsl = z.output<typeof KafkaSsl>;

export const KafkaSasl = z.strictObject({
  /** SASL mechanism the brokers' listener expects. */
  mechanism: z.enum(SASL_MECHANISMS),
  username: z.string().min(1),
  /** Prefer the env var STRATA_KAFKA_SASL_PASSWORD over writing it into a file. */
  password: z.string(),
});
export type KafkaSasl = z.output<typeof KafkaSasl>;

/** The security part of a component's kafka section. */
export interface KafkaSecurity {
  ssl: KafkaSsl;
  sasl?: KafkaSasl;
}

/**
 * Environment variables of the security keys, relative to the component's `kafka` section. The
 * agent and the processor read exactly these. A file variable (CA, cert, key) turns TLS on.
 */
export const KAFKA_SECURITY_ENV: ReadonlyArray<{ env: string; key: string; kind: 'string' | 'bool' }> = [
  { env: 'STRATA_KAFKA_SSL', key: 'ssl', kind: 'bool' },
  { env: 'STRATA_KAFKA_SSL_CA', key: 'ssl.caFile', kind: 'string' },
  { env: 'STRATA_KAFKA_SSL_CERT', key: 'ssl.certFile', kind: 'string' },
  { env: 'STRATA_KAFKA_SSL_KEY', key: 'ssl.keyFile', kind: 'string' },
  { env: 'STRATA_KAFKA_SSL_REJECT_UNAUTHORIZED', key: 'ssl.rejectUnauthorized', kind: 'bool' },
  { env: 'STRATA_KAFKA_SASL_MECHANISM', key: 'sasl.mechanism', kind: 'string' },
  { env: 'STRATA_KAFKA_SASL_USERNAME', key: 'sasl.username', kind: 'string' },
  { env: 'STRATA_KAFKA_SASL_PASSWORD', key: 'sasl.password', kind: 'string' },
];
export const KAFKA_SECURITY_ENV_NAMES: ReadonlySet<string> = new Set(KAFKA_SECURITY_ENV.map((e) => e.env));

const envOf = (key: string) => KAFKA_SECURITY_ENV.find((e) => e.key === key)!.env;

function toBool(value: string): boolean | string {
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  return value; // left as a string: validation names the key and says a boolean was expected
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Applies the security env vars onto a raw (not yet validated) kafka section, in place. Empty
 * values count as unset. `STRATA_KAFKA_SSL=true` keeps an `ssl:` mapping from the file (its CA);
 * a CA/cert/key variable turns TLS on; `STRATA_KAFKA_SSL=false` together with one of them is a
 * contradiction and a ConfigError. Returns [dotted key, env name] of what was set.
 */
export function applyKafkaSecurityEnv(
  kafka: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  where: string,
): [string, string][] {
  const set: [string, string][] = [];
  const get = (name: string) => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  const sslFlag = get('STRATA_KAFKA_SSL');
  const sslBool = sslFlag === undefined ? undefined : toBool(sslFlag);
  const fileVars = ['ssl.caFile', 'ssl.certFile', 'ssl.keyFile', 'ssl.rejectUnauthorized'].filter(
    (k) => get(envOf(k)) !== undefined,
  );
  if (sslBool === false && fileVars.length) {
    throw new ConfigError(
      `${where}.ssl: STRATA_KAFKA_SSL=${sslFlag} turns TLS off, but ${fileVars.map(envOf).join(', ')} ` +
        `${fileVars.length > 1 ? 'are' : 'is'} set too; unset one side (a CA/cert/key variable alone turns TLS on)`,
    );
  }
  if (sslBool !== undefined) {
    // true keeps a mapping from the file (its CA and keys); anything else replaces it.
    if (!(sslBool === true && isObject(kafka.ssl))) kafka.ssl = sslBool;
    set.push(['ssl', 'STRATA_KAFKA_SSL']);
  }
  for (const key of fileVars) {
    if (!isObject(kafka.ssl)) kafka.ssl = {};
    const field = key.slice('ssl.'.length);
    const raw = get(envOf(key))!;
    (kafka.ssl as Record<string, unknown>)[field] = field === 'rejectUnauthorized' ? toBool(raw) : raw;
    set.push([key, envOf(key)]);
  }
  for (const key of ['sasl.mechanism', 'sasl.username', 'sasl.password']) {
    const raw = get(envOf(key));
    if (raw === undefined) continue;
    if (!isObject(kafka.sasl)) kafka.sasl = {};
    (kafka.sasl as Record<string, unknown>)[key.slice('sasl.'.length)] = raw;
    set.push([key, envOf(key)]);
  }
  return set;
}

/** kafkajs `ssl` and `sasl` options; reads the PEM files (ConfigError naming the key if one cannot be read). */
export function kafkaJsSecurity(cfg: KafkaSecurity, where: string): Pick<KafkaJsConfig, 'ssl' | 'sasl'> {
  let ssl: KafkaJsConfig['ssl'];
  if (cfg.ssl === true) ssl = true;
  else if (cfg.ssl !== false) {
    const read = (file: string | undefined, key: 'caFile' | 'certFile' | 'keyFile') => {
      if (!file) return undefined;
      try {
        return fs.readFileSync(file, 'utf8');
      } catch (err) {
        throw new ConfigError(
          `${where}.ssl.${key}: cannot read ${file} (${errorMessage(err)}); set it (or ${envOf(`ssl.${key}`)}) to a readable PEM file`,
        );
      }
    };
    // A certificate without its key (or the reverse) never gets here: KafkaSsl refuses it.
    const cert = read(cfg.ssl.certFile, 'certFile');
    const key = read(cfg.ssl.keyFile, 'keyFile');
    if (cert && key) checkClientPair(cert, key, cfg.ssl.certFile!, cfg.ssl.keyFile!, where);
    ssl = { rejectUnauthorized: cfg.ssl.rejectUnauthorized, ca: read(cfg.ssl.caFile, 'caFile'), cert, key };
  }
  const sasl: SASLOptions | undefined = cfg.sasl
    ? ({
        mechanism: cfg.sasl.mechanism,
        username: cfg.sasl.username,
        password: cfg.sasl.password,
      } as SASLOptions)
    : undefined;
  return { ssl, sasl };
}

/**
 * A client certificate and key that TLS would refuse before any byte reaches a broker (not PEM,
 * an encrypted key, a key of another certificate) are ConfigErrors naming the key and variable.
 */
function checkClientPair(certPem: string, keyPem: string, certFile: string, keyFile: string, where: string) {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new ConfigError(
      `${where}.ssl.certFile: ${certFile} is not a PEM certificate (${errorMessage(err)}); ` +
        'set it (or STRATA_KAFKA_SSL_CERT) to the client certificate ("-----BEGIN CERTIFICATE-----")',
    );
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new ConfigError(
      `${where}.ssl.keyFile: ${keyFile} is not an unencrypted PEM private key (${errorMessage(err)}); ` +
        'set it (or STRATA_KAFKA_SSL_KEY) to the key of certFile (a passphrase-protected key is not supported)',
    );
  }
  if (!cert.checkPrivateKey(key)) {
    throw new ConfigError(
      `${where}.ssl.keyFile: ${keyFile} is not the private key of certFile ${certFile}; ` +
        'set STRATA_KAFKA_SSL_CERT and STRATA_KAFKA_SSL_KEY to a matching pair ' +
        '(`openssl x509 -noout -pubkey -in CERT` and `openssl pkey -pubout -in KEY` print the same key)',
    );
  }
}

/** "subject CN=a, issued by CN=b, valid until <date>" of a PEM certificate file; '' if unreadable. */
export function describeCertificateFile(file: string): string {
  try {
    const cert = new X509Certificate(fs.readFileSync(file));
    const oneLine = (dn: string) => dn.split('\n').join(', ');
    const until = new Date(cert.validTo);
    const from = new Date(cert.validFrom);
    const now = Date.now();
    const validity =
      until.getTime() < now
        ? `EXPIRED on ${until.toISOString()}`
        : from.getTime() > now
          ? `not valid before ${from.toISOString()}`
          : `valid until ${until.toISOString()}`;
    return `subject ${oneLine(cert.subject)}, issued by ${oneLine(cert.issuer)}, ${validity}`;
  } catch {
    return '';
  }
}

/** One line describing how a client talks to the brokers, for logs: "TLS (CA /etc/ca.pem), SASL SCRAM-SHA-512 as strata". */
export function describeKafkaSecurity(cfg: KafkaSecurity): string {
  const tls =
    cfg.ssl === false
      ? 'plaintext'
      : cfg.ssl === true
        ? 'TLS (system CAs)'
        : `TLS (${cfg.ssl.caFile ? `CA ${cfg.ssl.caFile}` : 'system CAs'}${cfg.ssl.certFile ? `, client cert ${cfg.ssl.certFile}` : ''}${cfg.ssl.rejectUnauthorized ? '' : ', certificates NOT verified'})`;
  return cfg.sasl ? `${tls}, SASL ${cfg.sasl.mechanism.toUpperCase()} as ${cfg.sasl.username}` : tls;
}

type KafkaJsErrorLike = Error & {
  type?: string;
  code?: string | number;
  broker?: string;
  originalError?: unknown;
  retriableErrors?: unknown;
};

/** An error, its causes (kafkajs' `originalError`/`cause`) and kafkajs' retriable sub-errors. */
export function kafkaErrorChain(err: unknown): KafkaJsErrorLike[] {
  const out: KafkaJsErrorLike[] = [];
  let cur: unknown = err;
  for (let i = 0; i < 10 && cur instanceof Error; i++) {
    const e = cur as KafkaJsErrorLike;
    out.push(e);
    if (Array.isArray(e.retriableErrors)) {
      for (const r of e.retriableErrors) if (r instanceof Error) out.push(r as KafkaJsErrorLike);
    }
    cur = e.originalError ?? e.cause;
  }
  return out;
}

/** Node's TLS verification failures: the broker's certificate is not trusted or does not fit. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
/**
 * TLS alerts a broker sends when it refuses the client's certificate (mutual TLS): Java sends
 * bad_certificate when none was presented and certificate_unknown when it does not trust it.
 */
const CLIENT_CERT_ALERT =
  /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|UNKNOWN_CA|CERTIFICATE_REQUIRED|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE|HANDSHAKE_FAILURE|ACCESS_DENIED)$/;

/**
 * The security failure behind a kafkajs error, explained (broker, mechanism, what to check), or
 * undefined when the error is something else (the caller reports it its own way). `where` is
 * the config section ("agent.kafka", "processor.kafka").
 */
export function explainKafkaSecurityError(
  err: unknown,
  cfg: KafkaSecurity & { brokers: readonly string[] },
  where: string,
): StrataError | undefined {
  const chain = kafkaErrorChain(err);
  const brokerOf = (e: KafkaJsErrorLike | undefined) => e?.broker ?? cfg.brokers.join(',');
  const mech = cfg.sasl?.mechanism.toUpperCase();
  const user = cfg.sasl?.username;
  const credentialVars = 'STRATA_KAFKA_SASL_USERNAME / STRATA_KAFKA_SASL_PASSWORD';

  const unsupported = chain.find((e) => /mechanism is not supported by the server/i.test(e.message));
  if (unsupported || chain.some((e) => e.type === 'UNSUPPORTED_SASL_MECHANISM')) {
    return new ConnectionError(
      `Kafka ${cfg.brokers.join(',')} does not offer SASL ${mech} on this listener; ` +
        `set ${where}.sasl.mechanism (STRATA_KAFKA_SASL_MECHANISM) to one the listener enables ` +
        `(broker setting sasl.enabled.mechanisms), or point ${where}.brokers at a listener that has ${mech}`,
      { retriable: false, cause: err },
    );
  }
  const auth = chain.find(
    (e) => e.type === 'SASL_AUTHENTICATION_FAILED' || e.name === 'KafkaJSSASLAuthenticationError',
  );
  if (auth) {
    const hint =
      mech === 'PLAIN'
        ? 'PLAIN users are the user_<name>="<password>" entries of the listener\'s JAAS config'
        : `${mech} users are created with kafka-configs --alter --entity-type users --entity-name ${user} --add-config '${mech}=[password=...]'`;
    return new ConnectionError(
      `Kafka ${cfg.brokers.join(',')} rejected SASL ${mech} authentication as "${user}" (${auth.message}); ` +
        `check ${where}.sasl.username and .password (${credentialVars}) and that the brokers have this user for ${mech} (${hint})`,
      { retriable: false, cause: err },
    );
  }
  if (cfg.sasl && chain.some((e) => e.type === 'ILLEGAL_SASL_STATE')) {
    return new ConnectionError(
      `Kafka ${cfg.brokers.join(',')} answered the SASL handshake with ILLEGAL_SASL_STATE: this listener does not use SASL; ` +
        `point ${where}.brokers at the SASL_PLAINTEXT/SASL_SSL listener, or remove ${where}.sasl`,
      { retriable: false, cause: err },
    );
  }
  const tlsErr = chain.find(
    (e) => typeof e.code === 'string' && (UNTRUSTED.has(e.code) || EXPIRED.has(e.code)),
  );
  if (tlsErr) {
    const code = String(tlsErr.code);
    const ca = cfg.ssl !== false && cfg.ssl !== true ? cfg.ssl.caFile : undefined;
    const what = EXPIRED.has(code)
      ? `the broker's certificate is outside its validity period (${code}); renew it on the broker, or check this machine's clock`
      : ca
        ? `the broker's certificate is not signed by the CA in ${where}.ssl.caFile ${ca} (${code}); ` +
          `set ${where}.ssl.caFile (STRATA_KAFKA_SSL_CA) to the PEM of the CA that signed the brokers' certificates`
        : `the broker's certificate is not signed by a CA this machine trusts (${code}); ` +
          `set ${where}.ssl.caFile (STRATA_KAFKA_SSL_CA) to the PEM of the CA that signed the brokers' certificates`;
    return new ConnectionError(`TLS to Kafka ${brokerOf(tlsErr)} failed: ${what}`, {
      retriable: false,
      cause: err,
    });
  }
  const alertErr = chain.find((e) => typeof e.code === 'string' && CLIENT_CERT_ALERT.test(e.code));
  if (alertErr) {
    const alert = CLIENT_CERT_ALERT.exec(String(alertErr.code))![1]!.toLowerCase();
    const certFile = cfg.ssl !== false && cfg.ssl !== true ? cfg.ssl.certFile : undefined;
    const keys = `${where}.ssl.certFile and ${where}.ssl.keyFile (STRATA_KAFKA_SSL_CERT / STRATA_KAFKA_SSL_KEY)`;
    let what: string;
    if (!certFile) {
      what =
        alert === 'handshake_failure'
          ? `the broker refused the TLS handshake (SSL alert ${alert}) and no client certificate is set; ` +
            `if the listener requires one (ssl.client.auth=required), set ${keys} to a PEM certificate signed by a CA the brokers trust and its private key`
          : `the broker requires a client certificate (mutual TLS, ssl.client.auth=required) and none is set (SSL alert ${alert}); ` +
            `set ${keys} to a PEM certificate signed by a CA the brokers trust and its private key`;
    } else {
      const about = describeCertificateFile(certFile);
      what =
        (alert === 'handshake_failure'
          ? `the broker refused the TLS handshake with the client certificate ${certFile}${about ? ` (${about})` : ''} (SSL alert ${alert}; also the alert of a cipher or protocol mismatch); if it refused the certificate, `
          : `the broker rejected the client certificate ${certFile}${about ? ` (${about})` : ''} (SSL alert ${alert}); `) +
        "it must be signed by a CA in the brokers' truststore (listener setting ssl.truststore.location), " +
        `be within its validity period and allow clientAuth: set ${keys} to such a certificate and its key, ` +
        "or add its CA to the brokers' truststore";
    }
    return new ConnectionError(`TLS to Kafka ${brokerOf(alertErr)} failed: ${what}`, {
      retriable: false,
      cause: err,
    });
  }
  const altName = chain.find((e) => e.code === 'ERR_TLS_CERT_ALTNAME_INVALID' || /altnames/i.test(e.message));
  if (altName) {
    return new ConnectionError(
      `TLS to Kafka ${brokerOf(altName)} failed: the broker's certificate does not name the host connected to (${altName.message}); ` +
        `use a broker address listed in the certificate's subjectAltName (also the advertised listeners), or reissue the certificate`,
      { retriable: false, cause: err },
    );
  }
  if (cfg.ssl !== false) {
    const handshake = chain.find((e) =>
      /before secure TLS connection was established|wrong version number|packet length too long|EPROTO/i.test(
        `${e.message} ${e.code ?? ''}`,
      ),
    );
    if (handshake) {
      return new ConnectionError(
        `TLS to Kafka ${brokerOf(handshake)} failed during the handshake (${handshake.message}); ` +
          `is it a TLS listener (SSL or SASL_SSL)? For a PLAINTEXT or SASL_PLAINTEXT listener set ${where}.ssl to false (STRATA_KAFKA_SSL=false)`,
        { cause: err },
      );
    }
  }
  return undefined;
}

/**
 * A hint for an error that is not a recognised security failure but may be one in disguise: a
 * broker that closes the connection at once is often a TLS or SASL listener spoken to in
 * plaintext. '' when it does not apply.
 */
export function kafkaPlaintextHint(err: unknown, cfg: KafkaSecurity, where: string): string {
  const chain = kafkaErrorChain(err);
  if (!chain.some((e) => /closed connection|connection closed/i.test(e.message))) return '';
  if (cfg.ssl !== false && cfg.sasl) return '';
  const needs = [
    cfg.ssl === false ? `set ${where}.ssl if the listener is SSL or SASL_SSL` : '',
    cfg.sasl ? '' : `set ${where}.sasl if it is SASL_PLAINTEXT or SASL_SSL`,
  ].filter(Boolean);
  return ` (the broker closed the connection at once, as a TLS or SASL listener does with a plaintext client: ${needs.join('; ')})`;
}
