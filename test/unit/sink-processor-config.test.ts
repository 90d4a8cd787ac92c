// Config of the processor and its sinks: layering (defaults < file < env < flags), errors that
// name the key and where values came from, and the write-error classification the writer acts on.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HttpError, RequestTimedOutError } from '@influxdata/influxdb-client';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors.ts';
import { ENV_KEYS } from '../../processor/config.ts';
import { reasonKind, resolveProcessorConfig } from '../../processor/index.ts';
import { decodeSampleMessage } from '../../schemas/sample.ts';
import { createInfluxSink, DEFAULT_INFLUX_URL } from '../../sinks/influxdb/index.ts';
import { encodePoint } from '../../sinks/influxdb/line-protocol.ts';
import { InfluxV1Sink } from '../../sinks/influxdb/v1.ts';
import { classify, LineWriter, splitLines } from '../../sinks/influxdb/writer.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-proc-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe('resolveProcessorConfig', () => {
  it('defaults point at the local stack', () => {
    const c = resolveProcessorConfig({}, {});
    expect(c.kafka.brokers).toEqual(['127.0.0.1:19092']);
    expect(c.kafka.groupId).toBe('strata-processor');
    expect(c.kafka.samplesTopic).toBe('strata.samples');
    expect(c.kafka.dlqTopic).toBe('strata.dlq');
    expect(c.kafka.alertsTopic).toBe('strata.alerts');
    expect(c.influxdb.url).toBe('http://127.0.0.1:18086');
    expect(c.influxdb.api).toBe('v2');
    expect(c.influxdb.flushInterval).toBe(0);
    expect(c.influxdb.maxRetryTime).toBe(10_000);
  });

  it('layers file < env < flags, with durations and lists parsed', () => {
    const f = file(
      'a.yaml',
      'processor:\n  kafka:\n    brokers: [f:1]\n    groupId: from-file\n    sessionTimeout: 6s\n  influxdb:\n    bucket: file-bucket\n    maxRetryTime: 2m\n',
    );
    const c = resolveProcessorConfig(
      { config: f, groupId: 'from-flag' },
      { KAFKA_BROKERS: 'e1:9092, e2:9092', STRATA_GROUP_ID: 'from-env', INFLUX_BUCKET: 'env-bucket' },
    );
    expect(c.kafka.brokers).toEqual(['e1:9092', 'e2:9092']);
    expect(c.kafka.groupId).toBe('from-flag');
    expect(c.kafka.sessionTimeout).toBe(6000);
    expect(c.influxdb.bucket).toBe('env-bucket');
    expect(c.influxdb.maxRetryTime).toBe(120_000);
  });

  it('maps every documented env var', () => {
    const env = Object.fromEntries(Object.keys(ENV_KEYS).map((k) => [k, `x-${k}`]));
    env.KAFKA_BROKERS = 'k:1';
    env.INFLUX_API = 'v1';
    env.INFLUX_URL = 'http://influx:8086';
    env.STRATA_METRICS_LISTEN = '0.0.0.0:9999';
    env.INFLUX_RETENTION_SETUP = 'true';
    const c = resolveProcessorConfig({}, env);
    expect(c.influxdb.retention.enabled).toBe(true);
    expect(c.kafka).toMatchObject({
      brokers: ['k:1'],
      groupId: 'x-STRATA_GROUP_ID',
      samplesTopic: 'x-STRATA_SAMPLES_TOPIC',
      alertsTopic: 'x-STRATA_ALERTS_TOPIC',
      dlqTopic: 'x-STRATA_DLQ_TOPIC',
    });
    expect(c.influxdb).toMatchObject({
      api: 'v1',
      url: 'http://influx:8086',
      token: 'x-INFLUX_TOKEN',
      org: 'x-INFLUX_ORG',
      bucket: 'x-INFLUX_BUCKET',
      database: 'x-INFLUX_DATABASE',
      retentionPolicy: 'x-INFLUX_RETENTION_POLICY',
      username: 'x-INFLUX_USERNAME',
      password: 'x-INFLUX_PASSWORD',
    });
    expect(c.webhook.url).toBe('x-ALERT_WEBHOOK_URL');
    expect(c.metricsListen).toBe('0.0.0.0:9999');
  });

  it('treats empty env vars as unset, except where empty disables something', () => {
    const c = resolveProcessorConfig(
      {},
      { KAFKA_BROKERS: '', STRATA_METRICS_LISTEN: '', STRATA_ALERTS_TOPIC: '' },
    );
    expect(c.kafka.brokers).toEqual(['127.0.0.1:19092']);
    expect(c.metricsListen).toBe('');
    expect(c.kafka.alertsTopic).toBe('');
  });

  it('names an unknown key with the accepted ones and where values came from', () => {
    const f = file('b.yaml', 'processor:\n  kafka:\n    topcs: x\n');
    const err = (() => {
      try {
        resolveProcessorConfig({ config: f }, { KAFKA_BROKERS: 'k:1' });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err?.message).toContain(
      'processor.kafka.topcs: unknown key; accepted keys: brokers, clientId, groupId',
    );
    expect(err?.message).toContain(`(set by config file ${f})`);
  });

  it('rejects a bad URL and a bad duration naming the key', () => {
    expect(() => resolveProcessorConfig({ influxUrl: 'not a url' }, {})).toThrow(/processor\.influxdb\.url/);
    expect(() => resolveProcessorConfig({}, { INFLUX_API: 'v3' })).toThrow(
      /processor\.influxdb\.api.*accepted: "v2", "v1"/,
    );
    const f = file('c.yaml', 'processor:\n  kafka:\n    warmup: soon\n');
    expect(() => resolveProcessorConfig({ config: f }, {})).toThrow(
      /processor\.kafka\.warmup: "soon" is not a duration/,
    );
  });

  it('says what is wrong with an unreadable or non-mapping file', () => {
    expect(() => resolveProcessorConfig({ config: path.join(dir, 'missing.yaml') }, {})).toThrow(
      /cannot read the file/,
    );
    expect(() => resolveProcessorConfig({ config: file('d.yaml', 'processor: [1, 2]\n') }, {})).toThrow(
      /"processor:" must be a mapping of settings/,
    );
  });

  it('builds the v1 or v2 sink from influxdb.api', () => {
    expect(createInfluxSink(resolveProcessorConfig({}, { INFLUX_API: 'v1' }).influxdb)).toBeInstanceOf(
      InfluxV1Sink,
    );
    const v2 = createInfluxSink(resolveProcessorConfig({}, {}).influxdb);
    expect(v2).toBeInstanceOf(LineWriter);
    expect(v2).not.toBeInstanceOf(InfluxV1Sink);
    expect(v2.name).toBe('influxdb-v2');
  });

  it('has one default InfluxDB URL (the local stack) for the processor and either write API', () => {
    expect(DEFAULT_INFLUX_URL).toBe('http://127.0.0.1:18086');
    expect(resolveProcessorConfig({}, {}).influxdb.url).toBe(DEFAULT_INFLUX_URL);
    expect(resolveProcessorConfig({}, { INFLUX_API: 'v1' }).influxdb.url).toBe(DEFAULT_INFLUX_URL);
  });
});

describe('write error classification', () => {
  it('treats 400/422 as permanent, 413 as split, everything else as retryable by kind', () => {
    const h = (s: number) => classify(new HttpError(s, 'x'));
    expect(h(400)).toEqual({ kind: 'bad_request', permanent: true, split: false });
    expect(h(422).permanent).toBe(true);
    expect(h(413)).toEqual({ kind: 'too_large', permanent: false, split: true });
    expect(h(401).kind).toBe('auth');
    expect(h(403).kind).toBe('auth');
    expect(h(404).kind).toBe('not_found');
    expect(h(429).kind).toBe('rate_limited');
    expect(h(503)).toEqual({ kind: 'server', permanent: false, split: false });
    expect(classify(new RequestTimedOutError()).kind).toBe('timeout');
    expect(classify(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })).kind).toBe(
      'network',
    );
  });
});

describe('splitLines (used to halve a body after a 413)', () => {
  it('splits encoded points back into lines, keeping newlines inside string fields', () => {
    const lines = [
      encodePoint({
        measurement: 'm',
        tags: { t: 'a b' },
        fields: { s: 'one\ntwo "q" \\', f: 1 },
        timeMs: 1,
      }),
      encodePoint({ measurement: 'm', tags: {}, fields: { s: '\n' }, timeMs: 2 }),
      encodePoint({ measurement: 'm', tags: {}, fields: { f: 3 }, timeMs: 3 }),
    ] as string[];
    expect(splitLines(lines.join('\n'))).toEqual(lines);
  });
});

describe('DLQ reason kinds', () => {
  it('maps decode failures to a bounded label set', () => {
    const kind = (v: string | null) => {
      const d = decodeSampleMessage(v);
      return d.ok ? 'ok' : reasonKind(d.reason);
    };
    expect(kind(null)).toBe('empty');
    expect(kind('{nope')).toBe('not_json');
    expect(kind('{"v":2}')).toBe('schema_version');
    expect(kind('{"v":1}')).toBe('schema');
    expect(kind('"a string"')).toBe('schema');
  });
});
