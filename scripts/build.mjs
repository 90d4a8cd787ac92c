// `npm run build`: bundles the CLI (cli/main.ts and everything it imports from this repository)
// into dist/strata.mjs with esbuild, for production: plain node loads one file instead of running
// every TypeScript module through tsx's loader (a second V8 isolate, ≈ 40 MB RSS and a few ms of
// CPU per second; see docs/agent.md "Cost"). node_modules stay external: they are plain JS that
// node loads natively, and pino/kafkajs resolve their own files at run time.
//
// Source files that find assets next to themselves through import.meta.url (stack/install-apt.sh,
// the QEMU guest files, package.json) get import.meta.url rewritten to their source location
// relative to the bundle, so dist/strata.mjs finds the same files as the sources do (dist/ sits
// one level below the repository root, like cli/, agent/...).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outfile = path.join(root, 'dist/strata.mjs');

const sourceUrl = {
  name: 'source-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      let text = await readFile(args.path, 'utf8');
      if (text.includes('import.meta.url')) {
        const rel = path.relative(path.dirname(outfile), args.path).split(path.sep).join('/');
        text = text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`);
      }
      return { contents: text, loader: 'ts' };
    });
  },
};

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ['cli/main.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  sourcemap: 'linked',
  legalComments: 'none',
  metafile: true,
  plugins: [sourceUrl],
  logLevel: 'warning',
});
const bytes = Object.values(result.metafile.outputs).find((o) => o.entryPoint)?.bytes ?? 0;
process.stdout.write(`dist/strata.mjs: ${(bytes / 1024).toFixed(0)} KB\n`);
