// The InfluxDB sink the processor and `strata run` write points to, built from `processor.influxdb`:
// the write API picks the variant (v1.ts, v2.ts); both are the same LineWriter (writer.ts).
import type { EncodingSink } from '../types.ts';
import type { InfluxConfig } from './config.ts';
import { createInfluxV1Sink } from './v1.ts';
import { createInfluxV2Sink } from './v2.ts';

export { DEFAULT_INFLUX_URL, InfluxConfig } from './config.ts';

export function createInfluxSink(config: InfluxConfig): EncodingSink {
  return config.api === 'v1' ? createInfluxV1Sink(config) : createInfluxV2Sink(config);
}
