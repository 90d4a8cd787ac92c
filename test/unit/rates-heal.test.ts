// Rate state that heals, on the 19 real agent ticks recorded on this machine
// (testdata/processor/agent-host-1s.ndjson, 1 s apart, one host sample each): a sample dated
// ahead, an agent restarted with its clock behind, and two agents sharing one node id must not
// leave an entity without rates for good.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { registry } from '../../lib/metrics.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import type { Point } from '../../schemas/point.ts';
import { type SampleMessage, validateSampleMessage } from '../../schemas/sample.ts';

const ticks = fs
  .readFileSync(path.join(import.meta.dirname, '../../testdata/processor/agent-host-1s.ndjson'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => {
    const r = validateSampleMessage(JSON.parse(l));
    if (!r.ok) throw new Error(r.reason);
    return r.message;
  });

/** A copy of a recorded tick with its times moved by `shiftMs` and, optionally, another run_id. */
function tick(i: number, shiftMs = 0, runId?: string): SampleMessage {
  const m = structuredClone(ticks[i]!);
  m.ts += shiftMs;
  for (const s of m.samples) if (s.ts !== undefined) s.ts += shiftMs;
  if (runId !== undefined) m.agent.run_id = runId;
  return m;
}

/** The host entity point (not a device or interface row) among a message's points. */
const host = (points: Point[]) =>
  points.find((p) => p.measurement === 'strata_host' && !p.tags.device && !p.tags.interface);
const hasRate = (points: Point[]) => typeof host(points)?.fields.cpu_cores === 'number';

async function metric(name: string, label?: [string, string]): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const v = (await m.get()).values.find((x) => !label || x.labels[label[0]] === label[1]);
  return v?.value ?? 0;
}

describe('rate state heals', () => {
  it('a sample dated 10 minutes ahead, then the real ones: rates again from the second real one', async () => {
    const jumps0 = await metric('strata_processor_rates_skipped_total', ['reason', 'clock_jump']);
    const p = createPipeline();
    expect(ticks.length).toBe(19);
    p.handle(tick(0));
    p.handle(tick(1));
    p.handle(tick(2, 600_000)); // its clock was ahead for one tick
    const withRates = ticks.slice(3).map((_, k) => hasRate(p.handle(tick(3 + k)).points));
    // tick 3 restarts the entity's state from itself (no rate), ticks 4..18 have rates.
    expect(withRates).toEqual([false, ...Array(15).fill(true)]);
    p.evict(ticks[18]!.ts);
    expect((await metric('strata_processor_rates_skipped_total', ['reason', 'clock_jump'])) - jumps0).toBe(1);
  });

  it('a duplicate or slightly older sample is still only stale (a redelivery is no clock jump)', () => {
    const p = createPipeline();
    p.handle(tick(0));
    p.handle(tick(1));
    expect(p.handle(tick(1)).points).toEqual([]);
    expect(p.handle(tick(0)).points).toEqual([]);
    expect(hasRate(p.handle(tick(2)).points)).toBe(true);
  });

  it('a restarted agent (new run_id) whose clock is an hour behind its previous run gets rates', async () => {
    const restarts0 = await metric('strata_processor_rates_skipped_total', ['reason', 'agent_restart']);
    const p = createPipeline();
    for (let i = 0; i < 10; i++) p.handle(tick(i, 3_600_000, 'run-1')); // clock an hour ahead
    const withRates = ticks.slice(10).map((_, k) => hasRate(p.handle(tick(10 + k, 0, 'run-2')).points));
    expect(withRates).toEqual([false, ...Array(8).fill(true)]);
    p.evict(ticks[18]!.ts);
    expect(
      (await metric('strata_processor_rates_skipped_total', ['reason', 'agent_restart'])) - restarts0,
    ).toBe(1);
  });

  it('two agents alternating on one node id: both get every rate, the conflict counted once', async () => {
    const conflicts0 = await metric('strata_processor_node_id_conflicts_total');
    const p = createPipeline();
    let a = 0;
    let b = 0;
    for (let i = 0; i < ticks.length; i++) {
      // The clone reads 400 ms later, its counters from its own (here: the same recorded) host.
      if (hasRate(p.handle(tick(i, 0, 'clone-a')).points)) a++;
      if (hasRate(p.handle(tick(i, 400, 'clone-b')).points)) b++;
    }
    expect([a, b]).toEqual([18, 18]);
    expect((await metric('strata_processor_node_id_conflicts_total')) - conflicts0).toBe(1);
    expect(p.entityCount()).toBe(2);
  });

  it('an agent restart loop keeps at most maxRunsPerNode runs of state', () => {
    const p = createPipeline({ maxRunsPerNode: 3 });
    for (let i = 0; i < ticks.length; i++) p.handle(tick(i, 0, `run-${i}`));
    expect(p.entityCount()).toBe(3);
  });

  it("a silent run's state is evicted after evictAfterMs of wall time", () => {
    const p = createPipeline({ evictAfterMs: 1000 });
    p.handle(tick(0, 0, 'run-1'));
    p.handle(tick(1, 0, 'run-2'));
    expect(p.entityCount()).toBe(2);
    const now = ticks[1]!.ts;
    p.evict(now); // both seen since the last call
    p.handle(tick(2, 0, 'run-2'));
    p.evict(now + 500);
    p.handle(tick(3, 0, 'run-2'));
    p.evict(now + 2000); // run-1 silent for 2 s > 1 s
    expect(p.entityCount()).toBe(1);
    expect(hasRate(p.handle(tick(4, 0, 'run-2')).points)).toBe(true);
  });
});
