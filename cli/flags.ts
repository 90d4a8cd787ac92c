// The flag vocabulary shared by every `strata` command: parsers that refuse a bad value in one
// line naming the flag, the value and the accepted form (exit 2, cli/main.ts), deprecated
// spellings that keep working with one warning line, and the help's examples block.
import type { Command } from 'commander';
import { type DeprecationSink, parseDuration, stderrDeprecation } from '../lib/config.ts';
import { ConfigError } from '../lib/errors.ts';

/** A flag value refused: `--ticks: expected a whole number ≥ 0, got "-1"`. */
export function badFlag(flag: string, expected: string, value: string, hint = ''): ConfigError {
  return new ConfigError(
    `--${flag}: expected ${expected}, got ${JSON.stringify(value)}${hint ? ` (${hint})` : ''}`,
  );
}

/** Parser of a whole-number flag within [min, max]. */
export function wholeNumber(flag: string, min: number, max?: number, note?: string) {
  const expected = max === undefined ? `a whole number ≥ ${min}` : `a whole number from ${min} to ${max}`;
  return (value: string): number => {
    const v = value.trim();
    const n = /^-?\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
      throw badFlag(flag, note ? `${expected} (${note})` : expected, value);
    }
    return n;
  };
}

/**
 * Parser of a duration flag (500ms, 1s, 2m, 1h, or a bare number of milliseconds) of at least
 * `minMs`. A bare number below it was almost always meant in seconds: the error says so.
 */
export function duration(flag: string, minMs = 0) {
  const expected = `a duration${minMs > 0 ? ` ≥ ${minMs}ms` : ''} such as 500ms, 1s, 2m`;
  return (value: string): string => {
    let ms: number;
    try {
      ms = parseDuration(value, flag);
    } catch {
      throw badFlag(flag, expected, value);
    }
    if (ms < minMs) {
      const bare = /^\d+(\.\d+)?$/.test(value.trim());
      throw badFlag(
        flag,
        expected,
        value,
        bare ? `a bare number is milliseconds: did you mean ${value.trim()}s?` : '',
      );
    }
    return value;
  };
}

/** Parser of a comma-separated host:port list (Kafka brokers). */
export function brokerList(flag = 'brokers') {
  return (value: string): string => {
    const list = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (list.length === 0) throw badFlag(flag, 'at least one broker host:port, e.g. 127.0.0.1:19092', value);
    const bad = list.find((b) => !/^[^\s:]+:\d+$/.test(b));
    if (bad !== undefined) throw badFlag(flag, 'host:port[,host:port...], e.g. 127.0.0.1:19092', value);
    return list.join(',');
  };
}

/** Parser of a choice flag. */
export function oneOf(flag: string, choices: readonly string[]) {
  return (value: string): string => {
    if (!choices.includes(value)) throw badFlag(flag, `one of ${choices.join(', ')}`, value);
    return value;
  };
}

/**
 * Old flag spellings, kept working: the old value moves to the new flag (which wins when both
 * are given) with one deprecation line naming the new flag.
 */
export function takeDeprecatedFlags<T extends object>(
  flags: T,
  renames: ReadonlyArray<
    readonly [old: keyof T & string, current: keyof T & string, oldFlag: string, newFlag: string]
  >,
  warn: DeprecationSink = stderrDeprecation,
): T {
  const f = flags as Record<string, unknown>;
  for (const [old, current, oldFlag, newFlag] of renames) {
    if (f[old] === undefined) continue;
    warn(`${oldFlag} is now ${newFlag}; ${oldFlag} still works for now`);
    if (f[current] === undefined) f[current] = f[old];
    delete f[old];
  }
  return flags;
}

/** Appends the "Examples:" block (and a pointer to the docs) to a command's --help. */
export function examples(cmd: Command, lines: readonly [string, string][], docs?: string): Command {
  const width = Math.max(...lines.map(([c]) => c.length));
  const body = lines.map(([c, why]) => `  ${c.padEnd(width)}  # ${why}`).join('\n');
  return cmd.addHelpText(
    'after',
    `\nExamples:\n${body}${docs ? `\n\nEvery key, env var and default: ${docs}` : ''}`,
  );
}

/** Flags renamed or moved: an unknown one of these gets "did you mean" in its error line. */
const FLAG_HINTS: Readonly<Record<string, string>> = {
  '--kafka': '--brokers',
  '--topic': '--samples-topic',
  '--bucket': '--influx-bucket',
  '--database': '--influx-database',
  '--influx': '--influx-url',
  '--check-config': '--print-config',
  '--broker': '--brokers',
};

/**
 * Commander's error text ("error: unknown option '--kafka'", "(Did you mean --x?)") as one line:
 * `strata: unknown option '--kafka'; did you mean --brokers? (see --help)`.
 */
export function oneLineUsageError(text: string): string {
  const lines = text
    .trim()
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  let first = (lines[0] ?? '').replace(/^error: /, '');
  const suggested = lines.find((l) => /^\(Did you mean/.test(l));
  const unknown = /^unknown option '([^']+)'/.exec(first);
  if (suggested) first += `; ${suggested.slice(1, -1).replace(/^Did/, 'did')}`;
  else if (unknown && FLAG_HINTS[unknown[1]!]) first += `; did you mean ${FLAG_HINTS[unknown[1]!]}?`;
  return `strata: ${first} (see --help)\n`;
}
