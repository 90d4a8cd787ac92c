// Config validation shared by every component. Each component declares a zod strictObject beside
// its code (collectors/<name>/config.ts...). Errors name the key, where it came from and what is
// accepted, e.g.:  agent.kafka.topcs: unknown key; accepted keys: brokers, topic, clientId, ...
import { z } from 'zod';
import { ConfigError } from './errors.ts';

/** Validates `input` against `schema`; throws ConfigError naming every bad key. */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, where: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => describeIssue(schema, issue, where));
  throw new ConfigError(`invalid configuration in ${where}:\n  ${lines.join('\n  ')}`);
}

function describeIssue(schema: z.ZodType, issue: z.core.$ZodIssue, where: string): string {
  const path = [where, ...issue.path.map(String)].filter(Boolean).join('.');
  if (issue.code === 'unrecognized_keys') {
    const accepted = objectKeysAt(schema, issue.path);
    return issue.keys
      .map((k) => `${path}.${k}: unknown key; accepted keys: ${accepted.join(', ') || '(none)'}`)
      .join('\n  ');
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `${path}: ${issue.message} (accepted: ${issue.values.map((v) => JSON.stringify(v)).join(', ')})`;
  }
  // A word, a fraction or an out-of-range value for a number key: one message naming what is
  // accepted (zod says "expected number, received string" or "expected number to be <=9" alone).
  const numberIssue =
    (issue.code === 'invalid_type' && (issue.expected === 'number' || issue.expected === 'int')) ||
    ((issue.code === 'too_small' || issue.code === 'too_big') && issue.origin === 'number');
  const node = numberIssue ? nodeAt(schema, issue.path) : undefined;
  if (node instanceof z.ZodNumber) return `${path}: ${describeNumber(node)}`;
  return `${path}: ${issue.message}`;
}

/** "expected a whole number from 1 to 9", "expected a number ≥ 0"... from the schema's checks. */
function describeNumber(node: z.ZodNumber): string {
  let min: string | undefined;
  let max: string | undefined;
  for (const check of node._zod.def.checks ?? []) {
    const d = check._zod.def as { check: string; value?: unknown; inclusive?: boolean };
    if (typeof d.value !== 'number') continue;
    // Whole numbers: an exclusive bound is the next whole number in.
    if (d.check === 'greater_than')
      min = d.inclusive ? `${d.value}` : node.isInt ? `${d.value + 1}` : `> ${d.value}`;
    if (d.check === 'less_than')
      max = d.inclusive ? `${d.value}` : node.isInt ? `${d.value - 1}` : `< ${d.value}`;
  }
  const what = node.isInt ? 'a whole number' : 'a number';
  const bare = (b: string) => !b.startsWith('>') && !b.startsWith('<');
  if (min !== undefined && max !== undefined && bare(min) && bare(max))
    return `expected ${what} from ${min} to ${max}`;
  const bounds = [min && (bare(min) ? `≥ ${min}` : min), max && (bare(max) ? `≤ ${max}` : max)];
  const range = bounds.filter(Boolean).join(' and ');
  return `expected ${what}${range ? ` ${range}` : ''}`;
}

/** The keys an object schema accepts at `path`, for "accepted keys" in error messages. */
export function objectKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  const node = nodeAt(schema, path);
  return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
}

/** The schema at `path` inside objects, arrays and records (optional/default/... unwrapped). */
function nodeAt(schema: z.ZodType, path: readonly PropertyKey[]): unknown {
  let node: unknown = schema;
  for (const key of [...path, undefined]) {
    node = unwrap(node);
    if (key === undefined) break;
    if (node instanceof z.ZodObject) node = node.shape[String(key)];
    else if (node instanceof z.ZodArray) node = node.element;
    else if (node instanceof z.ZodRecord) node = node.valueType;
    else return undefined;
  }
  return node;
}

function unwrap(node: unknown): unknown {
  let current = node;
  for (let i = 0; i < 10; i++) {
    if (
      current instanceof z.ZodOptional ||
      current instanceof z.ZodNullable ||
      current instanceof z.ZodDefault ||
      current instanceof z.ZodPrefault
    ) {
      current = current.unwrap();
    } else if (current instanceof z.ZodPipe) {
      current = current.in;
    } else if (current instanceof z.ZodUnion) {
      // e.g. `true | {caFile, ...}`: the keys are those of the mapping option
      const object = current.options.find((o) => unwrap(o) instanceof z.ZodObject);
      if (!object) break;
      current = object;
    } else break;
  }
  return current;
}

/** Comma-separated env var or flag into a list, empty entries removed. */
export function splitList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Parses durations such as 500ms, 1s, 2m, 1h, or a plain number of milliseconds. */
export function parseDuration(value: string | number, key: string): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new ConfigError(`${key}: "${value}" is not a duration; use e.g. 500ms, 1s, 2m, 1h`);
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(n * factor);
}

/** A zod type accepting "1s"/"500ms"/number and yielding milliseconds. */
export const durationMs = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  try {
    return parseDuration(v, '');
  } catch {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration; use e.g. 500ms, 1s, 2m, 1h` });
    return z.NEVER;
  }
});
