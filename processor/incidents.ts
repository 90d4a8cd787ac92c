// Open incidents across restarts and rebalances (docs/processor.md, "Open incidents across
// restarts"). The alerts topic is the record: every event carries the samples topic and partition
// whose pipeline computed it (headers, sinks/kafka-alerts). When partitions are assigned, the new
// owner reads the alerts topic back over a bounded look-back, keeps the last event of each incident
// id, and hands the ones still firing to the pipeline of their partition (Pipeline.adopt), which
// continues them with the same id and start and resolves them when the evidence says so.
//
// Reading uses a throwaway consumer group (kafkajs has no group-less consumer) that never commits,
// from the first offset at `now - lookback` to the high watermark seen when the read started.
import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { errorMessage } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { AlertEvent } from '../schemas/alert.ts';
import { ALERT_HEADERS } from '../sinks/kafka-alerts/index.ts';

export interface IncidentReadOptions {
  alertsTopic: string;
  samplesTopic: string;
  /** How far back (ms of Kafka timestamps) to read; incidents that fired earlier are not adopted. */
  lookbackMs: number;
  /** The processor's group id: the throwaway group is named after it. */
  groupId: string;
  /** Give up (adopt nothing) after this long. */
  timeoutMs: number;
}

export interface OpenIncidents {
  /** Still-firing events by samples-topic partition. */
  byPartition: Map<number, AlertEvent[]>;
  /** Events read, and events without source headers (from an older processor: not attributable). */
  read: number;
  unattributed: number;
}

/** Folds events in topic order: the last event of an incident id wins; firing = still open. */
export function openIncidents(
  events: readonly { event: AlertEvent; topic?: string; partition?: number }[],
  samplesTopic: string,
): Map<number, AlertEvent[]> {
  const last = new Map<string, { event: AlertEvent; partition: number }>();
  for (const e of events) {
    if (e.topic !== samplesTopic || e.partition === undefined) continue;
    last.set(e.event.id, { event: e.event, partition: e.partition });
  }
  const out = new Map<number, AlertEvent[]>();
  for (const { event, partition } of last.values()) {
    if (event.status !== 'firing') continue;
    const l = out.get(partition);
    if (l === undefined) out.set(partition, [event]);
    else l.push(event);
  }
  return out;
}

/** Reads the alerts topic back; undefined when it could not be read completely (nothing adopted). */
export async function readOpenIncidents(
  kafka: Kafka,
  admin: Admin,
  o: IncidentReadOptions,
  log: Logger,
): Promise<OpenIncidents | undefined> {
  const empty: OpenIncidents = { byPartition: new Map(), read: 0, unattributed: 0 };
  let ranges: { partition: number; from: number; to: number }[];
  try {
    const [high, start] = await Promise.all([
      admin.fetchTopicOffsets(o.alertsTopic),
      admin.fetchTopicOffsetsByTimestamp(o.alertsTopic, Date.now() - o.lookbackMs),
    ]);
    ranges = high
      .map((h) => {
        const s = start.find((x) => x.partition === h.partition);
        const from = Math.max(Number(h.low), s ? Number(s.offset) : Number(h.low));
        return { partition: h.partition, from: from < 0 ? Number(h.low) : from, to: Number(h.high) };
      })
      .filter((r) => r.from < r.to);
  } catch (err) {
    log.warn(
      { topic: o.alertsTopic, err: errorMessage(err) },
      'could not look up the alerts topic; open incidents of assigned partitions are not taken over',
    );
    return undefined;
  }
  if (ranges.length === 0) return empty;

  const consumer = kafka.consumer({
    groupId: `${o.groupId}.incidents.${randomUUID()}`,
    maxWaitTimeInMs: 100,
  });
  const events: { event: AlertEvent; topic?: string; partition?: number }[] = [];
  let unattributed = 0;
  const remaining = new Map(ranges.map((r) => [r.partition, r]));
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [o.alertsTopic], fromBeginning: true });
    let done: () => void = () => {};
    const finished = new Promise<void>((r) => {
      done = r;
    });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const r = remaining.get(partition);
        const offset = Number(message.offset);
        if (r === undefined || offset < r.from) return;
        if (offset < r.to) {
          const parsed = parse(message.value);
          if (parsed !== undefined) {
            const h = message.headers ?? {};
            const topic = h[ALERT_HEADERS.sourceTopic];
            const part = h[ALERT_HEADERS.sourcePartition];
            if (topic === undefined || part === undefined) unattributed++;
            events.push({
              event: parsed,
              topic: topic === undefined ? undefined : String(topic),
              partition: part === undefined ? undefined : Number(String(part)),
            });
          }
        }
        if (offset >= r.to - 1) {
          remaining.delete(partition);
          if (remaining.size === 0) done();
        }
      },
    });
    for (const r of ranges)
      consumer.seek({ topic: o.alertsTopic, partition: r.partition, offset: String(r.from) });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      finished.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), o.timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      log.warn(
        { topic: o.alertsTopic, timeoutMs: o.timeoutMs, partitionsLeft: [...remaining.keys()] },
        'reading the alerts topic back timed out; open incidents of assigned partitions are not taken over',
      );
      return undefined;
    }
  } catch (err) {
    log.warn(
      { topic: o.alertsTopic, err: errorMessage(err) },
      'could not read the alerts topic back; open incidents of assigned partitions are not taken over',
    );
    return undefined;
  } finally {
    await consumer.disconnect().catch(() => {});
  }
  return { byPartition: openIncidents(events, o.samplesTopic), read: events.length, unattributed };
}

function parse(value: Buffer | null): AlertEvent | undefined {
  if (value === null) return undefined;
  try {
    const r = AlertEvent.safeParse(JSON.parse(value.toString('utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
