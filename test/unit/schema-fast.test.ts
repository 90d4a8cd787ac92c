// The hand-written fast path of the sample schema (fastSampleMessage) must agree with zod, the
// definition: same verdict, same parsed message, same rejection reason. Checked on every recorded
// message under testdata/ and on mutations of them at every level (missing, extra, mistyped and
// out-of-range values, bad keys, `__proto__` keys).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  type DecodeResult,
  fastSampleMessage,
  formatIssues,
  SampleMessage,
  SCHEMA_VERSION,
  validateSampleMessage,
} from '../../schemas/sample.ts';

const testdata = path.join(import.meta.dirname, '../../testdata');

function ndjsonFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...ndjsonFiles(p));
    else if (e.name.endsWith('.ndjson') || e.name.endsWith('.ndjson.gz')) out.push(p);
  }
  return out.sort();
}

function lines(file: string): string[] {
  const raw = fs.readFileSync(file);
  const text = file.endsWith('.gz') ? zlib.gunzipSync(raw).toString('utf8') : raw.toString('utf8');
  return text.split('\n').filter((l) => l.trim() !== '');
}

/** What validateSampleMessage returned before the fast path: zod alone. */
function zodOnly(json: unknown): DecodeResult {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, code: 'schema', reason: 'message is not a JSON object' };
  }
  const version = (json as { v?: unknown }).v;
  if (version !== SCHEMA_VERSION) {
    return {
      ok: false,
      code: 'schema_version',
      reason: `v: unsupported schema version ${JSON.stringify(version)} (this build reads ${SCHEMA_VERSION})`,
    };
  }
  const parsed = SampleMessage.safeParse(json);
  if (parsed.success) return { ok: true, message: parsed.data };
  return { ok: false, code: 'schema', reason: formatIssues(parsed.error.issues) };
}

/** Fast path and zod on the same text; returns whether the fast path took it. */
function agree(text: string): boolean {
  const want = zodOnly(JSON.parse(text));
  const fast = fastSampleMessage(JSON.parse(text));
  if (!want.ok) expect(fast, text).toBeUndefined();
  else if (fast !== undefined) expect(fast, text).toEqual(want.message);
  expect(validateSampleMessage(JSON.parse(text)), text).toEqual(want);
  return fast !== undefined;
}

const files = ndjsonFiles(testdata).filter((f) => {
  // Only files of sample messages (testdata also holds other captures).
  const first = lines(f)[0];
  try {
    const j = JSON.parse(first ?? '');
    return typeof j === 'object' && j !== null && 'samples' in j;
  } catch {
    return false;
  }
});

/** A message using every optional part of the schema (devices, interfaces, parent, ts, no defaults). */
const full = {
  v: 1,
  node: { id: 'n1', hostname: 'n1' },
  ts: 1_795_322_727_000,
  interval_ms: 1000,
  seq: 3,
  agent: { version: '0.1.0', run_id: 'r1' },
  samples: [
    {
      entity: { layer: 'container', kind: 'docker', id: 'c1', name: '', parent: { layer: 'host', id: 'n1' } },
      ts: 1_795_322_727_001,
      counters: { cpu_usage_usec_total: 12, page_faults_total: 0 },
      devices: { vda: { counters: { reads_completed_total: 5 }, gauges: { queue_depth: -1.5 } } },
      interfaces: { eth0: { counters: { rx_bytes_total: 7 } } },
    },
    {
      entity: { layer: 'guest', kind: 'guest-agent', id: 'g1', name: 'g', labels: { vm_name: 'v' } },
      counters: {},
      gauges: { memory_usage_bytes: 1e7 },
    },
  ],
};

const MARK = '__mark_proto__';
const REPLACEMENTS: unknown[] = [null, 'x', '', -1, -0, 0, 1.5, 2 ** 53, 2 ** 60, 1e308, true, [], {}];

/** Every path to mutate: all keys of small objects, the first few of large records and arrays. */
function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(at);
  if (Array.isArray(v)) {
    for (let i = 0; i < Math.min(2, v.length); i++) paths(v[i], [...at, i], out);
  } else if (typeof v === 'object' && v !== null)
    for (const k of Object.keys(v).slice(0, 6)) paths((v as Record<string, unknown>)[k], [...at, k], out);
  return out;
}

function mutations(base: unknown): string[] {
  const out: string[] = [];
  const text = JSON.stringify(base);
  for (const p of paths(base)) {
    const edit = (f: (parent: Record<string, unknown>, key: string | number, obj: unknown) => void) => {
      const clone = JSON.parse(text);
      let parent: Record<string, unknown> = { root: clone };
      let key: string | number = 'root';
      for (const k of p) {
        parent = parent[key] as Record<string, unknown>;
        key = k;
      }
      f(parent, key, parent[key]);
      out.push(JSON.stringify(parent.root ?? clone).replace(`"${MARK}"`, '"__proto__"'));
    };
    if (p.length > 0) edit((parent, key) => delete parent[key]);
    for (const r of REPLACEMENTS) edit((parent, key) => (parent[key] = r));
    edit((_parent, _key, obj) => {
      if (typeof obj === 'object' && obj !== null && !Array.isArray(obj)) {
        const o = obj as Record<string, unknown>;
        o.zz_extra = 1;
      }
    });
    for (const [k, v] of [
      ['Bad-Key', 1],
      ['', 1],
      [MARK, 1],
      [MARK, 'x'],
      ['ok_name', 'x'],
      ['ok_name', -2],
    ] as const) {
      edit((_parent, _key, obj) => {
        if (typeof obj === 'object' && obj !== null && !Array.isArray(obj))
          (obj as Record<string, unknown>)[k] = v;
      });
    }
  }
  return out;
}

describe('fastSampleMessage agrees with the zod schema', () => {
  it('finds the recorded messages', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });

  for (const f of files) {
    it(`every message of ${path.relative(testdata, f)}: same result, and the fast path takes the valid ones`, () => {
      for (const l of lines(f)) {
        const valid = zodOnly(JSON.parse(l)).ok;
        expect(agree(l)).toBe(valid);
      }
    });
  }

  it('a message using every optional part, and its defaults', () => {
    expect(agree(JSON.stringify(full))).toBe(true);
    const r = validateSampleMessage(JSON.parse(JSON.stringify(full)));
    expect(r.ok && r.message.node.labels).toEqual({});
    expect(r.ok && r.message.samples[0]?.entity.labels).toEqual({});
    expect(r.ok && r.message.samples[0]?.gauges).toEqual({});
  });

  const bases: [string, unknown][] = [
    ['full', full],
    ...files.slice(0, 2).map((f) => {
      const m = JSON.parse(lines(f)[0] as string);
      m.samples = m.samples.slice(0, 1);
      return [path.relative(testdata, f), m] as [string, unknown];
    }),
  ];
  for (const [name, base] of bases) {
    it(`mutations of ${name}: same verdict, message and reason`, () => {
      const ms = mutations(base);
      expect(ms.length).toBeGreaterThan(100);
      let rejected = 0;
      for (const m of ms) {
        agree(m);
        if (!zodOnly(JSON.parse(m)).ok) rejected++;
      }
      expect(rejected).toBeGreaterThan(ms.length / 3);
    });
  }
});
