// `strata processor` as a user runs it: --help, a missing InfluxDB named with the address it tried
// and how to start one (exit code 1), a missing Kafka said at once and then waited for, config
// errors with exit code 2.
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { describe, expect, inject, it } from 'vitest';
import { freePort } from '../../stack/index.ts';
import { ROOT } from './processor.helpers.ts';

const { Kafka } = kafkajs;

function strata(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/strata.js'), 'processor', ...args], {
    cwd: ROOT,
    env: { ...process.env, KAFKA_BROKERS: '', INFLUX_URL: '', STRATA_METRICS_LISTEN: '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('strata processor CLI', () => {
  it('--help lists the main flags with their env vars', () => {
    const r = strata(['--help']);
    expect(r.code).toBe(0);
    for (const s of [
      '--brokers',
      'KAFKA_BROKERS',
      '--influx-url',
      'INFLUX_URL',
      '--group-id',
      'STRATA_GROUP_ID',
      '--config',
    ]) {
      expect(r.stdout).toContain(s);
    }
  });

  it('names InfluxDB, its address and how to start it when nothing listens there', async () => {
    const port = await freePort();
    const r = strata(['--influx-url', `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`InfluxDB (influxdb-v2) is not reachable at http://127.0.0.1:${port}`);
    expect(r.stderr).toContain('npx strata stack up');
  });

  it('says at once that no broker answers, naming where the list came from, then waits for Kafka', async () => {
    // The processor is pointed at a port where nothing listens yet; later a forwarder to the
    // stack's Kafka opens there (the bootstrap goes through it, then the advertised address).
    const port = await freePort();
    const [kafkaHost, kafkaPort] = inject('kafkaBrokers').split(',')[0]!.split(':') as [string, string];
    const child = spawn(
      process.execPath,
      [
        path.join(ROOT, 'bin/strata.js'),
        'processor',
        '--influx-url',
        inject('influxUrl'),
        '--group-id',
        `cli-wait-${Date.now()}`,
      ],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          KAFKA_BROKERS: `127.0.0.1:${port}`,
          STRATA_METRICS_LISTEN: '',
          STRATA_LOG_FORMAT: 'json',
        },
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const until = async (what: string) => {
      while (!stderr.includes(what)) {
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const sockets = new Set<net.Socket>();
    const forwarder = net.createServer((client) => {
      const upstream = net.connect(Number(kafkaPort), kafkaHost);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    try {
      await until('Waiting for it.');
      const first = stderr.split('\n').find((l) => l.includes('Kafka is not reachable'))!;
      expect(JSON.parse(first).msg).toBe(
        `Kafka is not reachable at 127.0.0.1:${port} (brokers from env KAFKA_BROKERS; connect ECONNREFUSED 127.0.0.1:${port}). ` +
          'Start the local stack with `strata stack up`, or pass --brokers host:port (env KAFKA_BROKERS) of running brokers. Waiting for it.',
      );
      // Said before kafkajs tried anything: none of its connection errors precede it.
      expect(stderr.slice(0, stderr.indexOf(first))).not.toContain('kafkajs');
      expect(child.exitCode).toBeNull();
      await new Promise<void>((r) => forwarder.listen(port, '127.0.0.1', r));
      await until('processor started');
      expect(stderr).toContain('Kafka is reachable; connecting');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      for (const s of sockets) s.destroy();
      forwarder.close();
    }
  }, 90_000);

  it('waits for a samples topic that does not exist yet instead of stopping, then consumes it', async () => {
    // Subscribing to a missing topic makes kafkajs throw UNKNOWN_TOPIC_OR_PARTITION: the processor
    // used to log "waiting for it to be created" and then exit with that error.
    const topic = `cli-missing-${Date.now()}`;
    const child = spawn(
      process.execPath,
      [
        path.join(ROOT, 'bin/strata.js'),
        'processor',
        '--influx-url',
        inject('influxUrl'),
        '--brokers',
        inject('kafkaBrokers'),
        '--samples-topic',
        topic,
        '--group-id',
        `${topic}-group`,
      ],
      { cwd: ROOT, env: { ...process.env, STRATA_METRICS_LISTEN: '', STRATA_LOG_FORMAT: 'json' } },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const until = async (what: string) => {
      while (!stderr.includes(what)) {
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const kafka = new Kafka({ clientId: 'cli-missing-topic', brokers: inject('kafkaBrokers').split(',') });
    const admin = kafka.admin();
    try {
      await until('samples topic does not exist yet');
      // A few polls of the topic list go by: still running, nothing thrown.
      await new Promise((r) => setTimeout(r, 2_000));
      expect(child.exitCode).toBeNull();
      expect(stderr).not.toContain('unexpected error');
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
      await until('processor started');
      expect(stderr).toContain('samples topic exists; subscribing');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await admin.disconnect();
    }
  }, 90_000);

  it('exits 2 on a config error, naming the key, the accepted values and the layer', () => {
    const r = strata([], { INFLUX_API: 'v3' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('processor.influxdb.api');
    expect(r.stderr).toContain('"v2", "v1"');
    expect(r.stderr).toContain('(set by env INFLUX_API)');
  });

  it('exits 2 on a bad flag value with one line naming the flag, the value and the accepted form', () => {
    const r = strata(['--influx-api', 'v3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('strata: --influx-api: expected one of v2, v1, got "v3"\n');
  });
});
