// The status line of `strata run`: where the points go and whether that works. A failing sink is
// said there, with the reason in the user's terms (which server, what it answered, what to change),
// because a warning on stderr is wiped by the next redraw.
import { HttpError } from '@influxdata/influxdb-client';
import { errorMessage } from '../lib/errors.ts';
import { notFound } from '../sinks/influxdb/writer.ts';

/** The first HttpError in an error's cause chain (the writer wraps it in a ConnectionError). */
function httpErrorOf(err: unknown): HttpError | undefined {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof HttpError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function codeOf(err: unknown): string | undefined {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Why a write to InfluxDB failed, in one line. A 404 means "database or bucket not found" only
 * when InfluxDB says so in its answer; InfluxDB's bare "404 page not found" is a path in the URL
 * that leads nowhere; a 404 without X-Influxdb-Version (which InfluxDB sends with every answer)
 * comes from a server that is not InfluxDB.
 */
export function explainWriteError(err: unknown): string {
  const http = httpErrorOf(err);
  if (http) {
    const status = http.statusCode;
    const influx = http.headers?.['x-influxdb-version'] !== undefined;
    const json = http.json as { error?: unknown; message?: unknown } | undefined;
    const said = String(json?.error ?? json?.message ?? http.body ?? '')
      .replace(/\s+/g, ' ')
      .trim()
      .slice(0, 160);
    if (status === 404 && !influx) {
      return 'HTTP 404 from a server that is not InfluxDB (no X-Influxdb-Version header): check --influx-url';
    }
    if (status === 404 && notFound(http).missing) {
      return `HTTP 404: ${said}: create the database/bucket, or pass --influx-bucket / --influx-database`;
    }
    if (status === 404) {
      // InfluxDB itself, but no such path: a path in --influx-url (e.g. a proxy prefix) that leads nowhere.
      return `HTTP 404 from InfluxDB: no such path (${said || 'not found'}): check the path in --influx-url`;
    }
    if (status === 401 || status === 403) {
      return `HTTP ${status}: ${said || 'unauthorized'}: check --influx-token (InfluxDB 1.x: INFLUX_USERNAME, INFLUX_PASSWORD)`;
    }
    return `HTTP ${status}${said ? `: ${said}` : ''}`;
  }
  const code = codeOf(err);
  if (code === 'ECONNREFUSED')
    return 'connection refused: is InfluxDB running? (`strata stack up` starts one)';
  return errorMessage(err).replace(/\s+/g, ' ').slice(0, 200);
}

/** The health of one sink, as the status line says it. */
export class SinkHealth {
  written = 0;
  failedWrites = 0;
  /** Ticks not written because too many were waiting (bounded queue). */
  dropped = 0;
  pending = 0;
  private failingSince: number | undefined;
  private reason = '';

  constructor(
    /** "InfluxDB http://127.0.0.1:18086" (credentials removed). */
    private readonly target: string,
  ) {}

  ok(points: number): void {
    this.written += points;
    this.failingSince = undefined;
  }

  failed(err: unknown, now = Date.now()): void {
    this.failedWrites++;
    this.failingSince ??= now;
    this.reason = explainWriteError(err);
  }

  get failing(): boolean {
    return this.failingSince !== undefined;
  }

  /** The status line: one sentence, the problem first when there is one. */
  line(now = Date.now()): string {
    const counts = `${this.written} points written`;
    const queue = this.pending > 0 ? `, ${this.pending} writes pending` : '';
    const dropped = this.dropped > 0 ? `, ${this.dropped} ticks dropped (queue full)` : '';
    if (this.failingSince !== undefined) {
      const s = Math.max(0, Math.round((now - this.failingSince) / 1000));
      return `${this.target}: WRITES FAILING for ${s} s (${this.failedWrites} failed): ${this.reason}; ${counts}${queue}${dropped}`;
    }
    return `${this.target}: ${counts}${queue}${dropped}`;
  }
}
