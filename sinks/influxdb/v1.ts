// InfluxDB v1-API sink (`api: v1`): POST /write?db=&rp=&precision=ms, optional basic auth, gzip.
// Reads the database, retentionPolicy, username, password and createDatabase keys of InfluxConfig.
import { ConnectionError, errorMessage } from '../../lib/errors.ts';
import { redactUrl } from '../../lib/redact.ts';
import { type InfluxConfig, tuningOptions } from './config.ts';
import { setupRetention } from './retention.ts';
import { LineWriter } from './writer.ts';

export class InfluxV1Sink extends LineWriter {
  constructor(private readonly c: InfluxConfig) {
    const q = new URLSearchParams({ db: c.database, precision: 'ms' });
    if (c.retentionPolicy) q.set('rp', c.retentionPolicy);
    super({
      sink: 'influxdb-v1',
      url: c.url,
      path: `/write?${q}`,
      headers: authHeaders(c),
      ...tuningOptions(c),
      pingPath: '/ping',
    });
  }

  override async start(): Promise<void> {
    await super.start();
    if (this.c.createDatabase) await this.createDatabase();
    // After the database exists; never throws (a refused setup is logged and counted).
    await setupRetention(this.c, this.name);
  }

  private async createDatabase(): Promise<void> {
    const body = new URLSearchParams({ q: `CREATE DATABASE "${this.c.database.replace(/["\\]/g, '\\$&')}"` });
    const res = await fetch(`${this.c.url.replace(/\/$/, '')}/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...authHeaders(this.c) },
      body,
    }).catch((err: unknown) => {
      throw new ConnectionError(`InfluxDB (influxdb-v1) at ${redactUrl(this.c.url)}: ${errorMessage(err)}`, {
        cause: err,
      });
    });
    if (!res.ok) {
      throw new ConnectionError(
        `InfluxDB (influxdb-v1) at ${redactUrl(this.c.url)}: CREATE DATABASE ${this.c.database} failed with ${res.status}: ${(await res.text()).slice(0, 200)}. ` +
          'Create it yourself and set createDatabase: false, or give the user the right to create databases.',
        { retriable: false },
      );
    }
  }
}

function authHeaders(c: InfluxConfig): Record<string, string> | undefined {
  if (!c.username) return undefined;
  return { authorization: `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` };
}

export function createInfluxV1Sink(c: InfluxConfig): InfluxV1Sink {
  return new InfluxV1Sink(c);
}
