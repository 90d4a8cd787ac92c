// `strata stack` as a person runs it: a taken port fails fast and says which port and which
// service; a private InfluxDB started through the API stops and starts again on the same data.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, influxQuery, startInfluxdb } from '../../stack/index.ts';
import { pidAlive, pidCommandLine } from '../../stack/util.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

/** Runs bin/strata.js; resolves with exit code and output whatever the code. */
async function strata(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, ['bin/strata.js', ...args], {
    cwd: ROOT,
    timeout: 120_000,
    env: { ...process.env, ...env },
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
}
const tmp = mkdtempSync(path.join(os.tmpdir(), 'strata-stack-cli-'));

afterAll(async () => {
  // The lifecycle test starts a detached influxd; stop it even when an assertion failed.
  await strata(['stack', 'down', '--data-dir', path.join(tmp, 'lifecycle')]);
  rmSync(tmp, { recursive: true, force: true });
});

describe('strata stack up', () => {
  it('exits non-zero naming the port and the service when the port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as net.AddressInfo).port;
    const rpc = await freePort();
    try {
      const result = await run(
        process.execPath,
        [
          'bin/strata.js',
          'stack',
          'up',
          '--only',
          'influxdb',
          '--influx-port',
          String(taken),
          '--influx-rpc-port',
          String(rpc),
          '--data-dir',
          path.join(tmp, 'stack'),
        ],
        { cwd: path.resolve(import.meta.dirname, '../..'), timeout: 60_000 },
      ).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => err,
      );
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(
        `port ${taken} for influxdb is in use (by another process); choose another with --influx-port or STRATA_INFLUX_PORT`,
      );
    } finally {
      blocker.close();
    }
  });
});

describe('strata stack up, status, down', () => {
  it('starts once, reports an already running service, shows it in status and stops only it', async () => {
    const dataDir = path.join(tmp, 'lifecycle');
    const flags = ['--only', 'influxdb', '--data-dir', dataDir];
    const ports = ['--influx-port', String(await freePort()), '--influx-rpc-port', String(await freePort())];

    const up = await strata(['stack', 'up', ...flags, ...ports]);
    expect(up.code, up.stderr).toBe(0);
    const url = /^export INFLUX_URL=(\S+)$/m.exec(up.stdout)?.[1];
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${url}/ping`)).status).toBe(204);

    const again = await strata(['stack', 'up', ...flags, ...ports]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/influxdb: already running at http:\/\/127\.0\.0\.1:\d+ \(pid \d+\)/);

    const status = await strata(['stack', 'status', ...flags]);
    expect(status.code).toBe(0);
    const pid = Number(/influxdb\s+ready\s+\S+\s+pid (\d+)/.exec(status.stderr)?.[1]);
    expect(pidCommandLine(pid)).toContain('influxd');

    const down = await strata(['stack', 'down', ...flags]);
    expect(down.code).toBe(0);
    expect(down.stderr).toContain(`influxdb: stopping pid ${pid}`);
    expect(pidAlive(pid)).toBe(false);
    const after = await strata(['stack', 'status', ...flags]);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('not running or not answering: influxdb');
  });

  it('names a missing prerequisite and how to install it', async () => {
    // An empty cache and a PATH without go: the influxd build cannot start.
    const result = await strata(
      [
        'stack',
        'up',
        '--only',
        'influxdb',
        '--data-dir',
        path.join(tmp, 'noprereq'),
        '--cache-dir',
        path.join(tmp, 'empty-cache'),
        '--influx-port',
        String(await freePort()),
        '--influx-rpc-port',
        String(await freePort()),
      ],
      { PATH: '/nonexistent' },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('go is needed to build influxd');
    expect(result.stderr).toContain('install it with: apt-get install -y golang-go');
  });
});

describe('startInfluxdb', () => {
  it('keeps its data across stop and start on the same data dir', async () => {
    const options = { port: await freePort(), rpcPort: await freePort(), dataDir: path.join(tmp, 'influx') };
    const first = await startInfluxdb(options);
    try {
      await fetch(`${first.url}/write?db=${first.database}&precision=s`, {
        method: 'POST',
        body: 'restart_probe,run=a value=42i 1700000000',
      }).then((r) => expect(r.status).toBe(204));
    } finally {
      await first.stop();
    }
    expect(
      await fetch(`${first.url}/ping`).then(
        () => 'answering',
        () => 'down',
      ),
    ).toBe('down');

    const second = await startInfluxdb(options);
    try {
      const res = await influxQuery(second.url, 'SELECT value FROM restart_probe', {
        db: second.database,
        epoch: 's',
      });
      expect(res.results?.[0]?.series?.[0]?.values).toEqual([[1700000000, 42]]);
    } finally {
      await second.stop();
    }
  });
});
