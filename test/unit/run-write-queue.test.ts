// `strata run` without Kafka writes each tick to InfluxDB through a bounded queue (run/write-queue.ts).
// A server that accepts connections and never answers (a hung InfluxDB, a black-holing proxy)
// fills it: the ticks beyond the bound are dropped, said in the status line and counted on
// /metrics. The points are those of two real ticks (testdata/run/host-ticks.ndjson).
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { componentLogger, OnceLogger } from '../../lib/log.ts';
import { registry } from '../../lib/metrics.ts';
import { loadProcessorConfig } from '../../processor/config.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import { SinkHealth } from '../../run/status.ts';
import { WriteQueue } from '../../run/write-queue.ts';
import { decodeSampleMessage } from '../../schemas/sample.ts';
import { createInfluxSink } from '../../sinks/influxdb/index.ts';

function points() {
  const pipeline = createPipeline();
  const lines = readFileSync(new URL('../../testdata/run/host-ticks.ndjson', import.meta.url), 'utf8')
    .trim()
    .split('\n');
  let out: ReturnType<typeof pipeline.handle>['points'] = [];
  for (const l of lines) {
    const r = decodeSampleMessage(l);
    if (!r.ok) throw new Error(r.reason);
    out = pipeline.handle(r.message).points;
  }
  return out;
}

async function dropped(): Promise<number> {
  const m = registry.getSingleMetric('strata_run_influx_dropped_ticks_total');
  return (await m?.get())?.values[0]?.value ?? 0;
}

describe('strata run: the InfluxDB write queue', () => {
  const sockets = new Set<net.Socket>();
  // Accepts, reads, never answers.
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('data', () => {});
  });
  let url = '';
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });
  afterAll(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });

  it('drops whole ticks beyond the bound, says so in the status line and counts them on /metrics', async () => {
    const pts = points();
    expect(pts.length).toBeGreaterThan(0);
    const { config } = loadProcessorConfig({ influxUrl: url, metricsListen: '' }, {});
    // As `strata run` bounds it: a write is given up soon (here once the server is gone, below).
    const sink = createInfluxSink({ ...config.influxdb, maxRetryTime: 300 });
    const health = new SinkHealth(`InfluxDB ${url}`);
    const queue = new WriteQueue(sink, health, new OnceLogger(componentLogger('test')), 3);
    const before = await dropped();
    const taken = Array.from({ length: 5 }, () => queue.offer(pts));
    expect(taken).toEqual([true, true, true, false, false]);
    expect(health.pending).toBe(3);
    expect(health.dropped).toBe(2);
    expect(health.line()).toContain('2 ticks dropped (queue full)');
    expect((await dropped()) - before).toBe(2);
    expect(await registry.metrics()).toMatch(/^strata_run_influx_dropped_ticks_total \d+$/m);
    // The server goes away: the writes in hand fail, and the queue drains.
    server.close();
    for (const s of sockets) s.destroy();
    await queue.drained();
    expect(health.pending).toBe(0);
    expect(health.failing).toBe(true);
    await sink.close();
  }, 30_000);
});
