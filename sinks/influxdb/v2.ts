// InfluxDB v2-API sink (`api: v2`): POST /api/v2/write?org=&bucket=&precision=ms with `Authorization: Token`
// (see writer.ts for why not the official client's WriteApi or Transport). Reads the token, org
// and bucket keys of InfluxConfig.

import { type InfluxConfig, tuningOptions } from './config.ts';
import { LineWriter } from './writer.ts';

export function createInfluxV2Sink(c: InfluxConfig): LineWriter {
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
