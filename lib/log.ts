// Structured logs (pino), one child logger per component: {"component":"collector.cgroup",...}.
// Level from STRATA_LOG_LEVEL (trace|debug|info|warn|error|fatal|silent), default info.
// Format from STRATA_LOG_FORMAT (json|pretty): JSON lines, except on a terminal, where a person
// reads them: `12:04:02 WARN  kafkajs: Connection error ... broker=127.0.0.1:1`.
// Logs go to stderr so that stdout stays clean for NDJSON output.
import { writeSync } from 'node:fs';
import { type DestinationStream, type Logger, pino } from 'pino';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function levelFromEnv(): string {
  const level = process.env.STRATA_LOG_LEVEL || 'info';
  if (!LEVELS.includes(level)) {
    process.stderr.write(
      `STRATA_LOG_LEVEL=${level} is not a level; accepted: ${LEVELS.join(', ')}. Using info.\n`,
    );
    return 'info';
  }
  return level;
}

const FORMATS = ['json', 'pretty'];

function prettyFromEnv(): boolean {
  const format = process.env.STRATA_LOG_FORMAT || (process.stderr.isTTY ? 'pretty' : 'json');
  if (!FORMATS.includes(format)) {
    process.stderr.write(
      `STRATA_LOG_FORMAT=${format} is not a format; accepted: ${FORMATS.join(', ')}. Using json.\n`,
    );
    return false;
  }
  return format === 'pretty';
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
/** Keys every line has, or that the pretty line already shows. */
const SHOWN = new Set(['level', 'time', 'service', 'component', 'msg', 'timestamp', 'logger', 'note', 'key']);

/** One pino JSON line as a person reads it: time, level, component, message, then key=value. */
export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const time = typeof o.time === 'string' ? o.time.slice(11, 19) : '';
  const level = (LEVEL_NAMES[Number(o.level)] ?? String(o.level)).padEnd(5);
  const where = o.component ? `${String(o.component)}: ` : '';
  const fields = Object.entries(o)
    .filter(([k, v]) => !SHOWN.has(k) && v !== undefined)
    .map(
      ([k, v]) =>
        `${k}=${typeof v === 'string' ? (/[\s"=]/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`,
    );
  return `${time} ${level} ${where}${String(o.msg ?? '')}${fields.length ? `  ${fields.join(' ')}` : ''}\n`;
}

/** stderr, formatted for a person (synchronous: a terminal is, and lines must not interleave). */
const prettyStderr: DestinationStream = {
  write(line: string) {
    writeSync(2, prettyLine(line.trimEnd()));
  },
};

export const rootLogger: Logger = pino(
  { level: levelFromEnv(), base: { service: 'strata' }, timestamp: pino.stdTimeFunctions.isoTime },
  prettyFromEnv() ? prettyStderr : pino.destination({ fd: 2, sync: false }),
);

export function componentLogger(component: string): Logger {
  return rootLogger.child({ component });
}

/**
 * Logs a recurring problem once per key, then only counts it: a broken file read every second
 * must not flood the log. `count` is exported to /metrics by the caller.
 */
export class OnceLogger {
  private readonly seen = new Set<string>();
  constructor(
    private readonly log: Logger,
    private readonly limit = 10_000,
  ) {}
  warn(key: string, obj: Record<string, unknown>, msg: string): void {
    if (this.seen.has(key)) return;
    if (this.seen.size >= this.limit) this.seen.clear(); // bounded: at worst we log a key again
    this.seen.add(key);
    this.log.warn({ ...obj, key, note: 'logged once; further occurrences are only counted' }, msg);
  }
}

export type { Logger };
