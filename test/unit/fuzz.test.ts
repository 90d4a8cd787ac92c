// The fuzz targets of test/fuzz/ with a fixed seed and a few hundred cases each, so that `npm test`
// is deterministic; `npm run fuzz` runs the same properties ≥ 100k times with a random seed.
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { allTargets } from '../fuzz/targets.ts';

const SEED = 20_261_122;
const RUNS = 300;

describe('fuzz (fixed seed)', () => {
  for (const t of allTargets) {
    it(t.name, () => {
      fc.assert(t.property(), { seed: SEED, numRuns: Math.ceil(RUNS * (t.weight ?? 1)) });
    }, 60_000);
  }
});
