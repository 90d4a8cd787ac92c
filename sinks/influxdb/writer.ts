// The HTTP line-protocol writer behind both InfluxDB sinks (v2 API and v1 /write): it owns
// batching, gzip, retries and error accounting, and gives callers one exact promise per write().
//
// Why not the client's WriteApi: its writePoints()/flush() pair resolves or rejects per flush,
// but batches it cuts on its own (batchSize reached) swallow their errors, and failed lines go to
// an internal retry buffer that drops the oldest lines when full. The processor commits Kafka
// offsets only after InfluxDB acknowledged the points of those messages, so it needs "this set of
// points is stored" as a promise, and nothing dropped behind its back. So batching and retries are
// done here. The client's Transport checks the server at start; writes are POSTed with node:http
// because the Transport copies every body it is given (Buffer.from), and bodies live in memory
// recycled after each acknowledgement (body-pool.ts): both to keep ArrayBuffer allocations,
// which start V8's full collections, off the hot path. Failures are the client's HttpError and
// RequestTimedOutError, as from the Transport.
//
// Batching is adaptive (Nagle off): lines go out as soon as a request slot is free (low latency
// at low load); while `maxInFlight` requests are busy, new lines accumulate and leave as one larger
// request (up to `batchSize` lines) when a slot frees up (throughput at high load). With
// `flushIntervalMs` > 0 a lone small batch waits up to that long for company first.
import http from 'node:http';
import https from 'node:https';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { HttpError, InfluxDB, RequestTimedOutError, type Transport } from '@influxdata/influxdb-client';
import { ConfigError, ConnectionError, errorCode, errorMessage, StrataError } from '../../lib/errors.ts';
import { componentLogger, OnceLogger } from '../../lib/log.ts';
import { counter, gauge, histogram } from '../../lib/metrics.ts';
import { redactUrl } from '../../lib/redact.ts';
import type { Point } from '../../schemas/point.ts';
import type { EncodedPoints, EncodingSink, PointEncoder, RefusedLine, WriteResult } from '../types.ts';
import { BodyPool } from './body-pool.ts';
import { type EncodeStats, newEncodeStats, SegmentEncoder } from './line-protocol.ts';

/** What became of one request's lines; `refused` holds indexes into the request's lines. */
interface SendOutcome {
  written: number;
  rejected: number;
  refused: { index: number; line: string; error: string }[];
}

export interface WriterOptions {
  /** Sink name for metrics and logs (influxdb-v2, influxdb-v1). */
  sink: string;
  url: string;
  /** Request path with query (e.g. /api/v2/write?org=&bucket=&precision=ms). */
  path: string;
  token?: string;
  headers?: Record<string, string>;
  batchSize: number;
  maxBatchBytes: number;
  flushIntervalMs: number;
  maxInFlight: number;
  gzipThreshold: number;
  /** zlib level of gzipped bodies (1-9). */
  gzipLevel: number;
  /**
   * Gzip bodies also when the URL's host is loopback (127.0.0.0/8, ::1, localhost). Off: on the
   * same host compression only costs CPU (ours to compress, the server's to decompress).
   */
  gzipLoopback: boolean;
  timeoutMs: number;
  minRetryDelayMs: number;
  maxRetryDelayMs: number;
  maxRetryTimeMs: number;
  maxBufferLines: number;
  /** Where to send a ping to check the server at start (GET, expects 2xx). */
  pingPath: string;
}

const gzipAsync = promisify(gzip);

const errorsTotal = counter(
  'strata_sink_write_errors_total',
  'Failed write requests by sink and kind (bad_request, too_large, auth, not_found, rate_limited, server, network, timeout).',
  ['sink', 'kind'],
);
const pointsWritten = counter(
  'strata_sink_points_written_total',
  'Points (lines) acknowledged by the server.',
  ['sink'],
);
const pointsDropped = counter(
  'strata_sink_points_dropped_total',
  'Points not stored: unencodable (no fields, non-finite time), rejected (400/422 from the server), buffer_full.',
  ['sink', 'reason'],
);
const nonFiniteFields = counter(
  'strata_sink_nonfinite_fields_total',
  'Fields left out of a point because their value was NaN or Infinity.',
  ['sink'],
);
const requestSeconds = histogram(
  'strata_sink_write_request_duration_seconds',
  'Duration of one successful write request.',
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  ['sink'],
);
const bufferedLines = gauge('strata_sink_buffer_lines', 'Lines waiting for a request slot.', ['sink']);
const retriesTotal = counter('strata_sink_write_retries_total', 'Write requests retried.', ['sink']);
const bodyBuffers = counter(
  'strata_sink_body_buffers_total',
  'Request bodies by where their memory came from: reused (recycled after an acknowledged write) or allocated (new memory; a steady climb means more bodies are in flight than the pool keeps).',
  ['sink', 'source'],
);

interface Ticket {
  /** Requests in flight carrying lines of this write. */
  pending: number;
  /** Segments of this write still queued. */
  queued: number;
  sealed: boolean;
  written: number;
  rejected: number;
  unencodable: number;
  refused: RefusedLine[];
  error?: Error;
  resolve(r: WriteResult): void;
  reject(e: Error): void;
}

interface Chunk {
  body: Buffer;
  /** The body was joined from several segments for this request (given back when it settles). */
  joined: boolean;
  lines: number;
  tickets: Ticket[];
  /** Lines of each ticket in this chunk. */
  counts: number[];
}

interface Segment {
  body: Buffer;
  lines: number;
  ticket: Ticket;
}

/** A write error sorted into the kinds we count and act on. */
export function classify(err: unknown): { kind: string; permanent: boolean; split: boolean } {
  if (err instanceof HttpError) {
    const s = err.statusCode;
    if (s === 400 || s === 422) return { kind: 'bad_request', permanent: true, split: false };
    if (s === 413) return { kind: 'too_large', permanent: false, split: true };
    if (s === 401 || s === 403) return { kind: 'auth', permanent: false, split: false };
    if (s === 404) return { kind: 'not_found', permanent: false, split: false };
    if (s === 429) return { kind: 'rate_limited', permanent: false, split: false };
    return { kind: 'server', permanent: false, split: false };
  }
  const name = (err as Error)?.name;
  if (name === 'RequestTimedOutError' || errorCode(err) === 'ETIMEDOUT')
    return { kind: 'timeout', permanent: false, split: false };
  return { kind: 'network', permanent: false, split: false };
}

export class LineWriter implements EncodingSink {
  readonly name: string;
  private readonly transport: Transport;
  private readonly log;
  private readonly once;
  private readonly stats: EncodeStats = newEncodeStats();
  /** Whether bodies above gzipThreshold are gzipped (not to a loopback server unless gzipLoopback). */
  readonly gzip: boolean;
  private segments: Segment[] = [];
  private buffered = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** Memory of bodies, recycled once acknowledged (release(), and chunks joined here). */
  private readonly bodies = new BodyPool((reused) =>
    bodyBuffers.inc({ sink: this.name, source: reused ? 'reused' : 'allocated' }),
  );
  /** A SegmentEncoder not in use (its buffer is kept); encoder() takes it or makes another. */
  private spareEncoder: SegmentEncoder | undefined;
  /** encode()'s own (encode is synchronous: one batch at a time). */
  private readonly wholeEncoder = new SegmentEncoder(this.bodies);
  private readonly post: typeof http.request;
  private readonly agent: http.Agent;
  private readonly target: { hostname: string; port: string; path: string };
  private readonly headers: Record<string, string>;

  constructor(private readonly o: WriterOptions) {
    this.name = o.sink;
    this.log = componentLogger(`sink.${o.sink}`);
    this.once = new OnceLogger(this.log);
    this.gzip = o.gzipLoopback || !isLoopbackUrl(o.url);
    this.transport = new InfluxDB({
      url: o.url,
      token: o.token,
      timeout: o.timeoutMs,
      headers: o.headers,
    }).transport;
    // The URL as the Transport reads it: a path in it prefixes every request (a reverse proxy).
    const u = new URL(o.url);
    const tls = u.protocol === 'https:';
    this.post = tls ? https.request : http.request;
    this.agent = new (tls ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: o.maxInFlight });
    this.target = {
      hostname: u.hostname.replace(/^\[(.*)\]$/, '$1'), // [::1] → ::1
      port: u.port,
      path: u.pathname.replace(/\/+$/, '') + o.path,
    };
    this.headers = {
      'content-type': 'text/plain; charset=utf-8',
      ...(o.token ? { authorization: `Token ${o.token}` } : {}),
      ...o.headers,
    };
  }

  async start(): Promise<void> {
    // InfluxDB (1.x and 2.x) answers GET /ping with 204 and an X-Influxdb-Version header; any
    // other HTTP server (a 404 page, a proxy's landing page) must not pass for it.
    let version: unknown;
    let status = 0;
    try {
      await this.transport.request(this.o.pingPath, '', { method: 'GET' }, (headers, statusCode) => {
        version = headers?.['x-influxdb-version'];
        status = statusCode ?? 0;
      });
    } catch (err) {
      if (err instanceof HttpError && (err.statusCode === 401 || err.statusCode === 403)) return; // auth is checked per write
      if (err instanceof HttpError && err.statusCode < 500) {
        throw notInfluxDb(
          this.o.url,
          this.o.pingPath,
          `${err.statusCode}`,
          err.headers?.['x-influxdb-version'],
        );
      }
      throw new ConnectionError(
        `InfluxDB (${this.o.sink}) is not reachable at ${redactUrl(this.o.url)} (GET ${this.o.pingPath}: ${errorMessage(err)}). ` +
          'Start the local stack with `npx strata stack up`, or point INFLUX_URL / --influx-url at a running InfluxDB.',
        { cause: err },
      );
    }
    if (version === undefined) throw notInfluxDb(this.o.url, this.o.pingPath, `${status}`, undefined);
  }

  encode(points: readonly Point[]): EncodedPoints {
    const segments: EncodedPoints['segments'] = [];
    const before = this.stats.droppedPoints;
    const nfBefore = this.stats.nonFiniteFields;
    this.wholeEncoder.begin(this.o.batchSize, this.o.maxBatchBytes, segments, this.stats).add(points);
    const total = this.wholeEncoder.finish();
    const unencodable = this.stats.droppedPoints - before;
    if (unencodable > 0) pointsDropped.inc({ sink: this.name, reason: 'unencodable' }, unencodable);
    const nf = this.stats.nonFiniteFields - nfBefore;
    if (nf > 0) nonFiniteFields.inc({ sink: this.name }, nf);
    return { segments, lines: total, unencodable };
  }

  encoder(): PointEncoder {
    const enc = this.spareEncoder ?? new SegmentEncoder(this.bodies);
    this.spareEncoder = undefined;
    const segments: EncodedPoints['segments'] = [];
    const stats = newEncodeStats();
    enc.begin(this.o.batchSize, this.o.maxBatchBytes, segments, stats);
    let done = false;
    return {
      add: (points) => {
        if (done) throw new StrataError('PointEncoder.add after finish');
        enc.add(points);
      },
      finish: () => {
        if (done) throw new StrataError('PointEncoder.finish twice');
        done = true;
        const lines = enc.finish();
        this.spareEncoder = enc;
        const unencodable = stats.droppedPoints;
        this.stats.droppedPoints += unencodable;
        this.stats.nonFiniteFields += stats.nonFiniteFields;
        if (unencodable > 0) pointsDropped.inc({ sink: this.name, reason: 'unencodable' }, unencodable);
        if (stats.nonFiniteFields > 0) nonFiniteFields.inc({ sink: this.name }, stats.nonFiniteFields);
        return { segments, lines, unencodable };
      },
    };
  }

  release(encoded: EncodedPoints): void {
    for (const seg of encoded.segments) this.bodies.give(seg.body);
  }

  write(input: readonly Point[] | EncodedPoints): Promise<WriteResult> {
    if (this.closed) return Promise.reject(new StrataError(`sink ${this.name} is closed`));
    if (!Array.isArray(input)) return this.writeEncoded(input as EncodedPoints);
    // Encoded here: the bodies are ours to give back once the write settles.
    const enc = this.encode(input as readonly Point[]);
    const done = this.writeEncoded(enc);
    const release = () => this.release(enc);
    done.then(release, release);
    return done;
  }

  private writeEncoded(enc: EncodedPoints): Promise<WriteResult> {
    const unencodable = enc.unencodable;
    if (enc.lines === 0) return Promise.resolve({ written: 0, rejected: 0, unencodable });
    if (this.buffered + enc.lines > this.o.maxBufferLines) {
      pointsDropped.inc({ sink: this.name, reason: 'buffer_full' }, enc.lines);
      // Retriable: the caller did not commit, so it writes these points again later.
      return Promise.reject(
        new ConnectionError(
          `sink ${this.name}: buffer full (${this.buffered} + ${enc.lines} lines > maxBufferLines ${this.o.maxBufferLines})`,
        ),
      );
    }
    return new Promise<WriteResult>((resolve, reject) => {
      const ticket: Ticket = {
        pending: 0,
        queued: enc.segments.length,
        sealed: false,
        written: 0,
        rejected: 0,
        unencodable,
        refused: [],
        resolve,
        reject,
      };
      enc.segments.forEach((seg) => {
        this.segments.push({ body: seg.body, lines: seg.lines, ticket });
      });
      this.buffered += enc.lines;
      bufferedLines.set({ sink: this.name }, this.buffered);
      this.pump(false);
    });
  }

  /** Sends as many chunks as there are free request slots. */
  private pump(timerFired: boolean): void {
    if (timerFired) this.timer = undefined;
    while (this.inFlight < this.o.maxInFlight && this.buffered > 0) {
      if (
        !timerFired &&
        this.o.flushIntervalMs > 0 &&
        this.buffered < this.o.batchSize &&
        this.inFlight === 0
      ) {
        this.timer ??= setTimeout(() => this.pump(true), this.o.flushIntervalMs);
        return;
      }
      this.sendChunk(this.cutChunk());
      timerFired = false;
    }
  }

  /** Takes whole segments (each is at most batchSize lines) while the request stays within bounds. */
  private cutChunk(): Chunk {
    const bodies: Buffer[] = [];
    const tickets: Ticket[] = [];
    const counts: number[] = [];
    let lines = 0;
    let bytes = 0;
    while (this.segments.length > 0) {
      const seg = this.segments[0] as Segment;
      if (
        bodies.length > 0 &&
        (lines + seg.lines > this.o.batchSize || bytes + seg.body.length >= this.o.maxBatchBytes)
      ) {
        break;
      }
      this.segments.shift();
      bodies.push(seg.body);
      lines += seg.lines;
      bytes += seg.body.length + 1;
      const last = tickets.length - 1;
      if (tickets[last] === seg.ticket) {
        counts[last] = (counts[last] as number) + seg.lines;
      } else {
        seg.ticket.pending++;
        tickets.push(seg.ticket);
        counts.push(seg.lines);
      }
      // Sealed once its last segment is cut: no segment of this ticket remains queued.
      seg.ticket.queued--;
      if (seg.ticket.queued === 0) seg.ticket.sealed = true;
    }
    this.buffered -= lines;
    bufferedLines.set({ sink: this.name }, this.buffered);
    const joined = bodies.length > 1;
    return {
      body: joined ? joinLines(bodies, bytes - 1, this.bodies) : (bodies[0] as Buffer),
      joined,
      lines,
      tickets,
      counts,
    };
  }

  private sendChunk(chunk: Chunk): void {
    this.inFlight++;
    this.sendWithRetry(chunk.body, chunk.lines, Date.now() + this.o.maxRetryTimeMs, 0)
      .then(
        (r) => {
          // Each ticket gets its own lines: the chunk's lines are the tickets' in order, so a
          // refused line's index says whose it is.
          let first = 0;
          chunk.tickets.forEach((t, i) => {
            const n = chunk.counts[i] as number;
            let rejected = 0;
            for (const x of r.refused) {
              if (x.index >= first && x.index < first + n) {
                rejected++;
                t.refused.push({ line: x.line, error: x.error });
              }
            }
            t.written += n - rejected;
            t.rejected += rejected;
            first += n;
          });
        },
        (err: Error) => {
          for (const t of chunk.tickets) t.error ??= err;
        },
      )
      .finally(() => {
        this.inFlight--;
        if (chunk.joined) this.bodies.give(chunk.body);
        for (const t of chunk.tickets) {
          t.pending--;
          if (t.pending === 0 && t.sealed) {
            if (t.error) t.reject(t.error);
            else
              t.resolve({
                written: t.written,
                rejected: t.rejected,
                unencodable: t.unencodable,
                ...(t.refused.length > 0 ? { refused: t.refused } : {}),
              });
          }
        }
        this.pump(false);
        if (this.inFlight === 0 && this.buffered === 0) {
          for (const w of this.idleWaiters.splice(0)) w();
        }
      });
  }

  /**
   * Sends one request's lines, retrying what can succeed later until `deadline`. Lines refused for
   * good are found and returned, not retried: InfluxDB stores the valid lines of a request and
   * refuses the others with one message (a partial write says `dropped=N`, a parse error names the
   * first bad line), so the request is bisected (halves sent again: the stored lines are rewritten
   * identically) until each refused line is alone, or a request's lines are all refused
   * (`dropped=` equal to its line count). Cost: a request of n lines with k refused ones takes
   * O(k·log n) more requests; one whose lines are all refused, one.
   */
  private async sendWithRetry(
    body: Buffer,
    lineCount: number,
    deadline: number,
    base: number,
  ): Promise<SendOutcome> {
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        await this.send(body);
        requestSeconds.observe({ sink: this.name }, (performance.now() - started) / 1000);
        pointsWritten.inc({ sink: this.name }, lineCount);
        return { written: lineCount, rejected: 0, refused: [] };
      } catch (err) {
        const c = classify(err);
        errorsTotal.inc({ sink: this.name, kind: c.kind });
        if (c.permanent) {
          const why = serverMessage(err);
          this.once.warn(
            c.kind,
            { sink: this.name, status: (err as HttpError).statusCode, error: why },
            'InfluxDB refused lines as invalid; the refused lines are dead-lettered, not retried (the valid lines of the request are stored)',
          );
          const dropped = droppedCount(why);
          if (lineCount === 1 || dropped === lineCount) {
            return this.refuse(body, lineCount, base, why);
          }
          return this.bisect(body, deadline, base);
        }
        if (c.split && lineCount > 1) return this.bisect(body, deadline, base);
        if (c.split) return this.refuse(body, 1, base, `too large for one request: ${serverMessage(err)}`);
        this.once.warn(
          `${c.kind}:${errorMessage(err)}`,
          {
            sink: this.name,
            url: redactUrl(this.o.url),
            kind: c.kind,
            error: errorMessage(err),
            hint: writeHint(c.kind, err, this.o.url, this.target.path.split('?')[0]!),
          },
          'InfluxDB write failed; retrying with backoff',
        );
        const retryAfterMs = err instanceof HttpError ? err.retryAfter() * 1000 : 0;
        const delay = Math.max(
          retryAfterMs,
          Math.min(this.o.maxRetryDelayMs, this.o.minRetryDelayMs * 2 ** (attempt - 1)) *
            (0.75 + Math.random() * 0.5),
        );
        if (this.closed || Date.now() + delay > deadline) {
          throw new ConnectionError(
            `InfluxDB (${this.name}) at ${redactUrl(this.o.url)}: write failed after ${attempt} attempt(s): ${errorMessage(err)}`,
            { cause: err },
          );
        }
        retriesTotal.inc({ sink: this.name });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Sends each half of the body as its own request (a 413, or lines refused among valid ones). */
  private async bisect(body: Buffer, deadline: number, base: number): Promise<SendOutcome> {
    // The body is split as text, each half sent as its own UTF-8 body.
    const lines = splitLines(body.toString('utf8'));
    const mid = Math.ceil(lines.length / 2);
    const half = (ls: string[]) => Buffer.from(ls.join('\n'), 'utf8');
    const a = await this.sendWithRetry(half(lines.slice(0, mid)), mid, deadline, base);
    const b = await this.sendWithRetry(half(lines.slice(mid)), lines.length - mid, deadline, base + mid);
    return {
      written: a.written + b.written,
      rejected: a.rejected + b.rejected,
      refused: [...a.refused, ...b.refused],
    };
  }

  /** Every line of the body refused for `why`: counted here, returned for the dead-letter topic. */
  private refuse(body: Buffer, lineCount: number, base: number, why: string): SendOutcome {
    pointsDropped.inc({ sink: this.name, reason: 'rejected' }, lineCount);
    const lines = lineCount === 1 ? [body.toString('utf8')] : splitLines(body.toString('utf8'));
    return {
      written: 0,
      rejected: lineCount,
      refused: lines.map((line, i) => ({ index: base + i, line, error: why })),
    };
  }

  private async send(raw: Buffer): Promise<void> {
    // Gzipped here: the level is ours to choose (influxdb.gzipLevel).
    const gzip = this.gzip && raw.length > this.o.gzipThreshold;
    const payload = gzip ? await gzipAsync(raw, { level: this.o.gzipLevel }) : raw;
    return new Promise((resolve, reject) => {
      const req = this.post(
        {
          ...this.target,
          method: 'POST',
          agent: this.agent,
          headers: {
            ...this.headers,
            'content-length': String(payload.length),
            ...(gzip ? { 'content-encoding': 'gzip' } : {}),
          },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          res.on('error', reject);
          if (status >= 200 && status < 300) {
            res.on('end', resolve);
            res.resume();
            return;
          }
          // InfluxDB says why in the body (JSON {"error"|"message"} or text): kept for the log.
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            if (text.length < 1000) text += c;
          });
          res.on('end', () => {
            const why = text.slice(0, 1000) || String(res.headers['x-influxdb-error'] ?? '');
            reject(
              new HttpError(
                status,
                res.statusMessage,
                why,
                res.headers['retry-after'],
                res.headers['content-type'],
                undefined,
                res.headers,
              ),
            );
          });
        },
      );
      req.setTimeout(this.o.timeoutMs, () => req.destroy(new RequestTimedOutError()));
      req.on('error', reject);
      req.end(payload);
    });
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight > 0 || this.buffered > 0) {
      this.pump(true);
      await new Promise<void>((r) => this.idleWaiters.push(r));
    }
    this.closed = true;
    this.agent.destroy();
  }
}

/** The server at `url` answered /ping, but not as InfluxDB does. */
function notInfluxDb(url: string, pingPath: string, answer: string, version: unknown): ConfigError {
  return new ConfigError(
    `the server at ${redactUrl(url)} is not InfluxDB: GET ${pingPath} answered ${answer}` +
      `${version === undefined ? ' without an X-Influxdb-Version header' : ''} (InfluxDB answers 204 with one). ` +
      'Point INFLUX_URL / --influx-url at InfluxDB (`npx strata stack up` starts one on http://127.0.0.1:18086).',
  );
}

/** InfluxDB's own words for a refused request: the `error`/`message` of its JSON body, else the body. */
export function serverMessage(err: unknown): string {
  if (err instanceof HttpError) {
    const json = err.json as { error?: unknown; message?: unknown } | undefined;
    const m = json?.error ?? json?.message;
    if (typeof m === 'string' && m) return m;
    if (err.body) return err.body;
  }
  return errorMessage(err);
}

/** The `dropped=N` of an InfluxDB 1.x partial write ("partial write: ... dropped=3"), if any. */
export function droppedCount(message: string): number | undefined {
  const m = /\bdropped=(\d+)\b/.exec(message);
  return m ? Number(m[1]) : undefined;
}

/** Bodies joined by newlines into one buffer of `size` bytes (Σ lengths + separators). */
export function joinLines(bodies: readonly Buffer[], size: number, pool?: BodyPool): Buffer {
  const out = pool ? pool.take(size) : Buffer.allocUnsafe(size);
  let q = 0;
  for (const b of bodies) {
    if (q > 0) out[q++] = 10;
    q += b.copy(out, q);
  }
  return q === size ? out : out.subarray(0, q);
}

/** Whether a URL's host is this machine's loopback: 127.0.0.0/8, ::1 or localhost. */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return false;
  }
  if (host === 'localhost' || host.endsWith('.localhost') || host === '[::1]') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Splits a body into lines; a newline inside a quoted string field does not end a line. */
export function splitLines(body: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c === 92 /* \\ */ && quoted) i++;
    else if (c === 34 /* " */) quoted = !quoted;
    else if (c === 10 && !quoted) {
      out.push(body.slice(start, i));
      start = i + 1;
    }
  }
  if (start < body.length) out.push(body.slice(start));
  return out;
}

/**
 * Who answered a 404 and what it means: InfluxDB saying the database or bucket is missing
 * (`missing`), InfluxDB finding no such path (`influx` alone), or a server that is not InfluxDB
 * (neither). InfluxDB sends X-Influxdb-Version with every answer, 404s included.
 */
export function notFound(err: unknown): { missing: boolean; influx: boolean; said: string } {
  const headers = err instanceof HttpError ? err.headers : undefined;
  const influx = headers?.['x-influxdb-version'] !== undefined;
  const said = serverMessage(err).replace(/\s+/g, ' ').trim().slice(0, 160);
  // 1.x: {"error":"database not found: \"db\""}; 2.x: {"code":"not found","message":"bucket \"b\" not found"}.
  const missing = influx && /\b(database|bucket)\b.*\bnot found\b/i.test(said);
  return { missing, influx, said };
}

/**
 * What to do about a failed write, for the log line. A 404 is told apart by who answered: InfluxDB
 * saying the database (1.x: "database not found") or bucket (2.x: "bucket ... not found") is
 * missing; InfluxDB finding no such path (a path in the URL, a proxy prefix); or a server that is
 * not InfluxDB at all (no X-Influxdb-Version header, which InfluxDB sends with every answer).
 */
export function writeHint(kind: string, err: unknown, url: string, path: string): string | undefined {
  switch (kind) {
    case 'auth':
      return 'check the token (INFLUX_TOKEN) or user/password (INFLUX_USERNAME, INFLUX_PASSWORD)';
    case 'not_found': {
      const at = redactUrl(url);
      const nf = notFound(err);
      if (nf.missing) {
        return (
          `InfluxDB at ${at} says ${nf.said}: create it (InfluxQL: CREATE DATABASE <db>; 2.x: influx bucket create) ` +
          'or fix INFLUX_BUCKET / INFLUX_DATABASE (--influx-bucket / --influx-database)'
        );
      }
      if (nf.influx) {
        return (
          `InfluxDB at ${at} has no ${path} (404): the URL's path leads nowhere; ` +
          "set INFLUX_URL / --influx-url to the server's base URL (e.g. http://host:8086)"
        );
      }
      return (
        `the server at ${at} answered 404 to POST ${path} and is not InfluxDB (no X-Influxdb-Version header): ` +
        'point INFLUX_URL / --influx-url at InfluxDB'
      );
    }
    case 'network':
      return 'is InfluxDB running? `npx strata stack up` starts a local one';
    default:
      return undefined;
  }
}
