// The agent runtime: ticks aligned to the wall clock -> collectors gathered concurrently (each
// bounded by collectTimeout) -> one SampleMessage per tick, encoded once -> bounded TickBuffer ->
// Publisher -> Kafka (or ndjson). Sampling never waits for the output: an outage only grows the
// buffer, within its bounds.
import { randomUUID } from 'node:crypto';
import { resolveNodeIdentity } from '../collectors/host/identity.ts';
import { collectorFactory } from '../collectors/registry.ts';
import type { Collector, HostPaths } from '../collectors/types.ts';
import { parseConfig } from '../lib/config.ts';
import { errorMessage } from '../lib/errors.ts';
import { componentLogger, type Logger, OnceLogger } from '../lib/log.ts';
import { type NodeIdentity, type SampleMessageInput, SCHEMA_VERSION } from '../schemas/sample.ts';
import { TickBuffer } from './buffer.ts';
import { type AgentConfig, collectorSubConfig } from './config.ts';
import { encodeMessage } from './encode.ts';
import { Gatherer } from './gather.ts';
import { KafkaTransport } from './kafka.ts';
import { agentMetrics } from './metrics.ts';
import { NdjsonTransport } from './ndjson.ts';
import { Publisher, type Transport } from './publisher.ts';
import { currentAlignedTick, Ticker } from './ticker.ts';

export interface AgentOptions {
  config: AgentConfig;
  /** Enabled collector names (from loadAgentConfig). */
  enabled: readonly string[];
  version: string;
  /** Overrides: the output (benchmarks, tests) and the collectors (tests). */
  transport?: Transport;
  collectors?: Collector[];
  node?: NodeIdentity;
  log?: Logger;
}

export class Agent {
  readonly runId = randomUUID();
  readonly buffer: TickBuffer;
  readonly transport: Transport;
  readonly publisher: Publisher;
  private readonly log: Logger;
  private readonly config: AgentConfig;
  private collectors: Collector[] = [];
  private gatherer?: Gatherer;
  private ticker?: Ticker;
  private node?: NodeIdentity;
  private seq = 0;
  private started = false;

  constructor(private readonly opts: AgentOptions) {
    this.config = opts.config;
    this.log = opts.log ?? componentLogger('agent');
    const c = this.config;
    const spillLog = new OnceLogger(this.log);
    this.transport =
      opts.transport ?? (c.output === 'ndjson' ? new NdjsonTransport() : new KafkaTransport(c.kafka));
    this.buffer = new TickBuffer({
      maxTicks: c.buffer.maxTicks,
      maxBytes: c.buffer.maxBytes,
      spillFile: c.buffer.spillFile,
      maxSpillBytes: c.buffer.maxSpillBytes,
      compressBacklog: c.buffer.compressBacklog,
      quarantineMaxFiles: c.buffer.quarantineMaxFiles,
      quarantineMaxBytes: c.buffer.quarantineMaxBytes,
      onDrop: (first, last, reason) => this.publisher.noteDrop(first, last, reason),
      onSpillError: ({ code, message, op }) => {
        agentMetrics.spillWriteErrors.inc({ code, op });
        // Once per error code: a full disk fails every tick until space comes back.
        spillLog.warn(
          `${op}:${code}`,
          { spill_file: c.buffer.spillFile, code, op, err: message },
          op === 'open'
            ? 'spill file unusable; buffering in memory only (bounded)'
            : 'spill file refused a tick (rolled back); it is lost and counted, sampling and the memory buffer go on',
        );
      },
    });
    const { recovered } = this.buffer;
    agentMetrics.spillCorruptBytes.inc(recovered.corruptBytes);
    agentMetrics.spillQuarantined.inc(recovered.quarantined);
    if (recovered.records > 0 || recovered.corruptBytes > 0) {
      agentMetrics.spillRecovered.inc(this.buffer.recovered.records);
      this.log.info(
        { spill_file: c.buffer.spillFile, ...this.buffer.recovered },
        'found ticks from a previous run in the spill file; publishing them first',
      );
    }
    this.publisher = new Publisher(
      this.buffer,
      this.transport,
      { batchMaxTicks: c.kafka.batchMaxTicks, batchMaxBytes: c.kafka.batchMaxBytes },
      this.log,
    );
  }

  get intervalMs(): number {
    return this.config.interval;
  }

  get identity(): NodeIdentity | undefined {
    return this.node;
  }

  /** Resolves identity, starts collectors (fails fast on bad setup) and the output. */
  async init(): Promise<void> {
    if (this.node) return;
    const c = this.config;
    this.node = this.opts.node ?? (await this.resolveNode());
    const paths: HostPaths = {
      proc: c.paths.proc,
      sys: c.paths.sys,
      cgroup: c.paths.cgroup ?? `${c.paths.sys}/fs/cgroup`,
    };
    this.collectors = this.opts.collectors ?? this.createCollectors(paths);
    for (const col of this.collectors) await col.start?.();
    this.gatherer = new Gatherer(this.collectors, c.collectTimeout ?? Math.round(c.interval * 0.8), this.log);
    await this.transport.start();
    this.log.info(
      {
        node: this.node.id,
        run_id: this.runId,
        interval_ms: c.interval,
        collectors: this.collectors.map((x) => x.name),
        output: this.transport.target,
      },
      'agent started',
    );
  }

  /** Runs ticks aligned to the interval until stop(). */
  async start(): Promise<void> {
    await this.init();
    if (this.started) return;
    this.started = true;
    this.publisher.start();
    this.ticker = new Ticker({
      intervalMs: this.config.interval,
      onTick: (ts) => this.tick(ts),
      onSkip: (n, reason) => {
        agentMetrics.ticksSkipped.inc(n);
        this.log.debug({ skipped: n, reason }, 'tick skipped');
      },
    });
    this.ticker.start();
  }

  /** One tick now (aligned to the current interval): `--once`. Returns the encoded message. */
  async once(): Promise<Buffer> {
    await this.init();
    const ts = currentAlignedTick(Date.now(), this.config.interval);
    const value = await this.collect(ts);
    this.buffer.push({ seq: this.seq - 1, ts, key: this.node!.id, value });
    this.publisher.start();
    return value;
  }

  /** One tick: gather, build, encode, buffer. Never throws (the ticker would stop). */
  async tick(ts: number): Promise<void> {
    try {
      const value = await this.collect(ts);
      this.buffer.push({ seq: this.seq - 1, ts, key: this.node!.id, value });
      agentMetrics.ticks.inc();
      agentMetrics.lastTickTs.set(ts / 1000);
      this.publisher.updateGauges();
      this.publisher.wake();
    } catch (err) {
      this.log.error({ err: errorMessage(err), ts }, 'tick failed; continuing with the next one');
    }
  }

  /** Gathers one tick and encodes it; consumes one seq. */
  async collect(ts: number): Promise<Buffer> {
    const { samples } = await this.gatherer!.gather();
    const message: SampleMessageInput = {
      v: SCHEMA_VERSION,
      node: this.node!,
      ts,
      interval_ms: this.config.interval,
      seq: this.seq++,
      agent: { version: this.opts.version, run_id: this.runId },
      samples,
    };
    return encodeMessage(message);
  }

  /**
   * Graceful stop: no new ticks, flush the buffer until the shutdown timeout, keep what is left in
   * the spill file (when configured), close everything. Safe to call twice and before start.
   */
  async stop(timeoutMs = this.config.shutdownTimeout): Promise<{ unsent: number; persisted: number }> {
    const deadline = Date.now() + timeoutMs;
    await this.ticker?.stop();
    const unsent = await this.publisher.stop(deadline);
    const persisted = this.buffer.persist();
    if (unsent > 0) {
      this.log.warn(
        { unsent_ticks: unsent, persisted_to_spill: persisted, target: this.transport.target },
        persisted
          ? 'output unavailable at shutdown; unsent ticks kept in the spill file'
          : 'output unavailable at shutdown; unsent ticks are lost (a spill file keeps them for the next run: --spill-file / STRATA_SPILL_FILE)',
      );
    }
    await this.gatherer?.settle(Math.max(0, deadline - Date.now()));
    for (const col of this.collectors) {
      try {
        await col.shutdown?.();
      } catch (err) {
        this.log.warn({ collector: col.name, err: errorMessage(err) }, 'collector shutdown failed');
      }
    }
    await this.transport.shutdown();
    this.buffer.close();
    return { unsent, persisted };
  }

  private async resolveNode(): Promise<NodeIdentity> {
    const c = this.config;
    const hostCfg = collectorSubConfig(c, 'host') as { inventory?: boolean };
    const node = await resolveNodeIdentity({
      nodeId: c.nodeId,
      inventory: this.opts.enabled.includes('host') && hostCfg.inventory !== false,
      log: this.log,
    });
    return { ...node, labels: { ...node.labels, ...c.labels } };
  }

  private createCollectors(paths: HostPaths): Collector[] {
    const out: Collector[] = [];
    const shared = new Map<string, unknown>();
    for (const name of this.opts.enabled) {
      const f = collectorFactory(name);
      if (!f) continue;
      const cfg = parseConfig(
        f.configSchema,
        collectorSubConfig(this.config, name),
        `agent.collectors.${name}`,
      );
      if ((cfg as { enabled?: boolean }).enabled === false) continue;
      out.push(
        f.create(cfg, {
          paths,
          node: this.node!,
          dockerHost: this.config.dockerHost,
          intervalMs: this.config.interval,
          log: componentLogger(`collector.${name}`),
          shared,
        }),
      );
    }
    return out;
  }
}
