// A catalogue counter whose rate field is a name the processor writes itself (an identity tag, a
// derived figure) would shadow it on the point. The sample decoder (schemas/sample.ts) checks
// counter names alone and relies on the catalogues being refused at load for this, so that the
// wire format does not depend on the catalogues.
import { describe, expect, it } from 'vitest';
import { CGROUP_METRICS } from '../../collectors/cgroup/metrics.ts';
import { PROC_METRICS } from '../../collectors/host/metrics.ts';
import { VM_METRICS } from '../../collectors/vm/metrics.ts';
import { buildNaming } from '../../processors/rates/naming.ts';
import type { MetricSpec } from '../../schemas/catalogue.ts';
import { COUNTER_FIELD_CLASH } from '../../schemas/sample.ts';

const counter = (name: string, field: string): MetricSpec => ({
  name,
  kind: 'counter',
  unit: '{op}',
  scope: 'entity',
  layers: ['host'],
  sources: { procfs: name },
  description: name,
  rate: { field, unit: '{op}/s', scale: 1, description: field },
});

describe('catalogue rate fields and the names the processor writes', () => {
  it.each(['entity_id', 'node', 'iops', 'interval_seconds'])(
    'refuses a catalogue whose counter has the rate field %s',
    (field) => {
      expect(COUNTER_FIELD_CLASH.has(field)).toBe(true);
      expect(() => buildNaming([[counter('widgets_total', field)]])).toThrow(
        `the rate field of widgets_total, ${field}, is written by the processor itself`,
      );
    },
  );

  it('refuses cpu_cores as the rate of a host or guest counter (summed from the buckets there), accepts it on containers and VMs', () => {
    expect(() => buildNaming([[counter('widgets_usec_total', 'cpu_cores')]])).toThrow(
      'the rate field of widgets_usec_total, cpu_cores, is derived by the processor on host and guest points',
    );
    const containerCpu: MetricSpec = {
      ...counter('widgets_usec_total', 'cpu_cores'),
      layers: ['container', 'vm'],
    };
    expect(buildNaming([[containerCpu]]).rates.get('widgets_usec_total')?.field).toBe('cpu_cores');
  });

  it("accepts the project's catalogues, and a counter's generic rate field clashes with none", () => {
    const naming = buildNaming([PROC_METRICS, CGROUP_METRICS, VM_METRICS]);
    expect(naming.rates.size).toBeGreaterThan(50);
    // Unknown counters get `<name>_per_second`: the decoder can skip the lookup only while no
    // reserved name ends so.
    expect([...COUNTER_FIELD_CLASH].filter((n) => n.endsWith('_per_second'))).toEqual([]);
  });
});
