// InfluxDB v2-API sink (`api: v2`): POST /api/v2/write?org=&bucket=&precision=ms with `Authorization: Token`
// (see writer.ts for why not the official client's WriteApi or Transport). Reads the token, org
// and bucket keys of InfluxConfig.

import { type InfluxConfig, tuningOptions } from './config.ts';
import { setupRetention } from './retention.ts';
import { LineWriter } from './writer.ts';

/** On InfluxDB 1.8 (the bucket is `db` or `db/rp`) it also sets up retention at start (retention.ts). */
class InfluxV2Sink extends LineWriter {
  constructor(
    private readonly c: InfluxConfig,
    options: ConstructorParameters<typeof LineWriter>[0],
  ) {
    super(options);
  }

  override async start(): Promise<void> {
    await super.start();
    // Never throws: on 2.x it says which buckets and tasks to create instead (docs/storage.md).
    await setupRetention(this.c, this.name);
  }
}

export function createInfluxV2Sink(c: InfluxConfig): LineWriter {
  const q = new URLSearchParams({ org: c.org, bucket: c.bucket, precision: 'ms' });
  return new InfluxV2Sink(c, {
    sink: 'influxdb-v2',
    url: c.url,
    path: `/api/v2/write?${q}`,
    token: c.token || undefined,
    ...tuningOptions(c),
    pingPath: '/ping',
  });
}
