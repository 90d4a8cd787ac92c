// InfluxDB v2-API sink: POST /api/v2/write?org=&bucket=&precision=ms with `Authorization: Token`
// (see writer.ts for why not the official client's WriteApi or Transport).

import { type InfluxV2Config, tuningOptions } from './config.ts';
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
    ...tuningOptions(c),
    pingPath: '/ping',
  });
}
