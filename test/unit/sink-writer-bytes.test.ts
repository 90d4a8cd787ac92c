// The writer keeps bodies as UTF-8 bytes from the encoder to the socket, joins queued bodies into
// one request, and gzips only when asked to for a loopback server. Requests are captured by a
// plain HTTP server on 127.0.0.1 that answers 204 like InfluxDB's /write.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfluxV2Config } from '../../sinks/influxdb-v2/config.ts';
import { createInfluxV2Sink } from '../../sinks/influxdb-v2/index.ts';
import { isLoopbackUrl, joinLines, LineWriter } from '../../sinks/influxdb-v2/writer.ts';
import { encodePoint } from '../../sinks/line-protocol.ts';
import type { Point } from '../../sinks/point.ts';

const T = 1_732_250_400_000;

describe('isLoopbackUrl', () => {
  it('knows 127.0.0.0/8, ::1 and localhost, and nothing else', () => {
    for (const u of [
      'http://127.0.0.1:8086',
      'http://127.1.2.3',
      'https://localhost:8086/',
      'http://LOCALHOST',
      'http://influx.localhost:8086',
      'http://[::1]:8086',
    ]) {
      expect([u, isLoopbackUrl(u)]).toEqual([u, true]);
    }
    for (const u of [
      'http://10.0.0.1:8086',
      'http://influxdb:8086',
      'http://128.0.0.1',
      'http://127.0.0.1.example.com',
      'http://[::2]:8086',
      'not a url',
    ]) {
      expect([u, isLoopbackUrl(u)]).toEqual([u, false]);
    }
  });
});

describe('joinLines', () => {
  it('joins bodies with one newline between them', () => {
    const parts = ['a=1', 'b,t=é x=2', 'c y="z"'].map((s) => Buffer.from(s, 'utf8'));
    const size = parts.reduce((n, b) => n + b.length + 1, 0) - 1;
    expect(joinLines(parts, size).toString('utf8')).toBe('a=1\nb,t=é x=2\nc y="z"');
    expect(joinLines(parts.slice(0, 1), parts[0]!.length)).toEqual(parts[0]);
  });
});

describe('LineWriter requests', () => {
  const requests: { encoding: string | undefined; body: Buffer }[] = [];
  let server: http.Server;
  let url = '';
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests.push({ encoding: req.headers['content-encoding'], body: Buffer.concat(chunks) });
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  const points = (n: number, from = 0): Point[] =>
    Array.from({ length: n }, (_, i) => ({
      measurement: 'strata_container',
      tags: { node: 'n1', name: `ünï ${from + i}` },
      fields: { cpu_cores: (from + i) / 7, note: `say "hi" \\ ${i}\nnext`, ok: true },
      timeMs: T + from + i,
    }));
  const lines = (ps: Point[]) => ps.map((p) => encodePoint(p)).join('\n');

  it('gzips nothing for a loopback URL by default, and sends the encoded bytes as they are', async () => {
    requests.length = 0;
    const sink = createInfluxV2Sink(InfluxV2Config.parse({ url, gzipThreshold: 0 }));
    expect(sink.gzip).toBe(false);
    const ps = points(50);
    expect(await sink.write(ps)).toEqual({ written: 50, rejected: 0, unencodable: 0 });
    await sink.close();
    expect(requests).toHaveLength(1);
    expect(requests[0]?.encoding).toBeUndefined();
    expect(requests[0]?.body.toString('utf8')).toBe(lines(ps));
  });

  it('gzips bodies above gzipThreshold with gzipLoopback, and always for other hosts', async () => {
    requests.length = 0;
    const sink = createInfluxV2Sink(InfluxV2Config.parse({ url, gzipThreshold: 100, gzipLoopback: true }));
    expect(sink.gzip).toBe(true);
    const small = points(1);
    const big = points(50, 1);
    await sink.write(small);
    await sink.write(big);
    await sink.close();
    expect(requests.map((r) => r.encoding)).toEqual([undefined, 'gzip']);
    expect(requests[0]?.body.toString('utf8')).toBe(lines(small));
    expect(gunzipSync(requests[1]!.body).toString('utf8')).toBe(lines(big));
    const remote = createInfluxV2Sink(InfluxV2Config.parse({ url: 'http://influxdb:8086' }));
    expect(remote.gzip).toBe(true);
  });

  it('joins bodies queued while a request is in flight into one request, line for line', async () => {
    requests.length = 0;
    const sink = new LineWriter({
      sink: 'test',
      url,
      path: '/write?db=x&precision=ms',
      batchSize: 5000,
      maxBatchBytes: 8 * 1024 * 1024,
      flushIntervalMs: 0,
      maxInFlight: 1,
      gzipThreshold: 1e9,
      gzipLevel: 3,
      gzipLoopback: false,
      timeoutMs: 5000,
      minRetryDelayMs: 10,
      maxRetryDelayMs: 100,
      maxRetryTimeMs: 1000,
      maxBufferLines: 10_000,
      pingPath: '/ping',
    });
    const a = points(3);
    const b = points(4, 3);
    const c = points(5, 7);
    // The first goes out at once; the next two wait for the slot and leave together.
    const done = Promise.all([sink.write(a), sink.write(b), sink.write(c)]);
    expect((await done).map((r) => r.written)).toEqual([3, 4, 5]);
    await sink.close();
    expect(requests.map((r) => r.body.toString('utf8'))).toEqual([lines(a), `${lines(b)}\n${lines(c)}`]);
  });
});

describe('LineWriter.encoder (a batch encoded one message at a time)', () => {
  const sink = createInfluxV2Sink(InfluxV2Config.parse({ url: 'http://127.0.0.1:9', batchSize: 7 }));
  const pts = (n: number, from: number): Point[] =>
    Array.from({ length: n }, (_, i) => ({
      measurement: 'strata_host',
      tags: { node: `n ${from + i}` },
      fields: (i % 5 === 4
        ? { bad: Number.NaN }
        : { v: from + i, nan: Number.NaN, s: 'x"y' }) as Point['fields'],
      timeMs: T + from + i,
    }));

  it('gives what encode() gives for all the points at once, twice in a row', () => {
    for (let round = 0; round < 2; round++) {
      const pieces = [pts(3, 0), [], pts(11, 3), pts(1, 14), pts(9, 15)];
      const enc = sink.encoder();
      for (const p of pieces) enc.add(p);
      const got = enc.finish();
      const want = sink.encode(pieces.flat());
      expect(got.lines).toBe(want.lines);
      expect(got.unencodable).toBe(want.unencodable);
      expect(got.unencodable).toBe(3); // i % 5 === 4 within each piece
      expect(got.segments.map((s) => s.lines)).toEqual(want.segments.map((s) => s.lines));
      expect(got.segments.map((s) => s.body.toString('utf8'))).toEqual(
        want.segments.map((s) => s.body.toString('utf8')),
      );
      expect(() => enc.add(pts(1, 0))).toThrow(/after finish/);
    }
  });
});
