// `strata processor` as a user runs it: --help, and a missing server named with the address it
// tried and how to start one (exit code 1), config errors with exit code 2.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { freePort } from '../../stack/index.ts';
import { ROOT } from './processor.helpers.ts';

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

  it('names Kafka, its address and how to start it when no broker answers', async () => {
    const port = await freePort();
    const r = strata(['--brokers', `127.0.0.1:${port}`, '--influx-url', inject('influxUrl')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Kafka is not reachable at 127.0.0.1:${port}`);
    expect(r.stderr).toContain('KAFKA_BROKERS / --brokers');
  });

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
