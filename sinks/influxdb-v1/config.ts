// Config of the InfluxDB v1-API sink (`processor.influxdb` with `api: v1`): POST /write for
// InfluxDB 1.x (tested against Debian's 1.6.7, which has no /api/v2/write).
import { z } from 'zod';
import { writeTuning } from '../influxdb-v2/config.ts';

export const InfluxV1Config = z.strictObject({
  /** Base URL of InfluxDB, e.g. http://127.0.0.1:8086. */
  url: z.url().default('http://127.0.0.1:8086'),
  /** Database to write to. */
  database: z.string().min(1).default('strata'),
  /** Retention policy; empty means the database's default. */
  retentionPolicy: z.string().default(''),
  /** User name when InfluxDB has auth enabled (sent as HTTP basic auth). */
  username: z.string().default(''),
  /** Password for `username`. */
  password: z.string().default(''),
  /**
   * Create the database at start (CREATE DATABASE is idempotent), like Telegraf's influxdb
   * output; set false when the user may not create databases.
   */
  createDatabase: z.boolean().default(true),
  ...writeTuning,
});
export type InfluxV1Config = z.output<typeof InfluxV1Config>;
