// The vm collector's parsers (collectors/vm/parsers.ts) and the QMP client's line parsing
// (collectors/vm/qmp.ts parseQmpLine) on mutated captures (testdata/qmp, testdata/vm) and on
// arbitrary JSON and text: never an exception, finite numbers, counters ≥ 0, names that are strings.
import fc from 'fast-check';
import {
  balloonGuestStats,
  blockImageFiles,
  blockstatsDevices,
  findBalloonPath,
  nonZeroUuid,
  parsePidStat,
  parseQemuCmdline,
  parseStatusRssBytes,
  parseTunFdinfo,
  pidStatCounters,
  processCgroupPath,
  threadUsec,
  vcpuThreadIds,
} from '../../collectors/vm/parsers.ts';
import { parseQmpLine } from '../../collectors/vm/qmp.ts';
import {
  capturedFiles,
  checkMetricNames,
  checkNumbers,
  type FuzzTarget,
  hostileText,
  mutatedText,
} from './harness.ts';

const jsonl = capturedFiles('qmp', (p) => p.endsWith('.jsonl')).flatMap((t) => t.split('\n').filter(Boolean));
/** The `return` values QEMU sent in the captured sessions. */
const replies: unknown[] = jsonl.map((l) => JSON.parse(l) as { return?: unknown }).map((m) => m.return);

/** Every node of a JSON value, depth first, with a setter. */
function nodes(root: { v: unknown }): ((x: unknown) => void)[] {
  const out: ((x: unknown) => void)[] = [(x) => (root.v = x)];
  const walk = (v: unknown) => {
    if (v === null || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      out.push((x) => (o[k] = x));
      walk(o[k]);
    }
  };
  walk(root.v);
  return out;
}

/** A captured reply with some of its subtrees replaced by arbitrary JSON (or hostile numbers). */
const mutatedReply: fc.Arbitrary<unknown> = fc
  .tuple(
    fc.constantFrom(...replies),
    fc.array(
      fc.tuple(
        fc.nat(),
        fc.oneof(
          fc.jsonValue({ maxDepth: 2 }),
          fc.constantFrom(-1, 2 ** 64, 1e308, -0, 0.5, '__proto__', 'constructor', '', null, [], {}),
        ),
      ),
      { minLength: 1, maxLength: 4 },
    ),
  )
  .map(([reply, edits]) => {
    const root = { v: structuredClone(reply) };
    for (const [n, x] of edits) {
      const all = nodes(root);
      all[n % all.length]!(x);
    }
    return root.v;
  });

const reply = fc.oneof(
  { arbitrary: mutatedReply, weight: 4 },
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(...replies),
);

const isName = (s: unknown) => typeof s === 'string' && s !== '';

export const targets: FuzzTarget[] = [
  {
    name: 'vm: /proc/PID/stat, status, fdinfo, cgroup',
    property: () =>
      fc.property(
        hostileText(capturedFiles('qmp/proc', (p) => p.endsWith('stat'))),
        hostileText(capturedFiles('qmp/proc', (p) => p.endsWith('status'))),
        hostileText(capturedFiles('vm', (p) => p.includes('fdinfo-') && !p.endsWith('.py'))),
        hostileText(capturedFiles('vm/proc-cgroup')),
        (stat, status, fdinfo, cgroup) => {
          const s = parsePidStat(stat);
          if (s) {
            checkNumbers({ counters: s });
            checkNumbers(pidStatCounters(s));
            checkNumbers({ counters: { t: threadUsec(s) } });
          }
          const rss = parseStatusRssBytes(status);
          if (rss !== undefined) checkNumbers({ counters: { rss } });
          const tap = parseTunFdinfo(fdinfo);
          if (tap !== undefined && (!isName(tap) || tap.length > 15)) throw new Error(`tap ${tap}`);
          const cg = processCgroupPath(cgroup);
          if (cg !== undefined && !(typeof cg === 'string' && cg.startsWith('/')))
            throw new Error(`cgroup ${cg}`);
        },
      ),
  },
  {
    name: 'vm: QEMU command line',
    property: () =>
      fc.property(
        fc.oneof(
          mutatedText(capturedFiles('qmp/proc', (p) => p.endsWith('cmdline'))),
          fc
            .array(
              fc.oneof(
                fc.constantFrom('-netdev', '-chardev', '-device', '-accel', '-machine', '-qmp'),
                fc.string(),
              ),
              {
                maxLength: 8,
              },
            )
            .map((a) => a.join('\0')),
        ),
        (raw) => {
          const c = parseQemuCmdline(raw);
          for (const x of [...c.socketPaths, ...c.taps])
            if (typeof x !== 'string') throw new Error('not a string');
          if (c.agentSocket !== undefined && typeof c.agentSocket !== 'string')
            throw new Error('agentSocket');
        },
      ),
  },
  {
    name: 'vm: QMP replies (query-blockstats, query-cpus-fast, balloon, query-block, uuid)',
    property: () =>
      fc.property(reply, (r) => {
        const devices = blockstatsDevices(r);
        if (Object.getPrototypeOf(devices) !== Object.prototype) throw new Error('devices prototype changed');
        for (const [k, d] of Object.entries(devices)) {
          if (!isName(k)) throw new Error(`device key ${JSON.stringify(k)}`);
          checkMetricNames(d.counters, k);
        }
        checkNumbers({ devices });
        for (const id of vcpuThreadIds(r))
          if (!Number.isSafeInteger(id) || id <= 0) throw new Error(`thread id ${id}`);
        checkNumbers(balloonGuestStats(r));
        const b = findBalloonPath(r);
        if (b !== undefined && typeof b !== 'string') throw new Error('balloon path');
        const u = nonZeroUuid(r);
        if (u !== undefined && !isName(u)) throw new Error(`uuid ${JSON.stringify(u)}`);
        for (const f of blockImageFiles(r)) {
          if (typeof f.device !== 'string' || typeof f.file !== 'string')
            throw new Error(`image ${JSON.stringify(f)}`);
        }
      }),
  },
  {
    name: 'vm: QMP socket lines',
    property: () =>
      fc.property(
        fc.oneof(
          mutatedText(jsonl),
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.constantFrom(
            'null',
            '5',
            '"x"',
            '[]',
            '{"id":"s1","error":null}',
            '{"id":"s1","error":5}',
            '{"id":7}',
          ),
        ),
        (line) => {
          const m = parseQmpLine(line);
          if (m === undefined || m.kind === 'greeting' || m.kind === 'event') return;
          if (!isName(m.id)) throw new Error('reply without an id');
          if (m.kind === 'error' && (typeof m.qmpClass !== 'string' || typeof m.desc !== 'string')) {
            throw new Error('error without class/desc strings');
          }
        },
      ),
  },
];
