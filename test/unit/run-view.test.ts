// The live view of `strata run`, fed by the real pipeline with two real ticks captured on this
// machine (testdata/run/host-ticks.ndjson, from `strata agent --output ndjson --collectors host`).
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { hasControlChars } from '../../lib/terminal.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import { elideDistinct, incidentLines, layerCosts } from '../../run/frame.ts';
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

  it('renders the host layer, says there are no containers or VMs, and what the host itself costs', () => {
    const pipeline = createPipeline();
    const view = new LiveView();
    view.update(pipeline.handle(t0).points);
    view.update(pipeline.handle(t1).points);
    const screen = render(view, { node: 'n1', intervalMs: 1000, mode: 'in-process', width: 120 });
    expect(screen).toMatch(/^host\s+\S+\s+\d+\.\d\d /m);
    expect(screen).toContain('no containers or VMs found on this machine');
    expect(screen).toMatch(/^ {2}host itself\s+\d+\.\d\d cores/m);
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
    expect(screen).toContain('redcleared on vdaredcleared');
    expect(screen).not.toContain('owned');
  });
});

// Frames of captured real tick sequences (testdata/processor/, recorded by the agent on this
// machine): a VM with its guest, containers with long names that share a prefix, and a recorded
// noisy-neighbour incident. The expected frames are committed in __frames__/.
function recording(file: string): SampleMessage[] {
  return gunzipSync(readFileSync(new URL(`../../testdata/processor/${file}`, import.meta.url)))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as SampleMessage);
}

function viewAfter(file: string, ticks: number): LiveView {
  const msgs = recording(file);
  const pipeline = createPipeline();
  const view = new LiveView();
  for (const m of msgs.slice(0, ticks)) view.update(pipeline.handle(m).points);
  return view;
}

const CASES = [
  // The TCG test VM during O_DIRECT reads in its guest (tick 28 of 40).
  ['vm-guest', 'vm-tcg.ndjson.gz', 28],
  // Bench containers named strata-bench-<run>-container-redis-c1 / -container-nat-redis-c1.
  ['containers', 'noisy-256k-direct.ndjson.gz', 8],
  // A VM writing through the host page cache hurts a container on vda: the incident is open.
  ['incident', 'noisy-vm-antagonist.ndjson.gz', 60],
] as const;

describe('strata run frames of captured ticks', () => {
  describe.each(CASES)('%s', (name, file, ticks) => {
    const view = viewAfter(file, ticks);
    it.each([
      [80, 24],
      [120, 40],
    ])('%i×%i matches the committed frame, fits the window', async (width, height) => {
      const frame = render(view, { node: 'capture', intervalMs: 1000, mode: 'in-process', width, height });
      const lines = frame.split('\n');
      expect(lines.length).toBeLessThanOrEqual(height);
      for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(width);
      // The quit key is always on screen, and so is the status line.
      expect(lines[0]).toMatch(/q quit$/);
      expect(lines[1]).toMatch(/^view only/);
      await expect(`${frame}\n`).toMatchFileSnapshot(`./__frames__/run-${name}-${width}x${height}.txt`);
    });
  });

  it('a VM says what its hypervisor costs per guest core and the added ms per read (docs/overhead.md §2.1)', () => {
    const view = viewAfter('vm-tcg.ndjson.gz', 28);
    const vm = view.overheadRows().find((o) => o.layer === 'vm')!;
    const line = layerCosts(view).find((c) => c.layer === 'vm')!;
    expect(line.label).toBe('VM capvm');
    expect(line.text).toContain(
      `hypervisor ${vm.fields.cpu_overhead_ratio!.toFixed(2)} cores per guest core`,
    );
    expect(line.text).toContain(
      `+${vm.fields.io_read_guest_added_latency_ms_per_op!.toFixed(2)} ms per read`,
    );
  });

  it("a VM's guest joined a message late: its overhead figures, a part of the VM's point of that time, keep the VM's row", () => {
    // vm-tcg pairs some guest records a message after their VM tick: the overhead fields then come
    // as a strata_vm point of their own, same series and time as the VM's point already shown.
    const pipeline = createPipeline();
    const view = new LiveView();
    let late = 0;
    for (const m of recording('vm-tcg.ndjson.gz')) {
      const points = pipeline.handle(m).points;
      view.update(points);
      const vmPoints = points.filter(
        (p) => p.measurement === 'strata_vm' && p.tags.device === undefined && p.tags.interface === undefined,
      );
      const part = vmPoints.find(
        (p) => p.fields.cpu_cores === undefined && p.fields.guest_entity_id !== undefined,
      );
      if (part === undefined) continue;
      late++;
      const row = view.rows().find((r) => r.layer === 'vm')!;
      // The VM's row is its newest point's, not emptied by the part of an older time.
      expect(row.ts).toBe(Math.max(...vmPoints.map((p) => p.timeMs)));
      expect(row.cpuCores).toBeDefined();
      const o = view.overheadRows().find((r) => r.layer === 'vm')!;
      if (o.ts === part.timeMs) {
        for (const [k, v] of Object.entries(part.fields))
          if (typeof v === 'number') expect(o.fields[k]).toBe(v);
      } else {
        // A newer join of the same VM came in the same message.
        expect(o.ts).toBeGreaterThan(part.timeMs);
      }
    }
    expect(late).toBeGreaterThan(3);
  });

  it('under a VM, its memory: what the host pays, what the guest uses, the difference (docs/overhead.md §2.4)', () => {
    const view = viewAfter('vm-tcg.ndjson.gz', 28);
    const vm = view.overheadRows().find((o) => o.layer === 'vm')!;
    const costs = layerCosts(view);
    const at = costs.findIndex((c) => c.label === 'VM capvm');
    const mem = costs[at + 1]!;
    expect(mem.label).toBe('└ RAM');
    const mib = (b: number | undefined) => (b! / 1048576).toFixed(1);
    // This capture has no smaps_rollup: the host pays VmRSS, and no KSM figure.
    expect(mem.text).toBe(
      `host ${mib(vm.fields.hypervisor_memory_bytes)} MiB, guest ${mib(vm.fields.guest_memory_used_bytes)} MiB ` +
        `(+${mib(vm.fields.memory_overhead_bytes)} MiB)`,
    );
  });

  it('at 80 columns each cost line is one line: the sentence fits, long names are cut in the middle', () => {
    for (const [, file, ticks] of CASES) {
      const frame = render(viewAfter(file, ticks), { node: 'n', intervalMs: 1000, mode: 'x', width: 80 });
      const lines = frame.split('\n');
      const from = lines.indexOf('WHAT EACH LAYER COSTS, most first (formulas: docs/overhead.md)') + 1;
      const costs = lines.slice(from, lines.indexOf('', from));
      expect(costs.length).toBe(layerCosts(viewAfter(file, ticks)).length);
      // A wrapped sentence would go on in a line indented under the text.
      for (const l of costs) expect(l, l).toMatch(/^ {2}\S/);
      for (const l of costs) expect(l.length, l).toBeLessThanOrEqual(80);
    }
  });

  it('cost lines are sorted by cores, most first', () => {
    for (const [, file, ticks] of CASES) {
      const cores = layerCosts(viewAfter(file, ticks)).map((c) => c.cores);
      expect(cores.length).toBeGreaterThan(1);
      expect(cores).toEqual([...cores].sort((a, b) => b - a));
    }
  });

  it('an open incident names the antagonist, the disk, its share and the victims', () => {
    const frame = render(viewAfter('noisy-vm-antagonist.ndjson.gz', 60), {
      node: 'n',
      intervalMs: 1000,
      mode: 'in-process',
      width: 120,
    });
    expect(frame).toMatch(
      /FIRING since \d\d:\d\d:\d\d {2}nnvm on vda: 97 % of the disk's ops; victims nnvm-victim at/,
    );
  });

  it("an open incident carries the remedy's cap, as the alert's remedy starts", () => {
    const view = viewAfter('noisy-vm-antagonist.ndjson.gz', 60);
    const remedy = view.recentAlerts().find((a) => a.status === 'firing')!.remedy;
    expect(remedy).toMatch(/^cap nnvm at \d+ IOPS, .*\(\d+% of its rate when active\): /);
    const line = incidentLines(view.recentAlerts())[0]!;
    expect(line.text).toContain(`; fix: ${remedy.slice(0, remedy.indexOf('): ') + 1)}`);
    expect(line.text).toMatch(
      /fix: cap nnvm at \d+ IOPS, [\d.]+ [KM]iB\/s \(\d+% of its rate when active\)$/,
    );
  });

  it('never taller than the window: sections are cut with "… N more"', () => {
    const view = viewAfter('noisy-256k-direct.ndjson.gz', 8);
    for (const height of [6, 10, 14]) {
      const frame = render(view, { node: 'n', intervalMs: 1000, mode: 'x', width: 80, height });
      expect(frame.split('\n').length).toBeLessThanOrEqual(height);
    }
    expect(render(view, { node: 'n', intervalMs: 1000, mode: 'x', width: 80, height: 14 })).toContain('more');
  });

  it('narrow windows drop columns by priority: CPU stays, faults/s goes first', () => {
    const view = viewAfter('vm-tcg.ndjson.gz', 28);
    const header = (width: number) =>
      render(view, { node: 'n', intervalMs: 1000, mode: 'x', width })
        .split('\n')
        .find((l) => l.startsWith('LAYER'))!;
    expect(header(120)).toContain('faults/s');
    expect(header(80)).not.toContain('faults/s');
    expect(header(35)).toContain('CPU cores');
    expect(header(35)).not.toContain('ms/op');
  });
});

describe('names elided in the middle stay distinct', () => {
  it('keeps both ends, and moves the cut when two would read the same', () => {
    const names = [
      'strata-bench-20261122T044911-3515-container-redis-c1',
      'strata-bench-20261122T044911-3515-container-nat-redis-c1',
      'strata-bench-20261122T044911-3515-container-nat-redis-c2',
      'short',
    ];
    const out = elideDistinct(names, 16);
    expect(out[3]).toBe('short');
    for (const o of out) expect(o.length).toBeLessThanOrEqual(16);
    expect(new Set(out).size).toBe(4);
    expect(out[0]).toMatch(/^strat.*….*redis-c1$/);
  });

  it('32-character cuts of names differing only at the end no longer make identical rows', () => {
    const names = Array.from(
      { length: 4 },
      (_, i) => `k8s_POD_web-frontend-5d8f7c9b6d-x${i}_default_0123456789abcdef`,
    );
    const out = elideDistinct(names, 32);
    expect(new Set(out).size).toBe(4);
  });
});
