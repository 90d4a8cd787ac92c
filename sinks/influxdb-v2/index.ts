// InfluxDB v2-API sink: POST /api/v2/write?org=&bucket=&precision=ms through the official
// client's transport (see writer.ts for why not its WriteApi).

import type { InfluxV2Config } from './config.ts';
import { LineWriter } from './writer.ts';

export { InfluxV2Config } from './config.ts';
export type { PointSink, WriteResult } from './writer.ts';

export function createInfluxV2Sink(c: InfluxV2Config): LineWriter {
  const q = new URLSearchParams({ org: c.org, bucket: c.bucket, precision: 'ms' });
  return new LineWriter({
    sink: 'influxdb-v2',
    url: c.url,
    path: `/api/v2/write?${q}`,
    token: c.token || undefined,
    batchSize: c.batchSize,
    maxBatchBytes: c.maxBatchBytes,
    flushIntervalMs: c.flushInterval,
    maxInFlight: c.maxInFlight,
    gzipThreshold: c.gzipThreshold,
    gzipLevel: c.gzipLevel,
    timeoutMs: c.timeout,
    minRetryDelayMs: c.minRetryDelay,
    maxRetryDelayMs: c.maxRetryDelay,
    maxRetryTimeMs: c.maxRetryTime,
    maxBufferLines: c.maxBufferLines,
    pingPath: '/ping',
  });
}
