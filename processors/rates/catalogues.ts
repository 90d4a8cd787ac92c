// Every collector's metric catalogue, named, in documentation order. The processor builds its
// rate names from these (naming.ts), `npm run docs` its tables (scripts/docs.ts).
import { PROC_METRICS } from '../../collectors/host/metrics.ts';
import { VM_METRICS } from '../../collectors/vm/metrics.ts';
import type { MetricSpec } from '../../schemas/catalogue.ts';

/**
 * Container counters whose rate is not the generic `<base>_per_second` and that no other
 * catalogue declares, until the cgroup collector's own catalogue is listed here.
 */
const CONTAINER_PENDING: readonly MetricSpec[] = [
  {
    name: 'cpu_throttled_usec_total',
    kind: 'counter',
    unit: 'us',
    scope: 'entity',
    layers: ['container'],
    sources: { 'cgroup v2': 'cpu.stat throttled_usec', 'cgroup v1': 'cpu.stat throttled_time (ns ÷ 1000)' },
    description: 'Time the container was throttled by its CPU quota',
    rate: {
      field: 'cpu_throttled_cores',
      unit: '{core}',
      scale: 1e-6,
      description: 'Throttled CPU seconds per second',
    },
  },
];

export interface NamedCatalogue {
  /** The collector folder (collectors/<collector>/). */
  readonly collector: string;
  readonly metrics: readonly MetricSpec[];
}

export const CATALOGUES: readonly NamedCatalogue[] = [
  { collector: 'host', metrics: PROC_METRICS },
  { collector: 'vm', metrics: VM_METRICS },
];

export const ALL_CATALOGUES: readonly (readonly MetricSpec[])[] = [
  ...CATALOGUES.map((c) => c.metrics),
  CONTAINER_PENDING,
];
