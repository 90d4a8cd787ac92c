// Long-term storage as InfluxDB users run it: a raw retention policy, rollup policies and the
// continuous queries that fill them (InfluxDB 1.x), from one table (`influxdb.retention`). The
// same table prints the statements for an admin to run by hand, and the buckets and Flux tasks
// that do the same on InfluxDB 2.x (docs/storage.md).
//
// At start (`influxdb.retention.enabled`) the sink reads what exists and changes only what
// differs: CREATE what is missing, ALTER a duration or the default flag that changed, and
// DROP + CREATE a strata continuous query whose text changed (a CQ cannot be altered; dropping one
// drops no data). Nothing is ever dropped that strata did not name: retention policies and
// continuous queries outside the table are left alone, and no retention policy is ever dropped.
// A failure (no admin privilege, server down, not 1.x) is logged and counted, and the sink starts
// anyway: monitoring must not stop because its rollups could not be set up.
import { ConfigError, errorMessage, StrataError } from '../../lib/errors.ts';
import { componentLogger, OnceLogger } from '../../lib/log.ts';
import { counter } from '../../lib/metrics.ts';
import { redactUrl } from '../../lib/redact.ts';
import type { InfluxConfig, RetentionConfig, Rollup } from './config.ts';

const setupFailures = counter(
  'strata_sink_retention_setup_failures_total',
  'Retention setups at start that did not complete, by reason (privilege, config, database_missing, not_influxql, server, network). Writes go on.',
  ['sink', 'reason'],
);
const setupChanges = counter(
  'strata_sink_retention_changes_total',
  'Retention policies and continuous queries changed at start, by action (create_rp, alter_rp, create_cq, replace_cq).',
  ['sink', 'action'],
);

const log = componentLogger('sink.influxdb.retention');
const once = new OnceLogger(log);

/** Seconds in one unit of an InfluxQL duration literal. */
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Seconds of a duration of the config (`7d`, `1m`; `INF` is 0, as InfluxDB shows it). */
export function durationSeconds(v: string): number {
  if (v === 'INF') return 0;
  const m = /^(\d+)([smhdw])$/.exec(v);
  if (!m) throw new ConfigError(`"${v}" is not a duration (e.g. 1m, 7d)`);
  return Number(m[1]) * (UNIT_SECONDS[m[2] as string] as number);
}

/**
 * A duration as InfluxDB 1.x prints it back in SHOW CONTINUOUS QUERIES (the largest unit that
 * divides it: 120m is `2h`, 14d is `2w`), so the statement we compare with is the server's own.
 */
export function formatDuration(seconds: number): string {
  for (const u of ['w', 'd', 'h', 'm'] as const) {
    const n = UNIT_SECONDS[u] as number;
    if (seconds % n === 0) return `${seconds / n}${u}`;
  }
  return `${seconds}s`;
}

/** Go's time.Duration text (`168h0m0s`, `0s`) as SHOW RETENTION POLICIES returns it, in seconds. */
export function parseGoDuration(v: string): number {
  let s = 0;
  for (const m of v.matchAll(/(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns)/g)) {
    const n = Number(m[1]);
    const unit = m[2];
    s += unit === 'h' ? n * 3600 : unit === 'm' ? n * 60 : unit === 's' ? n : 0;
  }
  return Math.round(s);
}

/** Where the raw points are: the database, and the retention policy writes name (if any). */
export function writeTarget(c: InfluxConfig): { database: string; writePolicy: string } {
  if (c.api === 'v1') return { database: c.database, writePolicy: c.retentionPolicy };
  const slash = c.bucket.indexOf('/');
  return slash < 0
    ? { database: c.bucket, writePolicy: '' }
    : { database: c.bucket.slice(0, slash), writePolicy: c.bucket.slice(slash + 1) };
}

/** `raw`'s name must be the one writes go to, or the rollups would read an empty policy. */
function checkTarget(c: InfluxConfig): { database: string; raw: string; isDefault: boolean } {
  const { database, writePolicy } = writeTarget(c);
  const r = c.retention;
  if (writePolicy && writePolicy !== r.rawPolicy) {
    throw new ConfigError(
      `influxdb.retention.rawPolicy is "${r.rawPolicy}" but the processor writes to retention policy "${writePolicy}" ` +
        `(${c.api === 'v1' ? 'influxdb.retentionPolicy' : 'influxdb.bucket'}): the rollups read the raw policy, so set both to the same name, ` +
        `or drop the policy from ${c.api === 'v1' ? 'influxdb.retentionPolicy' : 'the bucket'} so that writes go to the database default (which strata makes "${r.rawPolicy}").`,
    );
  }
  // Writes that name no policy go to the database default: then the raw policy must be it.
  return { database, raw: r.rawPolicy, isDefault: !writePolicy };
}

function q(name: string): string {
  return `"${name.replace(/["\\]/g, '\\$&')}"`;
}

function cqName(r: Rollup): string {
  return `strata_${r.name}`;
}

/**
 * The SELECT ... INTO a continuous query runs; also what a backfill runs with a WHERE time range.
 * sum(*) beside mean(*): an idle device or interface writes a row only when it turns idle and on a
 * heartbeat (docs/schema.md), so mean_ of its rates averages the busy rows; sum_ × the agents'
 * interval ÷ the rollup interval is the mean over time (docs/storage.md).
 */
export function rollupSelect(c: RetentionConfig, database: string, r: Rollup, where = ''): string {
  const from = `${q(database)}.${q(c.rawPolicy)}./^(${c.measurements.join('|')})$/`;
  return (
    `SELECT mean(*), max(*), sum(*) INTO ${q(database)}.${q(r.name)}.:MEASUREMENT FROM ${from}` +
    `${where ? ` WHERE ${where}` : ''} GROUP BY time(${formatDuration(durationSeconds(r.every))}), *`
  );
}

export function continuousQuery(c: RetentionConfig, database: string, r: Rollup): string {
  const every = durationSeconds(r.every);
  const resampleFor = r.resampleFor ? durationSeconds(r.resampleFor) : 2 * every;
  return (
    `CREATE CONTINUOUS QUERY ${q(cqName(r))} ON ${q(database)} ` +
    `RESAMPLE EVERY ${formatDuration(every)} FOR ${formatDuration(resampleFor)} ` +
    `BEGIN ${rollupSelect(c, database, r)} END`
  );
}

/** A retention duration as written in the config (`7d`, `INF`): InfluxQL takes it as it is. */
function rpDuration(v: string): string {
  return v;
}

/** The InfluxQL an admin runs once on InfluxDB 1.x (what the processor does at start when enabled). */
export function influxQlSetup(c: InfluxConfig): string[] {
  const { database, raw, isDefault } = checkTarget(c);
  const r = c.retention;
  return [
    `CREATE DATABASE ${q(database)}`,
    `CREATE RETENTION POLICY ${q(raw)} ON ${q(database)} DURATION ${rpDuration(r.raw)} REPLICATION 1${isDefault ? ' DEFAULT' : ''}`,
    ...r.rollups.map(
      (x) =>
        `CREATE RETENTION POLICY ${q(x.name)} ON ${q(database)} DURATION ${rpDuration(x.duration)} REPLICATION 1`,
    ),
    ...r.rollups.map((x) => continuousQuery(r, database, x)),
  ];
}

/** Flux duration literal of a config duration (`INF` has none: a bucket without expiry). */
function fluxDuration(v: string): string {
  return formatDuration(durationSeconds(v));
}

/**
 * InfluxDB 2.x: the buckets (the raw one is influxdb.bucket), DBRP mappings so that InfluxQL
 * dashboards read `rollup_1m.strata_host` there too, and one Flux task per rollup computing the
 * same mean_/max_/sum_ fields as the 1.x continuous query. Printed as a shell script for the `influx` CLI.
 */
export function fluxSetup(c: InfluxConfig): string {
  const r = c.retention;
  const bucket = c.bucket.split('/')[0] as string;
  const retention = (v: string) => (v === 'INF' ? '0' : v);
  const measurements = r.measurements.map((m) => `r._measurement == "${m}"`).join(' or ');
  const out: string[] = [
    '#!/bin/sh',
    `# strata's retention and downsampling on InfluxDB 2.x (org "${c.org}"), from influxdb.retention.`,
    '# Run with an all-access or operator token in INFLUX_TOKEN / the influx CLI config. See docs/storage.md.',
    'set -e',
    `influx bucket create --org ${q(c.org)} --name ${q(bucket)} --retention ${retention(r.raw)} || influx bucket update --id "$(influx bucket list --org ${q(c.org)} --name ${q(bucket)} --hide-headers | cut -f1)" --retention ${retention(r.raw)}`,
  ];
  for (const x of r.rollups) {
    const b = `${bucket}_${x.name}`;
    out.push(
      `influx bucket create --org ${q(c.org)} --name ${q(b)} --retention ${retention(x.duration)}`,
      `influx v1 dbrp create --org ${q(c.org)} --db ${q(bucket)} --rp ${q(x.name)} --bucket-id "$(influx bucket list --org ${q(c.org)} --name ${q(b)} --hide-headers | cut -f1)"`,
    );
  }
  for (const x of r.rollups) {
    const every = fluxDuration(x.every);
    const window = formatDuration(
      x.resampleFor ? durationSeconds(x.resampleFor) : 2 * durationSeconds(x.every),
    );
    const b = `${bucket}_${x.name}`;
    out.push(
      `influx task create --org ${q(c.org)} --file /dev/stdin <<'EOF'`,
      'import "types"',
      '',
      // A task's now() is its scheduled time, a multiple of `every`: range(start: -window) is
      // aligned, so no window is cut in two and written half-full.
      `option task = {name: "${cqName(x)}", every: ${every}, offset: 10s}`,
      '',
      `raw = from(bucket: "${bucket}")`,
      `    |> range(start: -${window})`,
      `    |> filter(fn: (r) => (${measurements}) and types.isNumeric(v: r._value))`,
      '',
      'raw',
      `    |> aggregateWindow(every: ${every}, fn: mean, timeSrc: "_start", createEmpty: false)`,
      '    |> map(fn: (r) => ({r with _field: "mean_" + r._field}))',
      `    |> to(bucket: "${b}")`,
      '',
      'raw',
      `    |> aggregateWindow(every: ${every}, fn: max, timeSrc: "_start", createEmpty: false)`,
      '    |> map(fn: (r) => ({r with _field: "max_" + r._field}))',
      `    |> to(bucket: "${b}")`,
      '',
      'raw',
      `    |> aggregateWindow(every: ${every}, fn: sum, timeSrc: "_start", createEmpty: false)`,
      '    |> map(fn: (r) => ({r with _field: "sum_" + r._field}))',
      `    |> to(bucket: "${b}")`,
      'EOF',
    );
  }
  return `${out.join('\n')}\n`;
}

/** Answer of one /query statement. */
interface QueryAnswer {
  error?: string;
  results?: { error?: string; series?: { name?: string; columns: string[]; values?: unknown[][] }[] }[];
}

/** A setup step InfluxDB refused; `reason` is the metric label. */
class SetupError extends StrataError {
  constructor(
    message: string,
    readonly reason: string,
    options: { retriable?: boolean; cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

function authHeaders(c: InfluxConfig): Record<string, string> {
  // v1: username/password; v2 against 1.8: the token is `user:password` (or empty, auth off).
  const cred =
    c.api === 'v1' ? (c.username ? `${c.username}:${c.password}` : '') : c.token.includes(':') ? c.token : '';
  if (cred) return { authorization: `Basic ${Buffer.from(cred).toString('base64')}` };
  if (c.api === 'v2' && c.token) return { authorization: `Token ${c.token}` };
  return {};
}

function isPrivilegeError(status: number, text: string): boolean {
  return status === 401 || status === 403 || /not authorized|requires admin|authorization failed/i.test(text);
}

export class RetentionSetup {
  private readonly base: string;
  private readonly where: string;

  constructor(
    private readonly c: InfluxConfig,
    private readonly sink: string,
  ) {
    this.base = c.url.replace(/\/+$/, '');
    this.where = `InfluxDB (${sink}) at ${redactUrl(c.url)}`;
  }

  /** Bring the server in line with the table; never throws (logs, counts, and writes go on). */
  async run(): Promise<{ ok: boolean; changes: string[]; error?: string }> {
    const changes: string[] = [];
    try {
      await this.apply(changes);
      log.info(
        { changes: changes.length, statements: changes },
        'retention policies and continuous queries in place',
      );
      return { ok: true, changes };
    } catch (err) {
      const reason =
        err instanceof SetupError ? err.reason : err instanceof ConfigError ? 'config' : 'server';
      setupFailures.inc({ sink: this.sink, reason });
      once.warn(
        `retention:${reason}`,
        { reason, done: changes, influx: redactUrl(this.c.url) },
        `retention setup not completed, points are still written: ${errorMessage(err)}`,
      );
      return { ok: false, changes, error: errorMessage(err) };
    }
  }

  private async apply(changes: string[]): Promise<void> {
    const { database, raw, isDefault } = checkTarget(this.c);
    const r = this.c.retention;
    await this.checkServer();
    const policies = await this.policies(database);
    const want: { name: string; duration: string; isDefault: boolean }[] = [
      { name: raw, duration: r.raw, isDefault },
      ...r.rollups.map((x) => ({ name: x.name, duration: x.duration, isDefault: false })),
    ];
    for (const w of want) {
      const have = policies.get(w.name);
      const dur = rpDuration(w.duration);
      if (!have) {
        await this.exec(
          `CREATE RETENTION POLICY ${q(w.name)} ON ${q(database)} DURATION ${dur} REPLICATION 1${w.isDefault ? ' DEFAULT' : ''}`,
          changes,
          'create_rp',
        );
        continue;
      }
      const durationChanged = have.seconds !== durationSeconds(w.duration);
      const defaultChanged = w.isDefault && !have.isDefault;
      if (!durationChanged && !defaultChanged) continue;
      const seconds = durationSeconds(w.duration);
      if (durationChanged && seconds !== 0 && (have.seconds === 0 || seconds < have.seconds)) {
        log.warn(
          { policy: w.name, from: have.seconds === 0 ? 'INF' : formatDuration(have.seconds), to: dur },
          'retention policy shortened by config: InfluxDB deletes the points older than the new duration',
        );
      }
      await this.exec(
        `ALTER RETENTION POLICY ${q(w.name)} ON ${q(database)}${durationChanged ? ` DURATION ${dur}` : ''}${defaultChanged ? ' DEFAULT' : ''}`,
        changes,
        'alter_rp',
      );
    }
    const cqs = await this.continuousQueries(database);
    for (const x of r.rollups) {
      const stmt = continuousQuery(r, database, x);
      const have = cqs.get(cqName(x));
      if (have !== undefined && normalize(have) === normalize(stmt)) continue;
      if (have !== undefined) {
        // Ours (its name is in the table) and out of date: a CQ cannot be altered, and dropping
        // one drops no data.
        await this.exec(`DROP CONTINUOUS QUERY ${q(cqName(x))} ON ${q(database)}`, changes, undefined);
        await this.exec(stmt, changes, 'replace_cq');
      } else {
        await this.exec(stmt, changes, 'create_cq');
      }
    }
  }

  /** InfluxQL retention policies and continuous queries exist on 1.x only (2.x/3.x: fluxSetup, docs). */
  private async checkServer(): Promise<void> {
    const res = await this.fetch('/ping', { method: 'GET' });
    const version = res.headers.get('x-influxdb-version') ?? '';
    if (/^v?[23]\./.test(version)) {
      throw new SetupError(
        `${this.where} is InfluxDB ${version}, which has no retention policies or continuous queries: ` +
          'create the buckets and downsampling tasks printed by `strata processor --print-influx-setup 2` (docs/storage.md), ' +
          'and set influxdb.retention.enabled false.',
        'not_influxql',
      );
    }
  }

  private async policies(database: string): Promise<Map<string, { seconds: number; isDefault: boolean }>> {
    const a = await this.query(`SHOW RETENTION POLICIES ON ${q(database)}`);
    const out = new Map<string, { seconds: number; isDefault: boolean }>();
    const s = a.results?.[0]?.series?.[0];
    if (!s) return out;
    const [iName, iDur, iDef] = ['name', 'duration', 'default'].map((k) => s.columns.indexOf(k));
    for (const v of s.values ?? []) {
      out.set(String(v[iName as number]), {
        seconds: parseGoDuration(String(v[iDur as number])),
        isDefault: v[iDef as number] === true,
      });
    }
    return out;
  }

  private async continuousQueries(database: string): Promise<Map<string, string>> {
    const a = await this.query('SHOW CONTINUOUS QUERIES');
    const out = new Map<string, string>();
    for (const s of a.results?.[0]?.series ?? []) {
      if (s.name !== database) continue;
      const [iName, iQuery] = ['name', 'query'].map((k) => s.columns.indexOf(k));
      for (const v of s.values ?? []) out.set(String(v[iName as number]), String(v[iQuery as number]));
    }
    return out;
  }

  private async exec(stmt: string, changes: string[], action: string | undefined): Promise<void> {
    await this.query(stmt);
    changes.push(stmt);
    if (action) setupChanges.inc({ sink: this.sink, action });
  }

  private async query(stmt: string): Promise<QueryAnswer> {
    const res = await this.fetch('/query', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ q: stmt }),
    });
    const text = await res.text();
    let a: QueryAnswer = {};
    try {
      a = JSON.parse(text) as QueryAnswer;
    } catch {
      // Not JSON (a proxy's page): the status and text say what happened.
    }
    const error = a.error ?? a.results?.[0]?.error ?? (res.ok ? undefined : text.slice(0, 200));
    if (!error) return a;
    const user = this.c.api === 'v1' ? this.c.username : this.c.token.split(':')[0];
    if (isPrivilegeError(res.status, error)) {
      throw new SetupError(
        `${this.where} refused \`${stmt}\`: ${error}. Creating and altering retention policies and continuous queries ` +
          `needs InfluxDB's admin privilege${user ? `, which user "${user}" lacks` : ''}: have an admin run the statements of ` +
          '`strata processor --print-influx-setup` (docs/storage.md) and set influxdb.retention.enabled false, or run the processor as an admin.',
        'privilege',
      );
    }
    if (/database not found/i.test(error)) {
      throw new SetupError(
        `${this.where}: database "${writeTarget(this.c).database}" does not exist (${error}); create it (CREATE DATABASE) or let the v1 sink do it (influxdb.createDatabase).`,
        'database_missing',
      );
    }
    throw new SetupError(`${this.where} refused \`${stmt}\`: ${error}`, 'server');
  }

  private async fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), ...authHeaders(this.c) },
        signal: AbortSignal.timeout(this.c.timeout),
      });
    } catch (err) {
      throw new SetupError(`${this.where}: ${errorMessage(err)}`, 'network', { cause: err });
    }
  }
}

/** The server's CQ text drops quotes around plain names and keeps one space between tokens. */
function normalize(stmt: string): string {
  return stmt.replace(/"/g, '').replace(/\s+/g, ' ').trim();
}

/** Run at the sink's start when influxdb.retention.enabled (v1.ts, v2.ts). */
export async function setupRetention(c: InfluxConfig, sink: string): Promise<void> {
  if (!c.retention.enabled) return;
  await new RetentionSetup(c, sink).run();
}
