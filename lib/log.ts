// Structured JSON logs (pino), one child logger per component: {"component":"collector.cgroup",...}.
// Level from STRATA_LOG_LEVEL (trace|debug|info|warn|error|fatal|silent), default info.
// Logs go to stderr so that stdout stays clean for NDJSON output.
import { type Logger, pino } from 'pino';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function levelFromEnv(): string {
  const level = process.env.STRATA_LOG_LEVEL ?? 'info';
  if (!LEVELS.includes(level)) {
    process.stderr.write(
      `STRATA_LOG_LEVEL=${level} is not a level; accepted: ${LEVELS.join(', ')}. Using info.\n`,
    );
    return 'info';
  }
  return level;
}

export const rootLogger: Logger = pino(
  { level: levelFromEnv(), base: { service: 'strata' }, timestamp: pino.stdTimeFunctions.isoTime },
  pino.destination({ fd: 2, sync: false }),
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
