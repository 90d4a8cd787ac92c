// Kafka TLS and SASL against a real broker: a private secured Kafka (startKafka's `security`
// option: SASL_PLAINTEXT, SSL, SASL_SSL and MTLS listeners, a CA and client certificates made with
// openssl, a PLAIN and SCRAM user) beside the shared one. The agent publishes over SASL_SSL with
// SCRAM-SHA-512, over SSL with a CA file and over mutual TLS with a client certificate; the
// processor consumes over SASL_PLAINTEXT with PLAIN and over mutual TLS, and writes to InfluxDB.
// Wrong credentials, an untrusted CA, a missing or untrusted client certificate give errors that
// name the broker, the mechanism or certificate and what to set, while the agent keeps running and
// buffering (and delivers once the user exists, or from its spill file once restarted with a cert).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, type KafkaConfig, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { validateSampleMessage } from '../../schemas/sample.ts';
import {
  addScramUsers,
  createTopics,
  ensureTlsFiles,
  freePort,
  influxQuery,
  type KafkaHandle,
  type KafkaSecurityInfo,
  startKafka,
} from '../../stack/index.ts';

const STRATA = path.resolve('bin/strata.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-kafka-security-'));
const children: ChildProcess[] = [];
let kafka: KafkaHandle;
let sec: KafkaSecurityInfo;
const USER = 'strata';
const PASSWORD = 'strata-secret';

beforeAll(async () => {
  kafka = await startKafka({
    port: await freePort(),
    controllerPort: await freePort(),
    dataDir: path.join(dir, 'kafka'),
    heapMb: 384,
    security: {
      saslPlaintextPort: await freePort(),
      sslPort: await freePort(),
      saslSslPort: await freePort(),
      mtlsPort: await freePort(),
      users: [{ username: USER, password: PASSWORD }],
    },
    progress: (line) => process.stderr.write(`[kafka-security] ${line}\n`),
  });
  sec = kafka.security!;
  process.stderr.write(`[kafka-security] secured broker ready in ${kafka.startMs} ms\n`);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await kafka?.kill();
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Proc {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

function strata(args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [STRATA, ...args], {
    // None of the shared stack's settings leak in: every Kafka/TLS/SASL value is the test's.
    env: {
      ...process.env,
      KAFKA_BROKERS: '',
      STRATA_KAFKA_SSL: '',
      STRATA_KAFKA_SSL_CA: '',
      STRATA_KAFKA_SSL_CERT: '',
      STRATA_KAFKA_SSL_KEY: '',
      STRATA_KAFKA_SASL_MECHANISM: '',
      STRATA_KAFKA_SASL_USERNAME: '',
      STRATA_KAFKA_SASL_PASSWORD: '',
      STRATA_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stderr: () => err, exited };
}

/** The test's own kafkajs client on the MTLS listener, with the stack's client certificate. */
const viaMtls = () => ({
  brokers: [sec.mtls!],
  ssl: {
    ca: fs.readFileSync(sec.caFile, 'utf8'),
    cert: fs.readFileSync(sec.clientCertFile, 'utf8'),
    key: fs.readFileSync(sec.clientKeyFile, 'utf8'),
  },
});

/** Every record of `topic`, read over the broker's PLAINTEXT listener (or `via`). */
async function readTopic(
  topic: string,
  via: Pick<KafkaConfig, 'brokers' | 'ssl'> = { brokers: [kafka.brokers] },
): Promise<{ node: string; seq: number; run: string }[]> {
  const client = new Kafka({
    clientId: 'kafka-security-test',
    ...via,
    logLevel: logLevel.NOTHING,
  });
  const admin = client.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = ends.reduce((a, e) => a + Number(e.high), 0);
  const out: { node: string; seq: number; run: string }[] = [];
  if (total === 0) return out;
  const consumer = client.consumer({ groupId: `kafka-security-test-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`read ${out.length}/${total} records of ${topic}`)),
      30_000,
    );
    void consumer.run({
      eachMessage: async ({ message }) => {
        const r = validateSampleMessage(JSON.parse(message.value!.toString('utf8')));
        if (!r.ok) throw new Error(r.reason);
        out.push({ node: r.message.node.id, seq: r.message.seq, run: r.message.agent.run_id });
        if (out.length >= total) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return out;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not there yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const lines = text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return lines.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** The JSON log lines of a process's stderr whose msg matches. */
function logLines(stderr: string, msg: RegExp): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => msg.test(String(l.msg)));
}

async function newTopic(prefix: string): Promise<string> {
  const topic = `${prefix}.${randomUUID().slice(0, 8)}`;
  await createTopics(kafka.brokers, [{ topic, numPartitions: 2 }]);
  return topic;
}

describe('Kafka TLS and SASL (private secured broker)', () => {
  it('agent over SASL_SSL (SCRAM-SHA-512, CA file) -> Kafka -> processor over SASL_PLAINTEXT (PLAIN) -> InfluxDB', async () => {
    const topic = await newTopic('strata.sec');
    const node = `sec-${randomUUID().slice(0, 6)}`;
    const influxUrl = inject('influxUrl');
    const database = `strata_ksec_${randomUUID().slice(0, 8)}`;
    const processor = strata(['processor'], {
      KAFKA_BROKERS: sec.saslPlaintext!,
      STRATA_KAFKA_SASL_MECHANISM: 'plain',
      STRATA_KAFKA_SASL_USERNAME: USER,
      STRATA_KAFKA_SASL_PASSWORD: PASSWORD,
      STRATA_SAMPLES_TOPIC: topic,
      STRATA_DLQ_TOPIC: `${topic}.dlq`,
      STRATA_ALERTS_TOPIC: '',
      STRATA_GROUP_ID: `sec-${node}`,
      INFLUX_URL: influxUrl,
      INFLUX_API: 'v1',
      INFLUX_DATABASE: database,
      STRATA_METRICS_LISTEN: '',
    });
    try {
      await until('processor started', () => /"msg":"processor started"/.test(processor.stderr()), 60_000);
      const started = logLines(processor.stderr(), /processor started/)[0]!;
      expect(started.security).toBe(`plaintext, SASL PLAIN as ${USER}`);

      const agent = strata(['agent', '--interval', '500ms', '--node-id', node, '--collectors', 'host'], {
        KAFKA_BROKERS: sec.saslSsl!,
        STRATA_SAMPLES_TOPIC: topic,
        STRATA_KAFKA_SSL_CA: sec.caFile,
        STRATA_KAFKA_SASL_MECHANISM: 'scram-sha-512',
        STRATA_KAFKA_SASL_USERNAME: USER,
        STRATA_KAFKA_SASL_PASSWORD: PASSWORD,
      });
      await until('agent started', () => /"msg":"agent started"/.test(agent.stderr()), 30_000);
      // Points reach InfluxDB through the processor: the whole secured path works.
      await until(
        'points of the node in InfluxDB',
        async () => {
          const r = (await influxQuery(
            influxUrl,
            `SHOW SERIES ON "${database}" WHERE "node" = '${node}'`,
          )) as {
            results?: { series?: { values: unknown[][] }[] }[];
          };
          return (r.results?.[0]?.series?.[0]?.values.length ?? 0) > 0;
        },
        60_000,
      );
      await new Promise((r) => setTimeout(r, 1500)); // a few more ticks (500 ms apart) on the topic
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
      expect(agent.stderr()).toMatch(/"unsent_ticks":0/);
      expect(agent.stderr()).not.toMatch(/kafka unavailable/);
      const got = (await readTopic(topic)).filter((m) => m.node === node);
      expect(got.length).toBeGreaterThanOrEqual(2);
      expect(got.map((m) => m.seq).sort((a, b) => a - b)).toEqual(got.map((_, i) => i));
    } finally {
      processor.child.kill('SIGTERM');
      await processor.exited;
      await influxQuery(influxUrl, `DROP DATABASE "${database}"`, { method: 'POST' }).catch(() => {});
    }
  });

  it('agent over SSL with the CA file from its config file, and over SASL_PLAINTEXT with SCRAM-SHA-256', async () => {
    const topic = await newTopic('strata.ssl');
    const node = `ssl-${randomUUID().slice(0, 6)}`;
    const config = path.join(dir, 'agent-ssl.yaml');
    fs.writeFileSync(
      config,
      `agent:\n  kafka:\n    brokers: ["${sec.ssl}"]\n    samplesTopic: ${topic}\n    ssl:\n      caFile: ${sec.caFile}\n`,
    );
    const a = strata(['agent', '--once', '--config', config, '--node-id', node, '--collectors', 'host'], {});
    expect(await a.exited).toBe(0);
    const b = strata(['agent', '--once', '--node-id', `${node}-256`, '--collectors', 'host'], {
      KAFKA_BROKERS: sec.saslPlaintext!,
      STRATA_SAMPLES_TOPIC: topic,
      STRATA_KAFKA_SASL_MECHANISM: 'scram-sha-256',
      STRATA_KAFKA_SASL_USERNAME: USER,
      STRATA_KAFKA_SASL_PASSWORD: PASSWORD,
    });
    expect(await b.exited).toBe(0);
    const got = await readTopic(topic);
    expect(got.map((m) => m.node).sort()).toEqual([node, `${node}-256`]);
  });

  it('an unknown SCRAM user: clear error, the agent keeps buffering, and delivers from seq 0 once the user exists', async () => {
    const topic = await newTopic('strata.late-user');
    const node = `late-${randomUUID().slice(0, 6)}`;
    const user = `late${randomUUID().slice(0, 6)}`;
    const metricsPort = await freePort();
    const a = strata(
      [
        'agent',
        '--interval',
        '250ms',
        '--node-id',
        node,
        '--collectors',
        'host',
        '--metrics-listen',
        `127.0.0.1:${metricsPort}`,
      ],
      {
        KAFKA_BROKERS: sec.saslSsl!,
        STRATA_SAMPLES_TOPIC: topic,
        STRATA_KAFKA_SSL_CA: sec.caFile,
        STRATA_KAFKA_SASL_MECHANISM: 'scram-sha-512',
        STRATA_KAFKA_SASL_USERNAME: user,
        STRATA_KAFKA_SASL_PASSWORD: 'late-secret',
      },
    );
    await until('outage logged', () => /kafka unavailable; buffering ticks/.test(a.stderr()), 30_000);
    const [outage] = logLines(a.stderr(), /kafka unavailable/);
    const err = String(outage!.err);
    expect(err).toContain(`Kafka ${sec.saslSsl} rejected SASL SCRAM-SHA-512 authentication as "${user}"`);
    expect(err).toContain('STRATA_KAFKA_SASL_USERNAME / STRATA_KAFKA_SASL_PASSWORD');
    expect(err).toContain(`--entity-name ${user} --add-config 'SCRAM-SHA-512=[password=...]'`);
    expect(String(outage!.target)).toContain(`TLS (CA ${sec.caFile}), SASL SCRAM-SHA-512 as ${user}`);
    // Still running, and the ticks pile up in the buffer rather than being lost.
    await until(
      'ticks buffered',
      async () => (await metric(metricsPort, 'strata_agent_buffer_ticks')) >= 8,
      30_000,
    );
    expect(a.child.exitCode).toBeNull();
    expect(await metric(metricsPort, 'strata_agent_published_ticks_total')).toBe(0);

    await addScramUsers(kafka.brokers, [
      { username: user, password: 'late-secret', mechanisms: ['SCRAM-SHA-512'] },
    ]);
    await until('recovered', () => /kafka available again; draining the buffer/.test(a.stderr()), 60_000);
    await until(
      'buffer drained',
      async () => (await metric(metricsPort, 'strata_agent_buffer_ticks')) === 0,
      30_000,
    );
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    const got = (await readTopic(topic)).map((m) => m.seq).sort((x, y) => x - y);
    expect(got.length).toBeGreaterThanOrEqual(8);
    expect(got).toEqual(got.map((_, i) => i)); // nothing lost while the credentials were refused
  });

  it('a CA that did not sign the broker certificate: the TLS error names the broker and the CA file; the agent keeps running', async () => {
    const other = await ensureTlsFiles(path.join(dir, 'other-ca'));
    const metricsPort = await freePort();
    const a = strata(
      [
        'agent',
        '--interval',
        '250ms',
        '--collectors',
        'host',
        '--metrics-listen',
        `127.0.0.1:${metricsPort}`,
      ],
      { KAFKA_BROKERS: sec.ssl!, STRATA_KAFKA_SSL_CA: other.caFile },
    );
    await until('outage logged', () => /kafka unavailable; buffering ticks/.test(a.stderr()), 30_000);
    const err = String(logLines(a.stderr(), /kafka unavailable/)[0]!.err);
    expect(err).toContain(
      `TLS to Kafka ${sec.ssl} failed: the broker's certificate is not signed by the CA in`,
    );
    expect(err).toContain(other.caFile);
    expect(err).toContain('STRATA_KAFKA_SSL_CA');
    await until(
      'ticks buffered',
      async () => (await metric(metricsPort, 'strata_agent_buffer_ticks')) >= 4,
      30_000,
    );
    expect(a.child.exitCode).toBeNull();
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
  });

  it('the processor names the mechanism and the credential variables on a wrong PLAIN password, and the listener on TLS to a plaintext port', () => {
    const run = (env: Record<string, string>) => {
      const r = spawnSync(process.execPath, [STRATA, 'processor'], {
        env: {
          ...process.env,
          INFLUX_URL: inject('influxUrl'),
          STRATA_METRICS_LISTEN: '',
          STRATA_KAFKA_SSL: '',
          STRATA_KAFKA_SSL_CA: '',
          STRATA_KAFKA_SSL_CERT: '',
          STRATA_KAFKA_SSL_KEY: '',
          STRATA_KAFKA_SASL_MECHANISM: '',
          STRATA_KAFKA_SASL_USERNAME: '',
          STRATA_KAFKA_SASL_PASSWORD: '',
          ...env,
        },
        encoding: 'utf8',
        timeout: 90_000,
      });
      return { code: r.status, stderr: r.stderr };
    };
    const bad = run({
      KAFKA_BROKERS: sec.saslPlaintext!,
      STRATA_KAFKA_SASL_MECHANISM: 'plain',
      STRATA_KAFKA_SASL_USERNAME: USER,
      STRATA_KAFKA_SASL_PASSWORD: 'Wr0ngPassw0rd',
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(
      `Kafka ${sec.saslPlaintext} rejected SASL PLAIN authentication as "${USER}"`,
    );
    expect(bad.stderr).toContain('processor.kafka.sasl.username and .password');
    expect(bad.stderr).not.toContain('Wr0ngPassw0rd'); // the password is never printed

    const tlsToPlain = run({ KAFKA_BROKERS: sec.saslPlaintext!, STRATA_KAFKA_SSL: 'true' });
    expect(tlsToPlain.code).toBe(1);
    expect(tlsToPlain.stderr).toContain(`TLS to Kafka ${sec.saslPlaintext} failed during the handshake`);
    expect(tlsToPlain.stderr).toContain('STRATA_KAFKA_SSL=false');
  });
  it('mutual TLS: agent with a client certificate -> Kafka (MTLS listener) -> processor with a client certificate -> InfluxDB', async () => {
    const topic = await newTopic('strata.mtls');
    const node = `mtls-${randomUUID().slice(0, 6)}`;
    const influxUrl = inject('influxUrl');
    const database = `strata_kmtls_${randomUUID().slice(0, 8)}`;
    const clientCert = {
      STRATA_KAFKA_SSL_CA: sec.caFile,
      STRATA_KAFKA_SSL_CERT: sec.clientCertFile,
      STRATA_KAFKA_SSL_KEY: sec.clientKeyFile,
    };
    const processor = strata(['processor'], {
      KAFKA_BROKERS: sec.mtls!,
      ...clientCert,
      STRATA_SAMPLES_TOPIC: topic,
      STRATA_DLQ_TOPIC: `${topic}.dlq`,
      STRATA_ALERTS_TOPIC: '',
      STRATA_GROUP_ID: `mtls-${node}`,
      INFLUX_URL: influxUrl,
      INFLUX_API: 'v1',
      INFLUX_DATABASE: database,
      STRATA_METRICS_LISTEN: '',
    });
    try {
      await until('processor started', () => /"msg":"processor started"/.test(processor.stderr()), 60_000);
      expect(logLines(processor.stderr(), /processor started/)[0]!.security).toBe(
        `TLS (CA ${sec.caFile}, client cert ${sec.clientCertFile})`,
      );
      const agent = strata(['agent', '--interval', '250ms', '--node-id', node, '--collectors', 'host'], {
        KAFKA_BROKERS: sec.mtls!,
        STRATA_SAMPLES_TOPIC: topic,
        ...clientCert,
      });
      await until('agent started', () => /"msg":"agent started"/.test(agent.stderr()), 30_000);
      await until(
        'points of the node in InfluxDB',
        async () => {
          const r = (await influxQuery(
            influxUrl,
            `SHOW SERIES ON "${database}" WHERE "node" = '${node}'`,
          )) as { results?: { series?: { values: unknown[][] }[] }[] };
          return (r.results?.[0]?.series?.[0]?.values.length ?? 0) > 0;
        },
        60_000,
      );
      await new Promise((r) => setTimeout(r, 1000)); // a few more ticks (250 ms apart)
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
      expect(agent.stderr()).toMatch(/"unsent_ticks":0/);
      expect(agent.stderr()).not.toMatch(/kafka unavailable/);
      const [started] = logLines(agent.stderr(), /agent started/);
      expect(JSON.stringify(started)).toContain(`client cert ${sec.clientCertFile}`);
      // Read back over mutual TLS too: every tick of the run, in order, from this node.
      const got = await readTopic(topic, viaMtls());
      expect(got.length).toBeGreaterThanOrEqual(4);
      expect(new Set(got.map((m) => m.node))).toEqual(new Set([node]));
      expect(got.map((m) => m.seq).sort((a, b) => a - b)).toEqual(got.map((_, i) => i));
    } finally {
      processor.child.kill('SIGTERM');
      await processor.exited;
      await influxQuery(influxUrl, `DROP DATABASE "${database}"`, { method: 'POST' }).catch(() => {});
    }
  });

  it('mutual TLS without a client certificate: the error says one is required and what to set; the agent buffers, and its spill file is delivered once restarted with the certificate', async () => {
    const topic = await newTopic('strata.mtls-nocert');
    const node = `nocert-${randomUUID().slice(0, 6)}`;
    const spill = path.join(dir, `spill-${node}`);
    const common = {
      KAFKA_BROKERS: sec.mtls!,
      STRATA_SAMPLES_TOPIC: topic,
      STRATA_KAFKA_SSL_CA: sec.caFile,
      STRATA_SPILL_FILE: spill,
      STRATA_SHUTDOWN_TIMEOUT: '1s',
    };
    const args = ['agent', '--interval', '250ms', '--node-id', node, '--collectors', 'host'];
    const metricsPort = await freePort();
    const a = strata([...args, '--metrics-listen', `127.0.0.1:${metricsPort}`], common);
    await until('outage logged', () => /kafka unavailable; buffering ticks/.test(a.stderr()), 30_000);
    const err = String(logLines(a.stderr(), /kafka unavailable/)[0]!.err);
    expect(err).toContain(
      `TLS to Kafka ${sec.mtls} failed: the broker requires a client certificate (mutual TLS, ssl.client.auth=required) and none is set`,
    );
    expect(err).toContain(
      'set agent.kafka.ssl.certFile and agent.kafka.ssl.keyFile (STRATA_KAFKA_SSL_CERT / STRATA_KAFKA_SSL_KEY)',
    );
    await until(
      'ticks buffered',
      async () => (await metric(metricsPort, 'strata_agent_buffer_ticks')) >= 4,
      30_000,
    );
    expect(a.child.exitCode).toBeNull();
    expect(await metric(metricsPort, 'strata_agent_published_ticks_total')).toBe(0);
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    const [kept] = logLines(a.stderr(), /unsent ticks kept in the spill file/);
    const unsent = Number(kept!.unsent_ticks);
    expect(unsent).toBeGreaterThanOrEqual(4);

    // Restarted with the client certificate: the ticks of the first run go out first.
    const metricsPort2 = await freePort();
    const b = strata([...args, '--metrics-listen', `127.0.0.1:${metricsPort2}`], {
      ...common,
      STRATA_KAFKA_SSL_CERT: sec.clientCertFile,
      STRATA_KAFKA_SSL_KEY: sec.clientKeyFile,
    });
    await until(
      'spill drained',
      async () =>
        (await metric(metricsPort2, 'strata_agent_spill_recovered_ticks_total')) === unsent &&
        (await metric(metricsPort2, 'strata_agent_published_ticks_total')) > unsent &&
        (await metric(metricsPort2, 'strata_agent_buffer_ticks')) === 0,
      60_000,
    );
    b.child.kill('SIGTERM');
    expect(await b.exited).toBe(0);
    expect(b.stderr()).not.toMatch(/kafka unavailable/);
    const got = await readTopic(topic, viaMtls());
    const runs = new Map<string, number[]>();
    for (const m of got) runs.set(m.run, [...(runs.get(m.run) ?? []), m.seq]);
    expect(runs.size).toBe(2);
    const seqs = [...runs.values()].map((s) => s.sort((x, y) => x - y));
    for (const s of seqs) expect(s).toEqual(s.map((_, i) => i)); // no gap in either run
    // The first run: exactly the ticks it kept in the spill file, nothing lost.
    expect(seqs.map((s) => s.length)).toContain(unsent);
  });

  it('mutual TLS with a certificate of an untrusted CA, and config errors of the client certificate and key', () => {
    const run = (env: Record<string, string>) => {
      const r = spawnSync(process.execPath, [STRATA, 'processor'], {
        env: {
          ...process.env,
          INFLUX_URL: inject('influxUrl'),
          STRATA_METRICS_LISTEN: '',
          STRATA_KAFKA_SSL: '',
          STRATA_KAFKA_SASL_MECHANISM: '',
          STRATA_KAFKA_SASL_USERNAME: '',
          STRATA_KAFKA_SASL_PASSWORD: '',
          KAFKA_BROKERS: sec.mtls!,
          STRATA_KAFKA_SSL_CA: sec.caFile,
          STRATA_KAFKA_SSL_CERT: '',
          STRATA_KAFKA_SSL_KEY: '',
          ...env,
        },
        encoding: 'utf8',
        timeout: 90_000,
      });
      return { code: r.status, stderr: r.stderr };
    };
    const untrusted = run({
      STRATA_KAFKA_SSL_CERT: sec.untrustedClientCertFile,
      STRATA_KAFKA_SSL_KEY: sec.untrustedClientKeyFile,
    });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toContain(
      `TLS to Kafka ${sec.mtls} failed: the broker rejected the client certificate ${sec.untrustedClientCertFile} ` +
        '(subject CN=strata-untrusted-client, issued by CN=strata untrusted test CA',
    );
    expect(untrusted.stderr).toContain("it must be signed by a CA in the brokers' truststore");
    expect(untrusted.stderr).toContain('processor.kafka.ssl.certFile and processor.kafka.ssl.keyFile');

    // A key that is not the certificate's, and a key without a certificate: refused before connecting.
    const mismatch = run({
      STRATA_KAFKA_SSL_CERT: sec.clientCertFile,
      STRATA_KAFKA_SSL_KEY: sec.untrustedClientKeyFile,
    });
    expect(mismatch.code).not.toBe(0);
    expect(mismatch.stderr).toContain(
      `processor.kafka.ssl.keyFile: ${sec.untrustedClientKeyFile} is not the private key of certFile ${sec.clientCertFile}`,
    );
    const keyOnly = run({ STRATA_KAFKA_SSL_KEY: sec.clientKeyFile });
    expect(keyOnly.code).not.toBe(0);
    expect(keyOnly.stderr).toContain('processor.kafka.ssl.keyFile: keyFile is set but certFile is not');
    expect(keyOnly.stderr).toContain('STRATA_KAFKA_SSL_CERT');
  });
});
