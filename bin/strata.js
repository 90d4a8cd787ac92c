#!/usr/bin/env node
// The `strata` command. Two ways to run the same code:
//  - from the TypeScript sources through tsx's loader (the default in a clone: no build step
//    between editing and running; tsx caches its transforms, so start-up stays ~0.3 s);
//  - from dist/strata.mjs, the esbuild bundle of `npm run build` (production: no loader thread,
//    ≈ 40 MB less RSS and a few ms less CPU per second; docs/agent.md "Cost").
// The bundle is used when STRATA_BUNDLE=1, or when the sources are absent (a packaged install that
// ships dist/ only). STRATA_BUNDLE=0 forces the sources. A stale dist/ in a clone is never picked
// up by accident: without STRATA_BUNDLE=1 the sources win whenever they are there.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/strata.mjs', import.meta.url);
const sources = new URL('../cli/main.ts', import.meta.url);
const want = process.env.STRATA_BUNDLE;
const useBundle = want === '1' || (want !== '0' && !existsSync(sources));

if (useBundle) {
  if (!existsSync(bundle)) {
    process.stderr.write(
      `strata: STRATA_BUNDLE=1 but ${bundle.pathname} does not exist; run \`npm run build\` first\n`,
    );
    process.exit(2);
  }
  await import(bundle.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
}
