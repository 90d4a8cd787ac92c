// `strata run --influx-url URL` with nothing listening at URL: the error names the server, the
// flag and how to start the local stack.
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../stack/index.ts';
import { ROOT } from './processor.helpers.ts';

describe('strata run --influx-url with InfluxDB down', () => {
  it('names the address and suggests --influx-url <url>, exit code 1', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const r = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'bin/strata.js'),
        'run',
        '--influx-url',
        url,
        '--collectors',
        'host',
        '--output',
        'ndjson',
        '--ticks',
        '1',
      ],
      {
        cwd: ROOT,
        env: { ...process.env, INFLUX_URL: '', KAFKA_BROKERS: '' },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`InfluxDB is not reachable at ${url}`);
    expect(r.stderr).toContain('--influx-url <url>');
    expect(r.stderr).toContain('npx strata stack up');
    expect(r.stderr).not.toContain('deprecated');
    expect(r.stdout).toBe('');
  });
});

describe('strata run --influx-url at a server that is not InfluxDB', () => {
  it('is refused at start: a 404 on /ping, no X-Influxdb-Version header; exit 2, one line', async () => {
    // Any web server: it answers, but not as InfluxDB (which answers /ping with 204 and its version).
    const server = http.createServer((_req, res) => {
      res.statusCode = 404;
      res.end('not found');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const child = spawn(
      process.execPath,
      [
        path.join(ROOT, 'bin/strata.js'),
        'run',
        '--influx-url',
        url,
        '--collectors',
        'host',
        '--output',
        'ndjson',
        '--ticks',
        '1',
      ],
      { cwd: ROOT, env: { ...process.env, STRATA_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    server.close();
    expect(code).toBe(2);
    expect(stderr).toBe(
      `strata: the server at ${url} is not InfluxDB: GET /ping answered 404 without an X-Influxdb-Version header ` +
        '(InfluxDB answers 204 with one). Point INFLUX_URL / --influx-url at InfluxDB (`npx strata stack up` starts one on http://127.0.0.1:18086).\n',
    );
    expect(stdout).toBe('');
  });
});
