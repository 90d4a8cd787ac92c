// Where a layer's overhead is written (schema version 3, docs/schema.md): the node's totals on
// `strata_overhead`, a VM's and a container's on the entity's own point.
import { OVERHEAD_FIELDS } from '../../processors/overhead/fields.ts';
import type { Point } from '../../schemas/point.ts';

const NAMES = new Map<string, Set<string>>();
for (const f of OVERHEAD_FIELDS) {
  const s = NAMES.get(f.layer) ?? new Set<string>();
  s.add(f.name);
  NAMES.set(f.layer, s);
}

/** The points of `layer` ('node', 'vm', 'container') that carry its overhead fields. */
export function overheadPoints(points: readonly Point[], layer: string): Point[] {
  if (layer === 'node')
    return points.filter((p) => p.measurement === 'strata_overhead' && p.tags.layer === 'node');
  const names = NAMES.get(layer) ?? new Set<string>();
  return points.filter(
    (p) =>
      p.measurement === `strata_${layer}` &&
      !p.tags.device &&
      !p.tags.interface &&
      Object.keys(p.fields).some((k) => names.has(k)),
  );
}
