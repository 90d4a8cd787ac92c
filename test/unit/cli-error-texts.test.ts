// Each error text `strata run` shows a person: the status line's reason for failed InfluxDB
// writes (from the answers a real InfluxDB 1.8 and a plain web server give) and the one line of an
// unreachable Kafka, said at once (brokers probed before kafkajs retries anything).
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { HttpError } from '@influxdata/influxdb-client';
import { describe, expect, it } from 'vitest';
import { ConnectionError } from '../../lib/errors.ts';
import { brokerSourceOf, brokersUnreachable, probeBrokers } from '../../lib/kafka/client.ts';
import { prettyLine } from '../../lib/log.ts';
import { explainWriteError, SinkHealth } from '../../run/status.ts';

// What InfluxDB 1.8.10 (the stack's) answers to POST /api/v2/write?bucket=nope_db, as captured.
const influx404 = new HttpError(
  404,
  'Not Found',
  '{"error":"database not found: \\"nope_db\\""}',
  undefined,
  'application/json',
  undefined,
  {
    'content-type': 'application/json',
    'x-influxdb-build': 'OSS',
    'x-influxdb-error': 'database not found: "nope_db"',
    'x-influxdb-version': 'unknown',
  },
);

describe('why an InfluxDB write failed', () => {
  it('a 404 from InfluxDB is a missing database/bucket, in its own words', () => {
    const wrapped = new ConnectionError(
      'InfluxDB (influxdb-v2) at http://x: write failed after 3 attempt(s)',
      {
        cause: influx404,
      },
    );
    expect(explainWriteError(wrapped)).toBe(
      'HTTP 404: database not found: "nope_db": create the database/bucket, or pass --influx-bucket / --influx-database',
    );
  });

  it('a 404 without X-Influxdb-Version is a server that is not InfluxDB, not a missing database', () => {
    const web = new HttpError(404, 'Not Found', '<html>nginx</html>', undefined, 'text/html', undefined, {
      'content-type': 'text/html',
    });
    expect(explainWriteError(web)).toBe(
      'HTTP 404 from a server that is not InfluxDB (no X-Influxdb-Version header): check --influx-url',
    );
    expect(explainWriteError(web)).not.toContain('database');
  });

  it('401 names the credentials to check', () => {
    const auth = new HttpError(
      401,
      'Unauthorized',
      '{"error":"authorization failed"}',
      undefined,
      'application/json',
      undefined,
      {
        'x-influxdb-version': '1.8.10',
      },
    );
    expect(explainWriteError(auth)).toBe(
      'HTTP 401: authorization failed: check --influx-token (InfluxDB 1.x: INFLUX_USERNAME, INFLUX_PASSWORD)',
    );
  });

  it('a refused connection says how to start one', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(explainWriteError(new ConnectionError('write failed', { cause: refused }))).toBe(
      'connection refused: is InfluxDB running? (`strata stack up` starts one)',
    );
  });

  it('the status line puts the failure first, and clears it once a write succeeds', () => {
    const h = new SinkHealth('InfluxDB http://127.0.0.1:18086');
    h.ok(10);
    expect(h.line()).toBe('InfluxDB http://127.0.0.1:18086: 10 points written');
    h.failed(influx404, 1_000);
    h.failed(influx404, 2_000);
    h.pending = 1;
    expect(h.failing).toBe(true);
    expect(h.line(4_000)).toBe(
      'InfluxDB http://127.0.0.1:18086: WRITES FAILING for 3 s (2 failed): HTTP 404: database not found: "nope_db": ' +
        'create the database/bucket, or pass --influx-bucket / --influx-database; 10 points written, 1 writes pending',
    );
    h.ok(5);
    expect(h.failing).toBe(false);
  });
});

describe('Kafka unreachable at the start of strata run', () => {
  // Port 1 on loopback: nothing listens, every connection is refused at once.
  const run = (args: string[], env: Record<string, string>) =>
    spawnSync(
      process.execPath,
      [path.resolve('bin/strata.js'), 'run', '--collectors', 'host', '--output', 'ndjson', ...args],
      {
        env: { ...process.env, KAFKA_BROKERS: '', STRATA_LOG_FORMAT: 'json', ...env },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );

  it('one line and nothing else: the brokers, where the list came from (the flag), how to start the local one', () => {
    const r = run(['--brokers', '127.0.0.1:1'], {});
    expect(r.status, r.stderr).toBe(1);
    // No kafkajs retries before it: its connection errors never reach the log.
    expect(r.stderr).toBe(
      'strata: Kafka is not reachable at 127.0.0.1:1 (brokers from flag --brokers; connect ECONNREFUSED 127.0.0.1:1). ' +
        'Start the local stack with `strata stack up`, or pass --brokers host:port (env KAFKA_BROKERS) of running brokers.\n',
    );
  }, 60_000);

  it('a bare --brokers names env KAFKA_BROKERS as where the list came from', () => {
    const r = run(['--brokers'], { KAFKA_BROKERS: '127.0.0.1:1' });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain('(brokers from env KAFKA_BROKERS; connect ECONNREFUSED 127.0.0.1:1)');
    expect(r.stderr).not.toContain('kafkajs');
  }, 60_000);
});

describe('brokers probed at start (lib/kafka/client.ts)', () => {
  it('reachable when any one accepts; else why the first did not', async () => {
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const open = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    try {
      expect(await probeBrokers(['127.0.0.1:1', open], 1_000)).toEqual({
        reachable: true,
        why: 'connect ECONNREFUSED 127.0.0.1:1',
      });
      expect(await probeBrokers(['127.0.0.1:1'], 1_000)).toEqual({
        reachable: false,
        why: 'connect ECONNREFUSED 127.0.0.1:1',
      });
      expect((await probeBrokers(['no-port'], 1_000)).why).toBe('"no-port" is not host:port');
    } finally {
      server.close();
    }
  });

  it('the config file or the default is named when neither flag nor env gave the list', () => {
    expect(brokerSourceOf(new Map([['kafka.brokers', 'config file /etc/strata/strata.yaml']]))).toBe(
      'config file /etc/strata/strata.yaml',
    );
    expect(brokersUnreachable(['127.0.0.1:19092'], brokerSourceOf(new Map()), 'x')).toContain(
      "(brokers from the default, the local stack's; x)",
    );
  });
});

describe('agent --once with Kafka unreachable', () => {
  it('retries for the shutdown timeout, then exits 1 saying the tick is lost and how a spill file keeps it', () => {
    // Port 1 on loopback: nothing listens, every connection is refused at once.
    const r = spawnSync(
      process.execPath,
      [
        path.resolve('bin/strata.js'),
        'agent',
        '--once',
        '--brokers',
        '127.0.0.1:1',
        '--collectors',
        'host',
        '--shutdown-timeout',
        '1s',
      ],
      { env: { ...process.env, STRATA_LOG_LEVEL: 'silent' }, encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toBe(
      'strata: agent --once: the tick was not sent to kafka 127.0.0.1:1 topic strata.samples (plaintext) ' +
        'after retrying for 1 s (--shutdown-timeout); it is lost; --spill-file <path> keeps unsent ticks for the next run\n',
    );
  }, 60_000);
});

describe('logs on a terminal', () => {
  it('a pino line as one readable line: time, level, component, message, key=value', () => {
    // As the processor logged it with Kafka down (kafkajs folded, lib/kafka/client.ts).
    const json =
      '{"level":40,"time":"2026-12-07T12:17:33.837Z","service":"strata","component":"kafkajs","timestamp":"2026-12-07T12:17:33.836Z",' +
      '"logger":"kafkajs","broker":"127.0.0.1:1","clientId":"strata-processor","note":"further connection errors for a minute are logged at debug",' +
      '"msg":"Connection error: connect ECONNREFUSED 127.0.0.1:1"}';
    expect(prettyLine(json)).toBe(
      '12:17:33 WARN  kafkajs: Connection error: connect ECONNREFUSED 127.0.0.1:1  broker=127.0.0.1:1 clientId=strata-processor\n',
    );
  });
});
