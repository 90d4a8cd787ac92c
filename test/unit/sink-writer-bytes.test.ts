// The writer keeps bodies as UTF-8 bytes from the encoder to the socket, joins queued bodies into
// one request, and gzips only when asked to for a loopback server. Requests are captured by a
// plain HTTP server on 127.0.0.1 that answers 204 like InfluxDB's /write.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry } from '../../lib/metrics.ts';
import type { Point } from '../../schemas/point.ts';
import { InfluxConfig } from '../../sinks/influxdb/config.ts';
import { encodePoint } from '../../sinks/influxdb/line-protocol.ts';
import { createInfluxV2Sink } from '../../sinks/influxdb/v2.ts';
import { classify, isLoopbackUrl, joinLines, LineWriter } from '../../sinks/influxdb/writer.ts';

const T = 1_732_250_400_000;

/** A plain HTTP server on 127.0.0.1 that hands each whole request body to `answer`. */
async function captureServer(
  answer: (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => void,
): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(req, Buffer.concat(chunks), res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

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
    ({ server, url } = await captureServer((req, body, res) => {
      requests.push({ encoding: req.headers['content-encoding'], body });
      res.statusCode = 204;
      res.end();
    }));
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
    const sink = createInfluxV2Sink(InfluxConfig.parse({ url, gzipThreshold: 0 }));
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
    const sink = createInfluxV2Sink(InfluxConfig.parse({ url, gzipThreshold: 100, gzipLoopback: true }));
    expect(sink.gzip).toBe(true);
    const small = points(1);
    const big = points(50, 1);
    await sink.write(small);
    await sink.write(big);
    await sink.close();
    expect(requests.map((r) => r.encoding)).toEqual([undefined, 'gzip']);
    expect(requests[0]?.body.toString('utf8')).toBe(lines(small));
    expect(gunzipSync(requests[1]!.body).toString('utf8')).toBe(lines(big));
    const remote = createInfluxV2Sink(InfluxConfig.parse({ url: 'http://influxdb:8086' }));
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
  const sink = createInfluxV2Sink(InfluxConfig.parse({ url: 'http://127.0.0.1:9', batchSize: 7 }));
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

describe('LineWriter HTTP', () => {
  /** What the server saw, and how it answers the next requests (204 when the script runs out). */
  const seen: { url: string | undefined; auth: string | undefined; body: string }[] = [];
  let script: ((res: http.ServerResponse) => void)[] = [];
  let server: http.Server;
  let base = '';
  beforeAll(async () => {
    ({ server, url: base } = await captureServer((req, body, res) => {
      seen.push({ url: req.url, auth: req.headers.authorization, body: body.toString() });
      const answer = script.shift();
      if (answer) answer(res);
      else {
        res.statusCode = 204;
        res.end();
      }
    }));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const pts = (n: number): Point[] =>
    Array.from({ length: n }, (_, i) => ({
      measurement: 'strata_host',
      tags: { node: 'n1' },
      fields: { v: i + 0.5 },
      timeMs: T + i,
    }));
  const writer = (url: string, o: { token?: string; timeoutMs?: number; maxRetryTimeMs?: number } = {}) =>
    new LineWriter({
      sink: 'test',
      url,
      path: '/api/v2/write?org=o&bucket=b&precision=ms',
      token: o.token,
      batchSize: 5000,
      maxBatchBytes: 8 * 1024 * 1024,
      flushIntervalMs: 0,
      maxInFlight: 2,
      gzipThreshold: 1e9,
      gzipLevel: 3,
      gzipLoopback: false,
      timeoutMs: o.timeoutMs ?? 5000,
      minRetryDelayMs: 10,
      maxRetryDelayMs: 50,
      maxRetryTimeMs: o.maxRetryTimeMs ?? 2000,
      maxBufferLines: 10_000,
      pingPath: '/ping',
    });

  it('posts under the URL’s path with the token, and retries a 503 until it is stored', async () => {
    seen.length = 0;
    script = [
      (res) => {
        res.statusCode = 503;
        res.setHeader('content-type', 'application/json');
        res.end('{"code":"unavailable","message":"overloaded"}');
      },
    ];
    const sink = writer(`${base}/influx/`, { token: 's3cret' });
    expect(await sink.write(pts(3))).toEqual({ written: 3, rejected: 0, unencodable: 0 });
    await sink.close();
    expect(seen).toHaveLength(2);
    expect(seen[1]).toEqual({
      url: '/influx/api/v2/write?org=o&bucket=b&precision=ms',
      auth: 'Token s3cret',
      body: pts(3)
        .map((p) => encodePoint(p))
        .join('\n'),
    });
    expect(seen[0]?.body).toBe(seen[1]?.body);
  });

  it('fails with InfluxDB’s own words for an error status, and as a timeout when nothing answers', async () => {
    script = Array.from({ length: 50 }, () => (res: http.ServerResponse) => {
      res.statusCode = 401;
      res.setHeader('content-type', 'application/json');
      res.end('{"code":"unauthorized","message":"unauthorized access"}');
    });
    const denied = writer(base, { maxRetryTimeMs: 100 });
    const err = await denied.write(pts(1)).catch((e: Error) => e);
    expect(String(err)).toMatch(/unauthorized access/);
    expect(classify((err as Error).cause).kind).toBe('auth');
    await denied.close();

    script = Array.from({ length: 50 }, () => () => {}); // never answers
    const silent = writer(base, { timeoutMs: 100, maxRetryTimeMs: 150 });
    const late = await silent.write(pts(1)).catch((e: Error) => e);
    expect(classify((late as Error).cause).kind).toBe('timeout');
    await silent.close();
    script = [];
  });

  it('reuses the memory of bodies given back once written, and only then; /metrics counts both', async () => {
    const bodies = async (source: string) => {
      const m = await registry.getSingleMetric('strata_sink_body_buffers_total')?.get();
      return m?.values.find((v) => v.labels.sink === 'test' && v.labels.source === source)?.value ?? 0;
    };
    const [allocated0, reused0] = [await bodies('allocated'), await bodies('reused')];
    const sink = writer(base);
    const first = sink.encode(pts(100));
    await sink.write(first);
    const kept = sink.encode(pts(100));
    expect(kept.segments[0]?.body.buffer).not.toBe(first.segments[0]?.body.buffer);
    sink.release(first);
    const next = sink.encode(pts(100));
    expect(next.segments[0]?.body.buffer).toBe(first.segments[0]?.body.buffer);
    expect((await bodies('allocated')) - allocated0).toBe(2); // first, kept
    expect((await bodies('reused')) - reused0).toBe(1); // next
    await sink.close();
  });
});
