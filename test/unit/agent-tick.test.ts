// Tick alignment, no-overlap, per-collector timeout and the message an agent tick builds from the
// real captured /proc files (testdata/proc/hybrid-host).
import { describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.ts';
import { loadAgentConfig } from '../../agent/config.ts';
import { encodeMessage } from '../../agent/encode.ts';
import { Gatherer } from '../../agent/gather.ts';
import { NullTransport } from '../../agent/ndjson.ts';
import { currentAlignedTick, nextAlignedTick, Ticker } from '../../agent/ticker.ts';
import { collectorSchemas, defaultCollectors } from '../../collectors/registry.ts';
import type { Accumulator, Collector } from '../../collectors/types.ts';
import { componentLogger } from '../../lib/log.ts';
import { registry } from '../../lib/metrics.ts';
import { decodeSampleMessage } from '../../schemas/sample.ts';

describe('tick alignment', () => {
  it('aligns to wall-clock multiples of the interval', () => {
    expect(nextAlignedTick(1_795_322_505_865, 1000)).toBe(1_795_322_506_000);
    expect(nextAlignedTick(1_795_322_506_000, 1000)).toBe(1_795_322_507_000); // strictly after
    expect(currentAlignedTick(1_795_322_505_865, 1000)).toBe(1_795_322_505_000);
    expect(nextAlignedTick(1_795_322_505_865, 250)).toBe(1_795_322_506_000);
    expect(nextAlignedTick(1_795_322_505_865, 15_000)).toBe(1_795_322_520_000);
  });

  it('two tickers started at different moments tick at the same times', async () => {
    const a: number[] = [];
    const b: number[] = [];
    const mk = (out: number[]) =>
      new Ticker({ intervalMs: 40, onTick: async (ts) => void out.push(ts), onSkip: () => {} });
    const t1 = mk(a);
    t1.start();
    await new Promise((r) => setTimeout(r, 17));
    const t2 = mk(b);
    t2.start();
    await new Promise((r) => setTimeout(r, 300));
    await t1.stop();
    await t2.stop();
    for (const ts of [...a, ...b]) expect(ts % 40).toBe(0);
    // Same tick times (a stalled timer on a loaded machine may skip one in either, so not all).
    const common = b.filter((ts) => a.includes(ts));
    expect(common.length).toBeGreaterThan(0);
    // Consecutive ticks are one interval apart (none run twice).
    for (let i = 1; i < a.length; i++) expect(a[i]! - a[i - 1]!).toBeGreaterThanOrEqual(40);
  });

  it('never overlaps a slow tick; the missed tick times are counted', async () => {
    let running = 0;
    let maxRunning = 0;
    let skipped = 0;
    const ran: number[] = [];
    const t = new Ticker({
      intervalMs: 20,
      onTick: async (ts) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        ran.push(ts);
        await new Promise((r) => setTimeout(r, 55)); // longer than two intervals
        running--;
      },
      onSkip: (n) => (skipped += n),
    });
    t.start();
    await new Promise((r) => setTimeout(r, 300));
    await t.stop();
    expect(maxRunning).toBe(1);
    expect(skipped).toBeGreaterThan(0);
    expect(ran.length).toBeGreaterThan(1);
  });
});

class SleepyCollector implements Collector {
  calls = 0;
  constructor(
    readonly name: string,
    private readonly ms: number,
  ) {}
  async gather(acc: Accumulator): Promise<void> {
    this.calls++;
    await new Promise((r) => setTimeout(r, this.ms));
    acc.add({
      entity: { layer: 'container', kind: 'cgroup', id: this.name, name: this.name, labels: {} },
      counters: { cpu_usage_usec_total: 1 },
      gauges: {},
    });
  }
}

class BrokenCollector implements Collector {
  readonly name = 'broken';
  async gather(acc: Accumulator): Promise<void> {
    acc.error(
      'broken',
      'broken:/sys/fs/cgroup/x/cpu.stat:ENOENT',
      Object.assign(new Error('gone'), { code: 'ENOENT' }),
    );
    throw new Error('whole collector failed');
  }
}

describe('Gatherer', () => {
  it('leaves a slow collector out of the tick without delaying it, and does not stack its calls', async () => {
    const fast = new SleepyCollector('fast', 1);
    const slow = new SleepyCollector('slow', 400);
    const g = new Gatherer([slow, fast], 80, componentLogger('test'));
    const first = await g.gather();
    expect(first.samples.map((s) => s.entity.id)).toEqual(['fast']);
    expect(first.perCollector.slow?.status).toBe('timeout');
    const second = await g.gather();
    expect(second.perCollector.slow?.status).toBe('busy');
    expect(slow.calls).toBe(1); // still the first call running
    await g.settle(1000);
    const third = await g.gather();
    expect(slow.calls).toBe(2);
    expect(third.perCollector.fast).toEqual({ samples: 1, status: 'ok' });
    const metrics = await registry.getSingleMetricAsString('strata_agent_collect_timeouts_total');
    expect(metrics).toMatch(/strata_agent_collect_timeouts_total\{collector="slow"\} [1-9]/);
    await g.settle(1000);
  });

  it('counts per-item errors and whole-collector failures, and carries on', async () => {
    const g = new Gatherer(
      [new BrokenCollector(), new SleepyCollector('ok', 1)],
      500,
      componentLogger('test'),
    );
    const out = await g.gather();
    expect(out.perCollector.broken?.status).toBe('failed');
    expect(out.samples.map((s) => s.entity.id)).toEqual(['ok']);
    expect(await registry.getSingleMetricAsString('strata_agent_collect_errors_total')).toMatch(
      /collector="broken"\} [1-9]/,
    );
    expect(await registry.getSingleMetricAsString('strata_agent_collect_failures_total')).toMatch(
      /collector="broken"\} [1-9]/,
    );
  });
});

describe('Agent tick on captured /proc files', () => {
  it('builds a valid SampleMessage with the host sample, aligned ts and increasing seq', async () => {
    const { config, enabled } = loadAgentConfig({
      collectorSchemas: collectorSchemas(),
      defaultCollectors: defaultCollectors(),
      env: { HOST_PROC: 'testdata/proc/hybrid-host/step0', STRATA_NODE_ID: 'node-t', STRATA_INTERVAL: '1s' },
      flags: { '(collectors)': 'host' },
    });
    const transport = new NullTransport();
    const agent = new Agent({ config, enabled, version: 'test', transport });
    const v1 = await agent.once();
    const v2 = await agent.collect(1_795_322_506_000);
    await agent.stop(1000);
    const m1 = decodeSampleMessage(v1);
    const m2 = decodeSampleMessage(v2);
    if (!m1.ok || !m2.ok) throw new Error('invalid message');
    expect(m1.message.ts % 1000).toBe(0);
    expect(m1.message.node.id).toBe('node-t');
    expect([m1.message.seq, m2.message.seq]).toEqual([0, 1]);
    expect(m1.message.agent.run_id).toBe(agent.runId);
    const host = m1.message.samples.find((s) => s.entity.layer === 'host');
    expect(host?.entity.id).toBe('node-t');
    // The captured /proc/stat's cpu user ticks, ×10⁴ µs per USER_HZ tick.
    expect(host?.counters.cpu_user_usec_total).toBeGreaterThan(0);
    expect(host?.gauges.cpu_count).toBe(2);
    expect(transport.sent).toBe(1); // the --once tick went out through the output
    // The streaming encoder gives exactly what JSON.stringify of the whole message gives.
    expect(v2.toString('utf8')).toBe(JSON.stringify(JSON.parse(v2.toString('utf8'))));
  });

  it('encodes byte-identically to JSON.stringify, multi-byte names and empty samples included', () => {
    const base = {
      v: 1 as const,
      node: { id: 'nöde-ü', hostname: 'h', labels: { zone: 'ßeta' } },
      ts: 1_795_322_506_000,
      interval_ms: 1000,
      seq: 7,
      agent: { version: 't', run_id: 'r' },
    };
    const sample = (id: string) => ({
      entity: { layer: 'container' as const, kind: 'docker', id, name: `ctr-${id}-✓`, labels: {} },
      counters: { cpu_usage_usec_total: 12_345 },
      gauges: { memory_usage_bytes: 1 << 20 },
    });
    for (const samples of [[], [sample('a')], [sample('a'), sample('b'), sample('c')]]) {
      const m = { ...base, samples };
      expect(encodeMessage(m).equals(Buffer.from(JSON.stringify(m), 'utf8'))).toBe(true);
    }
  });
});
