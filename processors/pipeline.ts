// The processing pipeline: rates → overhead → noisy-neighbor, per node, synchronous and pure over
// decoded messages (processors/types.ts). A node's messages arrive in order on one partition, so
// all state is per node and nothing is shared across partitions. Never throws on data: odd values
// are counted (strata_processor_*) and skipped.
import { componentLogger, OnceLogger } from '../lib/log.ts';
import { counter, gauge } from '../lib/metrics.ts';
import type { AlertEvent } from '../schemas/alert.ts';
import type { Point } from '../schemas/point.ts';
import type { SampleMessage } from '../schemas/sample.ts';
import { type PipelineConfig, type PipelineConfigInput, parsePipelineConfig } from './config.ts';
import { NodeNoisy, NoisyNeighborStage } from './noisy-neighbor/detector.ts';
import { ZeroRateFilter } from './output/zero-rates.ts';
import { NodeOverhead, OverheadStage } from './overhead/overhead.ts';
import { NodeRates, RatesStage, type SkipReason } from './rates/rates.ts';
import type { Pipeline, PipelineOutput } from './types.ts';

const log = componentLogger('processor.pipeline');

const skippedTotal = counter(
  'strata_processor_rates_skipped_total',
  'Intervals that gave no rate, by reason (reset, gap, stale = duplicate/older sample, agent_restart, state_full, clock_jump = sample far older than the one before: state restarted from it)',
  ['reason'],
);
const wrapsTotal = counter(
  'strata_processor_counter_wraps_total',
  'Counters that wrapped (32- or 64-bit) and were unwrapped',
  ['bits'],
);
const lostTicksTotal = counter(
  'strata_processor_lost_ticks_total',
  'Ticks missing between consecutive messages of a node (seq gaps)',
);
const joinsTotal = counter(
  'strata_processor_overhead_vm_joins_total',
  'vm intervals joined with a guest interval, by when (same message or late within the grace window)',
  ['when'],
);
const unjoinedTotal = counter(
  'strata_processor_overhead_unjoined_intervals_total',
  'vm or guest intervals that left the join grace window without a partner (no overhead point)',
  ['side'],
);
const noisyDroppedTotal = counter(
  'strata_processor_noisy_neighbor_dropped_total',
  'tenants or devices not tracked because a per-node bound was reached',
  ['what'],
);
const noisyWindowsTotal = counter(
  'strata_processor_noisy_neighbor_windows_total',
  'device windows evaluated, by verdict',
  ['verdict'],
);
const noisyUnmappedTotal = counter(
  'strata_processor_noisy_neighbor_vm_unmapped_total',
  'VM tenants with no known host device behind their disks (not judged; each VM counted once)',
);
const noisyVmInContainerTotal = counter(
  'strata_processor_noisy_neighbor_vm_in_container_samples_total',
  'VM samples not judged as tenants of their own: their hypervisor runs in a container, which is the tenant',
);
const noisyIncidentsTotal = counter(
  'strata_processor_noisy_neighbor_incidents_total',
  'open incidents taken over from the alerts topic (adopted) or resolved because their node went silent (node_silent)',
  ['event'],
);
const idleSkippedTotal = counter(
  'strata_processor_idle_rows_skipped_total',
  'Device and interface rows not written because they repeat an idle row written less than output.idleHeartbeatMs before (docs/schema.md)',
);
const untrackedRowsTotal = counter(
  'strata_processor_output_untracked_rows_total',
  'Device and interface rows written without their idle state remembered: output.maxInstanceStates reached (idle rows of these are all written)',
);
const zeroRatesSkippedTotal = counter(
  'strata_processor_zero_rates_skipped_total',
  'Rate fields at 0 not written because a 0 of the same field and series was written less than output.idleHeartbeatMs before (output.zeroRates: skip; docs/schema.md)',
);
const entitiesGauge = gauge('strata_processor_entities', 'Entity states held by the pipeline');
const evictedTotal = counter('strata_processor_evicted_entities_total', 'Entity states dropped by eviction');
const conflictsTotal = counter(
  'strata_processor_node_id_conflicts_total',
  'Node ids found shared by two agents at once (messages of two run_ids interleaved): each run keeps its own rate state',
);
const errorsTotal = counter(
  'strata_processor_pipeline_errors_total',
  'Messages whose processing failed unexpectedly (a bug); the message produced no output',
);

/** One agent run (run_id) of a node: its rate state and sequence numbers. */
class RunState {
  readonly rates = new NodeRates();
  lastTs = 0;
  lastSeq = -1;
  /** On a new run until its first message is processed: the run it follows (agent_restart). */
  previous: NodeRates | undefined;
  /** Set by handle(), read and cleared by evict(): activity between two evict calls. */
  active = true;
  lastActiveMs = 0;
  constructor(readonly id: string) {}
}

class NodeState {
  /** Runs held, least recently seen first (one, but for a restart or a node id conflict). */
  readonly runs: RunState[] = [];
  /** The run of the last message. */
  latest: RunState | undefined;
  /** Times a run came back after another run's message: 2 is a node id shared by two agents. */
  comebacks = 0;
  readonly overhead = new NodeOverhead();
  readonly noisy = new NodeNoisy();
  lastTs = 0;
  /** Set by handle(), read and cleared by evict(): activity between two evict calls. */
  active = true;
  lastActiveMs = 0;

  entityCount(): number {
    let n = 0;
    for (const r of this.runs) n += r.rates.size();
    return n;
  }
}

export class ProcessingPipeline implements Pipeline {
  readonly config: PipelineConfig;
  private readonly nodes = new Map<string, NodeState>();
  private readonly rates: RatesStage;
  private readonly overhead: OverheadStage;
  private readonly noisy: NoisyNeighborStage;
  /** output.zeroRates: skip only. */
  private readonly zeroRates: ZeroRateFilter | undefined;
  private readonly once = new OnceLogger(log);
  /** Outputs of evict() (node_silent resolutions) until drain() takes them. */
  private pendingOut: PipelineOutput = { points: [], alerts: [] };
  /** Counters already pushed to prom-client (the stages keep plain numbers on the hot path). */
  private reportedEntities = 0;
  private flushed = { skipped: {} as Record<string, number>, wraps32: 0, wraps64: 0 };
  /** Last values pushed to prom-client, by metric key. */
  private readonly pushed = new Map<string, number>();

  constructor(config: PipelineConfig) {
    this.config = config;
    this.rates = new RatesStage(config.rates, config.maxEntities, config.output);
    this.overhead = new OverheadStage(config.overhead);
    this.zeroRates =
      config.output.zeroRates === 'skip' ? new ZeroRateFilter(config.output.idleHeartbeatMs) : undefined;
    this.noisy = new NoisyNeighborStage(config.noisyNeighbor, config.overhead.vmBackingDevices, (node, vm) =>
      this.once.warn(
        `nn-unmapped:${node}:${vm}`,
        { node, vm },
        'noisy-neighbor: VM has no known host device behind its disks (no host_device label, not in ' +
          'overhead.vmBackingDevices); its I/O is not judged',
      ),
    );
  }

  handle(message: SampleMessage): PipelineOutput {
    const points: Point[] = [];
    const alerts: PipelineOutput['alerts'] = [];
    try {
      const id = message.node.id;
      let node = this.nodes.get(id);
      if (node === undefined) {
        node = new NodeState();
        this.nodes.set(id, node);
      }
      node.active = true;
      let run = node.latest;
      if (run === undefined || run.id !== message.agent.run_id) run = this.switchRun(id, node, message);
      run.active = true;
      // A time far behind the latest is a clock stepped back (or a latest dated ahead): follow it,
      // or eviction, judged on this clock, would drop what the node reports now.
      const jumpMs = this.config.rates.maxGapIntervals * message.interval_ms;
      if (message.ts >= run.lastTs || run.lastTs - message.ts > jumpMs) {
        if (message.seq > run.lastSeq + 1 && run.lastSeq >= 0) {
          lostTicksTotal.inc(message.seq - run.lastSeq - 1);
        }
        run.lastTs = message.ts;
        run.lastSeq = message.seq;
      }
      if (message.ts >= node.lastTs || node.lastTs - message.ts > jumpMs) node.lastTs = message.ts;
      const views = this.rates.process(message, run.rates, points, run.previous);
      run.previous = undefined;
      this.overhead.process(id, views, node.overhead, points);
      this.noisy.process(id, message.ts, views, node.noisy, points, alerts);
      this.zeroRates?.apply(points);
    } catch (err) {
      // A bug, not bad data (data problems are counted inside the stages): keep consuming.
      errorsTotal.inc();
      this.once.warn('pipeline-error', { err, node: message.node.id }, 'pipeline failed on a message');
      return { points: [], alerts: [] };
    }
    return { points, alerts };
  }

  /**
   * The state of the message's agent run, made current. A run_id not seen before is a restart (a
   * fresh state; the previous run's stays until eviction, in case it is not one) or a second
   * agent; a run seen before coming back after another's message, twice, is two agents sharing
   * the node id: counted and logged once, and each run keeps computing its own rates.
   */
  private switchRun(nodeId: string, node: NodeState, message: SampleMessage): RunState {
    const runId = message.agent.run_id;
    const i = node.runs.findIndex((r) => r.id === runId);
    let run: RunState;
    if (i < 0) {
      if (node.runs.length >= this.config.maxRunsPerNode) {
        const dropped = node.runs.shift()!;
        const n = dropped.rates.size();
        this.rates.entities -= n;
        this.rates.instanceStates -= dropped.rates.instanceStates();
        evictedTotal.inc(n);
      }
      run = new RunState(runId);
      run.previous = node.latest?.rates;
      node.runs.push(run);
    } else {
      run = node.runs[i]!;
      node.runs.splice(i, 1);
      node.runs.push(run);
      if (node.latest !== undefined && ++node.comebacks === 2) {
        conflictsTotal.inc();
        this.once.warn(
          `node-id-conflict:${nodeId}`,
          { node: nodeId, runs: node.runs.map((r) => r.id), hostname: message.node.hostname },
          'two agents publish under one node id (cloned machines share /etc/machine-id): each run ' +
            'keeps its own rates, but their points share series and overhead and noisy-neighbour ' +
            'state. Set STRATA_NODE_ID (agent.nodeId) to a distinct value on one of them',
        );
      }
    }
    node.latest = run;
    return run;
  }

  evict(nowMs: number): number {
    const horizon = this.config.evictAfterMs;
    let dropped = 0;
    for (const [id, node] of this.nodes) {
      if (node.active) {
        node.active = false;
        node.lastActiveMs = nowMs;
      } else if (nowMs - node.lastActiveMs > horizon) {
        // Open incidents end with the node, with a reason, instead of vanishing.
        this.noisy.resolveNode(
          id,
          node.noisy,
          node.lastTs,
          'node_silent',
          this.pendingOut.points,
          this.pendingOut.alerts,
        );
        dropped += node.entityCount();
        for (const r of node.runs) this.rates.instanceStates -= r.rates.instanceStates();
        this.nodes.delete(id);
        continue;
      }
      // Runs silent for the horizon (a restarted agent's previous run, the other agent of a
      // conflict that got its own node id) go, by the same wall-clock rule as nodes.
      for (let i = node.runs.length - 1; i >= 0; i--) {
        const run = node.runs[i]!;
        if (run.active) {
          run.active = false;
          run.lastActiveMs = nowMs;
        } else if (nowMs - run.lastActiveMs > horizon) {
          dropped += run.rates.size();
          this.rates.instanceStates -= run.rates.instanceStates();
          node.runs.splice(i, 1);
          if (node.latest === run) node.latest = undefined;
        }
      }
      if (node.runs.length <= 1) node.comebacks = 0;
      node.overhead.evict(node.lastTs, horizon);
      node.noisy.evict(node.lastTs, horizon);
      // Entities gone from a node that keeps reporting: judged on the node's own sample clock,
      // so a processor catching up on old data does not evict what it just saw.
      for (const run of node.runs) {
        for (const states of Object.values(run.rates.byLayer)) {
          for (const [eid, st] of states) {
            if (run.lastTs - st.lastTs > horizon) {
              states.delete(eid);
              this.rates.instanceStates -= st.instanceStates();
              dropped++;
            }
          }
        }
      }
    }
    this.rates.entities -= dropped;
    evictedTotal.inc(dropped);
    this.flushStats();
    return dropped;
  }

  drain(): PipelineOutput {
    const out = this.pendingOut;
    this.pendingOut = { points: [], alerts: [] };
    return out;
  }

  adopt(open: readonly AlertEvent[]): void {
    const byNode = new Map<string, AlertEvent[]>();
    for (const e of open) {
      const l = byNode.get(e.node);
      if (l === undefined) byNode.set(e.node, [e]);
      else l.push(e);
    }
    for (const id of byNode.keys()) {
      // A node known only from the alerts topic: if it never reports, evict() resolves its
      // incidents as node_silent after the horizon.
      if (!this.nodes.has(id)) this.nodes.set(id, new NodeState());
    }
    for (const [id, node] of this.nodes) this.noisy.adopt(id, node.noisy, byNode.get(id) ?? []);
  }

  /** Open incident ids of a node (tests). */
  openIncidents(nodeId: string): string[] {
    const node = this.nodes.get(nodeId);
    return node === undefined ? [] : this.noisy.openIncidents(node.noisy);
  }

  /** Entity states held (for tests and the gauge). */
  entityCount(): number {
    return this.rates.entities;
  }

  private push(key: string, value: number, inc: (delta: number) => void): void {
    const d = value - (this.pushed.get(key) ?? 0);
    if (d > 0) inc(d);
    this.pushed.set(key, value);
  }

  /** Pushes the stages' plain counters to prom-client (cheap to call; evict() calls it). */
  flushStats(): void {
    const s = this.rates.stats;
    for (const reason of Object.keys(s.skipped) as SkipReason[]) {
      const d = s.skipped[reason] - (this.flushed.skipped[reason] ?? 0);
      if (d > 0) skippedTotal.inc({ reason }, d);
      this.flushed.skipped[reason] = s.skipped[reason];
    }
    if (s.wraps32 > this.flushed.wraps32) wrapsTotal.inc({ bits: '32' }, s.wraps32 - this.flushed.wraps32);
    if (s.wraps64 > this.flushed.wraps64) wrapsTotal.inc({ bits: '64' }, s.wraps64 - this.flushed.wraps64);
    this.flushed.wraps32 = s.wraps32;
    this.flushed.wraps64 = s.wraps64;
    this.push('out.idle', s.idleRowsSkipped, (d) => idleSkippedTotal.inc(d));
    this.push('out.untracked', s.untrackedRows, (d) => untrackedRowsTotal.inc(d));
    if (this.zeroRates) this.push('out.zeros', this.zeroRates.skipped, (d) => zeroRatesSkippedTotal.inc(d));
    const o = this.overhead.stats;
    const n = this.noisy.stats;
    this.push('joins.same', o.vmJoins - o.lateJoins, (d) => joinsTotal.inc({ when: 'same_message' }, d));
    this.push('joins.late', o.lateJoins, (d) => joinsTotal.inc({ when: 'late' }, d));
    this.push('unjoined.vm', o.unjoinedVmIntervals, (d) => unjoinedTotal.inc({ side: 'vm' }, d));
    this.push('unjoined.guest', o.unjoinedGuestIntervals, (d) => unjoinedTotal.inc({ side: 'guest' }, d));
    this.push('nn.tenants', n.tenantsDropped, (d) => noisyDroppedTotal.inc({ what: 'tenant' }, d));
    this.push('nn.devices', n.devicesDropped, (d) => noisyDroppedTotal.inc({ what: 'device' }, d));
    this.push('nn.bad', n.badWindows, (d) => noisyWindowsTotal.inc({ verdict: 'bad' }, d));
    this.push('nn.unmapped', n.vmsUnmapped, (d) => noisyUnmappedTotal.inc(d));
    this.push('nn.vm_in_container', n.vmSamplesInContainers, (d) => noisyVmInContainerTotal.inc(d));
    this.push('nn.adopted', n.incidentsAdopted, (d) => noisyIncidentsTotal.inc({ event: 'adopted' }, d));
    this.push('nn.silent', n.incidentsResolvedSilent, (d) =>
      noisyIncidentsTotal.inc({ event: 'node_silent' }, d),
    );
    this.push('nn.good', n.windows - n.badWindows, (d) => noisyWindowsTotal.inc({ verdict: 'good' }, d));
    // One pipeline per partition shares the gauge: report this pipeline's change, not its total.
    entitiesGauge.inc(this.rates.entities - this.reportedEntities);
    this.reportedEntities = this.rates.entities;
  }
}

/** The factory the processor runtime and `strata run` use. Config errors throw ConfigError. */
export function createPipeline(config: PipelineConfigInput | PipelineConfig = {}): ProcessingPipeline {
  return new ProcessingPipeline(parsePipelineConfig(config));
}
