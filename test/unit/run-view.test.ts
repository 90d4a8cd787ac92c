// The live view of `strata run`, fed by the real pipeline with two real ticks captured on this
// machine (testdata/run/host-ticks.ndjson, from `strata agent --output ndjson --collectors host`).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hasControlChars } from '../../lib/terminal.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import { LiveView, render } from '../../run/view.ts';
import { decodeSampleMessage, type SampleMessage } from '../../schemas/sample.ts';

function ticks(): SampleMessage[] {
  const lines = readFileSync(new URL('../../testdata/run/host-ticks.ndjson', import.meta.url), 'utf8')
    .trim()
    .split('\n');
  return lines.map((l) => {
    const r = decodeSampleMessage(l);
    if (!r.ok) throw new Error(r.reason);
    return r.message;
  });
}

describe('strata run view', () => {
  const [t0, t1] = ticks() as [SampleMessage, SampleMessage];
  const host0 = t0.samples[0]!;
  const host1 = t1.samples[0]!;
  const dtS = ((host1.ts ?? t1.ts) - (host0.ts ?? t0.ts)) / 1000;

  it('shows nothing until rates exist, then the host row with hand-computed figures', () => {
    const pipeline = createPipeline();
    const view = new LiveView();
    view.update(pipeline.handle(t0).points);
    expect(view.rows().filter((r) => r.cpuCores !== undefined)).toEqual([]);
    view.update(pipeline.handle(t1).points);
    const rows = view.rows();
    expect(rows).toHaveLength(1);
    const host = rows[0]!;
    expect(host.layer).toBe('host');
    expect(host.name).toBe(t1.node.hostname);
    // CPU cores in use = Δ(user+nice+system+irq+softirq) µs ÷ 1e6 ÷ Δt s (docs/overhead.md).
    const busy = (s: typeof host0) =>
      ['user', 'nice', 'system', 'irq', 'softirq'].reduce(
        (a, k) => a + s.counters[`cpu_${k}_usec_total`]!,
        0,
      );
    expect(host.cpuCores).toBeCloseTo((busy(host1) - busy(host0)) / 1e6 / dtS, 6);
    const faults = (host1.counters.page_faults_total! - host0.counters.page_faults_total!) / dtS;
    expect(host.faultsPerSecond).toBeCloseTo(faults, 6);
    // IOPS summed over whole disks.
    const reads = Object.keys(host1.devices ?? {}).reduce(
      (a, d) =>
        a +
        host1.devices![d]!.counters.reads_completed_total! -
        (host0.devices?.[d]?.counters.reads_completed_total ?? 0),
      0,
    );
    expect(host.readIops).toBeCloseTo(reads / dtS, 6);
  });

  it('renders the host layer, says there are no containers or VMs, and lists node overhead', () => {
    const pipeline = createPipeline();
    const view = new LiveView();
    view.update(pipeline.handle(t0).points);
    view.update(pipeline.handle(t1).points);
    const screen = render(view, { node: 'n1', intervalMs: 1000, mode: 'in-process', width: 120 });
    expect(screen).toMatch(/^host\s+\S+\s+\d+\.\d\d /m);
    expect(screen).toContain('No containers or VMs found on this machine');
    expect(screen).toMatch(/node .*host_cpu_busy_cores=/);
    for (const line of screen.split('\n')) expect(line.length).toBeLessThanOrEqual(120);
  });

  it('drops entities that stop reporting', () => {
    const pipeline = createPipeline();
    const view = new LiveView(5_000);
    view.update(pipeline.handle(t0).points);
    view.update(pipeline.handle(t1).points);
    expect(view.rows()).toHaveLength(1);
    view.update([
      {
        measurement: 'strata_overhead',
        tags: { layer: 'node', name: 'x' },
        fields: { a: 1 },
        timeMs: t1.ts + 60_000,
      },
    ]);
    expect(view.rows()).toHaveLength(0);
  });

  it('renders names with ESC, CSI and OSC sequences (colours, window title, screen clear) without any control character', () => {
    const hostile = '\x1b[31mred\x1b[0m\x1b]0;owned\x07\x1b[2J\x1b[Hcleared\u009b31m\x07';
    const rename = (t: SampleMessage): SampleMessage => ({
      ...t,
      samples: t.samples.map((s) => ({ ...s, entity: { ...s.entity, name: hostile } })),
    });
    const pipeline = createPipeline();
    const view = new LiveView();
    view.update(pipeline.handle(rename(t0)).points);
    view.update([
      ...pipeline.handle(rename(t1)).points,
      {
        measurement: 'strata_alert',
        tags: { status: 'firing', device: `vda${hostile}`, antagonist: hostile },
        fields: { title: `noisy ${hostile}`, text: hostile },
        timeMs: t1.ts,
      },
    ]);
    const screen = render(view, {
      node: hostile,
      intervalMs: 1000,
      mode: 'in-process',
      width: 200,
      notes: [`note ${hostile}`],
    });
    for (const line of screen.split('\n')) expect(hasControlChars(line)).toBe(false);
    // The text around the sequences stays readable; their parameters do not show.
    expect(screen).toMatch(/^host\s+redcleared\s+\d/m);
    expect(screen).toContain('noisy redcleared');
    expect(screen).not.toContain('owned');
  });
});
