// `strata processor`: a Kafka consumer group over the samples topic that runs the pipeline and
// writes to InfluxDB with commit-after-write.
//
// Delivery (docs/processor.md, "Delivery guarantees"):
// - eachBatch, autoCommit off: decode → pipeline → InfluxDB write + DLQ produce + alerts produce,
//   all acknowledged → commit the batch's offsets. A crash anywhere before the commit replays the
//   batch; point times are sample times, so InfluxDB overwrites identical points (exactly once).
// - When a write fails, the topic's partitions are paused, the batch is retried with backoff
//   (heartbeats keep flowing, so the group does not rebalance), and consumption resumes when a
//   write succeeds. Memory stays bounded: kafkajs fetches nothing new while batches are in hand.
// - Pipeline state is per partition (a node's messages live on one partition). When a partition
//   is assigned, messages `warmup` before its committed offset are re-read to rebuild counter state
//   without writing (else the first rate of every entity after a restart would be lost). A
//   revoked partition, or a batch abandoned mid-delivery (rebalance, shutdown), drops its state so
//   that state and committed offsets never disagree.
// - Open incidents survive restarts and rebalances: on assignment the alerts topic is read back
//   (incidents.ts) and the still-firing incidents of each partition are handed to its pipeline
//   (Pipeline.adopt) at once, and again at the boundary between warm-up replay and live messages. Incidents of nodes that
//   stop reporting are resolved (node_silent) when evict() drops the node; those outputs are
//   delivered from the evict timer, retried on the next tick until acknowledged.
// - Bad messages (not JSON, wrong schema) go to the dead-letter topic with the reason in a header,
//   and so do lines InfluxDB refuses for good; dead letters are bounded and never hold the
//   partitions up (dead-letters.ts).
// - /healthz turns 503 when delivery has been paused, or a partition with lag has not advanced,
//   for longer than health.maxStall (health.ts).
import {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type Kafka,
  type KafkaMessage,
  Partitioners,
  type Producer,
} from 'kafkajs';
import { ConfigError, ConnectionError, errorMessage, StrataError } from '../lib/errors.ts';
import { brokersUnreachable, createKafka, probeBrokers, waitForBrokers } from '../lib/kafka/client.ts';
import {
  describeKafkaSecurity,
  explainKafkaSecurityError,
  kafkaPlaintextHint,
} from '../lib/kafka/security.ts';
import { componentLogger, type Logger, OnceLogger } from '../lib/log.ts';
import { counter, gauge, histogram, serveMetrics } from '../lib/metrics.ts';
import { redactUrl } from '../lib/redact.ts';
import { createSampleDecoder } from '../processors/decoder.ts';
import { createPipeline } from '../processors/pipeline.ts';
import type { Pipeline, PipelineOutput } from '../processors/types.ts';
import type { AlertEvent } from '../schemas/alert.ts';
import type { Point } from '../schemas/point.ts';
import { HEADERS, type SampleDecoder } from '../schemas/sample.ts';
import { createInfluxSink } from '../sinks/influxdb/index.ts';
import { KafkaAlertsSink } from '../sinks/kafka-alerts/index.ts';
import {
  type EncodedPoints,
  isEncodingSink,
  type RefusedLine,
  type Sink,
  type WriteResult,
} from '../sinks/types.ts';
import { WebhookSink } from '../sinks/webhook/index.ts';
import type { ProcessorConfig } from './config.ts';
import {
  type DeadLetter,
  DeadLetterProducer,
  deadLetter,
  describeKafkaError,
  isPermanentKafkaError,
  kafkaErrorType,
} from './dead-letters.ts';
import { Health } from './health.ts';
import { type OpenIncidents, readOpenIncidents } from './incidents.ts';
import { countOversized, oversized } from './oversized.ts';

export { type ProcessorConfig, resolveProcessorConfig } from './config.ts';

const messagesTotal = counter(
  'strata_processor_messages_total',
  'Messages consumed, by result: ok (through the pipeline), dlq (dead-lettered), warmup (re-read to rebuild state, not written).',
  ['result'],
);
const dlqTotal = counter(
  'strata_processor_dlq_messages_total',
  'Messages sent to the dead-letter topic, by reason kind (empty, not_json, schema_version, schema; influx_rejected counts lines InfluxDB refused).',
  ['reason_kind'],
);
const alertsFailed = counter(
  'strata_processor_alerts_failed_total',
  'Alert events the alerts topic refused for good (the Kafka error type), dropped so that the batch is committed.',
  ['reason'],
);
const pointsTotal = counter(
  'strata_processor_points_total',
  'Points produced by the pipeline and acknowledged by InfluxDB.',
);
const alertsTotal = counter('strata_processor_alerts_total', 'Alert events produced by the pipeline.');
const pausedGauge = gauge(
  'strata_processor_paused',
  '1 while partitions are paused because InfluxDB (or Kafka produce) fails.',
);
const assignedGauge = gauge(
  'strata_processor_assigned_partitions',
  'Partitions of the samples topic assigned to this process.',
);
const deliveryRetries = counter(
  'strata_processor_delivery_retries_total',
  'Rounds of retrying a batch whose outputs were not acknowledged.',
);
const abandonedTotal = counter(
  'strata_processor_batches_abandoned_total',
  'Batches dropped mid-delivery by a rebalance or shutdown (they are replayed).',
);
const commitErrors = counter(
  'strata_processor_commit_errors_total',
  'Offset commits that failed (the batch is replayed; InfluxDB overwrites identical points).',
);
const batchSeconds = histogram(
  'strata_processor_batch_process_seconds',
  'CPU-bound part of a batch: decode + pipeline (+ line-protocol encoding, done per message with the InfluxDB sinks).',
  [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
);
const latencySeconds = histogram(
  'strata_processor_sample_to_ack_seconds',
  'Sample time (message ts) to InfluxDB acknowledgement of its points, per message.',
  [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
);

interface PartitionState {
  pipeline: Pipeline;
  /** State rebuilt (warm-up done or not needed) since assignment. */
  warmed: boolean;
  /** Messages below this offset are warm-up only: through the pipeline, outputs discarded. */
  replayUntil: number;
  /** Open incidents to hand to the pipeline before the first live message (then undefined). */
  adopt: AlertEvent[] | undefined;
  /** Open incidents were handed over at assignment, before any batch (logged then). */
  adoptedEarly: boolean;
}

export interface ProcessorDeps {
  /** Overrides the sink built from config.influxdb (tests, `strata run`). */
  sink?: Sink<Point>;
  /** Overrides the pipeline factory (per partition). */
  createPipeline?: () => Pipeline;
  /** Where kafka.brokers came from ("flag --brokers", ...), named when no broker is reachable. */
  brokerSource?: string;
  /** No broker reachable at start: wait for one (default; `strata processor`) or throw at once (`strata run`). */
  waitForKafka?: boolean;
}

export class ProcessorRuntime {
  private readonly log: Logger;
  private readonly once: OnceLogger;
  private readonly kafka: Kafka;
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly sink: Sink<Point>;
  private readonly deadLetters: DeadLetterProducer;
  private readonly health: Health;
  private lagTimer: NodeJS.Timeout | undefined;
  private lagRefreshing = false;
  private readonly alertsSink: KafkaAlertsSink | undefined;
  private readonly webhook: WebhookSink | undefined;
  private readonly partitions = new Map<number, PartitionState>();
  private readonly newPipeline: () => Pipeline;
  /** Bounds and time window of processor.samples (processors/decoder.ts). */
  private readonly decoder: SampleDecoder;
  private paused = false;
  private started = false;
  private stopped = false;
  private evictTimer: NodeJS.Timeout | undefined;
  /** The alerts topic read back for this assignment generation (shared by its partitions). */
  private incidentsLoad: Promise<OpenIncidents | undefined> | undefined;
  /** Outputs of evict() (node_silent resolutions) not yet acknowledged, by partition. */
  private sideOutputs: { partition: number; out: PipelineOutput }[] = [];
  private sideFlushing: Promise<void> | undefined;
  private closeMetrics: (() => Promise<void>) | undefined;
  private readonly brokerSource: string;
  private readonly waitForKafka: boolean;

  constructor(
    readonly config: ProcessorConfig,
    deps: ProcessorDeps = {},
  ) {
    this.brokerSource = deps.brokerSource ?? 'processor.kafka.brokers';
    this.waitForKafka = deps.waitForKafka ?? true;
    this.log = componentLogger('processor');
    this.once = new OnceLogger(this.log);
    const k = config.kafka;
    // Agents gzip their ticks: the client's codec inflates them on this thread, not on libuv's
    // pool, and never past kafka.maxInflatedBatchBytes (lib/kafka/gzip.ts).
    this.kafka = createKafka(
      {
        clientId: k.clientId,
        brokers: k.brokers,
        ssl: k.ssl,
        sasl: k.sasl,
        configPath: 'processor.kafka',
        retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5_000 },
        maxInflatedBatchBytes: k.maxInflatedBatchBytes,
        logs: 'warn',
      },
      componentLogger('kafkajs'),
    );
    this.consumer = this.kafka.consumer({
      groupId: k.groupId,
      sessionTimeout: k.sessionTimeout,
      heartbeatInterval: k.heartbeatInterval,
      maxBytesPerPartition: k.maxBytesPerPartition,
      minBytes: k.minBytes,
      maxWaitTimeInMs: k.maxWaitTime,
    });
    this.producer = this.kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    this.admin = this.kafka.admin();
    this.deadLetters = new DeadLetterProducer(this.producer, k.dlqTopic, config.dlq, this.once);
    this.health = new Health(config.health.maxStall);
    this.sink = deps.sink ?? createInfluxSink(config.influxdb);
    this.newPipeline = deps.createPipeline ?? (() => createPipeline(config.pipeline as never));
    this.decoder = createSampleDecoder(config.samples);
    // Fail fast on a bad pipeline config, before connecting to anything.
    this.newPipeline();
    this.alertsSink = k.alertsTopic
      ? new KafkaAlertsSink({ topic: k.alertsTopic }, this.producer)
      : undefined;
    this.webhook = config.webhook.url ? new WebhookSink(config.webhook) : undefined;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const k = this.config.kafka;
    if (this.config.metricsListen) {
      try {
        this.closeMetrics = await serveMetrics(this.config.metricsListen, () => this.health.check());
      } catch (err) {
        throw new ConfigError(
          `metricsListen ${this.config.metricsListen}: cannot serve /metrics there (${errorMessage(err)}). ` +
            'Set STRATA_METRICS_LISTEN / --metrics-listen to a free host:port, or "" to disable it.',
        );
      }
    }
    await this.sink.start();
    // No broker reachable is said at once, not after kafkajs' retries (≈ 12 s); the processor then
    // waits for Kafka (its /healthz stays up), `strata run` stops. 1 s: kafkajs' connectionTimeout.
    if (this.waitForKafka) {
      await waitForBrokers(k.brokers, {
        source: this.brokerSource,
        timeoutMs: 1_000,
        log: this.log,
        stopped: () => this.stopped,
      });
      if (this.stopped) return;
    } else {
      const probe = await probeBrokers(k.brokers, 1_000);
      if (!probe.reachable)
        throw new ConnectionError(brokersUnreachable(k.brokers, this.brokerSource, probe.why));
    }
    try {
      await this.admin.connect();
      await this.producer.connect();
      await this.consumer.connect();
    } catch (err) {
      // A wrong password, mechanism or CA is named as such, not as an unreachable server.
      throw (
        explainKafkaSecurityError(err, k, 'processor.kafka') ??
        new ConnectionError(
          brokersUnreachable(
            k.brokers,
            this.brokerSource,
            `${errorMessage(err)}${kafkaPlaintextHint(err, k, 'processor.kafka')}`,
          ),
          { cause: err },
        )
      );
    }
    if (!(await this.ensureTopics())) {
      await this.waitForSamplesTopic();
      if (this.stopped) return;
    }
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      const mine = new Set(e.payload.memberAssignment[k.samplesTopic] ?? []);
      this.incidentsLoad = undefined;
      for (const p of this.partitions.keys()) {
        if (!mine.has(p)) this.dropPartition(p, 'revoked');
      }
      // Open incidents of newly assigned partitions are read back now, not at their first batch:
      // a partition whose nodes all went silent never gets one, yet its incidents must end.
      for (const p of mine) if (!this.partitions.has(p)) void this.adoptEarly(p, this.state(p));
      this.health.assign(mine);
      assignedGauge.set(mine.size);
      this.log.info(
        { partitions: [...mine].sort((a, b) => a - b), groupId: k.groupId },
        'partitions assigned',
      );
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      // kafkajs restarts the consumer after retriable crashes; state of all partitions is dropped
      // because the batches in hand were not committed.
      for (const p of [...this.partitions.keys()]) this.dropPartition(p, 'consumer crashed');
      this.log.error(
        {
          // Credentials revoked or a certificate rotated while running: say which.
          err: errorMessage(
            explainKafkaSecurityError(e.payload.error, k, 'processor.kafka') ?? e.payload.error,
          ),
          restart: e.payload.restart,
          groupId: k.groupId,
        },
        'Kafka consumer crashed',
      );
    });
    await this.consumer.subscribe({ topics: [k.samplesTopic], fromBeginning: k.fromBeginning });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: k.partitionsConsumedConcurrently,
      eachBatch: (payload) => this.eachBatch(payload),
    });
    this.evictTimer = setInterval(() => {
      const now = Date.now();
      for (const [p, st] of this.partitions) {
        st.pipeline.evict(now);
        const out = st.pipeline.drain?.();
        if (out !== undefined && (out.alerts.length > 0 || out.points.length > 0)) {
          this.sideOutputs.push({ partition: p, out });
        }
      }
      if (this.sideOutputs.length > 0) void this.flushSideOutputs();
    }, this.config.evictInterval);
    this.evictTimer.unref();
    this.lagTimer = setInterval(() => void this.refreshLag(), this.config.health.lagInterval);
    this.lagTimer.unref();
    this.log.info(
      {
        brokers: k.brokers,
        security: describeKafkaSecurity(k),
        topic: k.samplesTopic,
        groupId: k.groupId,
        influx: redactUrl(this.config.influxdb.url),
        api: this.config.influxdb.api,
      },
      'processor started',
    );
  }

  /**
   * The DLQ and alerts topics must exist before we produce (auto-creation may be off).
   * Returns whether the samples topic exists: subscribing to one that does not makes kafkajs
   * throw (UNKNOWN_TOPIC_OR_PARTITION) and would stop the processor.
   */
  private async ensureTopics(): Promise<boolean> {
    const k = this.config.kafka;
    const existing = new Set(await this.admin.listTopics());
    const samplesExist = existing.has(k.samplesTopic);
    if (!samplesExist) {
      this.log.warn(
        { topic: k.samplesTopic, brokers: k.brokers },
        'samples topic does not exist yet; waiting for it to be created (by the agents, or ' +
          `kafka-topics.sh --create --topic ${k.samplesTopic} --partitions <n>)`,
      );
    }
    const wanted = [k.dlqTopic, k.alertsTopic].filter((t) => t && !existing.has(t));
    if (wanted.length) {
      await this.admin
        .createTopics({ topics: wanted.map((topic) => ({ topic, numPartitions: 1 })), waitForLeaders: true })
        .catch((err: unknown) =>
          this.log.warn(
            { topics: wanted, err: errorMessage(err) },
            'could not create topics; produce may fail until they exist',
          ),
        );
    }
    return samplesExist;
  }

  /** Polls the topic list (0.5 s doubling to 5 s) until the samples topic exists or we are stopped. */
  private async waitForSamplesTopic(): Promise<void> {
    const topic = this.config.kafka.samplesTopic;
    for (let delay = 500; !this.stopped; delay = Math.min(delay * 2, 5_000)) {
      await new Promise((r) => setTimeout(r, delay));
      if (this.stopped) return;
      const topics = await this.admin.listTopics().catch(() => [] as string[]);
      if (topics.includes(topic)) {
        this.log.info({ topic }, 'samples topic exists; subscribing');
        return;
      }
    }
  }

  private state(partition: number): PartitionState {
    let st = this.partitions.get(partition);
    if (!st) {
      st = {
        pipeline: this.newPipeline(),
        warmed: false,
        replayUntil: -1,
        adopt: undefined,
        adoptedEarly: false,
      };
      this.partitions.set(partition, st);
    }
    return st;
  }

  private dropPartition(partition: number, why: string): void {
    // Its open incidents are re-sent to Alertmanager by whoever owns it now (or taken over again here).
    this.webhook?.forget(partition);
    if (this.partitions.delete(partition)) {
      this.incidentsLoad = undefined; // its incidents are read back again with the new state
      this.log.info({ partition, why }, 'dropped pipeline state of partition');
    }
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const p = batch.partition;
    const messages = batch.messages;
    if (messages.length === 0) return;
    // Before anything can get stuck: the lag this batch starts from (health.ts).
    this.health.batch(p, Number((messages[0] as KafkaMessage).offset), Number(batch.highWatermark));
    const st = this.state(p);
    try {
      if (!st.warmed) {
        st.warmed = true;
        st.adopt = await this.incidentsFor(p);
        // adoptEarly() awaited the same read first: it has logged them already if it took them.
        if (!st.adoptedEarly) this.logTakeOver(p, st.adopt);
        const target = await this.warmupOffset(p, messages[0] as KafkaMessage);
        if (target !== undefined) {
          st.replayUntil = Number((messages[0] as KafkaMessage).offset);
          this.log.info(
            { partition: p, from: target, until: st.replayUntil },
            're-reading messages to rebuild state',
          );
          this.consumer.seek({ topic: batch.topic, partition: p, offset: String(target) });
          return;
        }
      }
      const t0 = performance.now();
      // Each message's points are encoded as soon as the pipeline returns them (when the sink can
      // encode in pieces), so Point objects die young instead of living until the whole batch is
      // encoded: most of the GC cost (docs/processor.md, "Cost"). Only flat bodies stay alive while
      // the write is pending (and across retries).
      const sink = this.sink;
      const encoder = isEncodingSink(sink) ? sink.encoder() : undefined;
      const points: Point[] = [];
      let pointCount = 0;
      const alerts: AlertEvent[] = [];
      const dlq: DeadLetter[] = [];
      const sampleTimes: number[] = [];
      const dlqKinds: string[] = [];
      let warmup = 0;
      for (const m of messages) {
        const replay = Number(m.offset) < st.replayUntil;
        if (st.adopt !== undefined && !replay) {
          st.pipeline.adopt?.(st.adopt);
          this.webhook?.track(st.adopt, p);
          st.adopt = undefined;
        }
        // Too large to decode (a batch past the inflate bound, a value past maxMessageBytes): not parsed.
        const big = oversized(m, batch.topic, p, this.config.kafka.maxMessageBytes);
        if (big !== undefined) {
          if (replay || big.letter === undefined) continue;
          dlqKinds.push(big.kind);
          this.once.warn(`dlq:${big.kind}`, big.log, 'too large to decode: sent to the dead-letter topic');
          dlq.push(big.letter);
          continue;
        }
        const d = this.decoder.decode(m.value);
        if (!d.ok) {
          if (replay) continue; // dead-lettered before the restart
          const kind = d.code;
          dlqKinds.push(kind);
          this.once.warn(
            `dlq:${kind}`,
            { partition: p, offset: m.offset, reason: d.reason },
            'message sent to the dead-letter topic',
          );
          // Cut to dlq.maxValueBytes now: a huge value is not held while the batch is delivered.
          dlq.push(
            deadLetter(
              m.key,
              m.value,
              {
                ...stringHeaders(m.headers),
                [HEADERS.dlqReason]: d.reason,
                [HEADERS.dlqReasonCode]: d.code,
                [HEADERS.dlqSourceTopic]: batch.topic,
                [HEADERS.dlqSourcePartition]: String(p),
                [HEADERS.dlqSourceOffset]: m.offset,
              },
              this.config.dlq.maxValueBytes,
            ),
          );
          continue;
        }
        const out = st.pipeline.handle(d.message);
        if (replay) {
          warmup++;
          continue;
        }
        pointCount += out.points.length;
        if (encoder) encoder.add(out.points);
        else for (const pt of out.points) points.push(pt);
        for (const a of out.alerts) alerts.push(a);
        sampleTimes.push(d.message.ts);
      }
      if (warmup) messagesTotal.inc({ result: 'warmup' }, warmup);
      batchSeconds.observe((performance.now() - t0) / 1000);
      const last = messages[messages.length - 1] as KafkaMessage;
      if (Number(last.offset) < st.replayUntil) {
        // All warm-up: these offsets are committed already; just move on.
        encoder?.finish();
        payload.resolveOffset(last.offset);
        this.health.progressed(p, Number(last.offset) + 1);
        return;
      }
      // A sink that does not encode (`strata run`'s view) is handed the points themselves.
      const encoded: PointBatch = encoder ? encoder.finish() : points;
      const refused = { refused: 0 };
      const delivered = await this.deliver(encoded, alerts, dlq, payload, refused);
      if (!delivered) {
        // Its bodies may still be on their way to InfluxDB: not released, left to the GC.
        abandonedTotal.inc();
        this.dropPartition(p, 'batch abandoned (rebalance or shutdown)');
        return;
      }
      if (encoder && isEncodingSink(sink)) sink.release(encoded as EncodedPoints);
      const ackedAt = Date.now();
      for (const ts of sampleTimes) latencySeconds.observe(Math.max(0, ackedAt - ts) / 1000);
      messagesTotal.inc({ result: 'ok' }, sampleTimes.length);
      if (dlq.length) messagesTotal.inc({ result: 'dlq' }, dlq.length);
      // Counted once delivered, so a replayed batch does not count its dead letters twice.
      for (const kind of dlqKinds) dlqTotal.inc({ reason_kind: kind });
      countOversized(dlqKinds);
      if (refused.refused > 0) dlqTotal.inc({ reason_kind: 'influx_rejected' }, refused.refused);
      pointsTotal.inc(pointCount);
      alertsTotal.inc(alerts.length);
      payload.resolveOffset(last.offset);
      try {
        await this.consumer.commitOffsets([
          { topic: batch.topic, partition: p, offset: String(Number(last.offset) + 1) },
        ]);
      } catch (err) {
        commitErrors.inc();
        this.once.warn(
          'commit',
          { partition: p, err: errorMessage(err) },
          'offset commit failed; the batch will be replayed',
        );
        throw err;
      }
      this.health.progressed(p, Number(last.offset) + 1);
      if (alerts.length && this.webhook) this.webhook.enqueue(alerts, p);
    } catch (err) {
      // A rebalance (heartbeat/commit failing) or a bug: state must not run ahead of the commits.
      this.dropPartition(p, `error: ${errorMessage(err)}`);
      throw err;
    }
  }

  /** Still-open incidents of a newly assigned partition, from the alerts topic ([] when none or unreadable). */
  private async incidentsFor(partition: number): Promise<AlertEvent[]> {
    const k = this.config.kafka;
    if (!k.alertsTopic || k.incidentLookback <= 0) return [];
    this.incidentsLoad ??= readOpenIncidents(
      this.kafka,
      this.admin,
      {
        alertsTopic: k.alertsTopic,
        samplesTopic: k.samplesTopic,
        lookbackMs: k.incidentLookback,
        groupId: k.groupId,
        timeoutMs: k.incidentReadTimeout,
      },
      this.log,
    ).then((r) => {
      if (r !== undefined && r.unattributed > 0) {
        this.once.warn(
          'incidents-unattributed',
          { topic: k.alertsTopic, events: r.unattributed },
          'alert events without source partition headers (older processor) cannot be taken over',
        );
      }
      return r;
    });
    return (await this.incidentsLoad)?.byPartition.get(partition) ?? [];
  }

  private logTakeOver(partition: number, open: readonly AlertEvent[]): void {
    if (open.length === 0) return;
    this.log.info({ partition, incidents: open.map((a) => a.id) }, 'taking over open incidents of partition');
  }

  /**
   * Hands a newly assigned partition's open incidents to its pipeline before any batch arrives
   * (so that evict() can end those of silent nodes). When a batch has started meanwhile, its
   * replay/live boundary does it instead (eachBatch), which also re-applies them after the replay.
   */
  private async adoptEarly(partition: number, st: PartitionState): Promise<void> {
    const open = await this.incidentsFor(partition);
    if (this.partitions.get(partition) !== st || st.warmed || open.length === 0) return;
    st.pipeline.adopt?.(open);
    this.webhook?.track(open, partition); // Alertmanager must keep hearing of them (sinks/webhook)
    st.adoptedEarly = true;
    this.logTakeOver(partition, open);
  }

  /** Delivers evict()'s outputs (node_silent resolutions); what fails stays queued for the next tick. */
  private flushSideOutputs(): Promise<void> {
    this.sideFlushing ??= (async () => {
      while (this.sideOutputs.length > 0 && !this.stopped) {
        const { partition, out } = this.sideOutputs[0]!;
        try {
          await Promise.all([
            out.points.length > 0 ? this.sink.write(out.points) : undefined,
            out.alerts.length > 0
              ? this.sendAlerts(out.alerts, { topic: this.config.kafka.samplesTopic, partition })
              : undefined,
          ]);
        } catch (err) {
          this.once.warn(
            'side-outputs',
            { err: errorMessage(err), alerts: out.alerts.length },
            'delivering resolved events of silent nodes failed; retrying at the next eviction',
          );
          return;
        }
        this.sideOutputs.shift();
        alertsTotal.inc(out.alerts.length);
        if (out.alerts.length && this.webhook) this.webhook.enqueue(out.alerts, partition);
      }
    })().finally(() => {
      this.sideFlushing = undefined;
    });
    return this.sideFlushing;
  }

  /** The offset to re-read from after an assignment, or undefined when nothing needs re-reading. */
  private async warmupOffset(partition: number, first: KafkaMessage): Promise<number | undefined> {
    const warmupMs = this.config.kafka.warmup;
    if (warmupMs <= 0) return undefined;
    const firstOffset = Number(first.offset);
    try {
      const offsets = await this.admin.fetchTopicOffsetsByTimestamp(
        this.config.kafka.samplesTopic,
        Number(first.timestamp) - warmupMs,
      );
      const found = offsets.find((o) => o.partition === partition);
      const target = found ? Number(found.offset) : -1;
      return target >= 0 && target < firstOffset ? target : undefined;
    } catch (err) {
      this.once.warn(
        'warmup',
        { partition, err: errorMessage(err) },
        'could not look up warm-up offsets; the first rates after assignment are lost',
      );
      return undefined;
    }
  }

  /**
   * Writes until everything is acknowledged or given up for good (counted: true), or the batch
   * must be abandoned (false). `out.refused`: lines InfluxDB refused (dead-lettered).
   */
  private async deliver(
    encoded: PointBatch,
    alerts: AlertEvent[],
    dlq: DeadLetter[],
    payload: EachBatchPayload,
    out: { refused: number } = { refused: 0 },
  ): Promise<boolean> {
    // One delivery of each kind at a time: a leg still in flight when another failed is awaited in
    // the next round, not started again. For the points this is a must, not a saving: their
    // bodies go back to the sink's memory pool once this returns true, so no write of them may
    // still be sending then. (It also keeps a dead letter or an alert from going out twice.)
    const dlqJob = this.deadLetters.job(dlq);
    /** Lines InfluxDB refused, once the write has settled: dead-lettered before the leg is done. */
    let refusedJob: ReturnType<DeadLetterProducer['job']> | undefined;
    const pointsLeg: Leg = {
      name: 'influxdb',
      done: batchLength(encoded) === 0,
      inFlight: undefined,
      start: async () => {
        if (refusedJob === undefined) {
          const r = await writeBatch(this.sink, encoded);
          out.refused = r.refused?.length ?? 0;
          refusedJob = this.deadLetters.job(this.refusedLetters(r.refused ?? [], payload));
          // From here on, what fails is the dead-letter topic, not InfluxDB.
          pointsLeg.name = 'dead letters (lines InfluxDB refused)';
        }
        await this.deadLetters.send(refusedJob);
      },
    };
    const legs: Leg[] = [
      pointsLeg,
      {
        name: 'dead letters',
        done: dlq.length === 0,
        inFlight: undefined,
        start: () => this.deadLetters.send(dlqJob),
      },
      {
        name: 'alerts',
        done: alerts.length === 0 || !this.alertsSink,
        inFlight: undefined,
        start: () =>
          this.sendAlerts(alerts, { topic: payload.batch.topic, partition: payload.batch.partition }),
      },
    ];
    for (let attempt = 0; ; attempt++) {
      if (!payload.isRunning() || payload.isStale() || this.stopped) return false;
      try {
        await Promise.all(legs.map(runLeg));
        if (this.paused) this.setPaused(false);
        return true;
      } catch {
        const cause = legs
          .filter((l) => l.error !== undefined)
          .map((l) => `${l.name}: ${describeKafkaError(l.error)}`)
          .join('; ');
        if (!this.paused)
          this.setPaused(true, cause, legs[0]?.error !== undefined && legs[0].name === 'influxdb');
        else this.health.paused(true, cause);
        deliveryRetries.inc();
        const delay = Math.min(this.config.maxBackoff, this.config.minBackoff * 2 ** Math.min(attempt, 20));
        const until = Date.now() + delay;
        // Heartbeats keep the group from rebalancing during a long outage. A heartbeat that
        // throws (rebalance in progress) propagates: the caller drops state and kafkajs rejoins.
        do {
          await payload.heartbeat();
          if (!payload.isRunning() || this.stopped) return false;
          await sleep(Math.min(1_000, Math.max(0, until - Date.now())));
        } while (Date.now() < until);
      }
    }
  }

  /**
   * Alert events to the alerts topic. Refused for good (too large, unknown topic, not authorized)
   * they are dropped, counted and logged once: that must not hold every partition up.
   */
  private async sendAlerts(alerts: readonly AlertEvent[], source: { topic: string; partition: number }) {
    try {
      await this.alertsSink?.write(alerts, source);
    } catch (err) {
      if (!isPermanentKafkaError(err)) throw err;
      const reason = (kafkaErrorType(err) as string).toLowerCase();
      alertsFailed.inc({ reason }, alerts.length);
      this.once.warn(
        `alerts-failed:${reason}`,
        { topic: this.config.kafka.alertsTopic, alerts: alerts.length, kafkaError: describeKafkaError(err) },
        'the alerts topic refused alert events; they are dropped (counted) and the batch is committed',
      );
    }
  }

  /** Lines InfluxDB refused, as dead letters: the line, the server's reason, the batch they came from. */
  private refusedLetters(lines: readonly RefusedLine[], payload: EachBatchPayload): DeadLetter[] {
    if (lines.length === 0) return [];
    const { batch } = payload;
    const offsets = `${batch.firstOffset()}-${batch.lastOffset()}`;
    return lines.map((r) =>
      deadLetter(
        null,
        Buffer.from(r.line, 'utf8'),
        {
          [HEADERS.contentType]: 'text/plain; charset=utf-8',
          [HEADERS.dlqReason]: `influx_rejected: ${r.error}`,
          [HEADERS.dlqReasonCode]: 'influx_rejected',
          [HEADERS.dlqSourceTopic]: batch.topic,
          [HEADERS.dlqSourcePartition]: String(batch.partition),
          [HEADERS.dlqSourceOffsets]: offsets,
        },
        this.config.dlq.maxValueBytes,
      ),
    );
  }

  /** The lag of the assigned partitions from the brokers, so it is current while nothing is fetched. */
  private async refreshLag(): Promise<void> {
    if (this.lagRefreshing || this.health.partitions().length === 0) return;
    this.lagRefreshing = true;
    const k = this.config.kafka;
    try {
      const ends = await this.admin.fetchTopicOffsets(k.samplesTopic);
      let committed: Map<number, number> | undefined;
      if (this.health.needsCommitted()) {
        const [c] = await this.admin.fetchOffsets({ groupId: k.groupId, topics: [k.samplesTopic] });
        committed = new Map(c?.partitions.map((x) => [x.partition, Number(x.offset)]));
      }
      for (const o of ends) {
        let c = committed?.get(o.partition);
        // No committed offset yet: the group starts at the earliest (or the next) message.
        if (c !== undefined && c < 0) c = k.fromBeginning ? Number(o.low) : Number(o.high);
        this.health.offsets(o.partition, Number(o.high), c);
      }
    } catch (err) {
      this.once.warn(
        'lag-refresh',
        { topic: k.samplesTopic, err: describeKafkaError(err) },
        "could not read the partitions' offsets; the lag gauge keeps its last values",
      );
    } finally {
      this.lagRefreshing = false;
    }
  }

  private setPaused(paused: boolean, cause?: string, influx = false): void {
    const topic = this.config.kafka.samplesTopic;
    this.paused = paused;
    pausedGauge.set(paused ? 1 : 0);
    this.health.paused(paused, cause);
    if (paused) {
      this.consumer.pause([{ topic }]);
      this.log.warn(
        // InfluxDB's address only when InfluxDB is what fails: the cause names the failing delivery.
        { cause, ...(influx ? { influx: redactUrl(this.config.influxdb.url) } : {}) },
        'delivery failing: partitions paused, retrying with backoff (offsets not committed)',
      );
    } else {
      this.consumer.resume([{ topic }]);
      this.log.info('delivery recovered: partitions resumed');
    }
  }

  /** Stops consuming (the batch in hand is committed if acknowledged, else replayed later). Safe twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.evictTimer) clearInterval(this.evictTimer);
    if (this.lagTimer) clearInterval(this.lagTimer);
    await this.sideFlushing;
    await this.consumer
      .disconnect()
      .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'consumer disconnect'));
    await this.webhook?.close();
    await this.producer.disconnect().catch(() => {});
    await this.admin.disconnect().catch(() => {});
    await this.sink.close();
    await this.closeMetrics?.();
    this.log.info('processor stopped');
  }
}

/** What a batch's points are delivered as: encoded once (EncodingSink), else the points themselves. */
type PointBatch = EncodedPoints | readonly Point[];

function batchLength(batch: PointBatch): number {
  return Array.isArray(batch) ? batch.length : (batch as EncodedPoints).lines;
}

function writeBatch(sink: Sink<Point>, batch: PointBatch): Promise<WriteResult> {
  if (Array.isArray(batch)) return sink.write(batch as readonly Point[]);
  if (!isEncodingSink(sink)) throw new StrataError(`sink ${sink.name} cannot write encoded points`);
  return sink.write(batch as EncodedPoints);
}

export function createProcessor(config: ProcessorConfig, deps: ProcessorDeps = {}): ProcessorRuntime {
  return new ProcessorRuntime(config, deps);
}

/** A bounded label set for the DLQ counter. */
export function reasonKind(reason: string): string {
  if (reason.startsWith('empty')) return 'empty';
  if (reason.startsWith('not JSON')) return 'not_json';
  if (reason.startsWith('v:')) return 'schema_version';
  if (reason.startsWith('influx_rejected')) return 'influx_rejected';
  return 'schema';
}

function stringHeaders(h: KafkaMessage['headers']): Record<string, string | Buffer> {
  const out: Record<string, string | Buffer> = {};
  if (!h) return out;
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? (v[0] ?? '') : v;
  }
  return out;
}

/** One of a batch's deliveries (InfluxDB, dead letters, alerts), retried until done. */
interface Leg {
  /** What it delivers to, for the log and /healthz when it fails. */
  name: string;
  done: boolean;
  /** Its last failure, cleared when it succeeds. */
  error?: unknown;
  inFlight: Promise<void> | undefined;
  start(): Promise<unknown>;
}

/** The leg's delivery in flight, started if none is (undefined when done). */
function runLeg(leg: Leg): Promise<void> | undefined {
  if (leg.done) return undefined;
  leg.inFlight ??= leg
    .start()
    .then(
      () => {
        leg.done = true;
        leg.error = undefined;
      },
      (err: unknown) => {
        leg.error = err;
        throw err;
      },
    )
    .finally(() => {
      leg.inFlight = undefined;
    });
  return leg.inFlight;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
