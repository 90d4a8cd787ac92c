// The fields the rates stage writes besides one rate per counter (those come from the metric
// catalogues, naming.ts): figures derived from several counters, and bookkeeping. Declared here
// so that docs/schema.md lists them beside the catalogue's (scripts/docs.ts).
import type { MetricLayer, MetricScope } from '../../schemas/catalogue.ts';

export interface DerivedField {
  readonly name: string;
  readonly unit: string;
  readonly scope: MetricScope;
  readonly layers: readonly MetricLayer[];
  /** How it is computed, in the names of docs/metrics.md and docs/schema.md. */
  readonly formula: string;
  readonly description: string;
}

const ALL: readonly MetricLayer[] = ['host', 'container', 'vm', 'guest'];
const PROC: readonly MetricLayer[] = ['host', 'guest'];

export const DERIVED_FIELDS: readonly DerivedField[] = [
  {
    name: 'interval_seconds',
    unit: 's',
    scope: 'entity',
    layers: ALL,
    formula: 'Δt between this sample and the previous one',
    description: 'The interval the rates of this point cover (rows with rates only)',
  },
  {
    name: 'cpu_cores',
    unit: '{core}',
    scope: 'entity',
    layers: PROC,
    formula:
      'Σ cpu_{user,nice,system,irq,softirq}_cores (containers and VMs: the rate of their CPU-time counter)',
    description: 'CPU in use, in cores',
  },
  {
    name: 'cpu_utilization_ratio',
    unit: '1',
    scope: 'entity',
    layers: PROC,
    formula: 'cpu_cores ÷ Σ cpu_{user,nice,system,irq,softirq,idle,iowait,steal}_cores',
    description: 'Share of CPU time that was work',
  },
  {
    name: 'cpu_steal_ratio',
    unit: '1',
    scope: 'entity',
    layers: PROC,
    formula: 'cpu_steal_cores ÷ the same denominator',
    description: 'Share of CPU time stolen by the hypervisor',
  },
  {
    name: 'cpu_iowait_ratio',
    unit: '1',
    scope: 'entity',
    layers: PROC,
    formula: 'cpu_iowait_cores ÷ the same denominator',
    description: 'Share of CPU time idle with I/O outstanding',
  },
];
