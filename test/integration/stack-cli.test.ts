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

const run = promisify(execFile);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'strata-stack-cli-'));

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

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
