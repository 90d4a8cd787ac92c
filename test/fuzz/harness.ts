// Shared pieces of the fuzz targets (test/fuzz/*.fuzz.ts). A target is a named fast-check
// property; test/unit/fuzz.test.ts runs every target a few hundred times with a fixed seed (so
// `npm test` is deterministic) and test/fuzz/run.ts (`npm run fuzz`) runs each ≥ 100k times with a
// random seed.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { StrataError } from '../../lib/errors.ts';

export interface FuzzTarget {
  name: string;
  /** A fresh property (fast-check properties keep state between runs: one per run). */
  property: () => fc.IRawProperty<never> | fc.IRawProperty<unknown[]>;
  /** Fraction of the runners' case counts for a costly target (default 1). */
  weight?: number;
}

export const REPO = path.resolve(import.meta.dirname, '../..');

/** Files under testdata/<dir> whose path matches `keep`, as latin1 text (bytes one to one). */
export function capturedFiles(dir: string, keep: (rel: string) => boolean = () => true): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (keep(path.relative(REPO, p))) out.push(readFileSync(p, 'latin1'));
    }
  };
  walk(path.join(REPO, 'testdata', dir));
  if (out.length === 0) throw new Error(`no captured files under testdata/${dir}`);
  return out;
}

/**
 * Runs fn; an exception other than the project's typed errors (lib/errors.ts) fails the property
 * with the exception itself. Returns fn's value, or undefined when it threw a typed error.
 */
export function typedErrorsOnly<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof StrataError) return undefined;
    throw err;
  }
}

/**
 * Every number reachable from `value` is finite; under a key named `counters` (or in `counterKeys`)
 * also ≥ 0, as the wire format requires (schemas/sample.ts). Throws naming the path otherwise.
 */
export function checkNumbers(value: unknown, where = '$', inCounters = false): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`${where} = ${value}: not finite`);
    if (inCounters && value < 0) throw new Error(`${where} = ${value}: a negative counter`);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (value instanceof Map) {
    for (const [k, v] of value) checkNumbers(v, `${where}[${String(k)}]`, inCounters);
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    checkNumbers(v, `${where}.${k}`, inCounters || k === 'counters');
  }
}

/** Metric names the wire format accepts (schemas/sample.ts metricName). */
export function checkMetricNames(record: Record<string, unknown> | undefined, where: string): void {
  if (record === undefined) return;
  if (Object.getPrototypeOf(record) !== Object.prototype && Object.getPrototypeOf(record) !== null) {
    throw new Error(`${where}: prototype changed`);
  }
  for (const k of Object.keys(record)) {
    if (!/^[a-z][a-z0-9_]*$/.test(k)) throw new Error(`${where}: metric name ${JSON.stringify(k)}`);
  }
}

/** Number spellings that break naive parsers. */
export const HOSTILE_NUMBERS = [
  '',
  '-1',
  '-0',
  '+5',
  '0x1f',
  '1e400',
  '1e308',
  '-1e308',
  '1e-400',
  '1.5',
  '.',
  '..5',
  '9'.repeat(25),
  '9'.repeat(400),
  '18446744073709551615',
  '18446744073709551616',
  '9007199254740993',
  'NaN',
  'Infinity',
  '-Infinity',
  '1_000',
  '١٢٣',
  ' ',
  '\t',
  '\u0000',
];

type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number; byte: number }
  | { kind: 'number'; which: number; text: string }
  | { kind: 'dropLine'; which: number }
  | { kind: 'dupLine'; which: number }
  | { kind: 'insert'; at: number; text: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  {
    arbitrary: fc.record({
      kind: fc.constant('number' as const),
      which: fc.nat(),
      text: fc.oneof(fc.constantFrom(...HOSTILE_NUMBERS), fc.string({ maxLength: 8 })),
    }),
    weight: 3,
  },
  fc.record({ kind: fc.constant('dropLine' as const), which: fc.nat() }),
  fc.record({ kind: fc.constant('dupLine' as const), which: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.string({ maxLength: 12 }) }),
);

function apply(text: string, m: Mutation): string {
  switch (m.kind) {
    case 'truncate':
      return text.slice(0, m.at % (text.length + 1));
    case 'flip': {
      if (text.length === 0) return text;
      const at = m.at % text.length;
      return text.slice(0, at) + String.fromCharCode(m.byte) + text.slice(at + 1);
    }
    case 'number': {
      // Replace the which-th run of digits (a value, usually) with a hostile spelling.
      const runs = [...text.matchAll(/\d+/g)];
      if (runs.length === 0) return text;
      const r = runs[m.which % runs.length]!;
      return text.slice(0, r.index) + m.text + text.slice(r.index + r[0].length);
    }
    case 'dropLine':
    case 'dupLine': {
      const lines = text.split('\n');
      const i = m.which % lines.length;
      if (m.kind === 'dropLine') lines.splice(i, 1);
      else lines.splice(i, 0, lines[i]!);
      return lines.join('\n');
    }
    case 'insert': {
      const at = m.at % (text.length + 1);
      return text.slice(0, at) + m.text + text.slice(at);
    }
  }
}

/** A captured file after 1–4 mutations (truncation, byte flips, hostile numbers, lost or doubled lines). */
export function mutatedText(files: readonly string[]): fc.Arbitrary<string> {
  return fc
    .tuple(fc.constantFrom(...files), fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([text, ms]) => ms.reduce(apply, text));
}

/** Arbitrary text: mostly mutated captures, some unrelated strings and raw bytes. */
export function hostileText(files: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: mutatedText(files), weight: 6 },
    { arbitrary: fc.string({ unit: 'binary', maxLength: 200 }), weight: 1 },
    {
      arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
      weight: 1,
    },
    { arbitrary: fc.constantFrom(...files), weight: 1 },
  );
}
