// The messages perf:pipeline-cost publishes: one per node per tick, `entities` entity-samples each.
//
// `recorded` (default): real samples captured on this machine (testdata/processor/noisy-quiet.ndjson.gz,
// a quiet node running the nn-victim container): the host sample and the container's, their
// counters advancing by the recorded deltas (the capture's ticks replayed in a loop, each loop
// adding the capture's whole increase, so counters never go back), gauges as recorded. Idle
// interfaces, devices and zero rates stay as they were, which skipping idle rows and zero rates needs; the
// containers of a node are copies of the recorded one under their own ids.
// `synthetic`: perf/processor-messages.ts (the messages of perf:processor), where every counter
// of every entity advances, so nothing is ever idle.
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { EntitySample, SampleMessage } from '../schemas/sample.ts';
import { tick as syntheticTick } from './processor-messages.ts';

export type MessageKind = 'recorded' | 'synthetic';
export const MESSAGE_KINDS: readonly MessageKind[] = ['recorded', 'synthetic'];

type Nums = Record<string, number>;

interface Series {
  host: EntitySample[];
  container: EntitySample[];
}

let cached: Series | undefined;

/** The longest run of consecutive ticks of the capture holding the host and the container. */
function series(): Series {
  if (cached) return cached;
  const file = path.join(import.meta.dirname, '../testdata/processor/noisy-quiet.ndjson.gz');
  const msgs = gunzipSync(fs.readFileSync(file))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as SampleMessage);
  const name = 'nn-victim';
  let best: SampleMessage[] = [];
  let run: SampleMessage[] = [];
  for (const m of msgs) {
    const ok =
      m.samples.some((s) => s.entity.layer === 'host') && m.samples.some((s) => s.entity.name === name);
    const next = ok && (run.length === 0 || m.seq === (run[run.length - 1] as SampleMessage).seq + 1);
    if (next) run.push(m);
    else run = ok ? [m] : [];
    if (run.length > best.length) best = run;
  }
  if (best.length < 3) throw new Error(`${file}: fewer than 3 consecutive ticks with the host and ${name}`);
  cached = {
    host: best.map((m) => m.samples.find((s) => s.entity.layer === 'host') as EntitySample),
    container: best.map((m) => m.samples.find((s) => s.entity.name === name) as EntitySample),
  };
  return cached;
}

/** Counter values at tick t: the capture's tick t mod (L-1), plus one whole increase per loop done. */
function advance(recs: (Nums | undefined)[], t: number): Nums {
  const period = recs.length - 1;
  const loops = Math.floor(t / period);
  const i = t % period;
  const first = recs[0] ?? {};
  const last = recs[period] ?? {};
  const cur = recs[i] ?? {};
  const out: Nums = {};
  for (const k in cur) out[k] = (cur[k] as number) + loops * ((last[k] ?? 0) - (first[k] ?? 0));
  return out;
}

function parts(
  recs: EntitySample[],
  which: 'devices' | 'interfaces',
  t: number,
): EntitySample['devices'] | undefined {
  const i = t % (recs.length - 1);
  const cur = recs[i]?.[which];
  if (!cur) return undefined;
  const out: NonNullable<EntitySample['devices']> = {};
  for (const [name, part] of Object.entries(cur)) {
    const p = part as { counters?: Nums; gauges?: Nums };
    out[name] = {
      counters: advance(
        recs.map((r) => (r[which]?.[name] as { counters?: Nums } | undefined)?.counters),
        t,
      ),
      ...(p.gauges ? { gauges: p.gauges } : {}),
    };
  }
  return out;
}

function recordedSample(
  recs: EntitySample[],
  t: number,
  ts: number,
  entity: EntitySample['entity'],
): EntitySample {
  const cur = recs[t % (recs.length - 1)] as EntitySample;
  return {
    ...cur,
    entity,
    ts,
    counters: advance(
      recs.map((r) => r.counters),
      t,
    ),
    devices: parts(recs, 'devices', t),
    interfaces: parts(recs, 'interfaces', t),
  };
}

/** Node `<prefix>-<node>`'s message for tick t (sample time ts): 1 host + (entities - 1) containers. */
export function costMessage(
  kind: MessageKind,
  prefix: string,
  node: number,
  t: number,
  ts: number,
  entities: number,
  intervalMs: number,
): SampleMessage {
  if (kind === 'synthetic') {
    return { ...syntheticTick(prefix, node, t, ts, entities - 1), interval_ms: intervalMs };
  }
  const s = series();
  const id = `${prefix}-${node}`;
  const host0 = s.host[0] as EntitySample;
  const samples: EntitySample[] = [recordedSample(s.host, t, ts, { ...host0.entity, id, name: id })];
  const c0 = s.container[0] as EntitySample;
  for (let c = 1; c < entities; c++) {
    const cid = `${id}-c${c}`;
    samples.push(
      recordedSample(s.container, t, ts, {
        ...c0.entity,
        id: cid,
        name: `app-${c}`,
        labels: { ...c0.entity.labels, cgroup_path: `/docker/${cid}` },
        parent: { layer: 'host', id },
      }),
    );
  }
  return {
    v: 1,
    node: { id, hostname: id, labels: {} },
    ts,
    interval_ms: intervalMs,
    seq: t,
    agent: { version: 'bench', run_id: `${prefix}-r${node}` },
    samples,
  };
}
