// Config validation shared by every component. Each component declares a zod strictObject beside
// its code (collectors/<name>/config.ts...). Errors name the key, where it came from and what is
// accepted, e.g.:  agent.kafka.topcs: unknown key; accepted keys: brokers, topic, clientId, ...
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, errorMessage } from './errors.ts';

/** Validates `input` against `schema`; throws ConfigError naming every bad key. */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, where: string): z.output<S> {
  const parsed = schema.safeParse(input, { reportInput: true });
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
    // zod's "Invalid option: expected one of ..." said once, with the value refused.
    const given =
      'input' in issue && issue.input !== undefined
        ? `${JSON.stringify(issue.input)} is not accepted`
        : 'missing';
    return `${path}: ${given}; accepted: ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  // A word, a fraction or an out-of-range value for a number key: one message naming what is
  // accepted (zod says "expected number, received string" or "expected number to be <=9" alone).
  const numberIssue =
    (issue.code === 'invalid_type' && (issue.expected === 'number' || issue.expected === 'int')) ||
    ((issue.code === 'too_small' || issue.code === 'too_big') && issue.origin === 'number');
  const node = numberIssue ? nodeAt(schema, issue.path) : undefined;
  if (node instanceof z.ZodNumber) return `${path}: ${describeNumber(node)}`;
  return `${path}: ${plainMessage(issue)}`;
}

/** Nouns for list keys in "expected at least one ...". */
const LIST_NOUNS: Readonly<Record<string, string>> = {
  brokers: 'broker (host:port, e.g. 127.0.0.1:19092)',
};

/**
 * zod's own wording ("Too small: expected array to have >=1 items", "Invalid input: expected
 * string, received number") said in the terms of a config file; a schema's own message is kept.
 */
function plainMessage(issue: z.core.$ZodIssue): string {
  const last = String(issue.path[issue.path.length - 1] ?? '');
  // The kind of value, not the value: it may be a secret (a password given as a number).
  const got = (input: unknown) =>
    input === undefined
      ? 'nothing'
      : input === null
        ? 'null'
        : Array.isArray(input)
          ? 'a list'
          : typeof input === 'object'
            ? 'a mapping'
            : `a ${typeof input}`;
  const isDefault = /^(Too small|Too big|Invalid|Expected)/.test(issue.message);
  if (!isDefault) return issue.message;
  switch (issue.code) {
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'array' || issue.origin === 'set') {
        const noun = LIST_NOUNS[last] ?? 'entry';
        return min <= 1 ? `expected at least one ${noun}` : `expected at least ${min} entries`;
      }
      if (issue.origin === 'string') {
        return min <= 1 ? 'expected a non-empty value' : `expected at least ${min} characters`;
      }
      return `expected at least ${issue.minimum}`;
    }
    case 'too_big':
      if (issue.origin === 'array') return `expected at most ${issue.maximum} entries`;
      if (issue.origin === 'string') return `expected at most ${issue.maximum} characters`;
      return `expected at most ${issue.maximum}`;
    case 'invalid_type': {
      const expected =
        issue.expected === 'array'
          ? 'a list'
          : issue.expected === 'object'
            ? 'a mapping of settings'
            : issue.expected === 'boolean'
              ? 'true or false'
              : `a ${issue.expected}`;
      return `expected ${expected}, got ${got(issue.input)}`;
    }
    case 'invalid_format':
      return issue.format === 'url'
        ? 'expected a URL such as http://127.0.0.1:18086'
        : `expected a ${issue.format}`;
    case 'invalid_union':
      return `value not accepted, got ${got(issue.input)}`;
    default:
      return issue.message;
  }
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

// ---------------------------------------------------------------------------------------------
// The layered loader shared by `strata agent`, `strata processor` and `strata run`:
//   schema defaults < config file (section `agent:` / `processor:`) < env vars < flags.
// This is the one place that knows the file format, how env values are converted, how a renamed
// key or flag stays accepted, and which layer each key came from (errors and --print-config).

export type EnvKind = 'string' | 'number' | 'list' | 'bool';

/** One environment variable and the dotted config key (inside the component's section) it sets. */
export interface EnvVar {
  env: string;
  key: string;
  kind: EnvKind;
  /** '' is a value (e.g. '' disables the metrics endpoint); otherwise an empty variable is unset. */
  emptyIsValue?: boolean;
}

/** A renamed config key: `from` (old spelling) still works, with one deprecation line. */
export interface KeyRename {
  from: string;
  to: string;
}

/** Writes one "deprecated" line per distinct message per process (stderr unless told otherwise). */
const warnedDeprecations = new Set<string>();
export type DeprecationSink = (line: string) => void;
export const stderrDeprecation: DeprecationSink = (line) => {
  if (warnedDeprecations.has(line)) return;
  warnedDeprecations.add(line);
  process.stderr.write(`strata: deprecated: ${line}\n`);
};

/**
 * Reads a YAML or JSON config file (YAML is a superset of JSON: one parser for both) and returns
 * its `section` mapping. A file holding neither `agent:` nor `processor:` is refused (settings
 * written at the top level would otherwise be silently ignored); `required` refuses a file
 * without this very section.
 */
export function readConfigSection(
  path: string,
  section: 'agent' | 'processor',
  required = false,
  /** How the file was named, for error lines: "--config", "STRATA_CONFIG", "default config file". */
  namedBy = '--config',
): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const fix =
      namedBy === DEFAULT_NAMED_BY
        ? `make it readable by this user, or set STRATA_CONFIG="" to read no file`
        : 'pass an existing YAML or JSON file';
    throw new ConfigError(`${namedBy} ${path}: cannot read the file (${errorMessage(err)}); ${fix}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${namedBy} ${path}: not valid YAML/JSON: ${errorMessage(err)}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`${namedBy} ${path}: expected a mapping with an "${section}:" section`);
  }
  const top = doc as Record<string, unknown>;
  const value = top[section];
  if (value === undefined) {
    const known = 'agent' in top || 'processor' in top;
    if (required || !known) {
      throw new ConfigError(
        `${namedBy} ${path}: no "${section}:" section (found: ${Object.keys(top).join(', ') || 'nothing'}); put the ${section}'s settings under "${section}:"`,
      );
    }
    return {};
  }
  if (value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${namedBy} ${path}: "${section}:" must be a mapping of settings`);
  }
  return structuredClone(value) as Record<string, unknown>;
}

/** Converts an env value to what the schema expects; a bad one stays a string so validation names it. */
export function convertEnv(value: string, kind: EnvKind): unknown {
  switch (kind) {
    case 'list':
      return splitList(value);
    case 'number':
      return /^\d+$/.test(value.trim()) ? Number(value) : value;
    case 'bool': {
      const v = value.trim().toLowerCase();
      return v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : value;
    }
    default:
      return value;
  }
}

export function getPath(obj: Record<string, unknown>, dotted: string): unknown {
  let node: unknown = obj;
  for (const p of dotted.split('.')) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[p];
  }
  return node;
}

export function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = obj;
  for (const p of parts.slice(0, -1)) {
    const next = node[p];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[p] = {};
    node = node[p] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

function deletePath(obj: Record<string, unknown>, dotted: string): void {
  const parts = dotted.split('.');
  const parent = getPath(obj, parts.slice(0, -1).join('.') || '') as Record<string, unknown> | undefined;
  const holder = parts.length === 1 ? obj : parent;
  if (holder && typeof holder === 'object') delete holder[parts[parts.length - 1]!];
}

/** Every leaf's dotted path (a mapping with no keys counts as a leaf). */
export function leafPaths(obj: unknown, prefix = ''): string[] {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return prefix ? [prefix] : [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(obj)) out.push(...leafPaths(v, prefix ? `${prefix}.${k}` : k));
  if (!out.length && prefix) out.push(prefix);
  return out;
}

/**
 * Moves renamed keys of a raw (file) section to their current spelling, one deprecation line
 * each. When both spellings are set the current one wins and the old one is only reported.
 */
export function applyRenames(
  raw: Record<string, unknown>,
  renames: readonly KeyRename[],
  where: string,
  warn: DeprecationSink,
): string[] {
  const moved: string[] = [];
  for (const { from, to } of renames) {
    const old = getPath(raw, from);
    if (old === undefined) continue;
    const current = getPath(raw, to);
    warn(
      current === undefined
        ? `${where}.${from} is now ${where}.${to}; rename it (the old key still works)`
        : `${where}.${from} is now ${where}.${to}; both are set, ${where}.${to} wins: remove ${where}.${from}`,
    );
    deletePath(raw, from);
    if (current === undefined) setPath(raw, to, old);
    moved.push(to);
  }
  return moved;
}

export interface Layers {
  /** The component's section as merged so far (mutated in place). */
  raw: Record<string, unknown>;
  /** Dotted key -> "config file x", "env X", "flag --x"; keys absent here are defaults. */
  sources: Map<string, string>;
}

/**
 * Read when neither --config nor STRATA_CONFIG names a file, and only if it exists: a host
 * configured by env vars alone (a systemd unit's EnvironmentFile, a container's env) starts
 * without one, and one file in the usual place needs no flag.
 */
export const DEFAULT_CONFIG_FILE = '/etc/strata/strata.yaml';
const DEFAULT_NAMED_BY = 'default config file';

export interface ConfigFileChoice {
  /** The file to read; undefined: none. */
  file?: string;
  /** "--config", "STRATA_CONFIG" or "default config file" (error lines say it). */
  namedBy: string;
  /** Named by the user: a missing file is an error. The default file is optional. */
  explicit: boolean;
}

/**
 * Which config file a component reads: `--config`, else `STRATA_CONFIG` (a named file that does
 * not exist is an error: a typo must not start the service on defaults), else
 * DEFAULT_CONFIG_FILE if it exists. `STRATA_CONFIG=""` reads no file at all.
 */
export function chooseConfigFile(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  defaultFile: string = DEFAULT_CONFIG_FILE,
): ConfigFileChoice {
  if (flag) return { file: flag, namedBy: '--config', explicit: true };
  const fromEnv = env.STRATA_CONFIG;
  if (fromEnv !== undefined) {
    return fromEnv === ''
      ? { namedBy: 'STRATA_CONFIG', explicit: true }
      : { file: fromEnv, namedBy: 'STRATA_CONFIG', explicit: true };
  }
  return existsSync(defaultFile)
    ? { file: defaultFile, namedBy: DEFAULT_NAMED_BY, explicit: false }
    : { namedBy: DEFAULT_NAMED_BY, explicit: false };
}

/**
 * Starts the layers from the config file's section (or nothing): the file chooseConfigFile
 * picks. `required` (a file without this section is refused) holds for a file the user named;
 * the default file is shared by agent and processor and may hold only the other's section.
 */
export function fileLayer(
  file: string | undefined,
  section: 'agent' | 'processor',
  renames: readonly KeyRename[],
  warn: DeprecationSink,
  required = false,
  env: NodeJS.ProcessEnv = process.env,
  defaultFile: string = DEFAULT_CONFIG_FILE,
): Layers {
  const sources = new Map<string, string>();
  const chosen = chooseConfigFile(file, env, defaultFile);
  if (!chosen.file) return { raw: {}, sources };
  const raw = readConfigSection(chosen.file, section, required && chosen.explicit, chosen.namedBy);
  applyRenames(raw, renames, section, warn);
  for (const path of leafPaths(raw)) sources.set(path, `config file ${chosen.file}`);
  return { raw, sources };
}

/** Applies the env table; returns nothing, records each key's source. */
export function envLayer(layers: Layers, table: readonly EnvVar[], env: NodeJS.ProcessEnv): void {
  for (const { env: name, key, kind, emptyIsValue } of table) {
    const value = env[name];
    if (value === undefined || (value === '' && !emptyIsValue)) continue;
    setPath(layers.raw, key, convertEnv(value, kind));
    layers.sources.set(key, `env ${name}`);
  }
}

/** Applies flag values (dotted key -> value, undefined = not given). */
export function flagLayer(
  layers: Layers,
  flags: Readonly<Record<string, unknown>>,
  flagOf: (key: string) => string,
): void {
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    setPath(layers.raw, key, value);
    layers.sources.set(key, `flag --${flagOf(key)}`);
  }
}

/** Validates the merged layers; each error line ends with where its key came from. */
export function validateLayers<S extends z.ZodType>(schema: S, layers: Layers, where: string): z.output<S> {
  try {
    return parseConfig(schema, layers.raw, where);
  } catch (err) {
    if (err instanceof ConfigError)
      throw new ConfigError(annotateSources(err.message, layers.sources, where));
    throw err;
  }
}

/** Appends "(set by env X)" / "(default)" to each error line naming a key of `where`. */
export function annotateSources(
  message: string,
  sources: ReadonlyMap<string, string>,
  where: string,
): string {
  const re = new RegExp(`^\\s*${where}\\.([^:\\s]+):`);
  return message
    .split('\n')
    .map((line) => {
      const m = re.exec(line);
      if (!m) return line;
      let key = m[1]!;
      while (key) {
        const src = sources.get(key);
        if (src) return `${line} (set by ${src})`;
        const i = key.lastIndexOf('.');
        if (i < 0) break;
        key = key.slice(0, i);
      }
      return `${line} (default)`;
    })
    .join('\n');
}

const camelCase = (key: string) => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * Keys are camelCase. A snake_case key whose camelCase spelling the schema accepts (the collectors'
 * keys were snake_case: `max_vms`, `discovery_interval`) is moved to it with one deprecation line,
 * at any depth (mappings and lists of mappings), guided by the schema so nothing else is touched.
 */
export function renameSnakeKeys(raw: unknown, schema: z.ZodType, where: string, warn: DeprecationSink): void {
  const node = unwrap(schema);
  if (Array.isArray(raw)) {
    if (!(node instanceof z.ZodArray)) return;
    const element = node.element as z.ZodType;
    for (const [i, item] of raw.entries()) renameSnakeKeys(item, element, `${where}.${i}`, warn);
    return;
  }
  if (typeof raw !== 'object' || raw === null || !(node instanceof z.ZodObject)) return;
  const obj = raw as Record<string, unknown>;
  const shape = node.shape as Record<string, z.ZodType>;
  for (const key of Object.keys(obj)) {
    let current = key;
    if (key.includes('_') && !(key in shape) && camelCase(key) in shape) {
      current = camelCase(key);
      if (obj[current] === undefined) {
        warn(`${where}.${key} is now ${where}.${current}; rename it (the old key still works)`);
        obj[current] = obj[key];
      } else {
        warn(
          `${where}.${key} is now ${where}.${current}; both are set, ${where}.${current} wins: remove ${where}.${key}`,
        );
      }
      delete obj[key];
    }
    const child = shape[current];
    if (child) renameSnakeKeys(obj[current], child, `${where}.${current}`, warn);
  }
}
