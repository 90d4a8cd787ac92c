// influxdb.retention: the keys' defaults and refusals, and the statements and Flux tasks printed
// for admins (`strata processor --print-influx-setup`), from the same table the processor applies.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors.ts';
import { loadProcessorConfig } from '../../processor/config.ts';
import { InfluxConfig } from '../../sinks/influxdb/config.ts';
import {
  durationSeconds,
  fluxSetup,
  formatDuration,
  influxQlSetup,
  parseGoDuration,
} from '../../sinks/influxdb/retention.ts';

describe('influxdb.retention keys', () => {
  it('is off by default, with a 7d raw policy and 1m (90d) and 1h (730d) rollups', () => {
    const r = InfluxConfig.parse({}).retention;
    expect(r).toEqual({
      enabled: false,
      rawPolicy: 'raw',
      raw: '7d',
      rollups: [
        { name: 'rollup_1m', every: '1m', duration: '90d' },
        { name: 'rollup_1h', every: '1h', duration: '730d' },
      ],
      measurements: ['strata_host', 'strata_container', 'strata_vm', 'strata_guest', 'strata_overhead'],
    });
  });

  it('INFLUX_RETENTION_SETUP turns it on', () => {
    const { config } = loadProcessorConfig({}, { INFLUX_RETENTION_SETUP: 'true' });
    expect(config.influxdb.retention.enabled).toBe(true);
  });

  it.each([
    [{ raw: '30m' }, 'a whole number of h, d or w'],
    [{ raw: '0d' }, 'at least 1h'],
    [{ rollups: [{ name: 'r', every: '1x', duration: '1d' }] }, 'a whole number of s, m, h or d'],
    [{ rollups: [{ name: 'bad name', every: '1m', duration: '1d' }] }, 'letters, digits and _'],
    [{ rollups: [] }, ''],
    [{ rawPolicy: 'raw', extra: 1 }, ''],
  ])('refuses %j', (retention, message) => {
    const r = InfluxConfig.safeParse({ retention });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain(message);
  });
});

describe('durations', () => {
  it('prints as InfluxDB 1.x does in SHOW CONTINUOUS QUERIES, and reads its Go durations', () => {
    expect(
      ['1m', '60m', '2h', '120m', '7d', '14d', '90d'].map((d) => formatDuration(durationSeconds(d))),
    ).toEqual(['1m', '1h', '2h', '2h', '1w', '2w', '90d']);
    expect(parseGoDuration('168h0m0s')).toBe(7 * 86_400);
    expect(parseGoDuration('0s')).toBe(0);
    expect(durationSeconds('INF')).toBe(0);
  });
});

describe('what --print-influx-setup prints', () => {
  it('InfluxQL for 1.x: the database, the raw policy as default, the rollups and their continuous queries', () => {
    const c = InfluxConfig.parse({ bucket: 'metrics', retention: { raw: '14d' } });
    expect(influxQlSetup(c)).toEqual([
      'CREATE DATABASE "metrics"',
      'CREATE RETENTION POLICY "raw" ON "metrics" DURATION 14d REPLICATION 1 DEFAULT',
      'CREATE RETENTION POLICY "rollup_1m" ON "metrics" DURATION 90d REPLICATION 1',
      'CREATE RETENTION POLICY "rollup_1h" ON "metrics" DURATION 730d REPLICATION 1',
      'CREATE CONTINUOUS QUERY "strata_rollup_1m" ON "metrics" RESAMPLE EVERY 1m FOR 2m BEGIN SELECT mean(*), max(*), sum(*) INTO "metrics"."rollup_1m".:MEASUREMENT FROM "metrics"."raw"./^(strata_host|strata_container|strata_vm|strata_guest|strata_overhead)$/ GROUP BY time(1m), * END',
      'CREATE CONTINUOUS QUERY "strata_rollup_1h" ON "metrics" RESAMPLE EVERY 1h FOR 2h BEGIN SELECT mean(*), max(*), sum(*) INTO "metrics"."rollup_1h".:MEASUREMENT FROM "metrics"."raw"./^(strata_host|strata_container|strata_vm|strata_guest|strata_overhead)$/ GROUP BY time(1h), * END',
    ]);
  });

  it('the raw policy is not made default when writes name it themselves (v1 retentionPolicy, v2 bucket db/rp)', () => {
    const v1 = InfluxConfig.parse({ api: 'v1', database: 'd', retentionPolicy: 'raw' });
    expect(influxQlSetup(v1)[1]).toBe('CREATE RETENTION POLICY "raw" ON "d" DURATION 7d REPLICATION 1');
    const v2 = InfluxConfig.parse({ bucket: 'd/raw' });
    expect(influxQlSetup(v2)[1]).toBe('CREATE RETENTION POLICY "raw" ON "d" DURATION 7d REPLICATION 1');
  });

  it('refuses writes that go to another policy than the one the rollups read', () => {
    // e.g. bucket strata/autogen: the rollups would read an empty "raw", and autogen is not strata's to shorten.
    const c = InfluxConfig.parse({ bucket: 'strata/autogen' });
    expect(() => influxQlSetup(c)).toThrow(ConfigError);
    expect(() => influxQlSetup(c)).toThrow(
      /rawPolicy is "raw" but the processor writes to retention policy "autogen"/,
    );
  });

  it('Flux for 2.x: one bucket and DBRP mapping per rollup, one task each with mean_ and max_ fields', () => {
    const text = fluxSetup(InfluxConfig.parse({ bucket: 'strata', org: 'ops' }));
    expect(text).toContain('influx bucket create --org "ops" --name "strata_rollup_1m" --retention 90d');
    expect(text).toContain('influx v1 dbrp create --org "ops" --db "strata" --rp "rollup_1h"');
    expect(text.match(/influx task create/g)).toHaveLength(2);
    expect(text).toContain('option task = {name: "strata_rollup_1h", every: 1h, offset: 10s}');
    expect(text).toContain('|> range(start: -2m)');
    expect(text).toContain('types.isNumeric(v: r._value)');
    expect(text).toContain('({r with _field: "max_" + r._field})');
    expect(text).toContain('|> to(bucket: "strata_rollup_1m")');
  });
});
