// The cgroup collector parses files from the read Buffer (collectors/cgroup/bytes.ts) and falls back
// to the string parsers on irregular content. Both must give the same values in the same key order
// (the message is JSON: key order is bytes on the wire): every captured file of testdata/cgroup and
// malformed variants are parsed both ways here.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  blkioBytes,
  flatKeyedBytes,
  keyedTable,
  pressureBytes,
  singleBytes,
} from '../../collectors/cgroup/bytes.ts';
import {
  type DeviceCounters,
  parseBlkioRw,
  parseFlatKeyed,
  parseSingle,
  V1_CPU_STAT,
  V1_CPU_STAT_FACTOR,
  V1_CPUACCT_FACTOR,
  V1_CPUACCT_STAT,
  V1_MEMORY_STAT_COUNTERS,
  V1_MEMORY_STAT_GAUGES,
  V2_CPU_STAT,
  V2_MEMORY_STAT_COUNTERS,
  V2_MEMORY_STAT_GAUGES,
} from '../../collectors/cgroup/parsers.ts';
import { PSI_NAMES, parsePressure } from '../../collectors/procfs/parsers.ts';

const ROOT = new URL('../../testdata/cgroup', import.meta.url).pathname;

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = `${dir}/${name}`;
    if (statSync(p).isDirectory()) files(p, out);
    else out.push(p);
  }
  return out;
}

const captured = files(ROOT);
const named = (re: RegExp) => captured.filter((p) => re.test(p)).map((p) => readFileSync(p, 'latin1'));

/** Irregular variants of a file: each must either parse like the string parser or be declined. */
function variants(text: string): string[] {
  return [
    text,
    text.trimEnd(),
    `${text}\n`,
    text.replace(/ /g, '  '),
    text.replace(/\d+/, 'x'),
    text.replace(/\d+/, '-5'),
    text.replace(/\n/, '\n\n'),
    text.replace(/\d+/, '123456789012345678901'),
    text.replace(/(\d)\.(\d)/, '$1.$2e3'),
    '',
    '\n',
    'garbage\n',
  ];
}

const buf = (s: string) => Buffer.from(`${s}\u0000padding`, 'latin1');

describe('cgroup byte parsers = string parsers', () => {
  it('flat keyed files (cpu.stat, cpuacct.stat, memory.stat)', () => {
    const tables = [
      { re: /unified\/.*cpu\.stat$/, specs: [{ wanted: V2_CPU_STAT }] },
      { re: /\/cpu\/.*cpu\.stat$/, specs: [{ wanted: V1_CPU_STAT, factor: V1_CPU_STAT_FACTOR }] },
      { re: /cpuacct\.stat$/, specs: [{ wanted: V1_CPUACCT_STAT, factor: V1_CPUACCT_FACTOR }] },
      {
        re: /\/memory\/.*memory\.stat$/,
        specs: [{ wanted: V1_MEMORY_STAT_COUNTERS }, { wanted: V1_MEMORY_STAT_GAUGES }],
      },
      {
        re: /memory\.stat$/,
        specs: [{ wanted: V2_MEMORY_STAT_COUNTERS }, { wanted: V2_MEMORY_STAT_GAUGES }],
      },
    ];
    let fast = 0;
    for (const { re, specs } of tables) {
      const texts = named(re);
      expect(texts.length).toBeGreaterThan(0);
      const table = keyedTable(specs);
      for (const text of texts.flatMap(variants)) {
        const a0: Record<string, number> = {};
        const a1: Record<string, number> = {};
        const b0: Record<string, number> = {};
        const b1: Record<string, number> = {};
        const b = buf(text);
        const problems: string[] = [];
        if (flatKeyedBytes(b, Buffer.byteLength(text, 'latin1'), table, a0, a1)) {
          fast++;
          parseFlatKeyed(
            text,
            'f',
            [{ ...specs[0]!, into: b0 }, ...(specs[1] ? [{ ...specs[1], into: b1 }] : [])],
            problems,
          );
          expect(problems).toEqual([]);
          expect(JSON.stringify([a0, a1])).toBe(JSON.stringify([b0, b1]));
        }
      }
    }
    expect(fast).toBeGreaterThan(20);
  });

  it('single-number files', () => {
    for (const text of named(/(cpuacct\.usage|memory\.usage_in_bytes|memory\.current|cfs_quota_us)$/).flatMap(
      variants,
    )) {
      const v = singleBytes(buf(text), text.length);
      if (v !== undefined) expect(Object.is(v, parseSingle(text))).toBe(true);
    }
    expect(singleBytes(buf('-1\n'), 3)).toBe(-1);
    expect(singleBytes(buf('max\n'), 4)).toBeUndefined();
  });

  it('PSI files', () => {
    let fast = 0;
    for (const r of ['cpu', 'io', 'memory'] as const) {
      const names = [PSI_NAMES[r].some, PSI_NAMES[r].full] as const;
      for (const text of [
        ...named(new RegExp(`/${r}\\.pressure$`)),
        'some avg10=12.34 avg60=0.00 avg300=0.00 total=98765432109876543\nfull avg10=99.99 avg60=1.00 avg300=0.00 total=5\n',
      ].flatMap(variants)) {
        const a = { counters: {} as Record<string, number>, gauges: {} as Record<string, number> };
        if (pressureBytes(buf(text), text.length, names, a.counters)) {
          fast++;
          const problems: string[] = [];
          const b = parsePressure(text, r, problems);
          expect(problems).toEqual([]);
          expect(JSON.stringify(a)).toBe(JSON.stringify(b));
        }
      }
    }
    expect(fast).toBeGreaterThan(5);
  });

  it('blkio files, also when the byte parser gives up midway and the string parser takes over', () => {
    const names = ['read_bytes_total', 'written_bytes_total', 'discarded_bytes_total'] as const;
    for (const text of [
      ...named(/blkio\.throttle\.io_service/),
      '8:0 Read 10\n8:0 Write 20\n8:0 Sync 5\n8:0 Async 25\n8:0 Discard 0\n8:0 Total 30\n8:16 Read 1\n8:16 Write 2\n8:16 Discard 3\nTotal 36\n',
      '8:0 Read 10\n8:16 Write 2\n8:0 Write x\n8:0 Discard 4\nTotal 16\n',
    ].flatMap(variants)) {
      const a: DeviceCounters = {};
      const problemsA: string[] = [];
      if (!blkioBytes(buf(text), text.length, names, a)) parseBlkioRw(text, 'bytes', a, problemsA, 'f');
      const b: DeviceCounters = {};
      const problemsB: string[] = [];
      parseBlkioRw(text, 'bytes', b, problemsB, 'f');
      expect(JSON.stringify(a)).toBe(JSON.stringify(b));
      expect(problemsA).toEqual(problemsB);
    }
  });
});
