// One vocabulary for every `strata` command, checked on real CLI processes (bin/strata.js):
// usage errors exit 2 with one line naming the flag, the value and the accepted form; old
// spellings keep working with one deprecation line naming the new one; --print-config everywhere.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const STRATA = path.resolve('bin/strata.js');

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [STRATA, ...args], {
    env: { ...process.env, STRATA_LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One line on stderr, exit 2. */
function usageError(args: string[], env: Record<string, string> = {}): string {
  const r = cli(args, env);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  return lines[0]!;
}

describe('usage errors: exit 2, one line', () => {
  it.each([
    [['agent', '--gzip-level', '-1'], 'strata: --gzip-level: expected a whole number from 1 to 9, got "-1"'],
    [
      ['agent', '--buffer-max-ticks', 'abc'],
      'strata: --buffer-max-ticks: expected a whole number ≥ 1, got "abc"',
    ],
    [
      ['agent', '--buffer-max-ticks', '0.5'],
      'strata: --buffer-max-ticks: expected a whole number ≥ 1, got "0.5"',
    ],
    [
      ['agent', '--interval', '1'],
      'strata: --interval: expected a duration ≥ 10ms such as 500ms, 1s, 2m, got "1" (a bare number is milliseconds: did you mean 1s?)',
    ],
    [
      ['agent', '--interval', 'fast'],
      'strata: --interval: expected a duration ≥ 10ms such as 500ms, 1s, 2m, got "fast"',
    ],
    [
      ['agent', '--brokers', ''],
      'strata: --brokers: expected at least one broker host:port, e.g. 127.0.0.1:19092, got ""',
    ],
    [
      ['agent', '--brokers', 'kafka'],
      'strata: --brokers: expected host:port[,host:port...], e.g. 127.0.0.1:19092, got "kafka"',
    ],
    [['agent', '--output', 'tty'], 'strata: --output: expected one of kafka, ndjson, got "tty"'],
    [
      ['agent', '--kafka', 'k:9092'],
      "strata: unknown option '--kafka'; did you mean --brokers? (see --help)",
    ],
    [
      ['processor', '--influx-buket', 'x'],
      "strata: unknown option '--influx-buket'; did you mean --influx-bucket? (see --help)",
    ],
    [['bogus'], "strata: unknown command 'bogus' (see --help)"],
    [['run', '--ticks', '-1'], 'strata: --ticks: expected a whole number ≥ 0 (0 = until Ctrl-C), got "-1"'],
    [['run', '--ticks', 'abc'], 'strata: --ticks: expected a whole number ≥ 0 (0 = until Ctrl-C), got "abc"'],
    [['run', '--ticks', '0.5'], 'strata: --ticks: expected a whole number ≥ 0 (0 = until Ctrl-C), got "0.5"'],
    [['processor', '--influx-api', 'v3'], 'strata: --influx-api: expected one of v2, v1, got "v3"'],
    [['bench', '--repeats', '-1'], 'strata: --repeats: expected a whole number ≥ 1, got "-1"'],
    [
      ['bench', '--duration', '1'],
      'strata: --duration: expected a duration from 1s to 1h such as 5s, got "1" (a bare number is milliseconds: did you mean 1s?)',
    ],
  ])(
    'strata %j',
    (args, line) => {
      expect(usageError(args)).toBe(line);
    },
    60_000,
  );

  it('a bad env value is a configuration error naming the variable, exit 2, no zod wording', () => {
    const r = cli(['agent', '--print-config'], { KAFKA_BROKERS: ',' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'agent.kafka.brokers: expected at least one broker (host:port, e.g. 127.0.0.1:19092) (set by env KAFKA_BROKERS)',
    );
    expect(r.stderr).not.toMatch(/Too small|Invalid input/);
  }, 60_000);
});

describe('deprecated spellings keep working, one line each', () => {
  it('agent --topic is --samples-topic', () => {
    const r = cli(['agent', '--topic', 'old.topic', '--print-config']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      'strata: deprecated: --topic is now --samples-topic; --topic still works for now\n',
    );
    const out = JSON.parse(r.stdout);
    expect(out.config.kafka.samplesTopic).toBe('old.topic');
    expect(out.sources['kafka.samplesTopic']).toBe('flag --samples-topic');
  }, 60_000);
});

describe('help', () => {
  it.each([
    [''],
    ['agent'],
    ['processor'],
    ['run'],
    ['bench'],
    ['stack'],
    ['stack up'],
    ['stack down'],
    ['stack status'],
  ])(
    'strata %s --help shows 2-4 examples and defaults one way',
    (name) => {
      const r = cli(name ? [...name.split(' '), '--help'] : ['--help']);
      expect(r.code).toBe(0);
      const block = r.stdout.split('\nExamples:\n')[1] ?? '';
      const examples = block
        .split('\n\n')[0]!
        .split('\n')
        .filter((l) => l.startsWith('  '));
      expect(examples.length, r.stdout).toBeGreaterThanOrEqual(2);
      expect(examples.length, r.stdout).toBeLessThanOrEqual(4);
      // Defaults and env vars are shown as [env X; default Y], never (env X; ...) or (default: ...)
      expect(r.stdout).not.toMatch(/\((env|default)[ :]/);
    },
    60_000,
  );
});

describe('deprecated flags of the processor and run', () => {
  it('processor --bucket, --database and --check-config map to the new flags, one line each', () => {
    const r = cli(['processor', '--check-config', '--bucket', 'b1', '--database', 'd1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.trimEnd().split('\n').sort()).toEqual([
      'strata: deprecated: --bucket is now --influx-bucket; --bucket still works for now',
      'strata: deprecated: --check-config is now --print-config; --check-config still works for now',
      'strata: deprecated: --database is now --influx-database; --database still works for now',
    ]);
    const out = JSON.parse(r.stdout);
    expect(out.config.influxdb.bucket).toBe('b1');
    expect(out.sources['influxdb.database']).toBe('flag --influx-database');
  }, 60_000);

  it('run --kafka <brokers> is --brokers; a bare --kafka still means the default brokers', () => {
    const r = cli(['run', '--kafka', 'k1:9092', '--print-config']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('strata: deprecated: --kafka is now --brokers; --kafka still works for now\n');
    const out = JSON.parse(r.stdout);
    expect(out.agent.config.kafka.brokers).toEqual(['k1:9092']);
    expect(out.agent.config.output).toBe('kafka');
    expect(out.processor.config.kafka.brokers).toEqual(['k1:9092']);
    const bare = cli(['run', '--kafka', '--print-config'], { KAFKA_BROKERS: '' });
    expect(bare.code, bare.stderr).toBe(0);
    expect(JSON.parse(bare.stdout).agent.config.kafka.brokers).toEqual(['127.0.0.1:19092']);
  }, 60_000);

  it('run -c file --brokers: the agent brokers and topic from the file, and the processor side uses the same', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-run-cfg-'));
    const f = path.join(dir, 'strata.yaml');
    writeFileSync(f, 'agent:\n  kafka:\n    brokers: [f1:9092]\n    samplesTopic: from.file\n');
    const r = cli(['run', '-c', f, '--brokers', '--print-config'], { KAFKA_BROKERS: '' });
    rmSync(dir, { recursive: true, force: true });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.agent.config.kafka).toMatchObject({ brokers: ['f1:9092'], samplesTopic: 'from.file' });
    expect(out.processor.config.kafka).toMatchObject({ brokers: ['f1:9092'], samplesTopic: 'from.file' });
  }, 60_000);

  it('run --influx <url> is --influx-url', () => {
    const r = cli(['run', '--influx', 'http://i:8086', '--print-config']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('strata: deprecated: --influx is now --influx-url; --influx still works for now\n');
    expect(JSON.parse(r.stdout).processor.config.influxdb.url).toBe('http://i:8086');
  }, 60_000);
});

describe('--print-config on every command', () => {
  it('agent: config, enabled collectors, sources', () => {
    const r = cli(['agent', '--print-config', '--samples-topic', 't1'], { STRATA_INTERVAL: '2s' });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.config.kafka.samplesTopic).toBe('t1');
    expect(out.config.interval).toBe(2000);
    expect(out.sources).toMatchObject({
      interval: 'env STRATA_INTERVAL',
      'kafka.samplesTopic': 'flag --samples-topic',
    });
    expect(out.enabledCollectors).toContain('host');
  }, 60_000);

  it('processor: config and sources, the same keys and env vars as the agent for the same concepts', () => {
    const r = cli(['processor', '--print-config', '--client-id', 'c1'], {
      STRATA_SAMPLES_TOPIC: 't2',
      KAFKA_BROKERS: 'k2:9092',
    });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.config.kafka).toMatchObject({ samplesTopic: 't2', brokers: ['k2:9092'], clientId: 'c1' });
    expect(out.sources).toMatchObject({
      'kafka.samplesTopic': 'env STRATA_SAMPLES_TOPIC',
      'kafka.brokers': 'env KAFKA_BROKERS',
      'kafka.clientId': 'flag --client-id',
    });
  }, 60_000);

  it('bench: the resolved run settings, the token hidden, the preset and the stack named as sources', () => {
    const r = cli(
      ['bench', '--print-config', '--preset', 'felter', '--layers', 'native', '--influx-token', 's3cret'],
      {
        INFLUX_URL: 'http://i:8086',
        DOCKER_HOST: 'unix:///d.sock',
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('s3cret');
    const out = JSON.parse(r.stdout);
    expect(out.config).toMatchObject({ layers: ['native'], influxUrl: 'http://i:8086', influxToken: '***' });
    expect(out.config.workloads).toContain('oltp');
    expect(out.sources).toMatchObject({
      layers: 'flag --layers',
      workloads: 'flag --preset felter',
      influxUrl: 'env INFLUX_URL',
      dockerHost: 'env DOCKER_HOST',
    });
  }, 60_000);

  it('stack up: the resolved ports and paths, nothing started', () => {
    const r = cli(['stack', 'up', '--print-config', '--kafka-port', '29092'], {
      STRATA_INFLUX_PORT: '28086',
    });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.config.kafka.port).toBe(29092);
    expect(out.config.influxdb.port).toBe(28086);
    expect(out.sources).toMatchObject({
      'kafka.port': 'flag --kafka-port',
      'influxdb.port': 'env STRATA_INFLUX_PORT',
    });
    expect(r.stderr).not.toContain('starting');
  }, 60_000);

  it('run: both sides', () => {
    const r = cli(['run', '--print-config', '--influx-url', 'http://i:8086', '--influx-bucket', 'b2']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.agent.config.interval).toBe(1000);
    expect(out.processor.config.influxdb).toMatchObject({ url: 'http://i:8086', bucket: 'b2' });
    expect(out.processor.sources['influxdb.bucket']).toBe('flag --influx-bucket');
  }, 60_000);
});
