// Per-layer overhead (every formula, and why, in docs/overhead.md): joins the views of the same
// work at two layers and writes, as fields of points already in the output (one line per
// entity-sample fewer for InfluxDB, docs/cost.md), or as a point of its own for the node:
//   vm        hypervisor (vm view) against the guest's own view, joined by guest.parent.id: on the
//             VM's strata_vm point;
//   container a container's cost per unit of work against the host's: on its strata_container
//             point; its share of each host device: on its device rows;
//   node      the node's CPU and memory split by layer: a strata_overhead point (layer=node).
// Memory (§2.4) compares gauges of the same message: what the host pays for a VM against what its
// guest uses, what KSM saves per VM and per node.
// Ratios are written only above the configured minimum work (idle or missing view → no field,
// never 0 % or ∞).

import {
  MEMORY_ANON as CONTAINER_MEMORY_ANON,
  MEMORY_FILE as CONTAINER_MEMORY_FILE,
  MEMORY_USAGE as CONTAINER_MEMORY_USAGE,
} from '../../collectors/cgroup/metrics.ts';
import {
  CPU_COUNT,
  CPU_STEAL,
  KSM_SHARING,
  KSM_ZERO_PAGES,
  KSMD_CPU,
  MEMORY_AVAILABLE,
  MEMORY_FREE,
  MEMORY_TOTAL,
  PAGE_FAULTS,
  PSI,
  READ_BYTES,
  READ_TIME_MS,
  READS_COMPLETED,
  RX_PACKETS,
  TX_PACKETS,
  WRITE_TIME_MS,
  WRITES_COMPLETED,
  WRITTEN_BYTES,
} from '../../collectors/host/metrics.ts';
import {
  MEMORY_PSS,
  MEMORY_PSS_ANON,
  MEMORY_RSS,
  VCPU,
  KSM_ZERO_PAGES as VM_KSM_ZERO_PAGES,
  MEMORY_ANON as VM_MEMORY_ANON,
} from '../../collectors/vm/metrics.ts';
import type { MetricSpec } from '../../schemas/catalogue.ts';
import type { Point } from '../../schemas/point.ts';
import { vmsInContainers } from '../hypervisor-cgroup.ts';
import {
  MEASUREMENT as ENTITY_MEASUREMENTS,
  type EntityView,
  type Fields,
  totalIops,
} from '../rates/rates.ts';
import type { OverheadConfig } from './config.ts';
import { IO_READ, IO_WRITE, type OverheadFields } from './fields.ts';

/** The node's totals; a VM's and a container's overhead is on the entity's own point. */
const MEASUREMENT = 'strata_overhead';

function rateField(m: MetricSpec): string {
  if (!m.rate) throw new Error(`${m.name} has no rate field in its catalogue`);
  return m.rate.field;
}
function latencyField(m: MetricSpec): string {
  if (!m.latency) throw new Error(`${m.name} has no latency field in its catalogue`);
  return m.latency.field;
}

// The input fields, named by the catalogue entries they are derived from (collectors/*/metrics.ts)
// and the rates stage's derived fields (processors/rates/fields.ts), resolved once at load.
const IN = {
  cpuCores: 'cpu_cores', // rates stage: Σ busy buckets (host, guest); the CPU-time rate (container, vm)
  cpuStealRatio: 'cpu_steal_ratio', // rates stage
  cpuCount: CPU_COUNT.name,
  cpuSteal: rateField(CPU_STEAL),
  vcpu: rateField(VCPU),
  pageFaults: rateField(PAGE_FAULTS),
  ioStall: rateField(PSI.io.some[0]),
  rxPackets: rateField(RX_PACKETS),
  txPackets: rateField(TX_PACKETS),
  readBytes: rateField(READ_BYTES),
  writtenBytes: rateField(WRITTEN_BYTES),
  // Memory (gauges, as sent).
  memTotal: MEMORY_TOTAL.name,
  memAvailable: MEMORY_AVAILABLE.name,
  memFree: MEMORY_FREE.name,
  ksmSharing: KSM_SHARING.name,
  ksmZero: KSM_ZERO_PAGES.name,
  ksmdCores: rateField(KSMD_CPU),
  vmPss: MEMORY_PSS.name,
  vmRss: MEMORY_RSS.name,
  vmAnon: VM_MEMORY_ANON.name,
  vmPssAnon: MEMORY_PSS_ANON.name,
  vmKsmZero: VM_KSM_ZERO_PAGES.name,
  cMemUsage: CONTAINER_MEMORY_USAGE.name,
  cMemAnon: CONTAINER_MEMORY_ANON.name,
  cMemFile: CONTAINER_MEMORY_FILE.name,
} as const;

/** What the host pays for a VM's memory: Pss (KSM and shared libraries divided), else VmRSS. */
function hypervisorMemory(vm: EntityView): number | undefined {
  return num(vm.fields, IN.vmPss) ?? num(vm.fields, IN.vmRss);
}

/**
 * The VM's share of KSM's saving: anonymous memory it maps minus the part it pays for (Pss_Anon
 * divides each merged page among its mappers), plus its pages merged into the zero page (no longer
 * resident at all). Needs Pss_Anon (kernels without it: no figure).
 */
function vmKsmSaving(vm: EntityView): number | undefined {
  const anon = num(vm.fields, IN.vmAnon);
  const pssAnon = num(vm.fields, IN.vmPssAnon);
  if (anon === undefined || pssAnon === undefined) return undefined;
  return Math.max(0, anon - pssAnon) + (num(vm.fields, IN.vmKsmZero) ?? 0);
}

/** Per-op inputs (the instance's iops and latency fields) and outputs (fields.ts), per op. */
const IO_OPS = [
  { iops: rateField(READS_COMPLETED), latency: latencyField(READ_TIME_MS), out: IO_READ },
  { iops: rateField(WRITES_COMPLETED), latency: latencyField(WRITE_TIME_MS), out: IO_WRITE },
] as const;
type IoOp = (typeof IO_OPS)[number];

interface PendingVm {
  view: EntityView;
  /** The host view of the same message (for the backing device's latency), if any. */
  host: EntityView | undefined;
  joined: boolean;
}
interface PendingGuest {
  view: EntityView;
  joined: boolean;
}

/** Per-node join state: the last few vm and guest intervals not yet paired. Bounded by grace. */
export class NodeOverhead {
  readonly vms = new Map<string, PendingVm[]>();
  readonly guests = new Map<string, PendingGuest[]>();
  /** vm/guest ids last seen by sample ts, for eviction. */
  readonly lastTs = new Map<string, number>();
  evict(nodeTs: number, horizonMs: number): void {
    for (const [id, ts] of this.lastTs) {
      if (nodeTs - ts > horizonMs) {
        this.vms.delete(id);
        this.guests.delete(id);
        this.lastTs.delete(id);
      }
    }
  }
}

export interface OverheadStats {
  vmJoins: number;
  lateJoins: number;
  unjoinedVmIntervals: number;
  unjoinedGuestIntervals: number;
}

function num(f: Fields | undefined, k: string): number | undefined {
  const v = f?.[k];
  return typeof v === 'number' ? v : undefined;
}

/** Σ over instances of a field, or undefined if no instance has it. */
function sumField(m: Map<string, Fields> | undefined, k: string, skip?: (name: string) => boolean) {
  if (m === undefined) return undefined;
  let sum = 0;
  let n = 0;
  for (const [name, f] of m) {
    if (skip?.(name)) continue;
    const v = f[k];
    if (typeof v === 'number') {
      sum += v;
      n++;
    }
  }
  return n > 0 ? sum : undefined;
}

/**
 * The fields of the entity's own point (or device row) of this message, which the rates stage has
 * put in the output and the sink has not encoded yet, to write overhead fields into. Named stores
 * on it: copying a separate object key by key cost 11 % of the pipeline's CPU (megamorphic keyed
 * stores that add properties).
 */
function onPoint(fields: Fields): OverheadFields {
  return fields as OverheadFields;
}

/** Σ over instances of a figure of each, or undefined if no instance has it. */
function sumOver(
  m: Map<string, Fields> | undefined,
  of: (f: Fields) => number | undefined,
): number | undefined {
  if (m === undefined) return undefined;
  let sum = 0;
  let n = 0;
  for (const f of m.values()) {
    const v = of(f);
    if (v !== undefined) {
      sum += v;
      n++;
    }
  }
  return n > 0 ? sum : undefined;
}

/** Σ over instances of read_iops + write_iops, or undefined if no instance reports either. */
const sumIops = (m: Map<string, Fields> | undefined) => sumOver(m, totalIops);

/** Ops-weighted mean latency over instances: Σ(lat × iops) ÷ Σ iops = Σ Δtime ÷ Σ Δops. */
function meanLatency(m: Map<string, Fields> | undefined, op: IoOp) {
  if (m === undefined) return undefined;
  let ops = 0;
  let time = 0;
  for (const f of m.values()) {
    const iops = f[op.iops];
    const lat = f[op.latency];
    if (typeof iops === 'number' && iops > 0 && typeof lat === 'number') {
      ops += iops;
      time += lat * iops;
    }
  }
  return ops > 0 ? { iops: ops, latencyMs: time / ops } : undefined;
}

export class OverheadStage {
  readonly stats: OverheadStats = {
    vmJoins: 0,
    lateJoins: 0,
    unjoinedVmIntervals: 0,
    unjoinedGuestIntervals: 0,
  };

  constructor(private readonly cfg: OverheadConfig) {}

  process(nodeId: string, views: EntityView[], state: NodeOverhead, out: Point[]): void {
    let host: EntityView | undefined;
    const containers: EntityView[] = [];
    const vms: EntityView[] = [];
    const guests: EntityView[] = [];
    for (const v of views) {
      if (v.dtS <= 0) continue; // first sample, reset, gap: no rates, nothing to compare
      if (v.layer === 'host') host = v;
      else if (v.layer === 'container') {
        const parent = v.sample.entity.parent;
        if (parent === undefined || parent.layer === 'host') containers.push(v);
      } else if (v.layer === 'vm') vms.push(v);
      else if (v.layer === 'guest' && v.sample.entity.parent?.layer === 'vm') guests.push(v);
    }

    // --- VMs: queue both sides, then pair what overlaps.
    const keep = this.cfg.joinGraceTicks + 1;
    const touched = new Set<string>();
    for (const v of vms) {
      push(state.vms, v.id, { view: v, host, joined: false }, keep, () => this.stats.unjoinedVmIntervals++);
      state.lastTs.set(v.id, v.ts);
      touched.add(v.id);
    }
    for (const g of guests) {
      const vmId = g.sample.entity.parent!.id;
      push(state.guests, vmId, { view: g, joined: false }, keep, () => this.stats.unjoinedGuestIntervals++);
      state.lastTs.set(vmId, Math.max(state.lastTs.get(vmId) ?? 0, g.ts));
      touched.add(vmId);
    }
    let joinedGuestBusy = 0;
    let virtOverhead = 0;
    let joinedVms = 0;
    let memOverhead = 0;
    let memOverheadVms = 0;
    for (const vmId of touched) {
      const vq = state.vms.get(vmId);
      const gq = state.guests.get(vmId);
      if (vq === undefined || gq === undefined) continue;
      for (const pv of vq) {
        if (pv.joined) continue;
        // The guest agent's records arrive at their own phase (the guest sample's ts is the host's
        // receive time), so pair by overlap: the guest interval covering at least half of the vm
        // interval. Two contiguous guest intervals cannot both do that, so the pair is unique; when
        // the better one is the next record, it arrives a message later, within the grace window.
        const v1 = pv.view.ts;
        const v0 = v1 - pv.view.dtS * 1000;
        let best: PendingGuest | undefined;
        let bestOverlap = 0;
        for (const pg of gq) {
          if (pg.joined) continue;
          const g1 = pg.view.ts;
          const g0 = g1 - pg.view.dtS * 1000;
          const overlap = Math.min(v1, g1) - Math.max(v0, g0);
          if (overlap > bestOverlap) {
            bestOverlap = overlap;
            best = pg;
          }
        }
        if (best === undefined || bestOverlap < 0.5 * (v1 - v0)) continue;
        const pg = best;
        pv.joined = true;
        pg.joined = true;
        this.stats.vmJoins++;
        const late = !vms.includes(pv.view);
        // On the VM's point of this message; a late one's went out with an earlier message: the
        // same series and time again, with these fields only, which InfluxDB merges into it.
        const fields: OverheadFields = late ? {} : onPoint(pv.view.fields);
        this.vmOverhead(pv, pg.view, fields);
        fields.guest_interval_offset_ms = pg.view.ts - v1;
        if (late) {
          this.stats.lateJoins++;
          out.push({ measurement: ENTITY_MEASUREMENTS.vm, tags: pv.view.state.tags, fields, timeMs: v1 });
        }
        // Node totals are per message: they include only pairs of this message's vm views.
        if (!late && typeof fields.memory_overhead_bytes === 'number') {
          memOverhead += fields.memory_overhead_bytes;
          memOverheadVms++;
        }
        if (!late && typeof fields.cpu_overhead_cores === 'number') {
          joinedVms++;
          joinedGuestBusy += num(pg.view.fields, IN.cpuCores) ?? 0;
          virtOverhead += fields.cpu_overhead_cores;
        }
      }
    }

    // --- Containers and node totals need the host view of this message.
    if (host === undefined) return;
    const hostBusy = num(host.fields, IN.cpuCores);
    const hostPps = this.hostPackets(host);
    for (const c of containers) {
      this.containerOverhead(c, host, hostBusy, hostPps, onPoint(c.fields));
      this.deviceShares(c, host);
    }
    if (hostBusy === undefined) return;
    let containersCpu = 0;
    for (const c of containers) containersCpu += num(c.fields, IN.cpuCores) ?? 0;
    let vmsCpu = 0;
    for (const v of vms) vmsCpu += num(v.fields, IN.cpuCores) ?? 0;
    // A hypervisor inside a container's cgroup (KubeVirt's virt-launcher) is in that container's
    // CPU too: it counts as the VM's, and comes off the containers' (at most the container's own).
    let nested = 0;
    if (vms.length > 0 && containers.length > 0) {
      for (const [vm, c] of vmsInContainers([...containers, ...vms])) {
        nested++;
        containersCpu -= Math.min(num(vm.fields, IN.cpuCores) ?? 0, num(c.fields, IN.cpuCores) ?? 0);
      }
    }
    const f: OverheadFields = {
      host_cpu_busy_cores: hostBusy,
      containers_cpu_cores: containersCpu,
      vms_hypervisor_cpu_cores: vmsCpu,
      containers: containers.length,
      vms: vms.length,
      vms_in_containers: nested,
      vms_with_guest_view: joinedVms,
    };
    const other = hostBusy - containersCpu - vmsCpu;
    // Negative: more counted than the host was busy (sampling skew, or a hypervisor in a container
    // the agent could not tell): no number rather than a wrong one.
    if (other >= 0) f.host_other_cpu_cores = other;
    if (joinedVms > 0) {
      f.guests_cpu_busy_cores = joinedGuestBusy;
      f.virtualization_cpu_overhead_cores = virtOverhead;
    }
    if (hostBusy >= this.cfg.minGuestBusyCores) {
      f.containers_cpu_ratio = containersCpu / hostBusy;
      f.vms_cpu_ratio = vmsCpu / hostBusy;
      if (joinedVms > 0) f.virtualization_cpu_overhead_ratio = virtOverhead / hostBusy;
    }
    const cpuCount = num(host.fields, IN.cpuCount);
    if (cpuCount !== undefined && cpuCount > 0 && joinedVms > 0) {
      f.virtualization_cpu_overhead_capacity_ratio = virtOverhead / cpuCount;
    }
    this.nodeMemory(host, containers, vms, f);
    if (memOverheadVms > 0) f.vms_memory_overhead_bytes = memOverhead;
    out.push({
      measurement: MEASUREMENT,
      tags: { node: nodeId, layer: 'node', name: host.sample.entity.name || nodeId },
      fields: f,
      timeMs: host.ts,
    });
  }

  /** §2.4: the node's resident memory split by layer, and KSM's saving against ksmd's CPU. */
  private nodeMemory(host: EntityView, containers: EntityView[], vms: EntityView[], f: OverheadFields): void {
    const total = num(host.fields, IN.memTotal);
    const free = num(host.fields, IN.memFree);
    let cUsage = 0;
    let cAnon = 0;
    let cFile = 0;
    let cN = 0;
    for (const c of containers) {
      const u = num(c.fields, IN.cMemUsage);
      if (u === undefined) continue;
      cN++;
      cUsage += u;
      cAnon += num(c.fields, IN.cMemAnon) ?? 0;
      cFile += num(c.fields, IN.cMemFile) ?? 0;
    }
    // A hypervisor in a container's cgroup is charged to it too: it counts as the VM's (as for CPU).
    if (vms.length > 0 && cN > 0) {
      for (const [vm, c] of vmsInContainers([...containers, ...vms])) {
        cUsage -= Math.min(hypervisorMemory(vm) ?? 0, num(c.fields, IN.cMemUsage) ?? 0);
      }
    }
    let vmMem = 0;
    let vmN = 0;
    let saving = 0;
    let savingN = 0;
    for (const v of vms) {
      const m = hypervisorMemory(v);
      if (m !== undefined) {
        vmMem += m;
        vmN++;
      }
      const s = vmKsmSaving(v);
      if (s !== undefined) {
        saving += s;
        savingN++;
      }
    }
    if (cN > 0) {
      f.containers_memory_bytes = cUsage;
      f.containers_memory_anon_bytes = cAnon;
      f.containers_memory_file_bytes = cFile;
    }
    if (vmN > 0) f.vms_hypervisor_memory_bytes = vmMem;
    if (savingN > 0) f.vms_ksm_saving_bytes = saving;
    if (total !== undefined && free !== undefined && total >= free) {
      const used = total - free;
      f.host_memory_used_bytes = used;
      // Negative: more counted than is resident (gauges read a few ms apart): no number.
      const other = used - (cN > 0 ? cUsage : 0) - vmMem;
      if (other >= 0) f.host_other_memory_bytes = other;
    }
    const sharing = num(host.fields, IN.ksmSharing);
    if (sharing !== undefined) f.host_ksm_saving_bytes = sharing + (num(host.fields, IN.ksmZero) ?? 0);
    const ksmd = num(host.fields, IN.ksmdCores);
    if (ksmd !== undefined) f.ksmd_cpu_cores = ksmd;
  }

  /** §2.1, written into `f` (the VM's point, or a line of its own for a late join). */
  private vmOverhead(pv: PendingVm, guest: EntityView, f: OverheadFields): void {
    const vm = pv.view;
    const cfg = this.cfg;
    f.guest_entity_id = guest.id;
    const hyp = num(vm.fields, IN.cpuCores);
    const gBusy = num(guest.fields, IN.cpuCores);
    const vcpu = num(vm.fields, IN.vcpu);
    if (hyp !== undefined && vcpu !== undefined) f.hypervisor_non_vcpu_cpu_cores = hyp - vcpu;
    if (gBusy !== undefined) f.guest_cpu_busy_cores = gBusy;
    const steal = num(guest.fields, IN.cpuSteal);
    if (steal !== undefined) f.guest_cpu_steal_cores = steal;
    const stealRatio = num(guest.fields, IN.cpuStealRatio);
    if (stealRatio !== undefined) f.guest_cpu_steal_ratio = stealRatio;
    if (hyp !== undefined && gBusy !== undefined) {
      f.cpu_overhead_cores = hyp - gBusy;
      if (gBusy >= cfg.minGuestBusyCores) f.cpu_overhead_ratio = hyp / gBusy;
    }

    // I/O: all guest disks against all of the VM's QMP block devices (names differ between the two).
    const backing = cfg.vmBackingDevices[vm.sample.entity.name] ?? vm.sample.entity.labels.host_device;
    const hostDev = backing !== undefined ? pv.host?.devices?.get(backing) : undefined;
    if (backing !== undefined) f.host_device = backing;
    for (const op of IO_OPS) {
      const [guestLat, hypLat, guestAdded, devLat, hypAdded, added] = op.out;
      const g = meanLatency(guest.devices, op);
      const h = meanLatency(vm.devices, op);
      if (g === undefined || g.iops * guest.dtS < cfg.minOpsPerInterval) continue;
      f[guestLat.name] = g.latencyMs;
      if (h === undefined || h.iops * vm.dtS < cfg.minOpsPerInterval) continue;
      f[hypLat.name] = h.latencyMs;
      f[guestAdded.name] = g.latencyMs - h.latencyMs;
      const d = hostDev !== undefined ? num(hostDev, op.latency) : undefined;
      const dOps = hostDev !== undefined ? num(hostDev, op.iops) : undefined;
      if (d !== undefined && dOps !== undefined && dOps * vm.dtS >= cfg.minOpsPerInterval) {
        f[devLat.name] = d;
        f[hypAdded.name] = h.latencyMs - d;
        f[added.name] = g.latencyMs - d;
      }
    }
    const gOps = sumIops(guest.devices);
    const hOps = sumIops(vm.devices);
    if (gOps !== undefined && hOps !== undefined && gOps * guest.dtS >= cfg.minOpsPerInterval) {
      f.io_ops_amplification_ratio = hOps / gOps;
      const gBytes = ioBytes(guest.devices);
      const hBytes = ioBytes(vm.devices);
      if (gBytes !== undefined && hBytes !== undefined && gBytes > 0)
        f.io_bytes_amplification_ratio = hBytes / gBytes;
    }

    // Network: taps (host side) against the guest's interfaces.
    const tap = packets(vm.interfaces);
    const gp = packets(guest.interfaces, (n) => n === 'lo');
    if (tap !== undefined) f.net_tap_packets_per_second = tap;
    if (gp !== undefined) {
      f.net_guest_packets_per_second = gp;
      if (gp * guest.dtS >= cfg.minPacketsPerInterval) {
        if (tap !== undefined) f.net_tap_per_guest_packet_ratio = tap / gp;
        if (hyp !== undefined) f.hypervisor_cpu_usec_per_guest_packet = (hyp * 1e6) / gp;
        if (hyp !== undefined && gBusy !== undefined && hyp >= gBusy) {
          f.hypervisor_overhead_cpu_usec_per_guest_packet = ((hyp - gBusy) * 1e6) / gp;
        }
      }
    }

    // Page faults: inside the guest vs the hypervisor process (nested paging, balloon).
    const gf = num(guest.fields, IN.pageFaults);
    const hf = num(vm.fields, IN.pageFaults);
    if (gf !== undefined) f.guest_page_faults_per_second = gf;
    if (gf !== undefined && hf !== undefined && gf * guest.dtS >= cfg.minFaultsPerInterval) {
      f.hypervisor_faults_per_guest_fault_ratio = hf / gf;
    }

    // Memory (§2.4): what the host pays against what the guest uses, gauges of the two views.
    const paid = hypervisorMemory(vm);
    const gTotal = num(guest.fields, IN.memTotal);
    const gAvail = num(guest.fields, IN.memAvailable);
    if (paid !== undefined) f.hypervisor_memory_bytes = paid;
    if (gTotal !== undefined) f.guest_memory_total_bytes = gTotal;
    if (gTotal !== undefined && gAvail !== undefined && gTotal >= gAvail) {
      f.guest_memory_used_bytes = gTotal - gAvail;
      if (paid !== undefined) f.memory_overhead_bytes = paid - (gTotal - gAvail);
    }
    const saving = vmKsmSaving(vm);
    if (saving !== undefined) f.ksm_saving_bytes = saving;
  }

  private hostPackets(host: EntityView): number | undefined {
    const prefixes = this.cfg.hostVirtualInterfacePrefixes;
    return packets(host.interfaces, (n) => prefixes.some((p) => n.startsWith(p)));
  }

  /** §2.2, written into `f`: the container's own point. */
  private containerOverhead(
    c: EntityView,
    host: EntityView,
    hostBusy: number | undefined,
    hostPps: number | undefined,
    f: OverheadFields,
  ): void {
    const cfg = this.cfg;
    const cpu = num(c.fields, IN.cpuCores);
    const pps = packets(c.interfaces);
    if (cpu !== undefined && pps !== undefined && pps * c.dtS >= cfg.minPacketsPerInterval) {
      f.cpu_usec_per_packet = (cpu * 1e6) / pps;
      if (
        hostBusy !== undefined &&
        hostPps !== undefined &&
        hostPps * host.dtS >= cfg.minPacketsPerInterval
      ) {
        const h = (hostBusy * 1e6) / hostPps;
        f.host_cpu_usec_per_packet = h;
        if (h > 0) f.cpu_per_packet_vs_host_ratio = f.cpu_usec_per_packet / h;
      }
    }
    // I/O: cgroups give no per-op latency; io stall time per op is the container's closest figure.
    const iops = sumIops(c.devices);
    const stall = num(c.fields, IN.ioStall);
    if (iops !== undefined && stall !== undefined && iops * c.dtS >= cfg.minOpsPerInterval) {
      f.io_stall_ms_per_op = (stall * 1000) / iops;
      // The host devices' latency, weighted by this container's ops on each.
      let w = 0;
      let lat = 0;
      for (const [name, cf] of c.devices!) {
        const ci = totalIops(cf);
        const hd = host.devices?.get(name);
        const hl = hd !== undefined ? deviceLatency(hd) : undefined;
        if (ci === undefined || ci <= 0 || hl === undefined) continue;
        w += ci;
        lat += ci * hl;
      }
      if (w > 0) {
        f.host_device_latency_ms_per_op = lat / w;
        if (lat > 0) f.io_stall_per_op_vs_host_latency_ratio = f.io_stall_ms_per_op / (lat / w);
      }
    }
  }

  /**
   * The container's share of each host device, on the container's device row. A row skipped as
   * idle (docs/schema.md) has 0 ops and 0 bytes, so its shares are 0 or none: nothing is lost.
   */
  private deviceShares(c: EntityView, host: EntityView): void {
    if (c.devices === undefined || host.devices === undefined) return;
    for (const [name, cf] of c.devices) {
      const hd = host.devices.get(name);
      if (hd === undefined) continue; // a partition or dm device the host collector does not report
      const hi = totalIops(hd);
      const ci = totalIops(cf);
      const f = onPoint(cf);
      if (hi !== undefined && ci !== undefined && hi * host.dtS >= this.cfg.minOpsPerInterval) {
        f.iops_share_ratio = ci / hi;
      }
      const hb = ioBytesOne(hd);
      const cb = ioBytesOne(cf);
      if (
        hb !== undefined &&
        cb !== undefined &&
        hb > 0 &&
        hi !== undefined &&
        hi * host.dtS >= this.cfg.minOpsPerInterval
      ) {
        f.bytes_share_ratio = cb / hb;
      }
    }
  }
}

function push<T>(
  m: Map<string, T[]>,
  k: string,
  v: T & { joined: boolean },
  keep: number,
  dropped: () => void,
) {
  let q = m.get(k);
  if (q === undefined) {
    q = [];
    m.set(k, q);
  }
  q.push(v);
  while (q.length > keep) {
    const old = q.shift() as { joined: boolean };
    if (!old.joined) dropped();
  }
}

function packets(m: Map<string, Fields> | undefined, skip?: (name: string) => boolean): number | undefined {
  const rx = sumField(m, IN.rxPackets, skip);
  const tx = sumField(m, IN.txPackets, skip);
  return rx === undefined || tx === undefined ? undefined : rx + tx;
}

function ioBytesOne(f: Fields): number | undefined {
  const r = num(f, IN.readBytes);
  const w = num(f, IN.writtenBytes);
  return r === undefined && w === undefined ? undefined : (r ?? 0) + (w ?? 0);
}

const ioBytes = (m: Map<string, Fields> | undefined) => sumOver(m, ioBytesOne);

/** A host device's mean latency per op over reads and writes (ms), when it did any. */
function deviceLatency(f: Fields): number | undefined {
  const [read, write] = IO_OPS;
  const r = num(f, read.iops) ?? 0;
  const w = num(f, write.iops) ?? 0;
  const rl = num(f, read.latency);
  const wl = num(f, write.latency);
  let ops = 0;
  let t = 0;
  if (r > 0 && rl !== undefined) {
    ops += r;
    t += r * rl;
  }
  if (w > 0 && wl !== undefined) {
    ops += w;
    t += w * wl;
  }
  return ops > 0 ? t / ops : undefined;
}
