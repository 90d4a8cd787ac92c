// The metric documentation is generated from the catalogues (scripts/docs.ts): the committed files
// must be what the code generates, so a counter added to a catalogue without `npm run docs`, or a
// hand edit of a generated part, fails here. Also the processor's naming built from the same
// catalogues: catalogue rates, the generic rule for unknown names, and disagreeing catalogues.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CGROUP_METRICS } from '../../collectors/cgroup/metrics.ts';
import { OOM_KILLS, PROC_METRICS } from '../../collectors/host/metrics.ts';
import { VM_METRICS } from '../../collectors/vm/metrics.ts';
import { buildNaming, computeRateSpec, LATENCIES } from '../../processors/rates/naming.ts';
import { generateDocs } from '../../scripts/docs.ts';

const ROOT = path.join(import.meta.dirname, '../..');
const read = (rel: string) => readFileSync(path.join(ROOT, rel), 'utf8');

describe('generated docs', () => {
  const generated = generateDocs(read);

  it('covers docs/metrics.md, docs/schema.md and the collector READMEs', () => {
    expect([...generated.keys()].sort()).toEqual([
      'collectors/cgroup/README.md',
      'collectors/guest/README.md',
      'collectors/host/README.md',
      'collectors/vm/README.md',
      'docs/metrics.md',
      'docs/schema.md',
    ]);
  });

  it.each([...generateDocs(read).keys()])('%s is what `npm run docs` generates', (rel) => {
    expect(read(rel), `${rel} is stale: run npm run docs`).toBe(generated.get(rel));
  });

  it('every catalogue entry is documented in docs/metrics.md, every rate field in docs/schema.md', () => {
    const metrics = read('docs/metrics.md');
    const schema = read('docs/schema.md');
    for (const m of [...PROC_METRICS, ...CGROUP_METRICS, ...VM_METRICS]) {
      // Container interfaces are documented as "the host's names".
      if (m.layers.includes('container') && m.scope === 'interface') continue;
      expect(metrics, m.name).toContain(`\`${m.name}\``);
      if (m.rate) expect(schema, m.rate.field).toContain(`\`${m.rate.field}\``);
    }
  });
});

describe('rate names from the catalogues', () => {
  it('a catalogue counter gets its entry’s field and scale (oom_kill, /proc/vmstat)', () => {
    expect(computeRateSpec(OOM_KILLS.name)).toEqual({ field: 'oom_kills_per_second', scale: 1 });
    expect(computeRateSpec('psi_io_some_usec_total')).toEqual({
      field: 'psi_io_some_stall_ratio',
      scale: 1e-6,
    });
    expect(computeRateSpec('io_time_ms_total')).toEqual({ field: 'utilization_ratio', scale: 1e-3 });
  });

  it('a counter no catalogue declares keeps the generic <base>_per_second', () => {
    expect(computeRateSpec('frobs_usec_total')).toEqual({ field: 'frobs_usec_per_second', scale: 1 });
    expect(computeRateSpec('widgets')).toEqual({ field: 'widgets_per_second', scale: 1 });
  });

  it('latency pairs come from the catalogues: ms on the host, ns from QMP', () => {
    const read = LATENCIES.filter((l) => l.field === 'read_latency_ms_per_op');
    expect(read.map((l) => [l.time, l.ops, l.toMs]).sort()).toEqual([
      ['read_time_ms_total', 'reads_completed_total', 1],
      ['read_time_ns_total', 'reads_completed_total', 1e-6],
    ]);
  });

  it('two catalogues giving one wire name different rates is refused at load', () => {
    const a = PROC_METRICS.find((m) => m.name === 'page_faults_total')!;
    const b = { ...a, rate: { ...a.rate!, field: 'faults_per_second' } };
    expect(() => buildNaming([[a], [b]])).toThrow(/disagree on the rate of page_faults_total/);
  });
});
