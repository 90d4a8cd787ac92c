// `npm run fuzz`: every target of test/fuzz/targets.ts with a random seed and ≥ 100k cases
// (times the target's weight), printing the seed and each target's cases and cases/s. On a
// failure it prints fast-check's report (seed, path, shrunk counterexample) and exits 1; rerun one
// target with the same seed: `npm run fuzz -- --seed N --only 'proc: stat'`.
//   --runs N     cases per target (default 100000)
//   --seed N     fixed seed (default random)
//   --only TEXT  targets whose name contains TEXT
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { allTargets } from './targets.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string' }, seed: { type: 'string' }, only: { type: 'string' } },
});
const runs = Number(values.runs ?? 100_000);
const seed = values.seed !== undefined ? Number(values.seed) : (Math.random() * 2 ** 31) | 0;
const targets = allTargets.filter((t) => values.only === undefined || t.name.includes(values.only));
console.log(`fuzz: seed ${seed}, ${runs} cases per target, ${targets.length} targets`);

let failed = 0;
for (const t of targets) {
  const numRuns = Math.ceil(runs * (t.weight ?? 1));
  const start = process.hrtime.bigint();
  const details = fc.check(t.property() as fc.IRawProperty<unknown[], false>, { seed, numRuns });
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  const cases = details.numRuns;
  const rate = Math.round(cases / s);
  if (details.failed) {
    failed++;
    console.log(`FAIL ${t.name}: after ${cases} cases (${s.toFixed(1)} s)`);
    try {
      fc.assert(t.property(), {
        seed,
        numRuns,
        path: details.counterexamplePath ?? undefined,
        endOnFailure: true,
      });
    } catch (err) {
      console.log(String((err as Error).message));
      const cause = (err as Error).cause;
      if (cause)
        console.log(`cause: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`);
    }
  } else {
    console.log(`ok   ${t.name}: ${cases} cases, ${s.toFixed(1)} s, ${rate} cases/s`);
  }
}
console.log(
  failed
    ? `fuzz: ${failed} target(s) failed (seed ${seed})`
    : `fuzz: all ${targets.length} targets passed (seed ${seed})`,
);
process.exit(failed ? 1 : 0);
