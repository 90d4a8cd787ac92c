// What the InfluxDB sink's log line tells a person to do when a write gets a 404 (writeHint in
// sinks/influxdb/writer.ts), and the status line of `strata run` (run/status.ts) for the same
// answers. A 404 is a missing database or bucket only when InfluxDB says so; InfluxDB's own
// "404 page not found" is a URL path that leads nowhere; a 404 without X-Influxdb-Version is a
// server that is not InfluxDB. The answers are as captured from the stack's InfluxDB 1.8.10
// (`curl -si -XPOST ...`) and from a plain web server; the 2.x one is the form of its v2 API.
import { HttpError } from '@influxdata/influxdb-client';
import { describe, expect, it } from 'vitest';
import { ConnectionError } from '../../lib/errors.ts';
import { explainWriteError } from '../../run/status.ts';
import { classify, writeHint } from '../../sinks/influxdb/writer.ts';

const influxHeaders = { 'x-influxdb-build': 'OSS', 'x-influxdb-version': 'unknown' };

// POST http://127.0.0.1:18086/api/v2/write?bucket=nope_db (InfluxDB 1.8.10).
const missingDatabase = new HttpError(
  404,
  'Not Found',
  '{"error":"database not found: \\"nope_db\\""}',
  undefined,
  'application/json',
  undefined,
  {
    ...influxHeaders,
    'content-type': 'application/json',
    'x-influxdb-error': 'database not found: "nope_db"',
  },
);
// InfluxDB 2.x, a bucket that does not exist.
const missingBucket = new HttpError(
  404,
  'Not Found',
  '{"code":"not found","message":"bucket \\"nope\\" not found"}',
  undefined,
  'application/json',
  undefined,
  { 'content-type': 'application/json; charset=utf-8', 'x-influxdb-version': 'v2.7.10' },
);
// POST http://127.0.0.1:18086/influx/api/v2/write?bucket=strata (InfluxDB 1.8.10, a path prefix it does not have).
const noSuchPath = new HttpError(
  404,
  'Not Found',
  '404 page not found\n',
  undefined,
  'text/plain; charset=utf-8',
  undefined,
  {
    ...influxHeaders,
    'content-type': 'text/plain; charset=utf-8',
    'x-content-type-options': 'nosniff',
  },
);
// A web server that is not InfluxDB.
const webServer = new HttpError(404, 'Not Found', '<html>nginx</html>', undefined, 'text/html', undefined, {
  'content-type': 'text/html',
});

const hint = (err: HttpError, url = 'http://127.0.0.1:18086') =>
  writeHint(classify(err).kind, err, url, '/api/v2/write');

describe("the InfluxDB sink's hint for a 404", () => {
  it('a missing database names the URL, what InfluxDB said and how to create it', () => {
    expect(hint(missingDatabase)).toBe(
      'InfluxDB at http://127.0.0.1:18086 says database not found: "nope_db": create it ' +
        '(InfluxQL: CREATE DATABASE <db>; 2.x: influx bucket create) or fix INFLUX_BUCKET / INFLUX_DATABASE (--influx-bucket / --influx-database)',
    );
  });

  it('a missing 2.x bucket is said the same way', () => {
    expect(hint(missingBucket)).toContain('says bucket "nope" not found: create it');
  });

  it("InfluxDB's own 404 page is a path that leads nowhere, not a missing database", () => {
    const h = hint(noSuchPath, 'http://127.0.0.1:18086/influx');
    expect(h).toBe(
      "InfluxDB at http://127.0.0.1:18086/influx has no /api/v2/write (404): the URL's path leads nowhere; " +
        "set INFLUX_URL / --influx-url to the server's base URL (e.g. http://host:8086)",
    );
    expect(h).not.toContain('database');
  });

  it('a server that is not InfluxDB is named as such, with its URL, credentials removed', () => {
    const h = hint(webServer, 'http://user:secret@web.example:8080');
    expect(h).toBe(
      'the server at http://user:***@web.example:8080 answered 404 to POST /api/v2/write and is not InfluxDB ' +
        '(no X-Influxdb-Version header): point INFLUX_URL / --influx-url at InfluxDB',
    );
  });
});

describe("strata run's status line for a 404", () => {
  it("InfluxDB's own 404 page is a path in --influx-url, not a missing database", () => {
    const wrapped = new ConnectionError(
      'InfluxDB (influxdb-v2) at http://x: write failed after 3 attempt(s)',
      {
        cause: noSuchPath,
      },
    );
    expect(explainWriteError(wrapped)).toBe(
      'HTTP 404 from InfluxDB: no such path (404 page not found): check the path in --influx-url',
    );
  });

  it('a missing bucket is still said as one', () => {
    expect(explainWriteError(missingBucket)).toBe(
      'HTTP 404: bucket "nope" not found: create the database/bucket, or pass --influx-bucket / --influx-database',
    );
  });
});
