// `strata run --influx-url URL` with nothing listening at URL: the error names the server, the
// flag and how to start the local stack.
import { spawnSync } from 'node:child_process';
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
