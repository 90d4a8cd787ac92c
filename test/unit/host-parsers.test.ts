// Table tests of the /proc parsers over real files captured from this machine (testdata/capture.sh)
// and deliberately damaged copies (testdata/make-malformed.sh). Expected output sits beside each
// step as expected.json; UPDATE_EXPECTED=1 rewrites them (then review the diff by hand).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { globToRegExp } from '../../collectors/procfs/glob.ts';
import {
  defaultIncludeDisk,
  looksLikePartition,
  type ProcFiles,
  parseDiskstats,
  parseNetDev,
  parsePressure,
  parseProcStat,
  procSampleFromFiles,
} from '../../collectors/procfs/parsers.ts';

const ROOT = new URL('../../testdata/proc/', import.meta.url).pathname;

function loadStep(dir: string): ProcFiles {
  const r = (p: string) => (existsSync(`${dir}/${p}`) ? readFileSync(`${dir}/${p}`, 'latin1') : undefined);
  const files: ProcFiles = {
    stat: r('stat'),
    vmstat: r('vmstat'),
    meminfo: r('meminfo'),
    diskstats: r('diskstats'),
    netdev: r('net/dev'),
    pressure: { cpu: r('pressure/cpu'), io: r('pressure/io'), memory: r('pressure/memory') },
  };
  return files;
}

const cases = readdirSync(ROOT).flatMap((c) =>
  readdirSync(`${ROOT}${c}`)
    .filter((s) => s.startsWith('step'))
    .map((s) => [c, s] as const),
);

describe('procSampleFromFiles on captured /proc snapshots', () => {
  it('has cases to run', () => {
    expect(cases.map(([c, s]) => `${c}/${s}`)).toEqual(
      expect.arrayContaining(['hybrid-host/step0', 'hybrid-host/step1', 'malformed/step0']),
    );
  });

  it.each(cases)('%s/%s matches expected.json', (c, step) => {
    const dir = `${ROOT}${c}/${step}`;
    const got = procSampleFromFiles(loadStep(dir));
    const expectedPath = `${dir}/expected.json`;
    if (process.env.UPDATE_EXPECTED) writeFileSync(expectedPath, `${JSON.stringify(got, null, 2)}\n`);
    expect(got).toEqual(JSON.parse(readFileSync(expectedPath, 'utf8')));
  });

  it('converts the cpu line from USER_HZ ticks to µs and counts cpuN lines (checked against the raw file)', () => {
    const text = readFileSync(`${ROOT}hybrid-host/step0/stat`, 'latin1');
    const lines = text.split('\n');
    const cpu = lines[0]!.split(/\s+/).slice(1).map(Number);
    const got = parseProcStat(text);
    expect(got.counters.cpu_user_usec_total).toBe(cpu[0]! * 10_000);
    expect(got.counters.cpu_idle_usec_total).toBe(cpu[3]! * 10_000);
    expect(got.counters.cpu_steal_usec_total).toBe(cpu[7]! * 10_000);
    expect(got.gauges.cpu_count).toBe(lines.filter((l) => /^cpu\d+ /.test(l)).length);
    const intr = lines.find((l) => l.startsWith('intr '))!.split(' ')[1];
    expect(got.counters.interrupts_total).toBe(Number(intr));
  });

  it('counters of step1 are ≥ step0 (1 s apart on a live machine) and cpu time advanced', () => {
    const a = procSampleFromFiles(loadStep(`${ROOT}hybrid-host/step0`));
    const b = procSampleFromFiles(loadStep(`${ROOT}hybrid-host/step1`));
    for (const [k, v] of Object.entries(a.counters)) expect(b.counters[k], k).toBeGreaterThanOrEqual(v);
    const busy = (s: typeof a) => s.counters.cpu_idle_usec_total! + s.counters.cpu_user_usec_total!;
    expect(busy(b)).toBeGreaterThan(busy(a));
    expect(b.counters.context_switches_total).toBeGreaterThan(a.counters.context_switches_total!);
  });

  it('diskstats: whole disk vda kept, loop* and zram* skipped, sectors → bytes', () => {
    const text = readFileSync(`${ROOT}hybrid-host/step0/diskstats`, 'latin1');
    const devices = parseDiskstats(text);
    expect(Object.keys(devices)).toEqual(['vda']);
    const raw = text
      .split('\n')
      .find((l) => l.includes(' vda '))!
      .trim()
      .split(/\s+/)
      .map(Number);
    expect(devices.vda!.counters.read_bytes_total).toBe(raw[5]! * 512);
    expect(devices.vda!.counters.written_bytes_total).toBe(raw[9]! * 512);
    expect(devices.vda!.gauges!.in_flight_requests).toBe(raw[11]);
    // include everything: loop and zram appear
    expect(Object.keys(parseDiskstats(text, [], () => true))).toContain('zram0');
  });

  it('net/dev: lo excluded by default, included on request', () => {
    const text = readFileSync(`${ROOT}hybrid-host/step0/net/dev`, 'latin1');
    expect(Object.keys(parseNetDev(text))).not.toContain('lo');
    expect(Object.keys(parseNetDev(text, [], () => true))).toContain('lo');
    expect(parseNetDev(text).eth0!.counters.rx_bytes_total).toBeGreaterThan(0);
  });

  it('pressure: some and full totals, not the averages', () => {
    const text = readFileSync(`${ROOT}hybrid-host/step0/pressure/io`, 'latin1');
    expect(text).toMatch(/^some avg10=[\d.]+ avg60=[\d.]+ avg300=[\d.]+ total=\d+\nfull avg10=/);
    const got = parsePressure(text, 'io');
    expect(got.counters).toEqual({
      psi_io_some_usec_total: Number(/^some .* total=(\d+)$/m.exec(text)![1]),
      psi_io_full_usec_total: Number(/^full .* total=(\d+)$/m.exec(text)![1]),
    });
    expect(got.gauges).toEqual({});
  });

  it('malformed files: every damaged part is named in problems and the rest still parses', () => {
    const got = procSampleFromFiles(loadStep(`${ROOT}malformed/step0`));
    expect(got.problems).toEqual([
      'stat line 1: cpu line has 2 numeric fields, expected ≥4',
      'stat line 5: context_switches_total: not a number',
      'vmstat: missing pgfault, pgmajfault, pswpin, pswpout',
      'meminfo: missing MemAvailable',
      expect.stringMatching(/^diskstats line \d+: expected ≥14 fields, got 5$/),
      expect.stringMatching(/^net\/dev line \d+: eth0: field 1 is not a number$/),
      'pressure/cpu line 1: missing total=',
      'pressure/io: empty file',
    ]);
    expect(got.counters.processes_forked_total).toBeGreaterThan(0);
    expect(got.gauges.memory_total_bytes).toBeGreaterThan(0);
    expect(Object.keys(got.devices)).toEqual(['vda']);
    expect(got.interfaces.eth0).toBeUndefined();
    expect(got.counters.psi_memory_some_usec_total).toBeDefined();
  });
});

describe('disk name heuristics (guest files, no /sys)', () => {
  it.each([
    ['sda', true],
    ['sda1', false],
    ['vda', true],
    ['vdb3', false],
    ['xvda1', false],
    ['nvme0n1', true],
    ['nvme0n1p1', false],
    ['mmcblk0', true],
    ['mmcblk0p2', false],
    ['loop0', false],
    ['ram0', false],
    ['zram0', false],
    ['dm-0', false],
    ['md0', true],
    ['sr0', true],
  ] as const)('%s → %s', (name, included) => {
    expect(defaultIncludeDisk(name)).toBe(included);
  });

  it('looksLikePartition ignores names without trailing digits', () => {
    expect(looksLikePartition('sdaa')).toBe(false);
    expect(looksLikePartition('sdaa12')).toBe(true);
  });
});

describe('globToRegExp', () => {
  it.each([
    ['/strata-test/*', '/strata-test/a', true],
    ['/strata-test/*', '/strata-test/a/b', false],
    ['/strata-test/**', '/strata-test/a/b', true],
    ['sd?', 'sdb', true],
    ['sd[ab]', 'sdc', false],
    ['eth.0', 'eth00', false],
  ] as const)('%s vs %s → %s', (glob, name, match) => {
    expect(globToRegExp(glob).test(name)).toBe(match);
  });
});
