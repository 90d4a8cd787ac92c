// The container catalogue (collectors/cgroup/metrics.ts) and the file table (files.ts): every name a
// captured cgroup tree produces is declared, with its kind and scope; every field of the file table
// is named in its entry's sources; the rate fields are those the processor's suffix rules gave;
// docs/metrics.md's container section names the same metrics.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CGROUP_FILES } from '../../collectors/cgroup/files.ts';
import { CgroupCollector, parseCgroupConfig } from '../../collectors/cgroup/index.ts';
import { CGROUP_METRICS } from '../../collectors/cgroup/metrics.ts';
import { type DeviceCounters, parseBlkioRw, parseIoStat } from '../../collectors/cgroup/parsers.ts';
import { PSI_NAMES } from '../../collectors/procfs/parsers.ts';
import type { EntitySample } from '../../schemas/sample.ts';

const ROOT = new URL('../../testdata/cgroup/', import.meta.url).pathname;
const byName = new Map(CGROUP_METRICS.map((m) => [m.name, m]));

/**
 * The processor's rate naming as suffix rules (before it read the catalogues): the catalogue keeps
 * these field names and scales, so no InfluxDB field of strata_container changes name or unit.
 */
function suffixRule(counter: string): { field: string | null; scale: number } {
  const base = counter.slice(0, -'_total'.length);
  if (base.endsWith('_usec')) {
    const b = base.slice(0, -'_usec'.length);
    if (b.startsWith('psi_')) return { field: `${b}_stall_ratio`, scale: 1e-6 };
    if (b.startsWith('cpu_') || b === 'vcpu') return { field: `${b}_cores`, scale: 1e-6 };
    return { field: `${b}_seconds_per_second`, scale: 1e-6 };
  }
  if (base.endsWith('_completed')) {
    const ops = base.slice(0, -'_completed'.length);
    const op = ops.endsWith('hes') ? ops.slice(0, -2) : ops.endsWith('s') ? ops.slice(0, -1) : ops;
    return { field: `${op}_iops`, scale: 1 };
  }
  return { field: `${base}_per_second`, scale: 1 };
}

async function collect(dir: string, kernelRelease?: string): Promise<EntitySample[]> {
  const c = new CgroupCollector(
    parseCgroupConfig({ include: ['/strata-*', '/strata-test/*'], docker: { enabled: false } }),
    {
      nodeId: 'node-1',
      paths: { proc: `${dir}/proc`, sys: `${dir}/sys`, cgroup: `${dir}/sys/fs/cgroup` },
      mountinfo: readFileSync(`${dir}/proc/self/mountinfo`, 'utf8'),
      ...(kernelRelease ? { kernelRelease } : {}),
    },
  );
  await c.start();
  const samples: EntitySample[] = [];
  await c.gather({ add: (s) => samples.push(s), error: () => {} });
  await c.shutdown();
  return samples;
}

describe('container metric catalogue', () => {
  it('declares each name once, counters as _total with a rate, gauges without', () => {
    expect(byName.size).toBe(CGROUP_METRICS.length);
    for (const m of CGROUP_METRICS) {
      expect(m.layers, m.name).toEqual(['container']);
      expect(m.description.length, m.name).toBeGreaterThan(0);
      expect(Object.keys(m.sources).length, m.name).toBeGreaterThan(0);
      if (m.kind === 'counter') {
        expect(m.name.endsWith('_total'), m.name).toBe(true);
        expect(m.rate, m.name).toBeTruthy();
      } else {
        expect(m.name.endsWith('_total'), m.name).toBe(false);
        expect(m.rate, m.name).toBeUndefined();
      }
    }
  });

  it('gives every counter the rate field and scale of the suffix rules', () => {
    const counters = CGROUP_METRICS.filter((m) => m.kind === 'counter');
    expect(counters.length).toBe(28); // 6 CPU, 2 page faults, 6 PSI, 6 per device, 8 per interface
    for (const m of counters) {
      // Schema version 3: the CPU-time counter's rate is `cpu_cores`, the name every layer's CPU has.
      const rule =
        m.name === 'cpu_usage_usec_total' ? { field: 'cpu_cores', scale: 1e-6 } : suffixRule(m.name);
      expect({ field: m.rate?.field, scale: m.rate?.scale }, m.name).toEqual(rule);
    }
  });

  it('names every field of the file table in its entry, for that cgroup version', () => {
    let fields = 0;
    for (const f of CGROUP_FILES) {
      for (const x of f.fields) {
        expect(byName.get(x.metric.name), x.metric.name).toBe(x.metric);
        const source = x.metric.sources[`cgroup ${f.version}`];
        expect(source, `${f.file} ${x.key}`).toBeDefined();
        expect(source, `${f.file} ${x.key}`).toContain(f.file);
        for (const word of x.key.split(' ').filter(Boolean))
          expect(source, `${f.file} ${x.key}`).toContain(word);
        if (x.factor !== undefined) expect(source, `${f.file} ${x.key}`).toMatch(/[÷×]/);
        fields++;
      }
    }
    expect(fields).toBe(42);
  });

  it('PSI names are the ones the shared pressure parser writes (the string fallback): the totals, no average', () => {
    for (const r of ['cpu', 'io', 'memory'] as const) {
      for (const k of ['some', 'full'] as const) expect(byName.get(PSI_NAMES[r][k])?.kind).toBe('counter');
    }
    expect(CGROUP_METRICS.filter((m) => m.name.startsWith('psi_')).map((m) => m.kind)).toEqual(
      Array(6).fill('counter'),
    );
  });

  it.each([
    ['v2-tcg-dd', undefined],
    ['v1-tcg-dd', '6.1.0-57-cloud-amd64'],
    ['hybrid-dd', '6.1.0-57-cloud-amd64'],
    ['hybrid-dd-as-v1', '6.1.0-57-cloud-amd64'],
  ])('every name a captured %s tree produces is declared, with its kind and scope', async (tree, kernel) => {
    const seen = new Set<string>();
    for (const step of ['step0', 'step1']) {
      const samples = await collect(`${ROOT}${tree}/${step}`, kernel);
      expect(samples.length).toBeGreaterThan(0);
      for (const s of samples) {
        const check = (names: Record<string, number>, kind: string, scope: string) => {
          for (const n in names) {
            expect({ n, kind: byName.get(n)?.kind, scope: byName.get(n)?.scope }).toEqual({ n, kind, scope });
            seen.add(n);
          }
        };
        check(s.counters, 'counter', 'entity');
        check(s.gauges, 'gauge', 'entity');
        for (const d of Object.values(s.devices ?? {})) check(d.counters ?? {}, 'counter', 'device');
        for (const i of Object.values(s.interfaces ?? {})) check(i.counters ?? {}, 'counter', 'interface');
      }
    }
    expect(seen.has('cpu_usage_usec_total')).toBe(true);
    expect(seen.has('memory_usage_bytes')).toBe(true);
  });

  it("matches docs/metrics.md's container section", () => {
    const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    const start = doc.indexOf('## Layer `container`');
    const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
    const documented = new Set<string>();
    for (const [, name] of section.matchAll(/`([a-z0-9_<>]+_(?:total|bytes|pct))`/g)) {
      if (name!.includes('<res>'))
        for (const r of ['cpu', 'io', 'memory']) documented.add(name!.replace('<res>', r));
      else documented.add(name!);
    }
    // Interfaces: "same names as the host's" in the docs, declared here for the container layer.
    const declared = CGROUP_METRICS.filter((m) => m.scope !== 'interface').map((m) => m.name);
    expect([...documented].sort()).toEqual(declared.sort());
  });

  it('a file key named like an Object.prototype member is no metric (io.stat, blkio)', () => {
    const problems: string[] = [];
    const io = parseIoStat('8:0 rbytes=1 constructor=5 __proto__=3 toString=2\n', problems);
    expect(Object.keys(io['8:0']!)).toEqual(['read_bytes_total']);
    const blkio: DeviceCounters = {};
    parseBlkioRw('8:0 Read 1\n8:0 constructor 5\n8:0 __proto__ 4\nTotal 10\n', 'ops', blkio, problems, 'x');
    expect(Object.keys(blkio['8:0']!)).toEqual(['reads_completed_total']);
    expect(problems).toEqual([]);
  });
});
