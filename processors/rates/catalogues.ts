// Every collector's metric catalogue, named, in documentation order. The processor builds its
// rate names from these (naming.ts), `npm run docs` its tables (scripts/docs.ts).
import { CGROUP_METRICS } from '../../collectors/cgroup/metrics.ts';
import { PROC_METRICS } from '../../collectors/host/metrics.ts';
import { VM_METRICS } from '../../collectors/vm/metrics.ts';
import type { MetricSpec } from '../../schemas/catalogue.ts';

export interface NamedCatalogue {
  /** The collector folder (collectors/<collector>/). */
  readonly collector: string;
  readonly metrics: readonly MetricSpec[];
}

export const CATALOGUES: readonly NamedCatalogue[] = [
  { collector: 'host', metrics: PROC_METRICS },
  { collector: 'cgroup', metrics: CGROUP_METRICS },
  { collector: 'vm', metrics: VM_METRICS },
];

export const ALL_CATALOGUES: readonly (readonly MetricSpec[])[] = CATALOGUES.map((c) => c.metrics);
