// The sink contract: start(), write(items) → WriteResult, close(). The processor runtime and
// `strata run` hold sinks through it; what a sink writes to (InfluxDB over HTTP, a Kafka topic)
// stays behind it. Points go to InfluxDB (sinks/influxdb/), alert events to the alerts topic
// (sinks/kafka-alerts/). The Alertmanager webhook (sinks/webhook/) is the exception on purpose:
// it is best effort, with its own bounded queue, and never holds Kafka commits, so it has
// enqueue(), not a write() that resolves once the receiver acknowledged.
import type { Point } from '../schemas/point.ts';

export interface Sink<T = Point> {
  /** Name for metrics and logs (influxdb-v2, influxdb-v1, kafka-alerts...). */
  readonly name: string;
  /** Fails fast when the destination is unreachable (ConnectionError naming it and how to start it). */
  start(): Promise<void>;
  /**
   * Resolves once the destination acknowledged every item (or refused some as permanently
   * invalid: counted in the result, never retried). Rejects with a retriable error when the
   * destination stayed unavailable for the sink's retry window; the caller may simply write the
   * same items again.
   */
  write(items: readonly T[]): Promise<WriteResult>;
  /** Waits for writes in flight, then stops. Safe before start and twice. */
  close(): Promise<void>;
}

export interface WriteResult {
  /** Items acknowledged by the destination. */
  written: number;
  /** Items the destination refused as invalid (InfluxDB: 400/422), counted and logged once, not retried. */
  rejected: number;
  /** Points that could not be encoded (no fields, non-finite time). */
  unencodable: number;
  /** The refused lines themselves, with the server's reason (absent when none). */
  refused?: RefusedLine[];
}

/** A line InfluxDB refused for good (type conflict, unparsable, partial write), and why. */
export interface RefusedLine {
  line: string;
  /** The server's message for the request that isolated it (e.g. "partial write: field type conflict: ..."). */
  error: string;
}

/**
 * Points already encoded: line protocol joined into bodies of at most batchSize lines / maxBatchBytes,
 * as UTF-8 bytes (what goes on the socket, so no string is made and re-encoded per body).
 * Holding these instead of Point objects while a write is pending keeps the surviving heap small
 * (a few flat buffers instead of many objects and string ropes), which is most of the GC cost.
 */
export interface EncodedPoints {
  segments: { body: Buffer; lines: number }[];
  lines: number;
  unencodable: number;
}

/** A batch being encoded piece by piece (EncodingSink.encoder). */
export interface PointEncoder {
  add(points: readonly Point[]): void;
  finish(): EncodedPoints;
}

/**
 * A point sink that can encode a batch once and write the encoded form (the InfluxDB sinks): the
 * runtime encodes each message's points as soon as the pipeline returns them, so Point objects die
 * young, and a write retried after an outage sends the same bodies without encoding again.
 */
export interface EncodingSink extends Sink<Point> {
  write(points: readonly Point[] | EncodedPoints): Promise<WriteResult>;
  /** Encodes once, for callers that may write the same points again (retries). */
  encode(points: readonly Point[]): EncodedPoints;
  /**
   * Encodes a batch in pieces (one per Kafka message), so each piece's Point objects die young;
   * `finish()` gives what encode() of all the pieces' points together would.
   */
  encoder(): PointEncoder;
  /**
   * Gives back the memory of encoded points the caller will not write again, once their write has
   * settled. Never while a write of them may still be sending (an abandoned batch).
   */
  release(encoded: EncodedPoints): void;
}

/** Whether a point sink takes encoded batches (EncodingSink) or only Point arrays. */
export function isEncodingSink(sink: Sink<Point>): sink is EncodingSink {
  const s = sink as Partial<EncodingSink>;
  return typeof s.encode === 'function' && typeof s.encoder === 'function' && typeof s.release === 'function';
}
