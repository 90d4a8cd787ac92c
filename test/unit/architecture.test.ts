// The import graph is part of the architecture (README.md, Layout): no cycles anywhere, lib/ and
// schemas/ at the bottom, the pure processing stages (processors/) independent of the runtime that
// delivers them (processor/, sinks/) and of the entry points, collectors independent of what
// happens to their samples. This reads every .ts file of the repository, takes its relative static
// imports, re-exports and dynamic import()s, and fails with the offending chain of files. No
// dependency: the specifiers are found with regular expressions over the source with its comments
// removed, which is enough for this code base's import style (checked below on real files).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(import.meta.dirname, '../..');
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git']);

/** Every .ts file under root, as a path relative to it with forward slashes. */
function listTs(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name) && !e.name.startsWith('.')) out.push(...listTs(root, r));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
      out.push(r);
    }
  }
  return out;
}

/**
 * Removes // and /* comments that start a line (after indentation), so that an import written in
 * a comment is not an edge. Comments after code on the same line are kept: none of them holds an
 * import, and telling them from "//" inside a string would need a tokenizer.
 */
function stripComments(src: string): string {
  return src.replace(/^[ \t]*\/\*[\s\S]*?\*\//gm, '').replace(/^[ \t]*\/\/.*$/gm, '');
}

// `import … from '…'` / `export … from '…'` (also `import type`, over several lines), side-effect
// `import '…'`, and `import('…')` (dynamic, or in a type position).
const STATIC = /^[ \t]*(?:import|export)\b[^;'"`]*?\bfrom\s*(['"])([^'"]+)\1/gm;
const SIDE_EFFECT = /^[ \t]*import\s*(['"])([^'"]+)\1/gm;
const DYNAMIC = /\bimport\(\s*(['"])([^'"]+)\1\s*\)/g;

/** The relative specifiers a source imports, in order of appearance per kind. */
function relativeSpecifiers(src: string): string[] {
  const code = stripComments(src);
  const out: string[] = [];
  for (const re of [STATIC, SIDE_EFFECT, DYNAMIC]) {
    for (const m of code.matchAll(re)) if (m[2]!.startsWith('.')) out.push(m[2]!);
  }
  return out;
}

/** Resolves a relative specifier of `from` to a file of `files` (.ts, .js written for .ts, or a folder's index.ts). */
function resolve(from: string, spec: string, files: ReadonlySet<string>): string | undefined {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, `${base}/index.ts`];
  return candidates.find((c) => files.has(c));
}

interface Graph {
  files: string[];
  edges: Map<string, string[]>;
  /** Relative imports of .ts files that resolve to no file (JSON and other assets are not edges). */
  unresolved: string[];
}

function buildGraph(files: readonly string[], read: (rel: string) => string): Graph {
  const set = new Set(files);
  const edges = new Map<string, string[]>();
  const unresolved: string[] = [];
  for (const f of files) {
    const to: string[] = [];
    for (const spec of relativeSpecifiers(read(f))) {
      const target = resolve(f, spec, set);
      if (target !== undefined) {
        if (!to.includes(target)) to.push(target);
      } else if (
        !/\.(json|mjs|cjs|node)$/.test(spec) &&
        !existsRel(path.posix.join(path.posix.dirname(f), spec))
      ) {
        // JSON, and .js files that exist (bin/), are not part of the .ts graph; anything else is a typo
        if (!unresolved.includes(`${f} imports ${spec}`)) unresolved.push(`${f} imports ${spec}`);
      }
    }
    edges.set(f, to);
  }
  return { files: [...files], edges, unresolved };
}

function existsRel(rel: string): boolean {
  try {
    return statSync(path.join(ROOT, rel)).isFile();
  } catch {
    return false;
  }
}

/**
 * Tarjan's strongly connected components; for each component with a cycle, one cycle through it
 * as a chain "a.ts > b.ts > a.ts".
 */
function findCycles(g: Pick<Graph, 'files' | 'edges'>): string[] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of g.edges.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (g.edges.get(v) ?? []).includes(v)) components.push(comp);
    }
  };
  for (const f of [...g.files].sort()) if (!idx.has(f)) strong(f);

  return components.map((comp) => {
    const inComp = new Set(comp);
    const start = [...comp].sort()[0]!;
    // Breadth-first inside the component from start back to start: the shortest cycle through it.
    const prev = new Map<string, string>();
    const queue = [start];
    const seen = new Set<string>();
    while (queue.length) {
      const v = queue.shift()!;
      for (const w of g.edges.get(v) ?? []) {
        if (!inComp.has(w)) continue;
        if (w === start) {
          const chain = [v];
          for (let p = v; p !== start; ) {
            p = prev.get(p)!;
            chain.unshift(p);
          }
          return [...chain, start].join(' > ');
        }
        if (!seen.has(w)) {
          seen.add(w);
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    return comp.join(' > ');
  });
}

interface Rule {
  /** Files under these top-level folders … */
  from: readonly string[];
  /** … must not reach files under these, directly or through other files. */
  forbidden: readonly string[];
}

const top = (f: string): string => f.split('/')[0]!;

/** For each file under `from`, the shortest import chain to a forbidden folder, if any. */
function violations(g: Pick<Graph, 'files' | 'edges'>, rule: Rule): string[] {
  const out: string[] = [];
  for (const f of [...g.files].sort()) {
    if (!rule.from.includes(top(f))) continue;
    const prev = new Map<string, string>([[f, '']]);
    const queue = [f];
    search: while (queue.length) {
      const v = queue.shift()!;
      for (const w of g.edges.get(v) ?? []) {
        if (prev.has(w)) continue;
        prev.set(w, v);
        if (rule.forbidden.includes(top(w))) {
          const chain = [w];
          for (let p = v; p !== ''; p = prev.get(p)!) chain.unshift(p);
          out.push(chain.join(' > '));
          break search;
        }
        queue.push(w);
      }
    }
  }
  return out;
}

const RULES: Record<string, Rule> = {
  'processors/ (pure stages) imports no runtime, sink or entry point': {
    from: ['processors'],
    forbidden: ['sinks', 'processor', 'agent', 'cli', 'run'],
  },
  'lib/ and schemas/ import nothing above them': {
    from: ['lib', 'schemas'],
    forbidden: ['collectors', 'processors', 'processor', 'sinks', 'agent', 'cli', 'run', 'bench', 'perf'],
  },
  'collectors/ import no processing stage or sink': {
    from: ['collectors'],
    forbidden: ['processors', 'sinks'],
  },
};

const read = (rel: string) => readFileSync(path.join(ROOT, rel), 'utf8');
const FILES = listTs(ROOT);
const GRAPH = buildGraph(FILES, read);

describe('architecture: the import graph', () => {
  it('reads the real imports (multi-line, type-only, re-exports, dynamic)', () => {
    const e = (f: string) => GRAPH.edges.get(f) ?? [];
    // multi-line `import {\n … \n} from './files.ts'`
    expect(e('collectors/cgroup/reader.ts')).toContain('collectors/cgroup/files.ts');
    // `import type { … }`
    expect(e('collectors/cgroup/docker.ts')).toContain('collectors/cgroup/target.ts');
    // `export { … } from`
    expect(e('collectors/cgroup/index.ts')).toContain('collectors/cgroup/mounts.ts');
    // `await import('../run/run.ts')`
    expect(e('cli/run.ts')).toContain('run/run.ts');
    expect(GRAPH.unresolved).toEqual([]);
  });

  it('tsconfig.json includes every folder that holds .ts files', () => {
    // A folder left out is type-checked only through what imports it: a file nothing imports yet
    // (a new script, a test helper) would not be checked at all.
    const include = new Set<string>(JSON.parse(read('tsconfig.json')).include);
    const folders = [...new Set(FILES.filter((f) => f.includes('/')).map(top))].sort();
    expect(folders.length).toBeGreaterThan(10);
    expect(folders.filter((d) => !include.has(d))).toEqual([]);
  });

  it('has no import cycle', () => {
    const cycles = findCycles(GRAPH);
    expect(cycles, `import cycles:\n  ${cycles.join('\n  ')}`).toEqual([]);
  });

  it.each(Object.entries(RULES))('%s', (_name, rule) => {
    const found = violations(GRAPH, rule);
    expect(found, `forbidden imports:\n  ${found.join('\n  ')}`).toEqual([]);
  });

  it('the checks see a cycle and a forbidden chain when there is one', () => {
    // The same functions over a small graph in memory: a cycle reported as a chain, a processors/
    // file reaching sinks/ through lib/.
    const src: Record<string, string> = {
      'processors/a.ts': "import { b } from '../lib/b.ts';\n",
      'lib/b.ts': "// import { x } from './nothing.ts';\nexport { c } from '../sinks/c.ts';\n",
      'sinks/c.ts': "import type {\n  D,\n} from './d.ts';\n",
      // (built so that this file's own text holds no dynamic import of ./c.ts)
      'sinks/d.ts': `export const f = () => ${'import'}('./c.ts');\n`,
    };
    const g = buildGraph(Object.keys(src), (f) => src[f]!);
    expect(findCycles(g)).toEqual(['sinks/c.ts > sinks/d.ts > sinks/c.ts']);
    expect(
      violations(g, RULES['processors/ (pure stages) imports no runtime, sink or entry point']!),
    ).toEqual(['processors/a.ts > lib/b.ts > sinks/c.ts']);
    expect(violations(g, RULES['lib/ and schemas/ import nothing above them']!)).toEqual([
      'lib/b.ts > sinks/c.ts',
    ]);
  });
});
