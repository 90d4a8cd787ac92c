// One frame of `strata run` for a person at a terminal: first what each layer costs, in plain
// units and sorted by cost (the overhead figures of docs/overhead.md), then the
// noisy-neighbour incidents, then one row per entity. A frame never exceeds the window: columns
// drop by priority, names are elided in the middle (and kept distinct), sections are cut with
// "… N more" lines. Pure: the same view and options give the same text (test/unit/__frames__).
import { printable } from '../lib/terminal.ts';
import type { AlertRow, EntityRow, OverheadRow, ViewState } from './rows.ts';

export interface RenderOptions {
  node: string;
  intervalMs: number;
  mode: string;
  /** Terminal columns; default 120. */
  width?: number;
  /** Terminal rows; default: as tall as the content. */
  height?: number;
  /** The status line: where points go and whether that works (run/status.ts). */
  status?: string;
  /** The status line reports a problem (writes failing): it is marked so that it stands out. */
  statusAlarm?: boolean;
  /** What quits, shown at the right of the header; default "q quit". */
  quitHint?: string;
  /** Lines after everything else when there is room (e.g. a start-up note). */
  notes?: readonly string[];
}

/** One layer's (or one entity's) cost, with the figure it is sorted by. */
export interface CostLine {
  /** vm, container, containers, vms, host. */
  layer: string;
  /** What is named in the frame: "VM capvm", "containers (3)", "host itself". */
  label: string;
  /** The sort key: CPU cores this line is about (overhead cores for a VM). */
  cores: number;
  text: string;
}

const MIN_NAME = 12;

// ---------------------------------------------------------------------------------------------
// What each layer costs.

/**
 * The cost lines of the latest figures, most expensive first. Every number is one of the overhead
 * fields (docs/overhead.md §2: a VM's and a container's on its own point, the node's totals on
 * strata_overhead) or an entity's `cpu_cores`, said in its unit.
 */
export function layerCosts(view: ViewState): CostLine[] {
  const entities = view.rows();
  const cpuOf = (layer: string, name: string) =>
    entities.find((e) => e.layer === layer && e.name === name)?.cpuCores;
  const out: CostLine[] = [];
  for (const o of view.overheadRows()) {
    if (o.layer === 'node') out.push(...nodeCosts(o));
    else if (o.layer === 'vm') {
      const cpu = vmCost(o, cpuOf('vm', o.name));
      out.push(cpu);
      const mem = vmMemoryCost(o, cpu.cores);
      if (mem) out.push(mem);
    } else if (o.layer === 'container' && o.device === undefined) {
      const line = containerCost(o, cpuOf('container', o.name));
      if (line) out.push(line);
    }
  }
  return out.sort((a, b) => b.cores - a.cores || a.label.localeCompare(b.label));
}

function nodeCosts(o: OverheadRow): CostLine[] {
  const f = o.fields;
  const busy = f.host_cpu_busy_cores;
  // "0.93 of 1.97 busy host cores (47 %)": short enough for one line at 80 columns.
  const of = (cores: number, ratio: number | undefined) =>
    ratio !== undefined && busy !== undefined
      ? `${cores.toFixed(2)} of ${busy.toFixed(2)} busy host cores (${percent(ratio)})`
      : coresText(cores);
  const out: CostLine[] = [];
  const containers = f.containers ?? 0;
  const vms = f.vms ?? 0;
  if (containers > 0 && f.containers_cpu_cores !== undefined) {
    out.push({
      layer: 'containers',
      label: `containers (${containers})`,
      cores: f.containers_cpu_cores,
      text: `use ${of(f.containers_cpu_cores, f.containers_cpu_ratio)}`,
    });
  }
  if (vms > 0 && f.vms_hypervisor_cpu_cores !== undefined) {
    const overhead = f.virtualization_cpu_overhead_cores;
    out.push({
      layer: 'vms',
      label: `VMs (${vms})`,
      cores: f.vms_hypervisor_cpu_cores,
      text:
        `hypervisors: ${of(f.vms_hypervisor_cpu_cores, f.vms_cpu_ratio)}` +
        (overhead !== undefined ? `, ${overhead.toFixed(2)} overhead` : ''),
    });
  }
  if (f.host_other_cpu_cores !== undefined) {
    out.push({
      layer: 'host',
      label: 'host itself',
      cores: f.host_other_cpu_cores,
      text:
        containers + vms === 0
          ? `${coresText(f.host_other_cpu_cores)}; no containers or VMs found on this machine`
          : `${coresText(f.host_other_cpu_cores)}: kernel, daemons, strata`,
    });
  }
  return out;
}

/** `hypervisorCores`: the VM's cpu_cores, the whole QEMU process. */
function vmCost(o: OverheadRow, hypervisorCores: number | undefined): CostLine {
  const f = o.fields;
  const parts: string[] = [];
  if (f.cpu_overhead_ratio !== undefined) {
    parts.push(
      `hypervisor ${f.cpu_overhead_ratio.toFixed(2)} cores per guest core` +
        (f.cpu_overhead_cores !== undefined ? ` (${signed(f.cpu_overhead_cores, 2)})` : ''),
    );
  } else if (hypervisorCores !== undefined) {
    parts.push(
      `hypervisor uses ${coresText(hypervisorCores)}` +
        (f.guest_cpu_busy_cores !== undefined ? `, guest busy ${coresText(f.guest_cpu_busy_cores)}` : ''),
    );
  }
  // The whole virtual I/O path when the backing host device is known, else guest − QEMU.
  const added = (op: 'read' | 'write') =>
    f[`io_${op}_added_latency_ms_per_op`] ?? f[`io_${op}_guest_added_latency_ms_per_op`];
  const read = added('read');
  const write = added('write');
  if (read !== undefined && write !== undefined) {
    parts.push(`${signed(read, 2)}/${signed(write, 2)} ms per read/write`);
  } else if (read !== undefined) parts.push(`${signed(read, 2)} ms per read`);
  else if (write !== undefined) parts.push(`${signed(write, 2)} ms per write`);
  const perPacket = f.hypervisor_overhead_cpu_usec_per_guest_packet;
  if (perPacket !== undefined) parts.push(`${perPacket.toFixed(1)} µs per guest packet`);
  return {
    layer: 'vm',
    label: `VM ${o.name}`,
    cores: f.cpu_overhead_cores ?? hypervisorCores ?? 0,
    text: parts.length > 0 ? parts.join('; ') : 'no figures this tick (the guest view joins later)',
  };
}

/**
 * "└ RAM  host 229.6 MiB, guest 26.0 MiB (+203.6 MiB); KSM saves 42.4 MiB": what the host pays for the
 * VM, what its guest uses and the difference (docs/overhead.md §2.4), under the VM's CPU line (its
 * sort key a hair below; a short label, so the label column does not widen).
 */
function vmMemoryCost(o: OverheadRow, cores: number): CostLine | undefined {
  const f = o.fields;
  const paid = f.hypervisor_memory_bytes;
  if (paid === undefined) return undefined;
  const mib = (b: number) => (b / 1048576).toFixed(1);
  let text = `host ${mib(paid)} MiB`;
  if (f.guest_memory_used_bytes !== undefined) text += `, guest ${mib(f.guest_memory_used_bytes)} MiB`;
  if (f.memory_overhead_bytes !== undefined) text += ` (${signed(f.memory_overhead_bytes / 1048576, 1)} MiB)`;
  if (f.ksm_saving_bytes !== undefined && f.ksm_saving_bytes > 0)
    text += `; KSM saves ${mib(f.ksm_saving_bytes)} MiB`;
  return { layer: 'vm', label: '└ RAM', cores: cores - 1e-9, text };
}

function containerCost(o: OverheadRow, cpuCores: number | undefined): CostLine | undefined {
  const f = o.fields;
  const parts: string[] = [];
  if (f.io_stall_ms_per_op !== undefined) {
    parts.push(
      `I/O stall ${ms(f.io_stall_ms_per_op)} ms/op` +
        (f.host_device_latency_ms_per_op !== undefined
          ? `, host disk ${ms(f.host_device_latency_ms_per_op)}`
          : ''),
    );
  }
  if (f.cpu_usec_per_packet !== undefined) {
    parts.push(
      `${f.cpu_usec_per_packet.toFixed(1)} µs CPU/packet` +
        (f.cpu_per_packet_vs_host_ratio !== undefined
          ? `, ${f.cpu_per_packet_vs_host_ratio.toFixed(2)}× the host's`
          : ''),
    );
  }
  if (parts.length === 0) return undefined;
  return {
    layer: 'container',
    label: `container ${o.name}`,
    cores: cpuCores ?? 0,
    text: `${cpuCores !== undefined ? `${coresText(cpuCores)}; ` : ''}${parts.join('; ')}`,
  };
}

// ---------------------------------------------------------------------------------------------
// Noisy-neighbour incidents: the latest state of each, open ones first.

export function incidentLines(alerts: readonly AlertRow[]): { firing: boolean; text: string }[] {
  const latest = new Map<string, AlertRow>();
  for (const a of alerts) latest.set(a.id || `${a.device}\u0000${a.antagonist}`, a);
  return [...latest.values()]
    .sort((a, b) => Number(b.status === 'firing') - Number(a.status === 'firing') || b.ts - a.ts)
    .map((a) => {
      const e = a.evidence;
      const firing = a.status === 'firing';
      const head = firing
        ? `FIRING since ${clock(a.startsAt)}`
        : `resolved ${clock(a.ts)} after ${Math.round((a.ts - a.startsAt) / 1000)} s`;
      const share =
        e.antagonist_iops_share_ratio !== undefined
          ? `: ${percent(e.antagonist_iops_share_ratio)} of the disk's ops`
          : '';
      let victims = a.victims ? `; victims ${a.victims}` : '';
      if (firing && e.victim_latency_ms_per_op !== undefined) {
        victims += ` at ${ms(e.victim_latency_ms_per_op)} ms per op`;
        if (e.victim_baseline_latency_ms_per_op !== undefined)
          victims += ` (usually ${ms(e.victim_baseline_latency_ms_per_op)})`;
      }
      // The remedy's first clause: the cap and how deep it cuts (the commands follow it in the alert).
      const cut = a.remedy.indexOf('): ');
      const fix = firing && cut > 0 ? `; fix: ${a.remedy.slice(0, cut + 1)}` : '';
      return { firing, text: `${head}  ${a.antagonist} on ${a.device}${share}${victims}${fix}` };
    });
}

// ---------------------------------------------------------------------------------------------
// The entity table.

interface Column {
  title: string;
  /** 1 = kept longest when the window is narrow. */
  priority: number;
  get: (r: EntityRow) => string;
}

const COLUMNS: readonly Column[] = [
  { title: 'CPU cores', priority: 1, get: (r) => fmt(r.cpuCores, 2) },
  { title: 'ms/op r/w', priority: 2, get: (r) => pair(r.readLatencyMs, r.writeLatencyMs, 2) },
  { title: 'IOPS r/w', priority: 3, get: (r) => pair(r.readIops, r.writeIops, 0) },
  { title: 'PSI cpu', priority: 4, get: (r) => pct(r.cpuStallRatio) },
  { title: 'PSI io', priority: 5, get: (r) => pct(r.ioStallRatio) },
  { title: 'pkt/s rx/tx', priority: 6, get: (r) => pair(r.rxPacketsPerSecond, r.txPacketsPerSecond, 0) },
  { title: 'faults/s', priority: 7, get: (r) => fmt(r.faultsPerSecond, 0) },
];

/** Host first (it is the whole machine), then by CPU, each guest right under its VM. */
function tableOrder(rows: readonly EntityRow[]): EntityRow[] {
  const byCpu = (a: EntityRow, b: EntityRow) =>
    (b.cpuCores ?? -1) - (a.cpuCores ?? -1) || a.name.localeCompare(b.name);
  const host = rows.filter((r) => r.layer === 'host').sort(byCpu);
  const guests = rows.filter((r) => r.layer === 'guest');
  const rest = rows.filter((r) => r.layer !== 'host' && r.layer !== 'guest').sort(byCpu);
  const out = [...host];
  const placed = new Set<EntityRow>();
  for (const r of rest) {
    out.push(r);
    if (r.layer !== 'vm') continue;
    for (const g of guests) {
      if (g.name === r.name && !placed.has(g)) {
        out.push(g);
        placed.add(g);
      }
    }
  }
  for (const g of guests.sort(byCpu)) if (!placed.has(g)) out.push(g);
  return out;
}

function table(rows: readonly EntityRow[], width: number): { header: string; lines: string[] } {
  const ordered = tableOrder(rows);
  const layerOf = (r: EntityRow) => (r.layer === 'guest' ? '└ guest' : r.layer);
  const layerW = Math.max(5, ...ordered.map((r) => layerOf(r).length));
  const cells = COLUMNS.map((c) => ordered.map((r) => c.get(r)));
  const widths = COLUMNS.map((c, i) => Math.max(c.title.length, ...cells[i]!.map((v) => v.length)));
  // Columns in priority order while a name of MIN_NAME still fits.
  let used = layerW + 1 + MIN_NAME;
  const kept = new Set<number>();
  for (const i of COLUMNS.map((_, i) => i).sort((a, b) => COLUMNS[a]!.priority - COLUMNS[b]!.priority)) {
    if (used + 1 + widths[i]! > width) break;
    used += 1 + widths[i]!;
    kept.add(i);
  }
  const names = ordered.map((r) => r.name);
  const longest = Math.max(6, ...names.map((n) => n.length));
  const nameW = Math.min(longest, Math.max(MIN_NAME, width - (used - MIN_NAME)));
  const shown = elideDistinct(names, nameW);
  const cols = COLUMNS.map((_, i) => i).filter((i) => kept.has(i));
  const header = [
    'LAYER'.padEnd(layerW),
    'ENTITY'.padEnd(nameW),
    ...cols.map((i) => COLUMNS[i]!.title.padStart(widths[i]!)),
  ].join(' ');
  const lines = ordered.map((r, j) =>
    [
      layerOf(r).padEnd(layerW),
      shown[j]!.padEnd(nameW),
      ...cols.map((i) => cells[i]![j]!.padStart(widths[i]!)),
    ]
      .join(' ')
      .trimEnd(),
  );
  return { header: header.trimEnd(), lines };
}

/**
 * Names longer than `width` cut in the middle ("strata-bench-2…-nat-redis-c1"): both ends usually
 * carry what tells them apart (a prefix, a replica number). When two cut names come out equal, the
 * cut moves until they differ; names that were equal to begin with stay equal.
 */
export function elideDistinct(names: readonly string[], width: number): string[] {
  const w = Math.max(3, width);
  const cut = (n: string, head: number) =>
    n.length <= w ? n : `${n.slice(0, head)}…${n.slice(n.length - (w - 1 - head))}`;
  const middle = Math.ceil((w - 1) / 2);
  const out = names.map((n) => cut(n, middle));
  const groups = new Map<string, number[]>();
  out.forEach((s, i) => {
    groups.set(s, [...(groups.get(s) ?? []), i]);
  });
  for (const idx of groups.values()) {
    const originals = new Set(idx.map((i) => names[i]!));
    if (idx.length < 2 || originals.size < 2) continue;
    // Heads nearest the middle first: middle, middle−1, middle+1, ...
    for (let d = 1; d < w; d++) {
      const head = middle + (d % 2 === 0 ? d / 2 : -(d + 1) / 2);
      if (head < 1 || head > w - 2) continue;
      const tries = idx.map((i) => cut(names[i]!, head));
      const others = new Set(out.filter((_, i) => !idx.includes(i)));
      const distinct = new Set(tries).size === originals.size && tries.every((t) => !others.has(t));
      if (distinct) {
        idx.forEach((i, k) => {
          out[i] = tries[k]!;
        });
        break;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The frame.

export function render(view: ViewState, o: RenderOptions): string {
  const width = Math.max(20, o.width ?? 120);
  const height = o.height !== undefined && o.height > 0 ? Math.max(3, o.height) : Number.POSITIVE_INFINITY;
  // Names come from containers and guests, which pick them: no escape sequence reaches the terminal.
  const rows = view.rows().map((r) => {
    const name = printable(r.name);
    return name === r.name ? r : { ...r, name };
  });
  const when = view.lastTs
    ? `${new Date(view.lastTs).toISOString().replace('T', ' ').slice(0, 19)} UTC`
    : '-';
  const quit = o.quitHint ?? 'q quit';
  // The quit hint stays; the mode, then the interval, then the time go first when narrow.
  const parts = [
    'strata run',
    `node ${printable(o.node)}`,
    when,
    `every ${o.intervalMs / 1000}s`,
    printable(o.mode),
  ];
  let left = parts.join(' · ');
  while (left.length + 2 + quit.length > width && parts.length > 2) {
    parts.pop();
    left = parts.join(' · ');
  }
  const top = [
    left.length + 2 + quit.length <= width
      ? `${left}${' '.repeat(width - left.length - quit.length)}${quit}`
      : left,
  ];
  const status = printable(o.status ?? 'view only: nothing written (--influx-url also writes to InfluxDB)');
  // A problem is worth up to three lines (the reason must not be cut); otherwise one.
  if (o.statusAlarm) top.push(...wrap('!! ', status, width));
  else top.push(status);

  // What each layer costs: label column, then the sentence (wrapped under itself).
  const costs = layerCosts(view);
  const labels = elideDistinct(
    costs.map((c) => printable(c.label)),
    Math.min(28, Math.floor(width / 3)),
  );
  const labelW = Math.max(0, ...labels.map((l) => l.length));
  const costItems = costs.map((c, i) => wrap(`  ${labels[i]!.padEnd(labelW)}  `, printable(c.text), width));
  if (costItems.length === 0) costItems.push(['  (waiting for the second tick: rates need two samples)']);
  const costTitle = 'WHAT EACH LAYER COSTS, most first (formulas: docs/overhead.md)';

  const incidents = incidentLines(view.recentAlerts()).map((l) => wrap('  ', printable(l.text), width));
  const incTitle = 'NOISY NEIGHBOURS (I/O incidents)';

  const t = table(rows, width);
  const tableItems = t.lines.map((l) => [l]);
  if (tableItems.length === 0) tableItems.push(['(waiting for the second tick: rates need two samples)']);

  // Sections in the order shown; the room goes first to open incidents, then to costs, then rows.
  const sections: Section[] = [
    { title: costTitle, items: costItems, shown: 0 },
    ...(incidents.length > 0 ? [{ title: incTitle, items: incidents, shown: 0 }] : []),
    { title: t.header, items: tableItems, shown: 0 },
  ];
  allot(sections, height - top.length);
  const lines = [...top];
  for (const s of sections) {
    if (s.shown === 0 && s.items.length > 0 && lines.length + 2 > height) continue;
    lines.push('', s.title);
    for (const item of s.items.slice(0, s.shown)) lines.push(...item);
    const more = s.items.length - s.shown;
    if (more > 0) lines.push(`  … ${more} more`);
  }
  for (const n of o.notes ?? []) if (lines.length < height) lines.push(printable(n));
  return lines
    .slice(0, Number.isFinite(height) ? height : undefined)
    .map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l))
    .join('\n');
}

interface Section {
  title: string;
  /** Each item is one or more lines (a wrapped sentence). */
  items: string[][];
  /** How many items fit (set by allot). */
  shown: number;
}

/**
 * Decides how many items of each section fit in `room` lines. Each section costs a blank line and
 * its title, plus "… N more" when cut. Everything fits when it can; else each section gets its
 * first item, then incidents, costs (up to half of what is left) and table rows take the rest.
 */
function allot(sections: Section[], room: number): void {
  const cost = (s: Section, n: number) =>
    2 + s.items.slice(0, n).reduce((a, it) => a + it.length, 0) + (n < s.items.length ? 1 : 0);
  const total = () => sections.reduce((a, s) => a + cost(s, s.shown), 0);
  for (const s of sections) s.shown = s.items.length;
  if (total() <= room) return;
  for (const s of sections) s.shown = 0;
  const grow = (s: Section, limit: number) => {
    while (s.shown < s.items.length && total() - cost(s, s.shown) + cost(s, s.shown + 1) <= limit) s.shown++;
  };
  for (const s of sections) grow(s, room - (sections.length - 1 - sections.indexOf(s)) * 3);
  const inc = sections.find((s) => s.title.startsWith('NOISY'));
  if (inc) grow(inc, room);
  const costs = sections[0]!;
  grow(costs, total() + Math.floor((room - total()) / 2));
  grow(sections[sections.length - 1]!, room);
  grow(costs, room);
}

/** `prefix` + `text`, wrapped at spaces to `width`, continuation lines indented under the text. */
function wrap(prefix: string, text: string, width: number): string[] {
  const indent = ' '.repeat(prefix.length);
  const room = Math.max(10, width - prefix.length);
  const out: string[] = [];
  let rest = text;
  while (rest.length > room && out.length < 2) {
    let at = rest.lastIndexOf(' ', room);
    if (at <= 0) at = room;
    out.push(rest.slice(0, at));
    rest = rest.slice(at).trimStart();
  }
  out.push(rest);
  return out.map((l, i) => `${i === 0 ? prefix : indent}${l}`);
}

function coresText(v: number): string {
  return `${v.toFixed(2)} cores`;
}
function signed(v: number, digits: number): string {
  return `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)}`;
}
function percent(r: number): string {
  return `${Math.round(r * 100)} %`;
}
function ms(v: number): string {
  return Math.abs(v) < 0.1 ? v.toFixed(3) : v.toFixed(2);
}
function clock(tsMs: number): string {
  return new Date(tsMs).toISOString().slice(11, 19);
}
function fmt(v: number | undefined, digits: number): string {
  return v === undefined ? '-' : v.toFixed(digits);
}
function pair(a: number | undefined, b: number | undefined, digits: number): string {
  if (a === undefined && b === undefined) return '-';
  return `${fmt(a, digits)}/${fmt(b, digits)}`;
}
function pct(v: number | undefined): string {
  return v === undefined ? '-' : `${(v * 100).toFixed(1)}%`;
}
